# kordon_openapi with the real document (conf/openapi.yaml): the request
# shapes of users and ledger (issues 4 and 5) pass to the upstream, and
# the rules the document states are enforced.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF
$Kordon::OpenAPI::MORE_HEADERS = "Content-Type: application/json\n"
    . "Idempotency-Key: 2f6c1e0a-key\n";

$Kordon::OpenAPI::REAL = 1;

run_tests();

__DATA__

=== TEST 1: users: register, verify, login, refresh, me (issue 4 shapes)
--- request eval
['POST /v1/auth/register
{"email":"ann@kordon.example","password":"correct horse"}',
'POST /v1/auth/register
{"phone":"+4915112345678","password":"correct horse"}',
'POST /v1/auth/verify
{"email":"ann@kordon.example","code":"123456"}',
'POST /v1/auth/login
{"email":"ann@kordon.example","password":"x"}',
'POST /v1/auth/refresh
{"refresh_token":"0123456789abcdef0123456789abcdef"}',
'GET /v1/users/me', 'POST /v1/auth/logout-all']
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]

=== TEST 2: register: the address and the password are checked
"Exactly one of email and phone" is left to users, which names the
member at fault (/email when none, /phone when both); the edge passes
both cases on.
--- request eval
['POST /v1/auth/register
{"password":"correct horse"}',
'POST /v1/auth/register
{"email":"ann@kordon.example","phone":"+4915112345678","password":"correct horse"}',
'POST /v1/auth/register
{"email":"ann@kordon","password":"short"}']
--- error_code eval
[200, 200, 400]
--- response_body_like eval
['^POST /v1/auth/register', '^POST /v1/auth/register',
 '\{"pointer":"/email","message":"must be a valid email"\},\{"pointer":"/password","message":"must be at least 8 characters long"\}']

=== TEST 3: a verification code is six digits
--- request
POST /v1/auth/verify
{"email":"ann@kordon.example","code":"12345a"}
--- error_code: 400
--- response_body_like: "pointer":"/code","message":"must match the pattern

=== TEST 4: ledger: accounts and transfers (issue 5 shapes)
--- request eval
['POST /v1/accounts
{"currency":"EUR"}',
'GET /v1/accounts/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11',
'POST /v1/transfers
{"from_account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","to_account_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","amount":1250,"currency":"EUR"}',
'GET /v1/transfers/7d444840-9dc0-11d1-b245-5ffdce74fad2',
'POST /v1/admin/adjustments
{"account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","amount":500,"currency":"EUR","direction":"credit","reason":"goodwill"}',
'GET /v1/accounts/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11/statement?from=2026-11-01T00:00:00Z&limit=50']
--- error_code eval
[200, 200, 200, 200, 200, 200]

=== TEST 5: a transfer needs an Idempotency-Key
--- more_headers
Content-Type: application/json
--- request
POST /v1/transfers
{"from_account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","to_account_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","amount":1250,"currency":"EUR"}
--- problem: 400 the request does not match the API: 1 problem
--- response_body_like: "in":"header","parameter":"Idempotency-Key","pointer":"","message":"is required"

=== TEST 6: adjustments: direction and reason
--- request
POST /v1/admin/adjustments
{"account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","amount":500,"currency":"EUR","direction":"sideways"}
--- error_code: 400
--- response_body_like: \{"pointer":"/reason","message":"is required"\},\{"pointer":"/direction","message":"must be one of the allowed values"\}

=== TEST 7: the batch route takes 1,000 transfers, not 1,001
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location / { return 200 "$request_method $uri HTTP/1.0\n"; }
    }
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2; }
--- request eval
my $t = '{"from_account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","to_account_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","amount":1,"currency":"EUR"}';
["POST /v1/transfers/batch\n{\"transfers\":[" . join(',', ($t) x 1000) . "]}",
 "POST /v1/transfers/batch\n{\"transfers\":[" . join(',', ($t) x 1001) . "]}"]
--- error_code eval
[200, 400]
--- response_body_like eval
['^POST /v1/transfers/batch', '"pointer":"/transfers","message":"must have at most 1000 items"']

=== TEST 8: query parameters of the admin routes
The admin search's and the audit's filters pass to users, which answers
422 naming the one at fault (the edge would say 400); the other routes'
parameters are the edge's.
--- request eval
['GET /v1/admin/users?status=blocked&role=admin&limit=20',
 'GET /v1/admin/users?status=gone&limit=500',
 'GET /v1/admin/audit?user=nope&from=yesterday',
 'GET /v1/admin/reports/turnover?from=2026-11-01T00:00:00Z',
 'GET /v1/auth/oauth/google/callback?code=abc']
--- error_code eval
[200, 200, 200, 400, 400]
--- response_body_like eval
['^GET', '^GET /v1/admin/users\?status=gone', '^GET /v1/admin/audit\?user=nope',
 '"parameter":"to","pointer":"","message":"is required"',
 '"parameter":"state","pointer":"","message":"is required"']

=== TEST 9: routes and methods the API does not have
--- request eval
['GET /v1/transfers', 'DELETE /v1/accounts/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11',
 'GET /v1/secret', 'GET /healthz/postgres']
--- error_code eval
[405, 405, 404, 400]
--- response_headers eval
['Allow: POST', 'Allow: GET, HEAD', '!Allow', '!Allow']

=== TEST 10: the route label of a request with an id
--- config
    kordon_openapi_validate on;
    location / {
        return 200 "$kordon_openapi_route";
    }
--- request
GET /v1/accounts/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11/statement
--- response_body: /v1/accounts/{id}/statement
