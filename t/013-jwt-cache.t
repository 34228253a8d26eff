# kordon_jwt_cache: a verified token is remembered in shared memory, so
# the next request with it skips the signature check (HIT), until its
# exp or max_ttl; a hit is still checked against the location (times
# with its leeway, its audience, the key still in its JWKS, also across a
# reload); a full zone evicts the least recently used token and never
# fails a request.

use Test::Kordon;
use Kordon::JWT;

add_block_preprocessor(jwt_preprocessor(
    http => "    kordon_jwt_cache zone=jwt:1m;\n",
    config => <<'CONF'));
    location /t {
        kordon_auth jwt;
        add_header X-Cache $kordon_jwt_cache_status;
        add_header X-Jwt "$kordon_jwt_sub|$kordon_jwt_roles|$kordon_jwt_sid|$kordon_jwt_scope|$kordon_jwt_claim_org";
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
CONF

run_tests();

__DATA__

=== TEST 1: the second request is a hit, with the same identity
--- more_headers eval: bearer(org => 'acme')
--- request eval
['GET /t', 'GET /t', 'GET /t']
--- response_headers eval
["X-Cache: MISS\nX-Jwt: user-42|user,support|sess-7|read write|acme",
 "X-Cache: HIT\nX-Jwt: user-42|user,support|sess-7|read write|acme",
 "X-Cache: HIT"]
--- response_body_like: \r\nX-Kordon-User: user-42\r\nX-Kordon-Roles: user,support\r\nX-Kordon-Session: sess-7\r\nX-Kordon-Signature: t=\d+,v1=[0-9a-f]{64}\r\n



=== TEST 2: every kind of key is cached
--- raw_request eval
my @t = map { 'Bearer ' . token(-sign => $_, sid => undef, roles => undef) }
        qw(rs es hs);
auth_requests('GET /t', map { ($_, $_) } @t)
--- response_headers eval
[map { ("X-Cache: MISS\nX-Jwt: user-42|||read write|",
        "X-Cache: HIT\nX-Jwt: user-42|||read write|") } 1 .. 3]



=== TEST 3: an expired token is refused even when cached
--- config
    location /t {
        kordon_auth jwt;
        kordon_jwt_leeway 0s;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: sub { bearer(exp => time + 2) }
--- request eval
['GET /t', 'GET /t', sub { sleep 3 }, 'GET /t']
--- error_code eval
[200, 200, 401]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', '']
--- response_body_like eval
['X-Kordon-User', 'X-Kordon-User', '"detail":"token expired"']



=== TEST 4: a hit is checked with the location's leeway
--- config
    location /t {
        kordon_auth jwt;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /strict {
        kordon_auth jwt;
        kordon_jwt_leeway 0s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: sub { bearer(nbf => time + 10) }
--- request eval
['GET /t', 'GET /t', 'GET /strict']
--- error_code eval
[200, 200, 401]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', '']
--- response_body_like eval
['X-Kordon-User', 'X-Kordon-User', '"detail":"token not yet valid"']



=== TEST 5: a reload with a JWKS without the key refuses a cached token
--- config
    location /t {
        kordon_auth jwt;
        kordon_jwt_keys $TEST_NGINX_JWT_DIR/rotating.json;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer()
--- request eval
['GET /t', 'GET /t',
 sub { jwks_write('rotating', 'ec-1', 'hs-1'); reload_nginx() },
 'GET /t',
 sub { jwks_write('rotating', 'rsa-1', 'ec-1', 'hs-1') }]
--- error_code eval
[200, 200, 401]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', '']
--- response_body_like eval
['X-Kordon-User', 'X-Kordon-User', '"detail":"unknown key"']



=== TEST 6: a reload that keeps the key keeps the cache
--- config
    location /t {
        kordon_auth jwt;
        kordon_jwt_keys $TEST_NGINX_JWT_DIR/rotating.json;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer(-sign => 'es')
--- request eval
['GET /t',
 sub { jwks_write('rotating', 'rsa-1', 'ec-1', 'hs-1', 'rsa-2');
       reload_nginx() },
 'GET /t',
 sub { jwks_write('rotating', 'rsa-1', 'ec-1', 'hs-1') }]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT']



=== TEST 7: a token cached for one audience is no hit for another
--- config
    location /t {
        kordon_auth jwt;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /same {
        kordon_auth jwt;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location /payments {
        kordon_auth jwt;
        kordon_jwt_audience payments;
        add_header X-Cache $kordon_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
my $t = 'Bearer ' . token();
[ map { @{ auth_requests("GET $_", $t) } } qw(/t /same /payments) ]
--- error_code eval
[200, 200, 401]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', '']
--- response_body_like eval
['X-Kordon', 'X-Kordon', '"detail":"wrong audience"']



=== TEST 8: another token, even one byte off, is no hit
--- raw_request eval
my $t = token();
my $off = $t =~ s/.$/$& eq 'A' ? 'Q' : 'A'/er;
auth_requests('GET /t', "Bearer $t", "Bearer $t", "Bearer $off")
--- error_code eval
[200, 200, 401]
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', '']



=== TEST 9: max_ttl bounds how long a token stays
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_cache zone=short:1m max_ttl=1s;\n"
--- more_headers eval: bearer()
--- request eval
['GET /t', 'GET /t', sub { sleep 2.1 }, 'GET /t']
--- response_headers eval
['X-Cache: MISS', 'X-Cache: HIT', 'X-Cache: MISS']



=== TEST 10: a token too large for an entry is verified every time
--- more_headers eval: bearer(scope => 'read ' x 80)
--- request eval
['GET /t', 'GET /t']
--- response_headers
X-Cache: BYPASS



=== TEST 11: a full zone evicts the least recently used, never fails
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_cache zone=tiny:32k;\n"
--- raw_request eval
my @t = map { 'Bearer ' . token(-sign => 'hs', sub => "u$_") } 1 .. 60;
auth_requests('GET /t', @t, $t[0], $t[-1])
--- error_code: 200
--- response_headers eval
[ (map { 'X-Cache: MISS' } 1 .. 60), 'X-Cache: MISS', 'X-Cache: HIT' ]
--- error_log eval
[qr/kordon_jwt_cache zone "tiny" has room for \d+ tokens/]



=== TEST 12: 64 MiB hold more than 100,000 tokens
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_cache zone=big:64m;\n"
--- more_headers eval: bearer()
--- request
GET /t
--- error_log eval
[qr/kordon_jwt_cache zone "big" has room for (1\d{5}|[2-9]\d{5}) tokens/]



=== TEST 13: no cache, no status
--- own_http
--- http_config eval
jwt_http()
--- more_headers eval: bearer()
--- request eval
['GET /t', 'GET /t']
--- response_headers
X-Cache: BYPASS



=== TEST 14: nginx -t: the zone's parameters
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_cache zone=x:1k;\n"
--- must_die
--- error_log
zone "zone=x:1k" is too small



=== TEST 15: nginx -t: one cache per configuration, http only
--- config
    location /t { kordon_jwt_cache zone=y:1m; }
--- must_die
--- error_log
"kordon_jwt_cache" directive is not allowed here



=== TEST 16: nginx -t: a bad max_ttl
--- own_http
--- http_config eval
jwt_http() . "    kordon_jwt_cache zone=z:1m max_ttl=soon;\n"
--- must_die
--- error_log
invalid max_ttl "max_ttl=soon"
