# The identity the edge passes on: client-sent X-Kordon-* gone, the
# edge's X-Kordon-User/Roles/Session/Signature in their place, signed so
# that the service kit accepts them (the kit's own test service, kitd,
# checks the signature: the proof that edge and services agree), and the
# $kordon_jwt_* variables.

use Test::Kordon;
use Kordon::JWT;

kitd_start();

add_block_preprocessor(jwt_preprocessor(config => <<'CONF'));
    location / {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_KITD_PORT;
    }
CONF

run_tests();

__DATA__

=== TEST 1: the kit accepts the edge's signature
--- more_headers eval: bearer()
--- request
GET /whoami
--- response_body_like: ^\{"user":"user-42","roles":"user,support","session":"sess-7","request_id":"[0-9a-f]{32}"\}$



=== TEST 2: no roles, no session: empty headers, still signed
--- more_headers eval: bearer(roles => undef, sid => undef, sub => 'u-9')
--- request
GET /whoami
--- response_body_like: ^\{"user":"u-9","roles":"","session":"","request_id":"[0-9a-f]{32}"\}$



=== TEST 3: the path is signed without the query, decoded
--- more_headers eval: bearer(-sign => 'es')
--- request eval
['GET /whoami?page=2&sort=desc', 'GET /who%61mi', 'GET /whoami?']
--- response_body_like: "user":"user-42"



=== TEST 4: every kind of key, the same identity
--- raw_request eval
auth_requests('GET /whoami', map { 'Bearer ' . token(-sign => $_) } qw(rs es hs))
--- response_body_like: "user":"user-42","roles":"user,support"



=== TEST 5: an edge with another key is refused by the kit
--- config
    location / {
        kordon_auth jwt;
        kordon_identity_key $TEST_NGINX_OTHER_KEY;
        proxy_pass http://127.0.0.1:$TEST_NGINX_KITD_PORT;
    }
--- more_headers eval: bearer()
--- request
GET /whoami
--- error_code: 401
--- response_headers
WWW-Authenticate: KordonEdge
--- response_body_like: "detail":"invalid identity signature"



=== TEST 6: a forged identity never reaches the kit, signed or not
--- config
    location / {
        kordon_auth off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_KITD_PORT;
    }
--- more_headers eval
"X-Kordon-User: admin\nX-Kordon-Roles: admin\nX-Kordon-Signature: t=1,v1="
. ('0' x 64)
--- request
GET /whoami
--- error_code: 401
--- response_body_like: "detail":"missing identity signature"



=== TEST 7: forged X-Kordon-* removed, the edge's in their place
--- config
    location /t {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval
bearer() . "\nX-Kordon-User: admin\nx-kordon-roles: admin\n"
. "X_Kordon_Session: s-forged\nX-Kordon-Signature: forged\nX-Other: kept"
--- request
GET /t
--- response_body_like: \r\nX-Other: kept\r\nX-Kordon-User: user-42\r\nX-Kordon-Roles: user,support\r\nX-Kordon-Session: sess-7\r\nX-Kordon-Signature: t=\d{10},v1=[0-9a-f]{64}\r\n
--- response_body_unlike: admin|forged|(?s:X-Kordon-User.*X-Kordon-User)



=== TEST 8: ... also where kordon_strip_headers is off
--- config
    location /t {
        kordon_strip_headers off;
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval
bearer() . "\nX-Kordon-User: admin\nX-Kordon-Roles: admin"
--- request
GET /t
--- response_body_like: \r\nX-Kordon-User: user-42\r\nX-Kordon-Roles: user,support\r\n
--- response_body_unlike: admin



=== TEST 9: X-Request-Id is the signed $request_id
--- config
    location / {
        kordon_auth jwt;
        proxy_set_header X-Request-Id $request_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_KITD_PORT;
    }
--- more_headers eval
bearer() . "\nX-Request-Id: client-chosen"
--- request
GET /whoami
--- response_body_like: "request_id":"[0-9a-f]{32}"
--- response_body_unlike: client-chosen



=== TEST 10: the variables
--- config
    location /t {
        kordon_auth jwt;
        add_header X-Jwt "$kordon_jwt_sub|$kordon_jwt_roles|$kordon_jwt_sid|$kordon_jwt_scope|$kordon_jwt_cache_status";
        add_header X-Claims "$kordon_jwt_claim_org|$kordon_jwt_claim_amr|$kordon_jwt_claim_level|$kordon_jwt_claim_nope|$kordon_jwt_claim_iss";
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval
bearer(org => { id => 7 }, amr => ['pwd', 'otp'], level => 3)
--- request
GET /t
--- response_headers
X-Jwt: user-42|user,support|sess-7|read write|BYPASS
X-Claims: {"id":7}|["pwd","otp"]|3||https://users.kordon.test



=== TEST 11: a claim with a control character is not used
--- config
    location /t {
        kordon_auth jwt;
        proxy_set_header X-Org $kordon_jwt_claim_org;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval
bearer(org => "acme\r\nX-Kordon-User: admin")
--- request
GET /t
--- response_body_like: \r\nX-Kordon-User: user-42\r\n
--- response_body_unlike: admin|X-Org
--- error_log
kordon jwt: claim "org" holds a control character, not used



=== TEST 12: no variables where no token is checked
--- config
    location /t {
        add_header X-Jwt "[$kordon_jwt_sub][$kordon_jwt_cache_status][$kordon_jwt_claim_sub]";
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer()
--- request
GET /t
--- response_headers
X-Jwt: [][][]
--- response_body_unlike: X-Kordon



=== TEST 13: the variables survive an error_page redirect
--- config
    location /t {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SILENT_PORT;
        proxy_read_timeout 100ms;
    }
    error_page 504 /.kordon/problem;
    location = /.kordon/problem {
        internal;
        add_header X-Jwt "$kordon_jwt_sub $kordon_jwt_claim_sid" always;
        kordon_problem;
    }
--- more_headers eval: bearer()
--- request
GET /t
--- error_ok
--- problem: 504 the upstream service did not answer in time
--- response_headers
X-Jwt: user-42 sess-7
--- error_log
upstream timed out
