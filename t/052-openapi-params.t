# kordon_openapi: query and header parameters, converted to the type
# their schema asks for and validated.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF

run_tests();

__DATA__

=== TEST 1: valid query parameters pass, percent-encoded and all
--- request
GET /things?q=a%20b+c&limit=100&active=true&other=x
--- response_body_like: ^GET /things\?q=a%20b\+c&limit=100&active=true&other=x HTTP

=== TEST 2: a required query parameter that is missing
--- request
GET /things?limit=5
--- problem: 400 the request does not match the API: 1 problem
--- response_body_like: "errors":\[\{"in":"query","parameter":"q","pointer":"","message":"is required"\}\]

=== TEST 3: integer and boolean parameters, every problem listed
--- request
GET /things?q=&limit=abc&active=yes
--- problem: 400 the request does not match the API: 3 problems
--- response_body_like: \{"in":"query","parameter":"q","pointer":"","message":"must be at least 1 characters long"\},\{"in":"query","parameter":"limit","pointer":"","message":"must be integer"\},\{"in":"query","parameter":"active","pointer":"","message":"must be boolean"\}

=== TEST 4: integer bounds on a query parameter
--- request eval
["GET /things?q=x&limit=0", "GET /things?q=x&limit=101",
 "GET /things?q=x&limit=99999999999999999999"]
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['"parameter":"limit","pointer":"","message":"must be >= 1"',
 '"parameter":"limit","pointer":"","message":"must be <= 100"',
 '"parameter":"limit","pointer":"","message":"must be integer"']

=== TEST 5: a scalar parameter given twice
--- request
GET /things?q=a&q=b
--- error_code: 400
--- response_body_like: "parameter":"q","pointer":"","message":"must appear once"

=== TEST 6: a query value that is not UTF-8
--- request
GET /things?q=%ff%fe
--- error_code: 400
--- response_body_like: "parameter":"q","pointer":"","message":"must be valid UTF-8"

=== TEST 7: a required header parameter, checked by its schema
--- more_headers
Content-Type: application/json
--- request eval
['POST /things
{"name":"abc","amount":1,"currency":"EUR"}']
--- error_code: 400
--- response_body_like: \{"in":"header","parameter":"Idempotency-Key","pointer":"","message":"is required"\}

=== TEST 8: header names are case-insensitive; the value is validated
--- more_headers
Content-Type: application/json
idempotency-key: nope
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR"}
--- error_code: 400
--- response_body_like: \{"in":"header","parameter":"Idempotency-Key","pointer":"","message":"must be a valid uuid"\}

=== TEST 9: parameter and body problems in one answer
--- more_headers
Content-Type: application/json
--- request
POST /things
{"name":"abc","amount":0,"currency":"EUR"}
--- problem: 400 the request does not match the API: 2 problems
--- response_body_like: \{"in":"header","parameter":"Idempotency-Key","pointer":"","message":"is required"\},\{"pointer":"/amount","message":"must be > 0"\}
