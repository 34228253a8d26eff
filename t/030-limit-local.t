# Rate limits in a local zone (shared memory, GCRA): a burst and then
# 429 with Retry-After, the RateLimit-Policy and RateLimit fields on
# every answer, $kordon_limit_status, keys by user, address (through the
# realip module) and route, several limits on one location, methods=,
# and what nginx -t refuses.  Responses come from the static index.html
# (a content handler: "return" would answer before the limits run).

use Test::Kordon;
use IO::Socket::INET;

# a raw GET with headers, for blocks whose requests differ in a header
sub get {
    my ($path, @h) = @_;
    return "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . join('', map { "$_\r\n" } @h) . "\r\n";
}

# $n requests with distinct keys on one keep-alive connection, 500 at a
# time; the key count at which the zone was full is in the error log
sub fill {
    my $n = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . server_port(),
                                  Proto => 'tcp') or die "connect: $!\n";
    for (my $i = 0; $i < $n; $i += 500) {
        my $req = join '', map { "GET /index.html?k=key-$_ HTTP/1.1\r\n"
                                 . "Host: localhost\r\n\r\n" }
                           $i .. $i + 499;
        syswrite($s, $req) == length $req or die "write: $!\n";
        my ($buf, $seen) = ('', 0);
        while ($seen < 500) {
            sysread($s, $buf, 65536, length $buf) or die "read: $!\n";
            $seen = () = $buf =~ m{HTTP/1\.1 200 }g;
        }
    }
    close $s;
}

run_tests();

__DATA__

=== TEST 1: a burst of 3, then 429 with Retry-After and the fields
--- http_config
    kordon_limit_zone name=api rate=6/m burst=3 key=$remote_addr;
--- config
    location / { kordon_limit api; add_header X-Limit $kordon_limit_status always; }
--- request eval
["GET /index.html", "GET /index.html", "GET /index.html", "GET /index.html"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"api\";q=3;w=30\nRateLimit: \"api\";r=2;t=10\nX-Limit: ok\n!Retry-After",
 "RateLimit: \"api\";r=1;t=20",
 "RateLimit: \"api\";r=0;t=30",
 "RateLimit-Policy: \"api\";q=3;w=30\nRateLimit: \"api\";r=0;t=30\nRetry-After: 10\nX-Limit: limited:api"]
--- problem eval
[undef, undef, undef, "429"]
--- no_error_log
[error]



=== TEST 2: 429 is problem+json through the edge's error page too
--- http_config
    kordon_limit_zone name=one rate=1/m burst=1 key=$remote_addr;
--- config
    location / { kordon_limit one; }
--- request eval
["GET /index.html", "GET /index.html"]
--- error_code eval
[200, 429]
--- response_headers_like eval
["", "Content-Type: ^application/problem\\+json\$\nRetry-After: ^60\$"]
--- response_body_like eval
["It works", '"title":"Too Many Requests"']



=== TEST 3: keys by user: one user's burst leaves the other's alone
--- http_config
    kordon_limit_zone name=user rate=1/m burst=1 key=$http_x_user;
--- config
    location / { kordon_limit user; add_header X-Limit $kordon_limit_status always; }
--- raw_request eval
[get('/index.html', 'X-User: u-1'), get('/index.html', 'X-User: u-1'),
 get('/index.html', 'X-User: u-2'), get('/index.html')]
--- error_code eval
[200, 429, 200, 200]
--- response_headers eval
["X-Limit: ok", "X-Limit: limited:user", "X-Limit: ok",
 "!X-Limit\n!RateLimit\n!RateLimit-Policy"]



=== TEST 4: the real client address from a trusted proxy only
--- http_config
    kordon_limit_zone name=ip rate=1/m burst=1 key=$remote_addr;
--- config
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    location / { kordon_limit ip; add_header X-Ip $remote_addr always; }
--- raw_request eval
[get('/index.html', 'X-Forwarded-For: 203.0.113.7'),
 get('/index.html', 'X-Forwarded-For: 203.0.113.7'),
 get('/index.html', 'X-Forwarded-For: 2001:db8::7')]
--- error_code eval
[200, 429, 200]
--- response_headers eval
["X-Ip: 203.0.113.7", "X-Ip: 203.0.113.7", "X-Ip: 2001:db8::7"]



=== TEST 5: an untrusted proxy's X-Forwarded-For changes nothing
--- http_config
    kordon_limit_zone name=ip rate=1/m burst=1 key=$remote_addr;
--- config
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    location / { kordon_limit ip; }
--- raw_request eval
[get('/index.html', 'X-Forwarded-For: 203.0.113.7'),
 get('/index.html', 'X-Forwarded-For: 203.0.113.8')]
--- error_code eval
[200, 429]



=== TEST 6: keys by route: each location its own bucket
--- http_config
    kordon_limit_zone name=route rate=1/m burst=1 key=$uri;
--- config
    location / { kordon_limit route; }
--- request eval
["GET /index.html", "GET /index.html", "GET /nothing.html"]
--- error_code eval
[200, 429, 404]
--- response_headers eval
["", "", "RateLimit: \"route\";r=0;t=60"]



=== TEST 7: two limits: a refusal by one takes nothing from the other
--- http_config
    kordon_limit_zone name=small rate=1/m burst=1 key=$http_x_user;
    kordon_limit_zone name=big rate=3/m burst=3 key=all;
--- config
    location / {
        kordon_limit small;
        kordon_limit big;
        add_header X-Limit $kordon_limit_status always;
    }
--- raw_request eval
[map { get('/index.html', "X-User: u-$_") } 1, 1, 2, 3, 4]
--- error_code eval
[200, 429, 200, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"small\";q=1;w=60, \"big\";q=3;w=60\nRateLimit: \"small\";r=0;t=60, \"big\";r=2;t=20",
 "X-Limit: limited:small\nRateLimit: \"small\";r=0;t=60, \"big\";r=2;t=20",
 "RateLimit: \"small\";r=0;t=60, \"big\";r=1;t=40",
 "RateLimit: \"small\";r=0;t=60, \"big\";r=0;t=60",
 "X-Limit: limited:big"]



=== TEST 8: methods=: only the methods named are limited
--- http_config
    kordon_limit_zone name=writes rate=1/m burst=1 key=$remote_addr;
--- config
    location / { kordon_limit writes methods=POST,DELETE; }
--- request eval
["GET /index.html", "GET /index.html", "DELETE /index.html",
 "DELETE /index.html"]
--- error_code eval
[200, 200, 405, 429]
--- response_headers eval
["!RateLimit", "!RateLimit", "RateLimit: \"writes\";r=0;t=60", ""]



=== TEST 9: a location without kordon_limit: no fields, no status
--- http_config
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr;
--- config
    location /limited { kordon_limit api; }
    location / { add_header X-Limit "[$kordon_limit_status]" always; }
--- request eval
["GET /index.html", "GET /index.html"]
--- response_headers eval
["X-Limit: []\n!RateLimit-Policy", "X-Limit: []"]



=== TEST 10: rates per second are exact: 10/s burst=1 admits every 100 ms
--- http_config
    kordon_limit_zone name=fast rate=10/s burst=1 key=$remote_addr;
--- config
    location / { kordon_limit fast; }
--- request eval
["GET /index.html", "GET /index.html", sub { select undef, undef, undef, 0.11 },
 "GET /index.html"]
--- error_code eval
[200, 429, 200]
--- response_headers eval
["RateLimit-Policy: \"fast\";q=1;w=1\nRateLimit: \"fast\";r=0;t=1",
 "Retry-After: 1", ""]



=== TEST 11: an unknown zone fails nginx -t
--- config
    location / { kordon_limit nope; }
--- must_die
--- error_log
unknown limit zone "nope"



=== TEST 12: a bad rate fails nginx -t
--- http_config
    kordon_limit_zone name=api rate=10/h burst=1 key=$remote_addr;
--- must_die
--- error_log
invalid parameter "rate=10/h"



=== TEST 13: mode=cluster without redis= fails nginx -t
--- http_config
    kordon_limit_zone name=api rate=10/s burst=1 key=$remote_addr mode=cluster;
--- must_die
--- error_log
limit zone "api" in mode=cluster needs redis=



=== TEST 14: the limit survives a reload (the zone is kept)
--- http_config
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr;
--- config
    location / { kordon_limit api; }
--- request eval
["GET /index.html", sub { reload_nginx() }, "GET /index.html"]
--- error_code eval
[200, 429]



=== TEST 15: a 1 MiB zone holds the keys kordon_limit_zone_keys() says
--- http_config
    kordon_limit_zone name=fill rate=1/m burst=1 key=$arg_k size=1m;
--- config
    keepalive_requests 100000;
    location / { kordon_limit fill; }
    location = /stats { kordon_limit_stats; }
--- request eval
[sub { fill(17000) }, "GET /index.html?k=last", "GET /stats"]
--- response_body_like eval
["", '"admitted":17001,.*"evicted":8(?:7[3-9]|80),"keys":161(?:2[1-8]),']
--- error_log eval
[qr/kordon limit "fill": zone full at (?:1600\d|160[1-9]\d|161[0-2]\d) keys, evicting the least recently used/]



=== TEST 16: the counters: admitted, limited, keys held
--- http_config
    kordon_limit_zone name=api rate=1/m burst=1 key=$remote_addr;
    kordon_limit_zone name=idle rate=1/m burst=1 key=$remote_addr mode=local;
--- config
    location / { kordon_limit api; }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /index.html", "GET /index.html", "GET /index.html", "GET /stats"]
--- error_code eval
[200, 429, 429, 200]
--- response_headers eval
["", "", "", "Content-Type: application/json"]
--- response_body eval
[undef, undef, undef,
 '{"zones":[{"zone":"api","mode":"local","admitted":1,"limited":2,"redis_errors":0,"failed_open":0,"failed_closed":0,"evicted":0,"keys":1,"synced":0,"sync_dropped":0},{"zone":"idle","mode":"local","admitted":0,"limited":0,"redis_errors":0,"failed_open":0,"failed_closed":0,"evicted":0,"keys":0,"synced":0,"sync_dropped":0}]}' . "\n"]



=== TEST 17: an internal redirect (index) counts the request once
--- http_config
    kordon_limit_zone name=api rate=1/m burst=2 key=$remote_addr;
--- config
    location / { kordon_limit api; add_header X-Limit $kordon_limit_status always; }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /", "GET /", "GET /", "GET /stats"]
--- error_code eval
[200, 200, 429, 200]
--- response_headers eval
["X-Limit: ok\nRateLimit: \"api\";r=1;t=60", "X-Limit: ok",
 "X-Limit: limited:api", ""]
--- response_body_like eval
["It works", "It works", "", '"admitted":2,"limited":1,']



=== TEST 18: limits at server level reach locations that have none
--- http_config
    kordon_limit_zone name=srv rate=1/m burst=1 key=$remote_addr;
    kordon_limit_zone name=own rate=1/m burst=2 key=$remote_addr;
--- config
    kordon_limit srv;
    location /own/ { kordon_limit own; alias html/; }
    location / { }
--- request eval
["GET /index.html", "GET /index.html", "GET /own/index.html",
 "GET /own/index.html"]
--- error_code eval
[200, 429, 200, 200]
--- response_headers eval
["RateLimit-Policy: \"srv\";q=1;w=60", "", "RateLimit-Policy: \"own\";q=2;w=120",
 ""]
