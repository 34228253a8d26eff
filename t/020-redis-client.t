# The shared Redis client (ngx_http_kordon_redis_module) end to end,
# through kordon_redis_health: the ok path, pipelining on the worker's
# one connection, timeouts, Redis gone, restarted, paused, a client that
# leaves while its command is in flight, the in-flight bound, AUTH and
# SELECT, and reloads.  Redis servers, a black hole and the steps done to
# them come from t/lib/Kordon/Redis.pm.  X-Time ($request_time) shows how
# long an answer took.

use Test::Kordon;
use Kordon::Redis;
use Time::HiRes qw(sleep);

redis_setup();

run_tests();

__DATA__

=== TEST 1: PING through the worker's connection
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /health { kordon_redis_health main; }
--- request
GET /health
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"redis":"main","status":"ok","ms":\d+\.\d{3}\}\n\z
--- error_log eval
[qr/redis "main" \(127\.0\.0\.1:\d+\) connected, connection \*\d+/]
--- no_error_log
[error]
[warn]



=== TEST 2: HEAD has the headers only, other methods are refused
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["HEAD /health", "POST /health\nx=1"]
--- error_code eval
[200, 405]
--- response_headers eval
["Content-Type: application/json", ""]
--- response_body eval
["", undef]



=== TEST 3: a burst of 100 is pipelined on one connection, all answered
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=2s;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
[sub {
     my $st = burst('/health', 100);
     die "answers: @{[ %$st ]}\n" unless ($st->{200} // 0) == 100;
 },
 "GET /health"]
--- error_log eval
[qr/redis "main" command "PING", in flight: (?:[2-9]|\d\d+)\b/]
--- no_error_log eval
[qr/\) connected, connection(?s:.*)\) connected, connection/,
 "[error]", "[alert]"]



=== TEST 4: nothing listening: 503 at once, retried with backoff
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
--- config
    add_header X-Time $request_time always;
    location = /health { kordon_redis_health main; }
    location = /gone { kordon_redis_health gone; }
--- request eval
["GET /gone", "GET /health"]
--- problem eval
["503 redis is not reachable", undef]
--- error_code eval
[503, 200]
--- response_headers_like eval
['X-Time: ^0\.0[0-4]\d$', 'X-Time: ^0\.0[0-4]\d$']
--- wait: 0.4
--- error_log eval
[qr/could not connect to redis "gone" \(127\.0\.0\.1:\d+\): Connection refused, retrying in 100 ms/,
 qr/could not connect to redis "gone" .* retrying in 200 ms/]
--- no_error_log
[alert]



=== TEST 5: a black hole: the first wait and time out, then 503 at once
--- http_config
    kordon_redis hole 127.0.0.1:$TEST_NGINX_BLACK_HOLE_PORT
                 connect_timeout=200ms;
--- config
    add_header X-Time $request_time always;
    location = /health { kordon_redis_health hole; }
--- request eval
["GET /health", sub { sleep 0.3 }, "GET /health"]
--- problem eval
["503 redis did not answer in time", "503 redis is not reachable"]
--- response_headers_like eval
['X-Time: ^0\.(?:09|1\d)\d$', 'X-Time: ^0\.0[0-4]\d$']
--- error_log eval
[qr/redis "hole" \(127\.0\.0\.1:\d+\) did not answer in 100 ms/,
 qr/redis "hole" \(127\.0\.0\.1:\d+\) did not complete the connection setup in 200 ms/,
 qr/closed the connection to redis "hole" .*, retrying in 100 ms/]
--- no_error_log
[alert]



=== TEST 6: paused Redis: 503 after timeout=, the stuck connection dropped
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=150ms
                 connect_timeout=300ms;
--- config
    add_header X-Time $request_time always;
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub { redis()->pause },
 "GET /health",
 "GET /health",
 sub { redis()->resume; poll_ok('/health', 5) },
 "GET /health"]
--- error_code eval
[200, 503, 503, 200]
--- problem eval
[undef, "503 redis did not answer in time", "503 redis is not reachable",
 undef]
--- response_headers_like eval
['X-Time: ^0\.0', 'X-Time: ^0\.(?:1[4-9]\d|2\d\d)$',
 'X-Time: ^0\.0[0-4]\d$', 'X-Time: ^0\.0']
--- error_log eval
[qr/redis "main" \(127\.0\.0\.1:\d+\) did not answer in 150 ms/,
 qr/redis "main" \(127\.0\.0\.1:\d+\) sent nothing for 1\d\d ms, closing the connection/,
 qr/closed the connection to redis "main" .*, retrying in/,
 qr/\) connected, connection(?s:.*)\) connected, connection/]
--- no_error_log
[alert]



=== TEST 7: Redis restarted: the next requests succeed after a reconnect
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub { redis()->restart; poll_ok('/health', 3) },
 "GET /health"]
--- error_code eval
[200, 200]
--- error_log eval
[qr/lost the connection to redis "main" \(127\.0\.0\.1:\d+\): Server closed the connection, retrying in \d+ ms/,
 qr/\) connected, connection(?s:.*)\) connected, connection/]
--- no_error_log
[alert]



=== TEST 8: Redis gone for a while: backoff doubles, then it is back
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    add_header X-Time $request_time always;
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub { redis()->stop; sleep 1.7 },
 "GET /health",
 sub { redis()->start; poll_ok('/health', 6) },
 "GET /health"]
--- error_code eval
[200, 503, 200]
--- response_headers_like eval
['X-Time: ^0\.0', 'X-Time: ^0\.0[0-4]\d$', 'X-Time: ^0\.0']
--- error_log eval
[qr/lost the connection to redis "main"/,
 qr/could not connect to redis "main" .*, retrying in 200 ms/,
 qr/could not connect to redis "main" .*, retrying in 400 ms/,
 qr/could not connect to redis "main" .*, retrying in 800 ms/,
 qr/could not connect to redis "main" .*, retrying in 1600 ms/]
--- no_error_log
[alert]



=== TEST 9: a client leaves while its command is in flight: orphaned
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=3s;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub {
     redis()->pause;
     abandon('/health', 0.3);
     sleep 0.2;
     redis()->resume;
     poll_ok('/health', 3);
 },
 "GET /health"]
--- error_code eval
[200, 200]
--- error_log
client prematurely closed connection
redis "main" command orphaned
redis "main" late reply ignored
--- no_error_log
[alert]
did not answer
closing the connection



=== TEST 10: at most max_pending in flight, the rest refused at once
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=300ms
                 max_pending=2;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub {
     redis()->pause;
     my $st = burst('/health', 6);
     redis()->resume;
     die "answers: @{[ %$st ]}\n" unless ($st->{503} // 0) == 6;
     poll_ok('/health', 5);
 },
 "GET /health"]
--- error_code eval
[200, 200]
--- error_log eval
[qr/redis "main" \(127\.0\.0\.1:\d+\): 2 commands in flight, refusing more/]
--- no_error_log
[alert]



=== TEST 11: AUTH with password_file, SELECT with db=
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT db=3
                 password_file=$TEST_NGINX_REDIS_PASSWORD_FILE;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health",
 sub {
     my $list = redis_auth()->cmd(qw(CLIENT LIST));
     die "no client in db 3:\n$list\n" unless $list =~ /\bdb=3\b/;
 }]
--- response_body_like: ^\{"redis":"main","status":"ok"
--- error_log
redis "main" command "PING"
--- no_error_log
[error]
$TEST_NGINX_REDIS_PASSWORD_TEXT



=== TEST 12: a wrong password: never ready, 503, the password not logged
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT
                 password_file=$TEST_NGINX_REDIS_WRONG_PASSWORD_FILE;
--- config
    location = /health { kordon_redis_health main; }
--- request
GET /health
--- problem: 503 redis is not reachable
--- error_log eval
[qr/redis "main" \(127\.0\.0\.1:\d+\) refused the connection setup: WRONGPASS/,
 qr/closed the connection to redis "main" .*, retrying in 100 ms/]
--- no_error_log
$TEST_NGINX_REDIS_PASSWORD_TEXT
[alert]



=== TEST 13: no password for a Redis that wants one; a db out of range
--- http_config
    kordon_redis noauth 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT;
    kordon_redis baddb 127.0.0.1:$TEST_NGINX_REDIS_PORT db=99;
--- config
    location = /noauth { kordon_redis_health noauth; }
    location = /baddb { kordon_redis_health baddb; }
--- request eval
["GET /noauth", "GET /baddb"]
--- problem eval
["503 redis is not reachable", "503 redis is not reachable"]
--- error_log eval
[qr/redis "noauth" .* refused the connection setup: NOAUTH/,
 qr/redis "baddb" .* refused the connection setup: ERR DB index is out of range/]
--- no_error_log
[alert]



=== TEST 14: kordon_redis may come after the location that uses it
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location = /h { kordon_redis_health late; }
    }
    kordon_redis late 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /t { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2/h; }
--- request
GET /t
--- response_body_like: ^\{"redis":"late","status":"ok"
--- no_error_log
[error]



=== TEST 15: an IPv6 literal is an address, not a name
--- http_config
    kordon_redis v6 [::1]:$TEST_NGINX_UNUSED_PORT;
--- config
    location = /health { kordon_redis_health v6; }
--- request
GET /health
--- problem: 503 redis is not reachable
--- error_log
could not connect to redis "v6" ([::1]:
--- no_error_log
[alert]



=== TEST 16: a reload: new workers connect, old ones leave no socket
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
["GET /health", sub { reload_nginx() }, "GET /health"]
--- error_code eval
[200, 200]
--- error_log eval
[qr/\) connected, connection(?s:.*)\) connected, connection/,
 "redis \"main\" closed at exit"]
--- no_error_log
open socket
[alert]



=== TEST 17: a graceful stop answers the command in flight, then exits
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=300ms;
--- config
    location = /health { kordon_redis_health main; }
--- request eval
[sub {
     redis()->pause;
     my $status = quit_during('/health');
     redis()->resume;
     die "got \"$status\"\n" unless $status eq 'HTTP/1.1 503';
 }]
--- error_log
gracefully shutting down
did not answer in 300 ms
--- no_error_log
open socket
[alert]



=== TEST 18: a 1 MiB reply is read whole, the next one in step
--- http_config
    kordon_redis big 127.0.0.1:$TEST_NGINX_BIG_REPLY_PORT timeout=3s;
--- config
    location = /health { kordon_redis_health big; }
--- request eval
["GET /health", "GET /health"]
--- problem eval
["503 redis answered with an error", undef]
--- error_code eval
[503, 200]
--- no_error_log
did not answer
[alert]



=== TEST 19: a name is not an address: nginx -t fails
--- http_config
    kordon_redis main localhost:6379;
--- config
    location = /health { kordon_redis_health main; }
--- must_die
--- error_log
kordon_redis "main": "localhost:6379" is not an IP address with a port



=== TEST 20: an address needs a port
--- http_config
    kordon_redis main 127.0.0.1;
--- must_die
--- error_log
"127.0.0.1" is not an IP address with a port



=== TEST 21: a location names a Redis that is not defined
--- config
    location = /health { kordon_redis_health nowhere; }
--- must_die
--- error_log eval
[qr/no kordon_redis "nowhere" is defined, referenced in \S+nginx\.conf:\d+/]



=== TEST 22: the same name twice
--- http_config
    kordon_redis main 127.0.0.1:1;
    kordon_redis main 127.0.0.1:2;
--- must_die
--- error_log
duplicate kordon_redis "main"



=== TEST 23: bad parameters are named
--- http_config
    kordon_redis a 127.0.0.1:1 timeout=soon;
--- must_die
--- error_log
kordon_redis "a": invalid parameter "timeout=soon"



=== TEST 24: max_pending must be at least 1
--- http_config
    kordon_redis a 127.0.0.1:1 max_pending=0;
--- must_die
--- error_log
invalid parameter "max_pending=0"



=== TEST 25: a missing password file
--- http_config
    kordon_redis a 127.0.0.1:1 password_file=/nonexistent/redis.password;
--- must_die
--- error_log
kordon_redis "a": could not open password file "/nonexistent/redis.password"



=== TEST 26: a server name with a character outside [A-Za-z0-9_.-]
--- http_config
    kordon_redis a/b 127.0.0.1:1;
--- must_die
--- error_log
kordon_redis name "a/b" has a character that is not allowed
