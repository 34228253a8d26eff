# kordon_openapi: requests matched to operations by path template and
# method; unknown paths 404, other methods 405 with Allow; the route
# variable; path parameters.
use Test::Kordon;
use Kordon::OpenAPI;

run_tests();

__DATA__

=== TEST 1: a known operation reaches the upstream
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /things?q=x
--- response_body_like: ^GET /things\?q=x HTTP/1.0

=== TEST 2: an unknown path is 404 from the edge
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /nothing/here
--- problem: 404 no such route

=== TEST 3: a trailing slash is another path
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /things/
--- problem: 404 no such route

=== TEST 4: a known path with another method is 405 with Allow
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
PATCH /things
--- response_headers
Allow: GET, HEAD, POST
--- problem: 405 method PATCH is not allowed here

=== TEST 5: HEAD is served by the GET operation
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
HEAD /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11
--- error_code: 200

=== TEST 6: the route variable is the template, literals win over parameters
--- config
    kordon_openapi_validate on;
    location / {
        add_header X-Route "[$kordon_openapi_route]" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request eval
["GET /things/special", "GET /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11",
 "GET /nothing"]
--- error_code eval
[200, 200, 404]
--- response_headers eval
["X-Route: [/things/special]", "X-Route: [/things/{id}]", "X-Route: []"]

=== TEST 7: the route variable works where validation is off
--- config
    location / { return 200 "[$kordon_openapi_route]"; }
--- request
DELETE /things/not-a-uuid
--- response_body: [/things/{id}]

=== TEST 8: validation off passes everything
--- config
    kordon_openapi_validate on;
    location / {
        kordon_openapi_validate off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- request
PATCH /nothing
--- response_body_like: ^PATCH /nothing HTTP

=== TEST 9: a path parameter is validated against its schema
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /things/42
--- problem: 400 the request does not match the API: 1 problem
--- response_body_like: "errors":\[\{"in":"path","parameter":"id","pointer":"","message":"must be a valid uuid"\}\]

=== TEST 10: a percent-encoded path parameter is decoded before validation
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request
GET /things/0b9e3c52%2D6f0e-4a53-9d0e-2a1c6c0f9f11
--- error_code: 200

=== TEST 11: an integer path parameter
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
--- request eval
["GET /pages/3", "GET /pages/0", "GET /pages/three",
 "GET /pages/99999999999999999999"]
--- error_code eval
[200, 400, 400, 400]
--- response_body_like eval
["^GET /pages/3", '"message":"must be >= 1"', '"message":"must be integer"',
 '"message":"must be integer"']

=== TEST 12: the edge's own error pages are not validated as routes
--- config
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:1; }
--- request
GET /things?q=x
--- problem: 502

=== TEST 13: kordon_route $kordon_openapi_route labels metrics by template
Every template of the document is a known route, so the metrics count
/things/{id} under its template (no id in a label), and a path the
document does not have under "other".
--- config
    kordon_route  $kordon_openapi_route;
    location / {
        add_header X-Route "[$kordon_route]" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
    location = /metrics {
        kordon_route  /metrics;
        kordon_metrics;
        kordon_metrics_requests off;
    }
--- request eval
["GET /things/0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11",
 "GET /things/6a1d6a6e-03d4-4b8e-9d54-5e1f58a9b7a2", "GET /nothing",
 "GET /metrics"]
--- response_headers eval
["X-Route: [/things/{id}]", "X-Route: [/things/{id}]", "X-Route: []", ""]
--- response_body_like eval
[(undef) x 3,
 qr{\Qkordon_edge_http_requests_total{route="other",method="GET",code_class="2xx"} 1\E\n
    \Qkordon_edge_http_requests_total{route="/things/{id}",method="GET",code_class="2xx"} 2\E\n}x]
--- response_body_unlike eval
[(undef) x 3, qr{0b9e3c52|/nothing}]
