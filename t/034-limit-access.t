# IP allow and deny lists: nginx's own access module (allow/deny, CIDR,
# IPv4 and IPv6, first match wins) per location, answered by the edge's
# problem+json error page, and reloaded with nginx.  The client address
# comes through the realip module from a trusted proxy, so that the
# tests reach IPv6 rules over a loopback IPv4 connection.

use Test::Kordon;

sub get {
    my ($path, $ip) = @_;
    return "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . "X-Forwarded-For: $ip\r\n\r\n";
}

# rewrites the running nginx's configuration, then reloads it
sub edit_conf {
    my ($from, $to) = @_;
    my $path = servroot() . '/conf/nginx.conf';
    open my $fh, '<', $path or die "$path: $!";
    my $conf = do { local $/; <$fh> };
    close $fh;
    $conf =~ s/\Q$from\E/$to/ or die "no \"$from\" in the configuration\n";
    open $fh, '>', $path or die "$path: $!";
    print $fh $conf;
    close $fh;
    reload_nginx();
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(config => problem_config() . <<'CONF' . $block->config);
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
CONF
});

run_tests();

__DATA__

=== TEST 1: an allow list of CIDRs, IPv4 and IPv6; the rest gets 403
--- config
    location /admin/ {
        allow 10.1.0.0/16;
        allow 2001:db8:1::/48;
        deny all;
        alias html/;
    }
--- raw_request eval
[get('/admin/index.html', '10.1.2.3'), get('/admin/index.html', '10.2.0.1'),
 get('/admin/index.html', '2001:db8:1:ffff::1'),
 get('/admin/index.html', '2001:db8:2::1')]
--- error_code eval
[200, 403, 200, 403]
--- problem eval
[undef, "403", undef, "403"]
--- error_log
access forbidden by rule



=== TEST 2: a deny list: first match wins, everyone else passes
--- config
    location / {
        deny 198.51.100.0/24;
        deny 2001:db8:bad::/64;
        allow 198.51.100.0/16;
        allow all;
    }
--- raw_request eval
[get('/index.html', '198.51.100.9'), get('/index.html', '198.51.101.9'),
 get('/index.html', '2001:db8:bad::5'), get('/index.html', '2001:db8:bad:1::5')]
--- error_code eval
[403, 200, 403, 200]



=== TEST 3: a changed list takes effect on reload
--- config
    location / {
        deny 192.0.2.1;
    }
--- raw_request eval
[get('/index.html', '192.0.2.1'), get('/index.html', '192.0.2.2'),
 sub { edit_conf('deny 192.0.2.1;', 'deny 192.0.2.2;') },
 get('/index.html', '192.0.2.1'), get('/index.html', '192.0.2.2')]
--- error_code eval
[403, 200, 200, 403]



=== TEST 4: a denied client is not counted by the limits
--- http_config
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr;
--- config
    location / {
        deny 192.0.2.1;
        kordon_limit api;
    }
--- raw_request eval
[get('/index.html', '192.0.2.1'), get('/index.html', '192.0.2.1'),
 get('/index.html', '192.0.2.2'), get('/index.html', '192.0.2.2')]
--- error_code eval
[403, 403, 200, 429]
