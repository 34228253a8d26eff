# The Redis response cache and Vary: an answer is served only to
# requests it fits.  kordon_cache_vary names the request headers a
# location varies on: their values (normalized) join the key, and an
# answer whose Vary names any other header (Accept-Encoding aside: an
# entry is never encoded) is not stored; "Vary: *" never is.  The
# upstream is t/lib/Kordon/Origin.pm ("hits N <path>", h= adds a header).

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;

redis_setup();
origin_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    $block->set_value('http_config', <<'CONF') unless $block->http_config;
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
CONF
});

# a GET with extra header lines
sub get {
    my ($path, @h) = @_;
    return join("\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                'Connection: close', @h) . "\r\n\r\n";
}

run_tests();

__DATA__

=== TEST 1: one entry per Accept-Language, normalized; none is served to another
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary Accept-Language;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
my $p = '/l/a?h=Vary:%20Accept-Language';
[get($p, 'Accept-Language: en'), get($p, 'Accept-Language: en'),
 get($p, 'Accept-Language: fr'), get($p, "Accept-Language:   en  "),
 get($p), get($p, 'Accept-Language: fr'), get($p),
 get($p, 'Accept-Language: en, fr'), get($p, 'Accept-Language: en ,fr'),
 get($p, 'accept-language: FR')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT\nVary: Accept-Language", "X-Cache: MISS",
 "X-Cache: HIT", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS"]
--- response_body eval
["hits 1 /l/a\n", "hits 1 /l/a\n", "hits 2 /l/a\n", "hits 1 /l/a\n",
 "hits 3 /l/a\n", "hits 2 /l/a\n", "hits 3 /l/a\n", "hits 4 /l/a\n",
 "hits 4 /l/a\n", "hits 5 /l/a\n"]



=== TEST 2: several headers, several lines of one header
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary Accept-Language Origin;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
my $p = '/l/b?h=Vary:%20Origin,Accept-Language';
[get($p, 'Origin: https://a.example', 'Accept-Language: en'),
 get($p, 'Origin: https://b.example', 'Accept-Language: en'),
 get($p, 'Accept-Language: en', 'Origin: https://a.example'),
 get($p, 'Origin: https://a.example', 'Accept-Language: en', 'Accept-Language: fr'),
 get($p, 'Origin: https://a.example', 'Accept-Language: en,fr')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS",
 "X-Cache: HIT"]
--- response_body eval
["hits 1 /l/b\n", "hits 2 /l/b\n", "hits 1 /l/b\n", "hits 3 /l/b\n",
 "hits 3 /l/b\n"]



=== TEST 3: a Vary the key does not cover is refused, whatever the request
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary Accept-Language;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location /n/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/l/o?h=Vary:%20Accept-Language,%20Origin', 'Origin: https://a.example'),
 get('/l/o?h=Vary:%20Accept-Language,%20Origin', 'Origin: https://b.example'),
 get('/n/o?h=Vary:%20Origin', 'Origin: https://a.example'),
 get('/n/o?h=Vary:%20Origin', 'Origin: https://b.example'),
 get('/n/l?h=Vary:%20accept-language'), get('/n/l?h=Vary:%20accept-language')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /l/o\n", "hits 2 /l/o\n", "hits 1 /n/o\n", "hits 2 /n/o\n",
 "hits 1 /n/l\n", "hits 2 /n/l\n"]



=== TEST 4: "Vary: *" is never stored; Vary: Accept-Encoding is, identity only
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary Accept-Language;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/l/star?h=Vary:%20*'), get('/l/star?h=Vary:%20*'),
 get('/l/star2?h=Vary:%20Accept-Language,*'), get('/l/star2?h=Vary:%20Accept-Language,*'),
 get('/l/ae?h=Vary:%20Accept-Encoding', 'Accept-Encoding: gzip'),
 get('/l/ae?h=Vary:%20Accept-Encoding', 'Accept-Encoding: identity')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: HIT\nVary: Accept-Encoding"]
--- response_body eval
["hits 1 /l/star\n", "hits 2 /l/star\n", "hits 1 /l/star2\n",
 "hits 2 /l/star2\n", "hits 1 /l/ae\n", "hits 1 /l/ae\n"]



=== TEST 5: kordon_cache_vary off cancels the inherited list
--- config
    kordon_cache_vary Accept-Language;
    location /l/ {
        kordon_cache main;
        kordon_cache_vary off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/l/off?h=Vary:%20Accept-Language', 'Accept-Language: en'),
 get('/l/off?h=Vary:%20Accept-Language', 'Accept-Language: en')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS"]



=== TEST 6: a header name that is not a token is refused by nginx -t
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary "Accept Language";
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- must_die
--- error_log
invalid header name "Accept Language"



=== TEST 7: at most 8 headers
--- config
    location /l/ {
        kordon_cache main;
        kordon_cache_vary a b c d e f g h i;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- must_die
--- error_log
at most 8 headers in "kordon_cache_vary"
