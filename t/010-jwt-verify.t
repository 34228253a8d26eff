# kordon_auth jwt: which tokens pass (RS256, ES256, HS256 with an oct
# key), every attack of issue 3 refused with 401 and the failed check
# named, the Authorization header parsed strictly, and `nginx -t` refusing
# a bad JWKS or a half-configured location.  Keys and tokens are made at
# run time by t/lib/Kordon/JWT.pm; the default location (kordon_auth jwt,
# proxy to the echo backend) is used when a block has no config.

use Test::Kordon;
use Kordon::JWT;

add_block_preprocessor(jwt_preprocessor());

run_tests();

__DATA__

=== TEST 1: RS256 passes, the upstream sees the identity
--- more_headers eval: bearer()
--- request
GET /t
--- response_body_like: ^GET /t HTTP/1.0\r\n.*X-Kordon-User: user-42\r\nX-Kordon-Roles: user,support\r\nX-Kordon-Session: sess-7\r\nX-Kordon-Signature: t=\d+,v1=[0-9a-f]{64}\r\n



=== TEST 2: ES256 passes
--- more_headers eval: bearer(-sign => 'es', sub => 'ec-user')
--- request
GET /t
--- response_body_like: \r\nX-Kordon-User: ec-user\r\n



=== TEST 3: HS256 passes with a key declared "oct"
--- more_headers eval: bearer(-sign => 'hs', sub => 'hs-user')
--- request
GET /t
--- response_body_like: \r\nX-Kordon-User: hs-user\r\n



=== TEST 4: the scheme in any case, spaces before the token
--- raw_request eval
auth_requests('GET /t', 'bearer ' . token(), 'BEARER   ' . token())
--- response_body_like: \r\nX-Kordon-User: user-42\r\n



=== TEST 5: no Authorization header: 401, a bare challenge
--- request
GET /t
--- response_headers
WWW-Authenticate: Bearer
--- problem: 401 missing bearer token
--- error_log
kordon jwt: unauthorized: missing bearer token



=== TEST 6: another scheme, or a token without one, is no bearer token
--- raw_request eval
auth_requests('GET /t', 'Basic dXNlcjpwYXNz', token(), 'Bearerx ' . token())
--- response_headers
WWW-Authenticate: Bearer
--- problem: 401 missing bearer token



=== TEST 7: Bearer with no token or two tokens is malformed
--- raw_request eval
auth_requests('GET /t', 'Bearer', 'Bearer    ', 'Bearer a.b.c d.e.f',
              'Bearer ' . token() . ' ' . token())
--- response_headers
WWW-Authenticate: Bearer error="invalid_request", error_description="malformed authorization header"
--- problem: 401 malformed authorization header



=== TEST 8: two Authorization headers: nginx refuses the request
--- more_headers eval
bearer() . "\n" . bearer()
--- request
GET /t
--- error_code: 400
--- error_log
client sent duplicate header line



=== TEST 9: the challenge names the failed check, quotes made single
--- raw_request eval
auth_requests('GET /t', 'Bearer ' . token(exp => time - 100),
              'Bearer ' . token(exp => undef))
--- response_headers eval
['WWW-Authenticate: Bearer error="invalid_token", error_description="token expired"',
 q{WWW-Authenticate: Bearer error="invalid_token", error_description="missing claim 'exp'"}]
--- problem eval
['401 token expired', '401 missing claim "exp"']
--- response_body_unlike: eyJ



=== TEST 10: alg "none" in any case
--- raw_request eval
auth_requests('GET /t', map { 'Bearer ' . token(-sign => 'none',
                                                -header => { alg => $_ }) }
                        qw(none None NONE nOnE))
--- problem: 401 algorithm "none" not allowed



=== TEST 11: HS256 keyed with the RSA public key PEM
--- more_headers eval: bearer(-sign => 'hs_pem')
--- request
GET /t
--- problem: 401 algorithm not allowed for key



=== TEST 12: the alg a key does not declare
--- raw_request eval
auth_requests('GET /t',
              'Bearer ' . token(-sign => 'rs', -header => { alg => 'PS256' }),
              'Bearer ' . token(-sign => 'es', -header => { alg => 'ES384' }),
              'Bearer ' . token(-sign => 'hs', -header => { alg => 'RS256' }))
--- problem: 401 algorithm not allowed for key



=== TEST 13: a kid with a path or SQL in it is an unknown key
--- raw_request eval
auth_requests('GET /t',
              map { 'Bearer ' . token(-header => { kid => $_ }) }
              '../../../../etc/passwd', "' OR '1'='1' --", 'rsa-1/../rsa-1')
--- problem: 401 unknown key



=== TEST 14: no kid at all
--- more_headers eval: bearer(-header => { kid => undef })
--- request
GET /t
--- problem: 401 missing key id



=== TEST 15: ES256 with r = s = 0 (CVE-2022-21449)
--- more_headers eval: bearer(-sign => 'zero_es')
--- request
GET /t
--- problem: 401 bad signature



=== TEST 16: an embedded jwk is never trusted
--- raw_request eval
my $jwk = { kty => 'EC', crv => 'P-256', alg => 'ES256',
            x => 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
            y => 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
auth_requests('GET /t',
              'Bearer ' . token(-sign => 'es_other', -header => { jwk => $jwk }),
              'Bearer ' . token(-sign => 'es_other',
                                -header => { jwk => $jwk, kid => undef }))
--- problem eval
['401 bad signature', '401 missing key id']



=== TEST 17: a critical header we do not understand
--- more_headers eval: bearer(-header => { crit => ['exp'], exp => 1 })
--- request
GET /t
--- problem: 401 unsupported critical header



=== TEST 18: over 8 KiB by default, over kordon_jwt_max_size when set
--- config
    large_client_header_buffers 4 32k;
    location /t { kordon_auth jwt; proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
    location /small {
        kordon_auth jwt;
        kordon_jwt_max_size 1k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
[ @{ auth_requests('GET /t', 'Bearer ' . token(pad => 'x' x 9000)) },
  @{ auth_requests('GET /small', 'Bearer ' . token(pad => 'x' x 1500),
                   'Bearer ' . token()) } ]
--- error_code eval
[401, 401, 200]
--- response_body_like eval
['token too large', 'token too large', 'X-Kordon-User: user-42']



=== TEST 19: expired, not yet valid, issued in the future
--- raw_request eval
auth_requests('GET /t',
              'Bearer ' . token(exp => time - 31),
              'Bearer ' . token(nbf => time + 600),
              'Bearer ' . token(iat => time + 600))
--- problem eval
['401 token expired', '401 token not yet valid', '401 token issued in the future']



=== TEST 20: wrong issuer, wrong audience, missing or bad times
--- raw_request eval
auth_requests('GET /t',
              'Bearer ' . token(iss => 'https://evil.test'),
              'Bearer ' . token(iss => undef),
              'Bearer ' . token(aud => 'another-service'),
              'Bearer ' . token(aud => ['x', 'y']),
              'Bearer ' . token(exp => undef),
              'Bearer ' . token(exp => 'tomorrow'),
              'Bearer ' . token(iat => undef))
--- problem eval
['401 wrong issuer', '401 wrong issuer', '401 wrong audience',
 '401 wrong audience', '401 missing claim "exp"',
 '401 claim "exp" is not a number', '401 missing claim "iat"']



=== TEST 21: an audience list that holds ours passes
--- more_headers eval: bearer(aud => ['payments', 'kordon-edge'])
--- request
GET /t
--- response_body_like: X-Kordon-User: user-42



=== TEST 22: tampered payload, signatures from other keys
--- raw_request eval
auth_requests('GET /t',
              'Bearer ' . token(-tamper => 1),
              'Bearer ' . token(-sign => 'rs_other'),
              'Bearer ' . token(-sign => 'es_other'),
              'Bearer ' . token(-sign => 'hs_other'),
              'Bearer ' . (token() =~ s/\.[^.]+$/.AAAA/r))
--- problem: 401 bad signature



=== TEST 23: junk is malformed, before any crypto
--- raw_request eval
auth_requests('GET /t', 'Bearer a.b', 'Bearer a.b.c.d', 'Bearer ...',
              'Bearer ' . (token() =~ s/^[^.]+/e30=/r))
--- problem: 401 malformed token



=== TEST 24: the leeway: 30 s by default, none with 0s
--- config
    location /t { kordon_auth jwt; proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
    location /strict {
        kordon_auth jwt;
        kordon_jwt_leeway 0s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: sub { bearer(exp => time - 10) }
--- request eval
['GET /t', 'GET /strict']
--- error_code eval
[200, 401]



=== TEST 25: kordon_jwt_type checks the header's typ
--- config
    location /t {
        kordon_auth jwt;
        kordon_jwt_type at+jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- raw_request eval
auth_requests('GET /t', 'Bearer ' . token(),
              'Bearer ' . token(-header => { typ => 'application/at+jwt' }),
              'Bearer ' . token(-header => { typ => 'JWT' }),
              'Bearer ' . token(-header => { typ => undef }))
--- error_code eval
[200, 200, 401, 401]
--- response_body_like eval
['X-Kordon-User', 'X-Kordon-User', 'bad token type', 'bad token type']



=== TEST 26: auth on for the server, a public location opts out
--- config
    kordon_auth jwt;
    location /t { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
    location /public {
        kordon_auth off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request eval
['GET /t', 'GET /public']
--- more_headers
X-Kordon-User: forged
--- error_code eval
[401, 200]
--- response_body_unlike: X-Kordon



=== TEST 27: HEAD without a token: 401 without a body
--- request
HEAD /t
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer
Content-Type: application/problem+json
--- response_body:



=== TEST 28: a reload picks up a rotated JWKS
--- config
    location /t {
        kordon_auth jwt;
        kordon_jwt_keys $TEST_NGINX_JWT_DIR/rotating.json;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: bearer(-sign => 'rs_2', sub => 'rotated')
--- request eval
["GET /t",
 sub { jwks_write('rotating', 'rsa-1', 'rsa-2'); reload_nginx() },
 "GET /t",
 sub { jwks_write('rotating', 'rsa-1', 'ec-1', 'hs-1') }]
--- error_code eval
[401, 200]
--- response_body_like eval
['unknown key', 'X-Kordon-User: rotated']



=== TEST 29: nginx -t: a JWKS file that does not exist
--- own_http
--- http_config
    kordon_jwt_keys $TEST_NGINX_JWT_DIR/nowhere.json;
--- must_die
--- error_log
could not open JWKS file "/tmp/
nowhere.json" (2: No such file or directory)



=== TEST 30: nginx -t: JWKS that is not JSON
--- own_http
--- http_config eval
Kordon::JWT::write_file(jwt_dir() . '/junk.json', '{"keys": [');
"    kordon_jwt_keys $ENV{TEST_NGINX_JWT_DIR}/junk.json;\n"
--- must_die
--- error_log eval
[qr/invalid JWKS file "[^"]+junk\.json": could not parse JWKS: .* at line 1/]



=== TEST 31: nginx -t: a key without kid
--- own_http
--- http_config eval
my %rsa = %{ JSON::PP::decode_json(jwks_text('rsa-1'))->{keys}[0] };
delete $rsa{kid};
Kordon::JWT::write_file(jwt_dir() . '/nokid.json', jwks_text(\%rsa));
"    kordon_jwt_keys $ENV{TEST_NGINX_JWT_DIR}/nokid.json;\n"
--- must_die
--- error_log
nokid.json": key at index 0: missing "kid"



=== TEST 32: nginx -t: a key without alg
--- own_http
--- http_config eval
my $dir = jwt_dir();
my %rsa = %{ JSON::PP::decode_json(jwks_text('rsa-1'))->{keys}[0] };
delete $rsa{alg};
Kordon::JWT::write_file("$dir/noalg.json", jwks_text('ec-1', \%rsa));
"    kordon_jwt_keys $dir/noalg.json;\n"
--- must_die
--- error_log
noalg.json": key "rsa-1": missing "alg"



=== TEST 33: nginx -t: kordon_auth jwt without audience
--- own_http
--- http_config
    kordon_jwt_keys $TEST_NGINX_JWKS;
    kordon_identity_key $TEST_NGINX_IDENTITY_KEY;
--- config
    location /t { kordon_auth jwt; }
--- must_die
--- error_log eval
[qr/"kordon_auth jwt" needs "kordon_jwt_audience" in \S+nginx\.conf:\d+/]



=== TEST 34: nginx -t: an identity key file that does not exist
--- own_http
--- http_config
    kordon_identity_key $TEST_NGINX_JWT_DIR/nowhere.key;
--- must_die
--- error_log
could not open identity key file



=== TEST 35: nginx -t: kordon_auth jwt without keys
--- own_http
--- http_config
    kordon_jwt_audience kordon-edge;
    kordon_identity_key $TEST_NGINX_IDENTITY_KEY;
--- config
    location /t { kordon_auth jwt; }
--- must_die
--- error_log
"kordon_auth jwt" needs "kordon_jwt_keys"



=== TEST 36: nginx -t: an identity key that is too short
--- own_http
--- http_config eval
my $dir = jwt_dir();
Kordon::JWT::write_file("$dir/short.key", ('ab' x 31) . "\n");
"    kordon_identity_key $dir/short.key;\n"
--- must_die
--- error_log
short.key": shorter than 32 bytes (64 hex digits)
--- no_error_log eval
[Kordon::JWT::identity_key_hex('short')]



=== TEST 37: nginx -t: an identity key that is not hex
--- own_http
--- http_config eval
my $dir = jwt_dir();
Kordon::JWT::write_file("$dir/nothex.key", ('zz' x 32) . "\n");
"    kordon_identity_key $dir/nothex.key;\n"
--- must_die
--- error_log
nothex.key": expected hex digits only



=== TEST 38: nginx -t: roles where no token is checked
--- config
    location /t { kordon_require_roles admin; }
--- must_die
--- error_log eval
[qr/"kordon_require_roles" needs "kordon_auth" in \S+:\d+/]



=== TEST 39: nginx -t: apikey without kordon_apikeys
--- config
    location /t { kordon_auth jwt apikey; }
--- must_die
--- error_log eval
[qr/"kordon_auth apikey" needs "kordon_apikeys" in \S+nginx\.conf:\d+/]



=== TEST 40: nginx -t: an unknown kordon_auth value
--- config
    location /t { kordon_auth basic; }
--- must_die
--- error_log
invalid value "basic", expected "jwt", "apikey" or "off"



=== TEST 41: nginx -t: leeway over one hour
--- config
    location /t { kordon_auth jwt; kordon_jwt_leeway 2h; }
--- must_die
--- error_log
"kordon_jwt_leeway" directive must be at most 1h



=== TEST 42: auth for the server: its error location opts out
--- config
    kordon_auth jwt;
    error_page 404 /.kordon/problem;
    location = /.kordon/problem { internal; kordon_auth off; kordon_problem; }
    location /missing { return 404; }
--- raw_request eval
auth_requests('GET /missing', undef, 'Bearer ' . token())
--- problem: 404 the requested resource does not exist
