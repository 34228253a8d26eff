# kordon_openapi: a corpus of malformed requests against the real
# document (conf/openapi.yaml): each is a 4xx problem+json naming the
# problem, never a 5xx, and nothing reaches the upstream.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF
$Kordon::OpenAPI::MORE_HEADERS = "Content-Type: application/json\n"
    . "Idempotency-Key: k-1\n";

my $to = '"to_account_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2"';
my $from = '"from_account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11"';

# body => [status, a piece of the answer]
our @Corpus = (
    ['{' => 400, 'is not valid JSON: an early end at byte 1'],
    ['{"amount":1,}' => 400, 'is not valid JSON: a syntax error'],
    ['{"amount":1} {}' => 400, 'is not valid JSON: text after the value'],
    ["\xef\xbb\xbf{}" => 400, 'is not valid JSON'],
    [('[' x 3000) . (']' x 3000) => 400, 'is not valid JSON: nesting too deep'],
    [('[' x 100) . (']' x 100) => 400, 'nests deeper than 64 levels'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":99999999999999999999}"
        => 400, 'is not valid JSON: a number out of range'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":-9223372036854775809}"
        => 400, 'is not valid JSON: a number out of range'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":1e400}"
        => 400, 'is not valid JSON: a number out of range'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":\"100\"}"
        => 400, '"pointer":"/amount","message":"must be integer"'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":10.5}"
        => 400, '"pointer":"/amount","message":"must be integer"'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":0}"
        => 400, '"pointer":"/amount","message":"must be >= 1"'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":-5}"
        => 400, '"pointer":"/amount","message":"must be >= 1"'],
    ["{$from,$to,\"currency\":\"eu\",\"amount\":5}"
        => 400, '"pointer":"/currency","message":"must match the pattern'],
    ["{\"from_account_id\":\"x\",$to,\"currency\":\"EUR\",\"amount\":5}"
        => 400, '"pointer":"/from_account_id","message":"must be a valid uuid"'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":5,\"description\":\"\xff\"}"
        => 400, 'is not valid JSON: invalid UTF-8'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":5,\"description\":\"\xc0\xaf\"}"
        => 400, 'is not valid JSON: invalid UTF-8'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":5,\"description\":\"\\ud800\"}"
        => 400, 'is not valid JSON'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":5,\"description\":\"a\\u0000b\"}"
        => 400, 'is not valid JSON: a NUL character'],
    ["{$from,$to,\"currency\":\"EUR\",\"amount\":5,\"amount\":6}"
        => 400, 'is not valid JSON: a duplicate key'],
    ['null' => 400, '"pointer":"","message":"must be object"'],
    ['[]' => 400, '"pointer":"","message":"must be object"'],
    ['"transfer"' => 400, '"pointer":"","message":"must be object"'],
    ['{' . join(',', map { "\"k$_\":$_" } 1 .. 500) . '}'
        => 400, 'problems, the first 32 listed'],
    ['{"' . ('k' x 5000) . '":1}' => 400, 'is not an allowed property'],
    ['{"a":"' . ('x' x 20000) . '"}' => 413, 'is larger than the 16384 bytes'],
);

add_block_preprocessor(sub {
    my $block = shift;
    return unless defined $block->corpus;
    $block->set_value(request =>
        [map { "POST /v1/transfers\n$_->[0]" } @Corpus]);
    $block->set_value(error_code => [map { $_->[1] } @Corpus]);
    $block->set_value(response_body_like =>
        [map { quotemeta $_->[2] } @Corpus]);
    $block->set_value(response_headers =>
        [("Content-Type: application/problem+json") x @Corpus]);
});

run_tests();

__DATA__

=== TEST 1: the corpus: each a 4xx problem, never a 5xx
--- real_openapi
--- corpus
--- no_error_log
[alert]
[crit]
exited on signal

=== TEST 2: the corpus's one valid neighbour passes, untouched
--- real_openapi
--- request
POST /v1/transfers
{"from_account_id":"0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11","to_account_id":"7d444840-9dc0-11d1-b245-5ffdce74fad2","currency":"EUR","amount":9223372036854775807}
--- response_body_like: ^POST /v1/transfers HTTP/1.0\r\n

=== TEST 3: a body on a route with the wrong type is 415, oversize 413
--- real_openapi
--- more_headers
Content-Type: text/xml
Idempotency-Key: k-1
--- request eval
["POST /v1/transfers\n<transfer/>"]
--- error_code: 415

=== TEST 4: a request line and headers that nginx itself refuses stay 4xx
--- real_openapi
--- raw_request eval
"GET /v1/accounts/\x00 HTTP/1.1\r\nHost: localhost\r\n\r\n"
--- error_code: 400
