# The Redis response cache when Redis is gone, slow or killed while the
# edge runs: every request passes through to the upstream (BYPASS),
# within the lookup's timeout, never an error, no worker crash; the
# failures are counted; the cache works again once Redis is back.  The
# upstream is t/lib/Kordon/Origin.pm ("hits N <path>").

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;
use Time::HiRes qw(sleep time);

redis_setup();
origin_setup();

# a Redis of this test's own, to kill and restart
my $R = redis_server();
$ENV{TEST_NGINX_OWN_REDIS_PORT} = $R->port;
sub own { $R }

add_block_preprocessor(sub {
    $R->start unless eval { $R->cmd('PING') };
    $R->cmd('FLUSHALL');
});

# GETs $path until the cache answers (X-Cache other than BYPASS): the
# client reconnects with backoff once Redis is back.
sub poll_cache {
    my ($path, $seconds) = @_;
    my $deadline = time + $seconds;
    while (time < $deadline) {
        my $res = Test::Kordon::send_request(
            "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        my $x = ($res->{headers}{'x-cache'} // [''])->[0];
        return if $x eq 'HIT' || $x eq 'MISS';
        sleep 0.05;
    }
    die "the cache did not come back in ${seconds}s\n";
}

run_tests();

__DATA__

=== TEST 1: Redis killed mid-test: pass-through, then the cache is back
--- http_config
    kordon_redis own 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=200ms;
--- config
    add_header X-Time $request_time always;
    location /c/ {
        kordon_cache own;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /stats { kordon_cache_stats; }
--- request eval
["GET /c/k", "GET /c/k", sub { own()->stop }, "GET /c/k", "GET /c/k",
 sub { own()->start; poll_cache('/c/poll', 6) },
 "GET /c/k2", "GET /c/k2", "GET /stats"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: BYPASS", "X-Cache: BYPASS",
 "X-Cache: MISS", "X-Cache: HIT", ""]
--- response_headers_like eval
["", "", "X-Time: ^0\\.[0-2]", "X-Time: ^0\\.[0-2]", "", "", ""]
--- response_body_like eval
["^hits 1 /c/k\n", "^hits 1 /c/k\n", "^hits 2 /c/k\n", "^hits 3 /c/k\n",
 "^hits 1 /c/k2\n", "^hits 1 /c/k2\n",
 qr/"hits":2,"misses":3,"bypasses":[2-9]\d*,"redis_errors":[2-9]\d*,/]
--- no_error_log
[alert]
[crit]



=== TEST 2: Redis paused (slow): the lookup times out, the upstream answers
--- http_config
    kordon_redis own 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=2s;
--- config
    add_header X-Time $request_time always;
    location /c/ {
        kordon_cache own;
        kordon_cache_timeout 100ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/slow", sub { own()->pause }, "GET /c/slow",
 sub { own()->resume; poll_cache('/c/poll', 6) }, "GET /c/slow2"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: BYPASS", "X-Cache: MISS"]
--- response_headers_like eval
["", "X-Time: ^0\\.(?:0\\d|1[0-9])\\d\$", ""]
--- response_body_like eval
["^hits 1 /c/slow\n", "^hits 2 /c/slow\n", "^hits 1 /c/slow2\n"]
--- error_log
kordon cache: lookup failed (timeout), passing through
--- no_error_log
[alert]



=== TEST 3: a Redis that never answers (a black hole): BYPASS in time
--- http_config
    kordon_redis hole 127.0.0.1:$TEST_NGINX_BLACK_HOLE_PORT timeout=100ms;
--- config
    add_header X-Time $request_time always;
    location /c/ {
        kordon_cache hole;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/hole", "GET /c/hole", "GET /c/hole"]
--- response_headers eval
["X-Cache: BYPASS", "X-Cache: BYPASS", "X-Cache: BYPASS"]
--- response_headers_like eval
["X-Time: ^[01]\\.", "X-Time: ^0\\.[0-2]", "X-Time: ^0\\.[0-2]"]
--- response_body_like eval
["^hits 1 /c/hole\n", "^hits 2 /c/hole\n", "^hits 3 /c/hole\n"]
--- no_error_log
[alert]



=== TEST 4: nothing listening: BYPASS at once; a burst stays whole
--- http_config
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
--- config
    location /c/ {
        kordon_cache gone;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/gone",
 sub { my $st = burst('/c/gone', 50);
       die "answers: @{[ %$st ]}\n" unless ($st->{200} // 0) == 50 },
 "GET /c/gone"]
--- response_headers eval
["X-Cache: BYPASS", "X-Cache: BYPASS"]
--- response_body eval
["hits 1 /c/gone\n", "hits 52 /c/gone\n"]
--- no_error_log
[alert]



=== TEST 5: clients that leave while their lookup waits on a slow Redis
--- http_config
    kordon_redis own 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=500ms;
--- config
    location /c/ {
        kordon_cache own;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/leave", sub { own()->pause; abandon('/c/leave', 0.1) for 1 .. 5;
                       own()->resume; poll_cache('/c/poll', 6) },
 "GET /c/leave", "GET /c/leave"]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: (?:HIT|BYPASS|MISS)", "X-Cache: HIT"]
--- no_error_log
[alert]
