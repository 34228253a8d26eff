# kordon_jwt_revocations: users XADDs "sub <id> nbf <t>" or "sid <id> nbf
# <t>" to kordon:revocations; the edge pulls the stream into shared
# memory from a timer and refuses, within a second, every token of that
# user (or session) issued before t, cached or not, with no Redis round
# trip on the request path.  Redis down keeps what is known; a stream
# made anew is read again from 0.  A real redis-server (Kordon::Redis).

use Test::Kordon;
use Kordon::JWT;
use Kordon::Redis;
use Kordon::Auth;

redis_setup();

my $Http = <<'CONF';
    kordon_jwt_cache        zone=jwt:1m;
    kordon_redis            main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_jwt_revocations  redis=main;
CONF

add_block_preprocessor(jwt_preprocessor(http => $Http, config => <<'CONF'));
    location /t {
        kordon_auth jwt;
        add_header X-Cache $kordon_jwt_cache_status always;
        add_header X-Auth-Error $kordon_auth_error always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
CONF

# tokens issued at $T - 1 are cut by "nbf $T", those issued at $T are not
our $T = int(time) - 5;

sub tokens { map { 'Bearer ' . token(@$_) } @_ }

run_tests();

__DATA__

=== TEST 1: a revoked user's cached token is refused within a second
--- more_headers eval: sub { bearer(sub => 'u-1') }
--- request eval
['GET /t', 'GET /t', sub { revoke(sub => 'u-1'); wait_poll() }, 'GET /t']
--- error_code eval
[200, 200, 401]
--- response_headers eval
["X-Cache: MISS\n!X-Auth-Error", "X-Cache: HIT",
 "X-Cache: HIT\nX-Auth-Error: revoked\nWWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"token revoked\""]
--- response_body_like eval
['X-Kordon-User: u-1', 'X-Kordon-User: u-1', '"detail":"token revoked"']
--- error_log
token of "u-1" issued at



=== TEST 2: only tokens of that user issued before nbf are refused
--- raw_request eval
my @r = @{auth_requests('GET /t', tokens([sub => 'u-2', iat => $main::T - 1],
                                         [sub => 'u-2', iat => $main::T],
                                         [sub => 'u-2b', iat => $main::T - 1]))};
[sub { revoke(sub => 'u-2', nbf => $main::T); wait_poll() }, @r]
--- error_code eval
[401, 200, 200]
--- response_body_like eval
['"detail":"token revoked"', 'X-Kordon-User: u-2\r', 'X-Kordon-User: u-2b\r']



=== TEST 3: a revoked session: its tokens are refused, the user's others pass
--- raw_request eval
my @r = @{auth_requests('GET /t',
    tokens([sub => 'u-3', sid => 's-3', iat => $main::T - 1],
           [sub => 'u-3', sid => 's-3b', iat => $main::T - 1],
           [sub => 's-3', sid => 's-3c', iat => $main::T - 1]))};
[sub { revoke(sid => 's-3', nbf => $main::T); wait_poll() }, @r]
--- error_code eval
[401, 200, 200]
--- response_headers eval
['X-Auth-Error: revoked', '!X-Auth-Error', '!X-Auth-Error']



=== TEST 4: Redis killed: what is known holds, no hang; restarted empty: new cuts come
--- raw_request eval
my ($d1, $d2, $d3) = @{auth_requests('GET /t',
    tokens(map { [sub => $_, iat => $main::T - 1] } qw(u-4a u-4b u-4c)))};
[sub { revoke(sub => 'u-4a', nbf => $main::T); wait_poll() },
 $d1,
 sub { kill 'KILL', redis()->{pid}; redis()->stop; sleep 1 },
 $d1, $d2,
 sub { redis()->start; revoke(sub => 'u-4c', nbf => $main::T); sleep 4 },
 $d3, $d1, $d2]
--- error_code eval
[401, 401, 200, 401, 401, 200]
--- error_ok
--- error_log eval
['could not read revocation stream "kordon:revocations" from redis "main": redis is not reachable; keeping the revocations known',
 'reading revocation stream "kordon:revocations" from redis "main" again']



=== TEST 5: a stream made anew (its ids behind the last one read) is read again from 0
--- raw_request eval
my ($e1, $e2) = @{auth_requests('GET /t',
    tokens(map { [sub => $_, iat => $main::T - 1] } qw(u-5a u-5b)))};
[sub { revoke(sub => 'u-5a', nbf => $main::T); wait_poll() },
 $e1, $e2,
 sub { redis()->cmd('DEL', 'kordon:revocations');
       redis()->cmd('XADD', 'kordon:revocations', '1-1', 'sub', 'u-5b',
                    'nbf', $main::T);
       wait_poll() },
 $e2, $e1]
--- error_code eval
[401, 200, 401, 401]
--- error_log
was trimmed or made anew, reading it again from 0



=== TEST 6: entries without a valid sub/sid and nbf are skipped, the next ones count
--- raw_request eval
my @r = @{auth_requests('GET /t',
    tokens(map { [sub => $_, iat => $main::T - 1] } qw(u-6a u-6b u-6c)))};
[sub { redis()->cmd('XADD', 'kordon:revocations', '*', 'sub', 'u-6a');
       redis()->cmd('XADD', 'kordon:revocations', '*', 'sub', 'u-6b',
                    'nbf', '-1');
       revoke(sub => 'u-6c', nbf => $main::T);
       wait_poll() },
 @r]
--- error_code eval
[200, 200, 401]
--- error_log
revocation entry without a valid "sub" or "sid" and "nbf" skipped



=== TEST 7: the table and the read position survive a reload
--- raw_request eval
my @r = @{auth_requests('GET /t',
    tokens([sub => 'u-7', iat => $main::T - 1]))};
[sub { revoke(sub => 'u-7', nbf => $main::T); wait_poll() },
 @r, sub { reload_nginx() }, @r]
--- error_code eval
[401, 401]



=== TEST 8: a Redis that never answers delays no request
--- own_http
--- http_config eval
jwt_http() . <<'CONF'
    kordon_redis            hole 127.0.0.1:$TEST_NGINX_BLACK_HOLE_PORT timeout=100ms;
    kordon_jwt_revocations  redis=hole interval=100ms;
CONF
--- more_headers eval: sub { bearer(sub => 'u-8') }
--- request eval
['GET /t', sub { sleep 1 }, 'GET /t', 'GET /t']
--- error_code eval
[200, 200, 200]
--- error_ok
--- error_log
could not read revocation stream "kordon:revocations" from redis "hole"



=== TEST 9: nginx -t: kordon_jwt_revocations needs redis=
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_revocations interval=1s;\n"
--- must_die
--- error_log
"kordon_jwt_revocations" directive needs "redis="



=== TEST 10: nginx -t: an unknown parameter
--- own_http
--- http_config eval
jwt_http() . "    kordon_redis r 127.0.0.1:1;\n    kordon_jwt_revocations redis=r every=1s;\n"
--- must_die
--- error_log
invalid parameter "every=1s"



=== TEST 11: the table is bounded: a flood of cuts drops the oldest, says so once, the newest holds
--- own_http
--- http_config eval
jwt_http() . <<'CONF'
    kordon_redis            main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_jwt_revocations  redis=main size=32k;
CONF
--- raw_request eval
my @r = @{auth_requests('GET /t',
    tokens([sub => 'u-11', iat => $main::T - 1],
           [sub => 'u-11b', iat => $main::T - 1]))};
[sub { redis()->cmd('EVAL', "for i = 1, 2000 do redis.call('XADD', KEYS[1],"
                    . " '*', 'sub', 'bulk-' .. i, 'nbf', ARGV[1]) end",
                    1, 'kordon:revocations', $main::T);
       revoke(sub => 'u-11', nbf => $main::T);
       wait_poll() },
 @r]
--- error_code eval
[401, 200]
--- error_log
is full, dropping the oldest revocations: raise its size=
--- error_ok
