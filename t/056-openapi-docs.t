# /docs: Swagger UI from the npm package swagger-ui-dist, showing the
# document the edge validates with, through the real conf snippet
# (conf/docs.conf.template, rendered as scripts/stack renders it); the
# document is served through the Redis cache (a real Redis).
use Test::Kordon;
use Kordon::OpenAPI;
use Kordon::Redis;
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $top = abs_path(dirname(__FILE__) . '/..');

redis_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    $block->set_value(http_config => ($block->http_config // '')
        . "    kordon_redis main 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n");
    my $root = servroot();
    open my $in, '<', "$top/conf/docs.conf.template" or die $!;
    local $/;
    (my $conf = <$in>) =~ s/\$\{KORDON_OPENAPI\}/$top\/build\/openapi/g;
    open my $out, '>', "$root/conf/docs.conf" or die $!;
    print $out $conf;
    close $out;
});

$Kordon::OpenAPI::CONFIG = <<'CONF';
    kordon_openapi_validate on;
    include docs.conf;
    location / { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
CONF
$Kordon::OpenAPI::REAL = 1;

run_tests();

__DATA__

=== TEST 1: /docs redirects to the UI
--- request
GET /docs
--- error_code: 301
--- response_headers_like
Location: /docs/$

=== TEST 2: the UI page loads its scripts
--- request
GET /docs/
--- response_headers
Content-Type: text/html
--- response_body_like: <div id="swagger-ui"></div>.*swagger-ui-bundle\.js.*swagger-initializer\.js

=== TEST 3: the scripts have their real types (nosniff would refuse others)
--- request eval
["GET /docs/swagger-ui-bundle.js", "GET /docs/swagger-ui.css",
 "GET /docs/swagger-initializer.js"]
--- response_headers eval
["Content-Type: application/javascript", "Content-Type: text/css",
 "Content-Type: application/javascript"]
--- response_body_like eval
["SwaggerUIBundle", "swagger-ui", 'url: "/openapi.json"']

=== TEST 4: the document it shows is the one the edge validates with
--- request
GET /openapi.json
--- response_headers
Content-Type: application/json
--- response_body_like: "openapi": "3\.1\.0".*"/v1/transfers": \{

=== TEST 5: the document comes from the Redis cache after the first read
--- request eval
["GET /openapi.json", "GET /openapi.json"]
--- response_headers eval
["X-Cache: MISS\nContent-Type: application/json",
 "X-Cache: HIT\nContent-Type: application/json"]
--- response_body_like eval
['"openapi": "3\.1\.0"', '"openapi": "3\.1\.0"']
