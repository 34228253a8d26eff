# kordon_apikeys and "kordon_auth apikey | jwt apikey": X-Api-Key
# kdk_<id>_<secret> looked up in a real Redis (HGETALL kordon:apikey:<id>)
# without blocking the worker, the secret's SHA-256 compared in constant
# time, the record cached for ttl= in shared memory (a revoked key stops
# within it), the identity passed on as for a token (user = owner,
# session apikey:<id>), roles and scopes checked; Redis down or silent:
# 503, never a hang.  With both credentials the bearer token wins.

use Test::Kordon;
use Kordon::JWT;
use Kordon::Redis;
use Kordon::Auth;

redis_setup();

my $Http = <<'CONF';
    kordon_redis    main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_apikeys  redis=main ttl=3s;
CONF

add_block_preprocessor(jwt_preprocessor(http => $Http, config => <<'CONF'));
    location /t {
        kordon_auth jwt apikey;
        add_header X-Auth-Error $kordon_auth_error always;
        add_header X-Key-Id $kordon_api_key_id always;
        add_header X-Cache $kordon_jwt_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /keys {
        kordon_auth apikey;
        add_header X-Auth-Error $kordon_auth_error always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /admin {
        kordon_auth jwt apikey;
        kordon_require_roles admin;
        kordon_require_scopes methods=POST write;
        add_header X-Auth-Error $kordon_auth_error always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
CONF

our ($Key) = apikey(-id => '00000000000000a1', owner => 'owner-1',
                    roles => 'user support', scopes => 'read write');
our ($Admin) = apikey(-id => '00000000000000a2', owner => 'owner-2',
                      roles => 'admin', scopes => 'read');
# the same id, one character of the secret changed
our $Wrong = $Key;
substr($Wrong, 21, 1) = substr($Wrong, 21, 1) eq 'A' ? 'B' : 'A';

run_tests();

__DATA__

=== TEST 1: a valid key: the owner's identity goes upstream, signed
--- raw_request eval: key_requests('GET /t', $main::Key, $main::Key)
--- response_headers eval
["X-Key-Id: 00000000000000a1\n!X-Auth-Error\nX-Cache: MISS",
 "X-Key-Id: 00000000000000a1\nX-Cache: HIT"]
--- response_body_like eval
[qr/X-Kordon-User: owner-1\r\nX-Kordon-Roles: user,support\r\nX-Kordon-Session: apikey:00000000000000a1\r\nX-Kordon-Signature: t=\d+,v1=[0-9a-f]{64}\r\n/,
 'X-Kordon-User: owner-1']



=== TEST 2: a wrong secret is refused, and so is the right one for another id
--- raw_request eval
key_requests('GET /keys', $main::Wrong,
             'kdk_00000000000000ff_' . substr($main::Key, 21))
--- error_code eval
[401, 401]
--- response_headers eval
["X-Auth-Error: bad_api_key\nWWW-Authenticate: ApiKey",
 "X-Auth-Error: bad_api_key"]
--- response_body_like eval
['"detail":"invalid api key"', '"detail":"invalid api key"']
--- error_log eval
['api key "00000000000000a1": wrong secret',
 'api key "00000000000000ff" is unknown']



=== TEST 3: a revoked key stops within the ttl (3s here: room for a slow ASan build)
--- raw_request eval
my $k = apikey(-id => '00000000000000b3');
my @r = @{key_requests('GET /keys', $k)};
[@r, sub { apikey_set($k, revoked => 1) }, @r, sub { sleep 3.2 }, @r, @r]
--- error_code eval
[200, 200, 401, 401]
--- response_body_like eval
['X-Kordon-User: u-1', 'X-Kordon-User: u-1', '"detail":"api key revoked"',
 '"detail":"api key revoked"']
--- response_headers eval
['!X-Auth-Error', '!X-Auth-Error', 'X-Auth-Error: bad_api_key', 'X-Auth-Error: bad_api_key']



=== TEST 4: malformed keys are refused before any lookup
--- raw_request eval
key_requests('GET /keys', 'kdk_123', 'Bearer ' . $main::Key,
             uc $main::Key, $main::Key . 'A', '')
--- error_code eval
[401, 401, 401, 401, 401]
--- response_body_like eval
[('"detail":"malformed api key"') x 5]
--- response_headers eval
[('X-Auth-Error: bad_api_key') x 5]



=== TEST 5: two X-Api-Key headers are malformed
--- raw_request eval
["GET /keys HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Api-Key: $main::Key\r\nX-Api-Key: $main::Key\r\n\r\n"]
--- error_code: 401
--- response_body_like: "detail":"malformed api key"



=== TEST 6: no credential: 401 naming what is missing
--- raw_request eval: key_requests('GET /keys', undef)
--- error_code: 401
--- response_headers
X-Auth-Error: missing
WWW-Authenticate: ApiKey
--- response_body_like: "detail":"missing api key"



=== TEST 7: bearer token and X-Api-Key together: the token wins
--- raw_request eval
key_requests('GET /t', [$main::Key, token(sub => 'tok-1')],
             [$main::Key, token(exp => time - 3600)],
             [$main::Wrong, token(sub => 'tok-2')])
--- error_code eval
[200, 401, 200]
--- response_body_like eval
['X-Kordon-User: tok-1\r', '"detail":"token expired"', 'X-Kordon-User: tok-2\r']
--- response_headers eval
['!X-Key-Id', 'X-Auth-Error: expired', '!X-Key-Id']



=== TEST 8: an apikey-only location does not take a bearer token
--- raw_request eval: auth_requests('GET /keys', 'Bearer ' . token())
--- error_code: 401
--- response_body_like: "detail":"missing api key"



=== TEST 9: the key's roles and scopes are checked like a token's
--- raw_request eval
[@{key_requests('GET /admin', $main::Key, $main::Admin)},
 @{key_requests('POST /admin', $main::Admin)}]
--- error_code eval
[403, 200, 403]
--- response_headers eval
['X-Auth-Error: forbidden', '!X-Auth-Error', 'X-Auth-Error: forbidden']
--- response_body_like eval
['"status":403', 'X-Kordon-User: owner-2', '"status":403']



=== TEST 10: Redis down: 503 at once, never a hang
--- own_http
--- http_config eval
jwt_http() . <<'CONF'
    kordon_redis    gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
    kordon_apikeys  redis=gone;
CONF
--- config
    location /keys {
        kordon_auth apikey;
        add_header X-Auth-Error $kordon_auth_error always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval: key_requests('GET /keys', $main::Key, $main::Key)
--- error_code eval
[503, 503]
--- response_headers eval
[('X-Auth-Error: unavailable') x 2]
--- response_body_like eval
[('"detail":"api key store is not reachable"') x 2]
--- error_ok



=== TEST 11: a Redis that never answers: 503 after the timeout, named
--- own_http
--- http_config eval
jwt_http() . <<'CONF'
    kordon_redis    hole 127.0.0.1:$TEST_NGINX_BLACK_HOLE_PORT;
    kordon_apikeys  redis=hole timeout=200ms;
CONF
--- config
    location /keys {
        kordon_auth apikey;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval: key_requests('GET /keys', $main::Key)
--- error_code: 503
--- response_body_like: "detail":"api key (lookup timed out|store is not reachable)"
--- error_ok



=== TEST 12: Redis restarted: a key looked up again works, no crash
--- raw_request eval
my $k = apikey(-id => '00000000000000c1');
my @r = @{key_requests('GET /keys', $k)};
[@r, sub { redis()->restart; apikeys_again(); sleep 1.5 },
 @r]
--- error_code eval
[200, 200]
--- error_ok



=== TEST 13: a record not as agreed refuses the key and says why in the log
--- raw_request eval
my $k = apikey(-id => '00000000000000d1', owner => "bad owner");
key_requests('GET /keys', $k)
--- error_code: 401
--- response_body_like: "detail":"invalid api key"
--- error_log
api key record "kordon:apikey:00000000000000d1" is not as agreed
--- error_ok



=== TEST 14: a client that leaves while the lookup is out: nothing breaks
--- own_http
--- http_config eval
jwt_http() . <<'CONF'
    kordon_redis    hole 127.0.0.1:$TEST_NGINX_BLACK_HOLE_PORT timeout=1s;
    kordon_apikeys  redis=hole;
CONF
--- config
    location /keys {
        kordon_auth apikey;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request eval
[sub { abandon('/keys', 0.2) for 1 .. 3; sleep 1.2 }, 'GET /kordon-none']
--- error_code eval
[404]
--- error_ok



=== TEST 15: nginx -t: kordon_apikeys needs redis=, takes known parameters
--- own_http
--- http_config eval
jwt_http() . "    kordon_redis r 127.0.0.1:1;\n    kordon_apikeys redis=r ttl=0s;\n"
--- must_die
--- error_log
invalid parameter "ttl=0s"



=== TEST 16: scripts/apikey: a created key works, its secret is not stored, revoke stops it
--- raw_request eval
my $out = apikey_script('create', '--owner', 'owner-16', '--roles', 'admin',
                        '--scopes', 'read write', '--name', 'ci');
my ($id) = $out =~ /^id:\s+(\S+)/m;
my ($key) = $out =~ /^key:\s+(kdk_\S+)/m;
my @r = @{key_requests('POST /admin', $key)};
[@r, sub {
     my $rec = redis()->cmd('HGETALL', "kordon:apikey:$id");
     die "the secret is stored\n" if index($rec, substr($key, 21)) >= 0;
     apikey_script('revoke', $id);
     sleep 3.2 },
 @r]
--- error_code eval
[200, 401]
--- response_body_like eval
[qr/X-Kordon-User: owner-16\r\nX-Kordon-Roles: admin\r\nX-Kordon-Session: apikey:[0-9a-f]{16}\r/,
 '"detail":"api key revoked"']
