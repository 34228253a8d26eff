# The Redis response cache (ngx_http_kordon_cache_module): a miss goes to
# the upstream and is stored, the next request is a hit that never
# reaches it; HEAD; the key (path and query normalized, the user for
# private data); X-Cache and $kordon_cache_status; the counters.  The
# upstream (t/lib/Kordon/Origin.pm) answers "hits N <path>", so a body
# tells how often the upstream was asked.  Redis is flushed before each
# block.

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;
use Time::HiRes qw(sleep);

redis_setup();
origin_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    $block->set_value('http_config', <<'CONF') unless $block->http_config;
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
CONF
});

# The key another edge instance computes for GET $path?$query (both
# normalized already) of $user: what makes the entries shared.
sub key_of {
    my ($path, $query, $user) = @_;
    require Digest::SHA;
    return 'kordon:cache:e:' . Digest::SHA::sha256_hex(
        join '', map { length($_) . ":$_" } 'GET', $path, $query, $user);
}

# a raw GET with extra header lines, for blocks whose requests differ in
# their headers
sub get {
    my ($path, @h) = @_;
    return join("\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                'Connection: close', @h) . "\r\n\r\n";
}

run_tests();

__DATA__

=== TEST 1: a miss is proxied and stored, the next one is a hit
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/one", "GET /c/one", "GET /c/one"]
--- response_headers eval
["X-Cache: MISS\nContent-Type: text/plain\n!X-Kordon-Cache-Tags",
 "X-Cache: HIT\nContent-Type: text/plain\nContent-Length: 14",
 "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/one\n", "hits 1 /c/one\n", "hits 1 /c/one\n"]
--- no_error_log
[error]
[warn]



=== TEST 2: HEAD is answered from what a GET stored, with no body
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["HEAD /c/head", "HEAD /c/head", "GET /c/head", "HEAD /c/head"]
--- response_headers eval
["X-Cache: MISS\nX-Origin-Hits: 1", "X-Cache: MISS\nX-Origin-Hits: 2",
 "X-Cache: MISS", "X-Cache: HIT\nContent-Length: 15\n!X-Origin-Hits"]
--- response_body eval
["", "", "hits 3 /c/head\n", ""]



=== TEST 3: the query's parameter order does not matter, its values do
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/q?a=1&b=2", "GET /c/q?b=2&a=1", "GET /c/q?b=2&&a=1&",
 "GET /c/q?a=1&b=3", "GET /c/q?a=2&a=1", "GET /c/q?a=1&a=2"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT", "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/q\n", "hits 1 /c/q\n", "hits 1 /c/q\n", "hits 2 /c/q\n",
 "hits 3 /c/q\n", "hits 4 /c/q\n"]



=== TEST 4: the path is normalized: // and dot segments
--- config
    merge_slashes off;
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/p/x", "GET /c//p///x", "GET /c/p/./y/../x", "GET /c/p/x/"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/p/x\n", "hits 1 /c/p/x\n", "hits 1 /c/p/x\n",
 "hits 1 /c/p/x/\n"]



=== TEST 5: kordon_cache_key keeps users apart; no user, one shared entry
--- config
    location /c/ {
        kordon_cache main;
        kordon_cache_key $http_x_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/c/me', 'X-User: alice'), get('/c/me', 'X-User: bob'),
 get('/c/me', 'X-User: alice'), get('/c/me', 'X-User: bob'),
 get('/c/me'), get('/c/me')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/me\n", "hits 2 /c/me\n", "hits 1 /c/me\n", "hits 2 /c/me\n",
 "hits 3 /c/me\n", "hits 3 /c/me\n"]



=== TEST 6: other methods bypass the cache; so does a location with it off
--- config
    add_header X-Status "[$kordon_cache_status]" always;
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
        location /c/off/ {
            kordon_cache off;
            proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
        }
    }
--- request eval
["POST /c/m\nx=1", "GET /c/m", "POST /c/m\nx=1", "DELETE /c/m",
 "GET /c/off/m", "GET /c/off/m"]
--- response_headers eval
["X-Cache: BYPASS\nX-Status: [BYPASS]", "X-Cache: MISS\nX-Status: [MISS]",
 "X-Cache: BYPASS", "X-Cache: BYPASS", "!X-Cache\nX-Status: []",
 "!X-Cache"]
--- response_body eval
["hits 1 /c/m\n", "hits 2 /c/m\n", "hits 3 /c/m\n", "hits 4 /c/m\n",
 "hits 1 /c/off/m\n", "hits 2 /c/off/m\n"]



=== TEST 7: $kordon_cache_status in the access log, HIT included
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
    log_format cache '$uri $kordon_cache_status';
--- config
    access_log logs/cache.log cache;
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /log { alias $TEST_NGINX_SERVROOT/logs/cache.log; }
--- request eval
["GET /c/log", "GET /c/log", "GET /log"]
--- response_body eval
["hits 1 /c/log\n", "hits 1 /c/log\n", "/c/log MISS\n/c/log HIT\n"]



=== TEST 8: kordon_cache_stats counts hits, misses and bypasses
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /stats { kordon_cache_stats; }
--- request eval
["GET /c/s", "GET /c/s", "GET /c/s", "POST /c/s\nx=1", "GET /stats"]
--- response_body_like eval
["", "", "", "",
 qr/^\{"hits":2,"misses":1,"bypasses":1,"redis_errors":0,"stores":1,"store_errors":0,"not_stored":0,"purges":0,"channel_messages":0,"channel_ignored":0,"lock_waits":0,"lock_timeouts":0\}\n\z/]



=== TEST 9: a status outside the configured set is not a kordon_cache_statuses
--- config
    location /c/ { kordon_cache main; kordon_cache_statuses 200 404; }
--- must_die
--- error_log
invalid status "404": a cacheable one is 2xx or 3xx, not 206 or 304



=== TEST 10: an unknown redis name makes nginx -t fail
--- config
    location /c/ { kordon_cache nosuch; }
--- must_die
--- error_log
no kordon_redis "nosuch" is defined



=== TEST 11: the counters and the entries survive a reload
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /stats { kordon_cache_stats; }
--- request eval
["GET /c/r", "GET /c/r", sub { reload_nginx() }, "GET /c/r", "GET /stats"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT", ""]
--- response_body_like eval
["^hits 1 /c/r\n", "^hits 1 /c/r\n", "^hits 1 /c/r\n",
 qr/^\{"hits":2,"misses":1,/]
--- no_error_log
[alert]



=== TEST 12: kordon_cache_stats without a cached location: zeros
--- config
    location = /stats { kordon_cache_stats; }
--- request
GET /stats
--- response_body
{"hits":0,"misses":0,"bypasses":0,"redis_errors":0,"stores":0,"store_errors":0,"not_stored":0,"purges":0,"channel_messages":0,"channel_ignored":0,"lock_waits":0,"lock_timeouts":0}



=== TEST 13: a hit says its Age: the seconds since the upstream answered
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/age", "GET /c/age", sub { sleep 2.1 }, "GET /c/age"]
--- response_headers eval
["!Age", "", ""]
--- response_headers_like eval
["", "Age: ^[01]\$", "Age: ^[23]\$"]
--- response_body eval
["hits 1 /c/age\n", "hits 1 /c/age\n", "hits 1 /c/age\n"]



=== TEST 14: an entry another edge stored is a hit here (the key and format)
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { redis()->cmd('SET', key_of('/c/shared', 'a=1&b=2', ''),
                    "KC1 203 " . time . " 2 6\nContent-Type: text/x-a\n"
                    . "ETag: \"e1\"\nshared", 'PX', 60000) },
 "GET /c//shared?b=2&a=1", "HEAD /c/shared?a=1&b=2"]
--- error_code eval
[203, 203]
--- response_headers eval
["X-Cache: HIT\nContent-Type: text/x-a\nETag: \"e1\"\nContent-Length: 6",
 "X-Cache: HIT\nContent-Length: 6"]
--- response_body eval
["shared", ""]



=== TEST 15: a malformed entry is a miss, and is replaced
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
[sub { redis()->cmd('SET', key_of('/c/bad', '', ''), "KC1 200 1 0 99\nx") },
 "GET /c/bad", "GET /c/bad"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/bad\n", "hits 1 /c/bad\n"]
--- error_log
kordon cache: malformed entry, treated as a miss



=== TEST 16: a hit answers a conditional request with 304
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/c/etag?h=ETag:%20%22v7%22'), get('/c/etag?h=ETag:%20%22v7%22'),
 get('/c/etag?h=ETag:%20%22v7%22', 'If-None-Match: "v7"'),
 get('/c/etag?h=ETag:%20%22v7%22', 'If-None-Match: "v6"'),
 get('/c/lm?h=Last-Modified:%20Tue,%2010%20Nov%202026%2010:00:00%20GMT'),
 get('/c/lm?h=Last-Modified:%20Tue,%2010%20Nov%202026%2010:00:00%20GMT',
     'If-Modified-Since: Tue, 10 Nov 2026 10:00:00 GMT')]
--- error_code eval
[200, 200, 304, 200, 200, 304]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT\nETag: \"v7\"", "X-Cache: HIT\nETag: \"v7\"",
 "X-Cache: HIT", "X-Cache: MISS", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/etag\n", "hits 1 /c/etag\n", "", "hits 1 /c/etag\n",
 "hits 1 /c/lm\n", ""]



=== TEST 17: a conditional miss is proxied whole and stored whole
--- config
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/c/cond?h=ETag:%20%22v9%22', 'If-None-Match: "v9"'),
 get('/c/cond?h=ETag:%20%22v9%22'),
 get('/c/cond?h=ETag:%20%22v9%22', 'If-None-Match: "v9"')]
--- error_code eval
[200, 200, 304]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/cond\n", "hits 1 /c/cond\n", ""]
