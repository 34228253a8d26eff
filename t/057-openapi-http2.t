# kordon_openapi over HTTP/2 (the edge's public protocol): a body sent
# without Content-Length is still read and validated; and the route
# label survives an error page.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2 http2;
    access_log logs/h2.log h2;
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF

# h2 BODY WANT [PATH] -- POSTs BODY to PATH (/things) over h2c with no
# Content-Length (curl streams stdin); dies unless the answer has WANT.
# A WANT of a bare status ("413") is read from the access log instead:
# after an early answer nginx resets the stream (RFC 9113 8.1, NO_ERROR)
# and curl at times drops the answer it had already received.
sub h2 {
    my ($body, $want, $path) = @_;
    $path //= '/things';
    my $port = server_port2();
    open my $c, '|-', "curl -sS -v --http2-prior-knowledge -X POST"
        . " -H 'Content-Type: application/json'"
        . " -H 'Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11'"
        . " -o $ENV{TEST_NGINX_SERVROOT}/h2.out -w '%{http_code}'"
        . " -D $ENV{TEST_NGINX_SERVROOT}/h2.head"
        . " -T - http://127.0.0.1:$port$path"
        . " > $ENV{TEST_NGINX_SERVROOT}/h2.code"
        . " 2> $ENV{TEST_NGINX_SERVROOT}/h2.trace" or die "curl: $!";
    print $c $body;
    # 92: the stream was reset while curl still sent, which nginx does
    # after answering early (413, 415); the answer is checked below
    close $c or $? >> 8 == 92 or die "curl failed: $?";
    my $read = sub { open my $f, '<', shift or die $!; local $/; <$f> };
    my $out = $read->("$ENV{TEST_NGINX_SERVROOT}/h2.code") . ' '
            . $read->("$ENV{TEST_NGINX_SERVROOT}/h2.out");
    die "curl sent a Content-Length, the test proves nothing"
        if $read->("$ENV{TEST_NGINX_SERVROOT}/h2.trace")
           =~ /^> content-length/mi;
    if (!ref $want) {
        my $log = '';
        for (1 .. 50) {
            $log = $read->("$ENV{TEST_NGINX_SERVROOT}/logs/h2.log");
            last if $log =~ m{^\d+ POST \Q$path\E HTTP/2\.0\n\z}m;
            select undef, undef, undef, 0.02;
        }
        my ($last) = $log =~ /([^\n]*)\n\z/;
        die "want $want, logged: $log"
            unless ($last // '') eq "$want POST $path HTTP/2.0";
        return;
    }
    my $head = $read->("$ENV{TEST_NGINX_SERVROOT}/h2.head");
    die "not HTTP/2: $head" unless $head =~ m{^HTTP/2 };
    die "want /$want/, got: $out\n" unless $out =~ $want;
}

run_tests();

__DATA__

=== TEST 1: an HTTP/2 body without Content-Length is validated
--- http_config
    log_format h2 '$status $request';
--- request eval
[sub { h2('{"name":"abc","amount":-1,"currency":"EUR"}',
          qr/^400 .*"pointer":"\/amount","message":"must be > 0"/) },
 sub { h2('{"name":"abc","amount":1,"currency":"EUR"}',
          qr/^200 POST \/things HTTP\/1\.0/) },
 sub { h2('x' x 2000, '413') },
 sub { h2('{}', '415', '/actions') },
 "GET /things?q=x"]
--- error_code: 200

=== TEST 2: the route label of a request answered by an error page
--- http_config
    log_format route '$status [$kordon_openapi_route]';
--- config
    kordon_openapi_validate on;
    access_log logs/route.log route;
    location / { proxy_pass http://127.0.0.1:1; }
--- request eval
["GET /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11", sub {
    my $log = '';
    for (1 .. 50) {     # the log line is written just after the answer
        open my $f, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/route.log" or die;
        local $/;
        $log = <$f> // '';
        last if $log =~ /\n/;
        select undef, undef, undef, 0.02;
    }
    die "log: $log" unless $log =~ m{^502 \[/things/\{id\}\]$}m;
}]
--- error_code: 502
