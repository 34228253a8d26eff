# The login brute-force guard (kordon_limit_guard) against real Redis:
# failed answers (401 from the upstream) counted by account and by
# address, a growing lockout answered 429 with Retry-After before the
# upstream sees the request, a success that clears the account, the
# account read from the JSON body (email, then phone), every edge
# seeing the same state (it is in Redis), and Redis gone (fail=open and
# fail=closed).  The upstream is a second server of the same nginx: 200
# for the password "right", 401 otherwise; it counts what reached it in
# its access log.

use Test::Kordon;
use Kordon::Redis;
use Time::HiRes qw(sleep);

redis_setup();

add_block_preprocessor(sub { redis()->cmd('FLUSHALL') if redis()->{pid} });

sub post {
    my ($body) = @_;
    return "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . "Content-Type: application/json\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub upstreams {
    open my $fh, '<', servroot() . '/logs/upstream.log' or return 0;
    my @l = <$fh>;
    return scalar @l;
}

run_tests();

__DATA__

=== TEST 1: 2 failures allowed, then 429 for 1 s, then 2 s, then 4 s
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        access_log logs/upstream.log;
        location /login {
            if ($arg_password = right) { return 200 "welcome\n"; }
            return 401;
        }
    }
--- config
    location /login {
        kordon_limit_guard name=login redis=main account=$arg_email
                           failures=2 lockout=1s lockout_max=4s;
        add_header X-Limit $kordon_limit_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2;
    }
--- request eval
["GET /login?email=ann&password=x",
 "GET /login?email=ann&password=x",
 "GET /login?email=ann&password=right",
 sub { sleep 1.05 },
 "GET /login?email=ann&password=x",
 "GET /login?email=ann&password=right",
 sub { sleep 2.05 },
 "GET /login?email=ann&password=x",
 "GET /login?email=ann&password=x",
 sub { die "upstream saw " . upstreams() . "\n" unless upstreams() == 4 },
]
--- error_code eval
[401, 401, 429, 401, 429, 401, 429]
--- problem eval
[undef, undef, "429 too many failed attempts, try again later", undef,
 undef, undef, undef]
--- response_headers eval
["X-Limit: ok", "", "Retry-After: 1\nX-Limit: limited:login", "",
 "Retry-After: 2", "", "Retry-After: 4"]



=== TEST 2: a success clears the account's failures
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location /login {
            if ($arg_password = right) { return 200 "welcome\n"; }
            return 401;
        }
    }
--- config
    location /login {
        kordon_limit_guard name=login redis=main account=$arg_email
                           failures=2 lockout=60s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2;
    }
--- request eval
["GET /login?email=ann&password=x",
 "GET /login?email=ann&password=right",
 sub { sleep 0.05; my $n = redis()->cmd('EXISTS', 'kordon:guard:a:login:ann:n');
       die "counter kept: $n\n" unless $n == 0 },
 "GET /login?email=ann&password=x",
 "GET /login?email=ann&password=x",
 "GET /login?email=ann&password=right"]
--- error_code eval
[401, 200, 401, 401, 429]



=== TEST 3: accounts apart; the address has its own, higher threshold
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location /login { return 401; }
    }
--- config
    location /login {
        kordon_limit_guard name=login redis=main account=$arg_email
                           ip=$remote_addr failures=2 ip_failures=4
                           lockout=60s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2;
    }
--- request eval
["GET /login?email=a", "GET /login?email=a", "GET /login?email=a",
 "GET /login?email=b", "GET /login?email=c",
 "GET /login?email=d", sub { sleep 0.05 },
 "GET /login?email=e"]
--- error_code eval
[401, 401, 429, 401, 401, 429, 429]



=== TEST 4: the account from the JSON body: email, else phone, any case
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location /login { return 401; }
    }
--- config
    location /login {
        kordon_limit_guard name=login redis=main account_json=email,phone
                           failures=2 lockout=60s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2;
    }
--- raw_request eval
[post('{"email":"Ann@Example.com","password":"x"}'),
 post('{"password":"y","email":"ann@example.com"}'),
 post('{"email":"ANN@example.com","password":"z"}'),
 post('{"phone":"+15550100","password":"z"}'),
 sub { sleep 0.05;
       die "no phone counter\n"
           unless redis()->cmd('GET', 'kordon:guard:a:login:+15550100:n') == 1 },
 post('{"email":"bob@example.com","password":"z"}')]
--- error_code eval
[401, 401, 429, 401, 401]



=== TEST 5: the body still reaches the upstream whole
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location /login {
        kordon_limit_guard name=login redis=main account_json=email;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[post('{"email":"ann@example.com","password":"x"}')]
--- response_body_like: Content-Length: 42



=== TEST 6: one edge locks, another edge sees it (state in Redis)
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location /login {
        kordon_limit_guard name=login redis=main account=$arg_email;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request eval
[sub { redis()->cmd('SET', 'kordon:guard:a:login:ann:lock', '1', 'PX', '5000') },
 "GET /login?email=ann", "GET /login?email=bob"]
--- error_code eval
[429, 200]
--- response_headers eval
["Retry-After: 5", ""]



=== TEST 7: Redis gone: fail=open lets logins through, fail=closed 503
--- http_config
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
--- config
    add_header X-Limit $kordon_limit_status always;
    location /open {
        kordon_limit_guard name=login redis=gone account=$arg_email;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /closed {
        kordon_limit_guard name=login redis=gone account=$arg_email
                           fail=closed;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request eval
["GET /open?email=ann", "GET /closed?email=ann"]
--- error_code eval
[200, 503]
--- problem eval
[undef, "503 the login guard is not available"]
--- response_headers eval
["X-Limit: error:login", "X-Limit: error:login"]
--- no_error_log
[alert]



=== TEST 8: no account and no address: the guard stays out of the way
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location /login {
        kordon_limit_guard name=login redis=main account=$arg_email;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request
GET /login
--- error_code: 200



=== TEST 9: a body too large to parse: the address alone counts
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location /login { return 401; }
    }
--- config
    client_body_buffer_size 64k;
    location /login {
        kordon_limit_guard name=login redis=main account_json=email
                           ip=$remote_addr failures=1 ip_failures=5;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2;
    }
--- raw_request eval
[post('{"email":"ann@example.com","pad":"' . ('p' x 20000) . '"}'),
 post('{"email":"ann@example.com","pad":"' . ('p' x 20000) . '"}'),
 sub {
     sleep 0.05;
     die "an account counter\n" if redis()->cmd('KEYS', 'kordon:guard:a:*');
     die "no address counter\n"
         unless redis()->cmd('GET', 'kordon:guard:i:login:127.0.0.1:n') == 2;
 }]
--- error_code eval
[401, 401]



=== TEST 10: a guard without redis= fails nginx -t
--- config
    location /login { kordon_limit_guard name=login account=$arg_email; }
--- must_die
--- error_log
"kordon_limit_guard" needs name=, redis= and account=, account_json= or ip=
