# The Redis response cache behind kordon_auth jwt: one entry per verified
# user (kordon_cache_key $kordon_jwt_sub), and a stored entry is never an
# answer to a request the edge refuses (the lookup runs after every
# access check).  Tokens from t/lib/Kordon/JWT.pm, the counting upstream
# from t/lib/Kordon/Origin.pm.

use Test::Kordon;
use Kordon::JWT;
use Kordon::Redis;
use Kordon::Origin;

redis_setup();
origin_setup();

my $jwt = jwt_preprocessor(
    http => "    kordon_redis main 127.0.0.1:\$TEST_NGINX_REDIS_PORT;\n",
    config => <<'CONF');
    location /c/ {
        kordon_auth jwt;
        kordon_cache main;
        kordon_cache_key $kordon_jwt_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
CONF

add_block_preprocessor(sub {
    redis()->cmd('FLUSHALL');
    $jwt->(@_);
});

run_tests();

__DATA__

=== TEST 1: each user gets their own entry
--- raw_request eval
auth_requests('GET /c/me?cc=private', map { 'Bearer ' . token(sub => $_) }
              qw(alice bob alice bob))
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/me\n", "hits 2 /c/me\n", "hits 1 /c/me\n", "hits 2 /c/me\n"]



=== TEST 2: a stored entry never answers a refused request
--- raw_request eval
auth_requests('GET /c/doc', 'Bearer ' . token(sub => 'alice'), undef,
              'Bearer ' . token(sub => 'alice', exp => time - 3600),
              'Bearer ' . token(sub => 'alice', -sign => 'rs_other'),
              'Bearer ' . token(sub => 'alice'))
--- error_code eval
[200, 401, 401, 401, 200]
--- response_headers eval
["X-Cache: MISS", "!X-Cache", "!X-Cache", "!X-Cache", "X-Cache: HIT"]
--- response_body_like eval
["^hits 1 /c/doc\n\\z", "token", "expired", "signature", "^hits 1 /c/doc\n\\z"]
