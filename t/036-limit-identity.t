# Limits keyed by the verified user: $kordon_jwt_sub, set by kordon_auth
# jwt in the access phase, which runs before the limits.  A request the
# edge refuses 401 never reaches them; a key may combine the user with
# the route.

use Test::Kordon;
use Kordon::JWT;

add_block_preprocessor(jwt_preprocessor());

run_tests();

__DATA__

=== TEST 1: one bucket per user; no token: 401 before any limit
--- http_config
    kordon_limit_zone name=user rate=1/m burst=1 key=$kordon_jwt_sub;
--- config
    location /t {
        kordon_auth jwt;
        kordon_limit user;
        add_header X-Limit $kordon_limit_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
auth_requests("GET /t", 'Bearer ' . token(sub => 'u-1'), 'Bearer ' . token(sub => 'u-1'),
              'Bearer ' . token(sub => 'u-2'), undef)
--- error_code eval
[200, 429, 200, 401]
--- response_headers eval
["X-Limit: ok\nRateLimit: \"user\";r=0;t=60", "X-Limit: limited:user",
 "X-Limit: ok", "!X-Limit\n!RateLimit"]



=== TEST 2: user and route together: each route its own bucket
--- http_config
    kordon_limit_zone name=user_route rate=1/m burst=1
                      key=$kordon_jwt_sub:$uri;
--- config
    location /t {
        kordon_auth jwt;
        kordon_limit user_route;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[@{ auth_requests("GET /t/a", 'Bearer ' . token(sub => 'u-1'), 'Bearer ' . token(sub => 'u-1')) },
 @{ auth_requests("GET /t/b", 'Bearer ' . token(sub => 'u-1')) }]
--- error_code eval
[200, 429, 200]
