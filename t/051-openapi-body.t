# kordon_openapi: JSON bodies against JSON Schema 2020-12, every keyword
# the validator knows, each problem listed with its JSON Pointer.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF
$Kordon::OpenAPI::MORE_HEADERS = "Content-Type: application/json\n"
    . "Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11\n";

run_tests();

__DATA__

=== TEST 1: a valid body reaches the upstream, unchanged
--- request
POST /things
{"name":"abc","amount":9223372036854775807,"currency":"EUR","tags":["x"],"note":null,"a/b~c":1,"child":{"name":"de","amount":1,"currency":"USD"}}
--- response_body_like: ^POST /things HTTP/1.0\r\n.*Content-Length: 145\r\n

=== TEST 2: type
--- request
POST /things
{"name":5,"amount":"10","currency":"EUR","note":true}
--- problem: 400 the request does not match the API: 3 problems
--- response_body_like: "errors":\[\{"pointer":"/name","message":"must be string"\},\{"pointer":"/amount","message":"must be integer"\},\{"pointer":"/note","message":"must be null or string"\}\]

=== TEST 3: integers are JSON integers: no fractions, no exponents
--- request eval
['POST /things
{"name":"abc","amount":1.5,"currency":"EUR"}',
'POST /things
{"name":"abc","amount":1e2,"currency":"EUR"}',
'POST /things
{"name":"abc","amount":1.0,"currency":"EUR"}']
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['"pointer":"/amount","message":"must be integer"',
 '"pointer":"/amount","message":"must be integer"',
 '"pointer":"/amount","message":"must be integer"']

=== TEST 4: required, and every missing member listed
--- request
POST /things
{}
--- problem: 400 the request does not match the API: 3 problems
--- response_body_like: \[\{"pointer":"/name","message":"is required"\},\{"pointer":"/amount","message":"is required"\},\{"pointer":"/currency","message":"is required"\}\]

=== TEST 5: additionalProperties false
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR","admin":true}
--- problem: 400 the request does not match the API: 1 problem
--- response_body_like: \{"pointer":"/admin","message":"is not an allowed property"\}

=== TEST 6: minLength and maxLength count code points, not bytes
--- request eval
['POST /things
{"name":"ééééé","amount":1,"currency":"EUR"}',
'POST /things
{"name":"éééééé","amount":1,"currency":"EUR"}',
'POST /things
{"name":"é","amount":1,"currency":"EUR"}']
--- error_code eval
[200, 400, 400]
--- response_body_like eval
['^POST', '"pointer":"/name","message":"must be at most 5 characters long"',
 '"pointer":"/name","message":"must be at least 2 characters long"']

=== TEST 7: exclusiveMinimum, maximum, minimum, exclusiveMaximum
--- request eval
['POST /things
{"name":"abc","amount":0,"currency":"EUR","ratio":-0.5}',
'POST /things
{"name":"abc","amount":1,"currency":"EUR","ratio":1}',
'POST /things
{"name":"abc","amount":1,"currency":"EUR","ratio":0.999}']
--- error_code eval
[400, 400, 200]
--- response_body_like eval
['\{"pointer":"/amount","message":"must be > 0"\},\{"pointer":"/ratio","message":"must be >= 0"\}',
 '"pointer":"/ratio","message":"must be < 1"', '^POST']

=== TEST 8: pattern (PCRE2)
--- request
POST /things
{"name":"abc","amount":1,"currency":"eur"}
--- error_code: 400
--- response_body_like: "pointer":"/currency","message":"must match the pattern \\"\^\[A-Z\]\{3\}\$\\""

=== TEST 9: enum and const
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR","kind":"c","version":2}
--- error_code: 400
--- response_body_like: \{"pointer":"/kind","message":"must be one of the allowed values"\},\{"pointer":"/version","message":"must be the constant value"\}

=== TEST 10: formats email and date-time
--- request eval
['POST /things
{"name":"abc","amount":1,"currency":"EUR","email":"a@b","at":"2026-02-30T10:00:00Z"}',
'POST /things
{"name":"abc","amount":1,"currency":"EUR","email":"ann@kordon.example","at":"2026-02-28T10:00:00.5+03:00"}']
--- error_code eval
[400, 200]
--- response_body_like eval
['\{"pointer":"/email","message":"must be a valid email"\},\{"pointer":"/at","message":"must be a valid date-time"\}',
 '^POST']

=== TEST 11: items, minItems, maxItems
--- request eval
['POST /things
{"name":"abc","amount":1,"currency":"EUR","tags":["a",2,"c",null]}',
'POST /things
{"name":"abc","amount":1,"currency":"EUR","tags":[]}']
--- error_code eval
[400, 400]
--- response_body_like eval
['\{"pointer":"/tags","message":"must have at most 3 items"\},\{"pointer":"/tags/1","message":"must be string"\},\{"pointer":"/tags/3","message":"must be string"\}',
 '"pointer":"/tags","message":"must have at least 1 items"']

=== TEST 12: JSON Pointers escape "~" and "/" (RFC 6901), through a recursive $ref
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR","a/b~c":"x","child":{"name":"abc","amount":1,"currency":"EUR","a/b~c":"y"}}
--- error_code: 400
--- response_body_like: \{"pointer":"/a~1b~0c","message":"must be integer"\},\{"pointer":"/child/a~1b~0c","message":"must be integer"\}

=== TEST 13: oneOf: exactly one branch
--- request eval
['POST /shapes
{"r":1}', 'POST /shapes
{"side":2}', 'POST /shapes
{"r":1,"side":2}', 'POST /numbers
5', 'POST /numbers
20', 'POST /numbers
5.5']
--- error_code eval
[200, 200, 400, 200, 400, 400]
--- response_body_like eval
['^POST', '^POST', '"pointer":"","message":"must match exactly one schema of oneOf \(matches none\)"',
 '^POST', 'must match exactly one schema of oneOf \(matches several\)',
 'matches none']

=== TEST 14: anyOf: at least one branch
--- request eval
['POST /labels
"abc"', 'POST /labels
7', 'POST /labels
"abcd"']
--- error_code eval
[200, 200, 400]
--- response_body_like eval
['^POST', '^POST', '"message":"must match at least one schema of anyOf"']

=== TEST 15: allOf: every branch, every problem; not
--- request eval
['POST /pairs
{}', 'POST /pairs
{"a":1,"b":2}', 'POST /pairs
{"a":1,"b":2,"c":3}']
--- error_code eval
[400, 200, 400]
--- response_body_like eval
['\{"pointer":"/a","message":"is required"\},\{"pointer":"/b","message":"is required"\}',
 '^POST', '"message":"must not match the schema of not"']

=== TEST 16: a required body that is missing
--- request
POST /things
--- problem: 400 the request does not match the API: 1 problem
--- response_body_like: "pointer":"","message":"a request body is required"

=== TEST 17: an optional body may be left out
--- request
POST /shapes
--- error_code: 200

=== TEST 18: the wrong Content-Type is 415
--- more_headers
Content-Type: text/plain
Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR"}
--- problem: 415 this operation takes application/json

=== TEST 19: no Content-Type with a body is 415
--- more_headers
Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR"}
--- problem: 415 this operation takes application/json

=== TEST 20: media type parameters and case are accepted
--- more_headers
Content-Type: Application/JSON; charset=utf-8
Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11
--- request
POST /things
{"name":"abc","amount":1,"currency":"EUR"}
--- error_code: 200

=== TEST 21: a form body is taken as it is (no JSON schema)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- request
POST /forms
a=1&b=2
--- error_code: 200

=== TEST 22: Content-Length above the operation's limit is 413 before reading
--- request eval
"POST /things\n" . ('x' x 1025)
--- problem: 413 the body is larger than the 1024 bytes this operation takes

=== TEST 23: a chunked body above the limit is 413 after reading
--- raw_request eval
"POST /things HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Type: application/json\r\n"
. "Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11\r\n"
. "Transfer-Encoding: chunked\r\n\r\n"
. "400\r\n" . ('x' x 1024) . "\r\n1\r\nx\r\n0\r\n\r\n"
--- problem: 413 the body is larger than the 1024 bytes this operation takes

=== TEST 24: a valid chunked body reaches the upstream
--- raw_request eval
"POST /things HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "Content-Type: application/json\r\n"
. "Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11\r\n"
. "Transfer-Encoding: chunked\r\n\r\n"
. "5\r\n{\"nam\r\n25\r\ne\":\"abc\",\"amount\":1,\"currency\":\"EUR\"}\r\n0\r\n\r\n"
--- response_body_like: ^POST /things HTTP/1.0\r\n.*Content-Length: 42\r\n

=== TEST 25: a body nginx wrote to its temporary file is validated too
--- config
    kordon_openapi_validate on;
    client_body_buffer_size 16;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request eval
['POST /things
{"name":"abc","amount":1,"currency":"EUR"}', 'POST /things
{"name":"abc","amount":-1,"currency":"EUR"}']
--- error_code eval
[200, 400]
--- response_body_like eval
['^POST', '"pointer":"/amount","message":"must be > 0"']

=== TEST 26: the errors are bounded; the detail says how many there were
--- request eval
"POST /things\n{\"name\":\"abc\",\"amount\":1,\"currency\":\"EUR\",\"tags\":["
. join(',', (1) x 40) . "]}"
--- error_code: 400
--- response_body_like: "detail":"the request does not match the API: 41 problems, the first 32 listed"

=== TEST 27: a schema of true takes anything
--- request
PUT /anything
[1,{"a":null},"x"]
--- error_code: 200

=== TEST 28: a body where the operation takes none is 415
--- request eval
["DELETE /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11\n{}",
 "DELETE /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11"]
--- error_code eval
[415, 200]
--- response_body_like eval
['"detail":"this operation takes no body"', '^DELETE']

=== TEST 29: kordon_openapi_schema_status 422: a JSON body that breaks the schema
Only a body that is JSON and breaks the schema gets 422 (as the services
answer); a body that is not JSON, or a bad parameter beside it, stays 400.
--- config
    kordon_openapi_validate on;
    kordon_openapi_schema_status 422;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- raw_request eval
my $h = "Host: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n";
my $k = "Idempotency-Key: 0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11\r\n";
my $post = sub { my ($hdr, $b) = @_;
    "POST /things HTTP/1.1\r\n$h${hdr}Content-Length: " . length($b) . "\r\n\r\n$b" };
[$post->($k, '{"name":5,"amount":1,"currency":"EUR"}'),
 $post->($k, '{"name":'),
 $post->('', '{"name":5,"amount":1,"currency":"EUR"}')]
--- error_code eval
[422, 400, 400]
--- response_body_like eval
['"title":"Unprocessable Content","status":422,.*"errors":\[\{"pointer":"/name","message":"must be string"\}\]',
 '"status":400,.*"message":"is not valid JSON',
 '"status":400,.*"parameter":"Idempotency-Key"']

=== TEST 30: kordon_openapi_schema_status takes 400 or 422 only
--- config
    kordon_openapi_schema_status 418;
--- must_die
--- error_log
invalid value "418", it must be 400 or 422
