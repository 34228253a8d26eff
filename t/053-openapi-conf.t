# kordon_openapi: "nginx -t" refuses a document it cannot compile and
# names the place in it (a JSON Pointer); a valid one loads.
use Test::Kordon;
use Kordon::OpenAPI;

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF

run_tests();

__DATA__

=== TEST 1: the real document compiles
--- real_openapi
--- request
GET /healthz
--- response_body_like: ^GET /healthz HTTP
--- no_error_log
[emerg]

=== TEST 2: not JSON
--- openapi
{"openapi": "3.1.0",
--- must_die
--- error_log
could not compile OpenAPI document
at "/": not a JSON document: line 2

=== TEST 3: not OpenAPI 3.1
--- openapi
{"openapi": "3.0.3", "paths": {"/a": {"get": {}}}}
--- must_die
--- error_log
at "/openapi": must be an OpenAPI 3.1.x version

=== TEST 4: an unknown type, named by its pointer (with "/" escaped)
--- schema
{"type": "object", "properties": {"a/b": {"type": "strin"}}}
--- must_die
--- error_log
at "/components/schemas/S/properties/a~1b/type": unknown type "strin"

=== TEST 5: a pattern PCRE2 cannot compile
--- schema
{"type": "string", "pattern": "^[A-Z"}
--- must_die
--- error_log
at "/components/schemas/S/pattern": pattern does not compile at offset 5: missing terminating ]

=== TEST 6: a $ref to nothing
--- schema
{"properties": {"a": {"$ref": "#/components/schemas/Nope"}}}
--- must_die
--- error_log
at "/components/schemas/S/properties/a/$ref": $ref "#/components/schemas/Nope" names nothing in the document

=== TEST 7: a $ref outside the document
--- schema
{"$ref": "https://example.com/schema.json"}
--- must_die
--- error_log
$ref "https://example.com/schema.json" is outside the document

=== TEST 8: a keyword the validator does not know is refused, not ignored
--- schema
{"type": "object", "requried": ["a"]}
--- must_die
--- error_log
at "/components/schemas/S/requried": unsupported schema keyword "requried"

=== TEST 9: OpenAPI 3.0's nullable is refused with the 3.1 way
--- schema
{"type": "string", "nullable": true}
--- must_die
--- error_log
"nullable" is OpenAPI 3.0; use "type": [..., "null"]

=== TEST 10: bad bounds and lengths
--- schema
{"type": "string", "minLength": -1}
--- must_die
--- error_log
at "/components/schemas/S/minLength": must be a non-negative integer

=== TEST 11: a path parameter not declared
--- openapi
{"openapi": "3.1.0", "paths": {"/a/{id}": {"get": {}}}}
--- must_die
--- error_log
at "/paths/~1a~1{id}/get": path parameter "id" is not declared

=== TEST 12: a path parameter that is not a whole segment
--- openapi
{"openapi": "3.1.0", "paths": {"/a/x{id}": {"get": {}}}}
--- must_die
--- error_log
at "/paths/~1a~1x{id}": a path parameter must be a whole segment

=== TEST 13: cookie parameters are not supported
--- openapi
{"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [
 {"name": "c", "in": "cookie", "schema": {"type": "string"}}]}}}}
--- must_die
--- error_log
at "/paths/~1a/get/parameters/0": parameters in "cookie" are not supported

=== TEST 14: duplicate keys in the document
--- openapi
{"openapi": "3.1.0", "openapi": "3.1.0", "paths": {"/a": {"get": {}}}}
--- must_die
--- error_log
not a JSON document

=== TEST 15: validation on without a document
--- no_openapi
--- must_die
--- error_log
"kordon_openapi_validate on" needs a document

=== TEST 16: a missing file
--- no_openapi
--- http_config
    kordon_openapi nope.json;
--- must_die
--- error_log
could not open OpenAPI document

=== TEST 17: a reload with a broken document keeps the old one serving
--- request eval
["GET /things?q=x", sub {
    open my $fh, '>', Test::Kordon::servroot() . '/conf/openapi.json' or die;
    print $fh '{"openapi": "3.1.0", "paths": {"/a": {"get": {"x": 1}}}}';
    close $fh;
    eval { reload_nginx() };
    die "reload should have failed" unless $@ =~ /unsupported operation member/;
}, "GET /things?q=x"]
--- error_code eval
[200, 200]

=== TEST 18: the build's YAML reading: duplicate keys refused, YAML 1.2 booleans
--- request eval
use Cwd qw(abs_path);
my $build = abs_path('scripts/openapi-build');
my $d = "$ENV{TEST_NGINX_SERVROOT}/yaml";
[sub {
    mkdir $d;
    open my $f, '>', "$d/dup.yaml" or die; print $f "a: 1\na: 2\n"; close $f;
    my $out = `$build $d/out $d/dup.yaml 2>&1`;
    die "duplicate keys accepted: $out" if $? == 0 || $out !~ /duplicate key 'a'/;
}, sub {
    open my $f, '>', "$d/ok.yaml" or die;
    print $f "enum: [on, off, true]\nwhen: 2026-11-24\n"; close $f;
    system("$build $d/out $d/ok.yaml") == 0 or die "build failed";
    open $f, '<', "$d/out/openapi.json" or die; local $/;
    my $json = <$f>;
    die "got $json" unless $json =~ /"on",\s*"off",\s*true\s*\]/
                        && $json =~ /"when": "2026-11-24"/;
}, "GET /things?q=x"]
