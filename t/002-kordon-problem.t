# kordon_problem and ngx_http_kordon_problem_send(): every error is an
# RFC 9457 problem+json body carrying the request id.  Every block's
# server also gets problem_config() (error_page ... /.kordon/problem)
# unless the block has its own kordon_problem location.

use Test::Kordon;

plan tests => repeat_each() * (blocks() * 3 + 3);

add_block_preprocessor(sub {
    my $block = shift;
    my $config = $block->config // '';
    $block->set_value(config => $config . problem_config())
        unless $config =~ /kordon_problem/;
});

run_tests();

__DATA__

=== TEST 1: 404 for a location that does not exist
--- config
    location /t { return 200; }
--- request
GET /nowhere
--- problem: 404 the requested resource does not exist
--- response_body_unlike: nginx|html|nowhere



=== TEST 2: 405 from the static module
--- request
DELETE /index.html
--- problem: 405 the method is not allowed for this resource
--- response_headers
Content-Length: 167



=== TEST 3: 413 when the body is over client_max_body_size
--- config
    location /t { client_max_body_size 8; return 200; }
--- request
POST /t
0123456789abcdef
--- problem: 413 the request body is too large
--- error_log
client intended to send too large body



=== TEST 4: 502 names no upstream, address or path
--- http_config
    upstream users_backend { server 127.0.0.1:$TEST_NGINX_SERVER_PORT2; }
--- config
    location /t { proxy_pass http://users_backend/v1/secret; }
--- request
GET /t
--- problem: 502 the upstream service is unavailable
--- response_body_unlike: users|127\.0\.0|secret|nginx
--- error_log
connect() failed (111: Connection refused)



=== TEST 5: 504 when the upstream does not answer in time
--- config
    location /t {
        proxy_read_timeout 200ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SILENT_PORT;
    }
--- request
GET /t
--- problem: 504 the upstream service did not answer in time
--- error_log
upstream timed out



=== TEST 6: 400 for an invalid Host header
--- request
GET /t
--- more_headers
Host: a/b
--- problem: 400 the request is malformed
--- error_log
client sent invalid host header



=== TEST 7: 414 for a request line over the buffers
--- config
    large_client_header_buffers 2 1k;
--- request eval
"GET /" . ("a" x 2000)
--- problem: 414 the request URI is too long
--- error_log
client sent too long URI



=== TEST 8: nginx's 494 is answered as 400 (error_page makes it one)
--- config
    large_client_header_buffers 2 1k;
--- request
GET /t
--- more_headers eval
"X-Big: " . ("b" x 2000)
--- problem: 400 the request is malformed
--- error_log
client sent too long header line



=== TEST 9: 429 from limit_req on the second request
--- http_config
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
--- config
    location = /index.html { limit_req zone=one; limit_req_status 429; }
--- request eval
["GET /index.html", "GET /index.html"]
--- error_code eval
[200, 429]
--- problem eval
[undef, "429 too many requests, retry later"]



=== TEST 10: a named location, with =code, renders that code
--- config
    location /t { return 404; }
    error_page 404 =410 @problem;
    location @problem { kordon_problem; }
--- request
GET /t
--- problem: 410 the resource is no longer available
--- no_error_log
[error]



=== TEST 11: a fixed detail
--- config
    location /t { return 503; }
    error_page 503 @problem;
    location @problem { kordon_problem "the ledger is closed until 06:00"; }
--- request
GET /t
--- problem: 503 the ledger is closed until 06:00
--- no_error_log
[error]



=== TEST 12: the detail is JSON-escaped, bad UTF-8 becomes U+FFFD
--- config
    location /t { return 422; }
    error_page 422 @problem;
    location @problem { kordon_problem "bad $http_x_detail"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "X-Detail: q\"b\\s\x01\t\xc3\xa9\xff\xed\xa0\x80</x>\r\n\r\n"
--- problem: 422
--- response_body_like eval
qr/"detail":"bad q\\"b\\\\s\\u0001\\t\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffd<\/x>"/



=== TEST 13: a request reaching kordon_problem directly is a 404
--- config
    location /t { try_files $uri @problem; }
    location @problem { kordon_problem; }
--- request
GET /t/missing
--- problem: 404 the requested resource does not exist
--- no_error_log
[error]



=== TEST 14: HEAD gets the headers only
--- request
HEAD /nowhere
--- response_headers
Content-Type: application/problem+json
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$
--- error_code: 404



=== TEST 15: the request body of a failing POST is discarded
--- config
    location /t { return 500; }
--- request
POST /t
{"amount": 100}
--- problem: 500 an internal error occurred
--- no_error_log
[error]



=== TEST 16: kordon_request_id: every answer carries the request id
--- config
    kordon_request_id on;
    location /t { return 200 "ok"; }
--- request
GET /t
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$
--- response_body: ok



=== TEST 17: kordon_request_id: the upstream's own X-Request-Id is replaced
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location / {
            add_header X-Request-Id upstream-made-this-up;
            return 200 "ok";
        }
    }
--- config
    kordon_request_id on;
    location /t { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2; }
--- request
GET /t
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$
--- response_body: ok



=== TEST 18: kordon_request_id is off unless asked for
--- config
    location /t { return 200 "ok"; }
--- request
GET /t
--- response_headers
! X-Request-Id
--- response_body: ok



=== TEST 19: $request_id: 32 hex digits, a new one for every request (the worker draws them in blocks of 64; 200 requests cross three refills)
--- config
    location /t { return 200 "$request_id"; }
--- request eval
["GET /t",
 sub {
     my (%seen, @bad);
     for (1 .. 200) {
         my $res = Test::Kordon::send_request(
             Test::Kordon::build_request("GET /t"));
         my $id = $res->{body} // '';
         push @bad, $id unless $id =~ /\A[0-9a-f]{32}\z/;
         $seen{$id}++;
     }
     is("@bad", '', 'every id is 32 hex digits');
     is(scalar keys %seen, 200, 'no id twice');
 }]
--- response_body_like: ^[0-9a-f]{32}$
--- no_error_log
[error]
