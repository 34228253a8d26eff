# The Redis response cache: what is never stored (errors or statuses
# outside kordon_cache_statuses, no-store, no-cache, private on a shared
# key, Set-Cookie, "Vary: *" or on a header not in the key (t/065 has
# kordon_cache_vary), bodies over kordon_cache_max_size,
# credentials on a shared key) and the TTL (kordon_cache_ttl lowered by
# the upstream's max-age or s-maxage).  The upstream is
# t/lib/Kordon/Origin.pm: "hits N <path>", steered by the query.

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
    $block->set_value('config', <<'CONF' . ($block->config // ''));
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
CONF
});

sub get {
    my ($path, @h) = @_;
    return join("\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                'Connection: close', @h) . "\r\n\r\n";
}

# The PTTL of the one entry in Redis, in ms: the store comes after the
# answer, so wait for it (at most a second).
sub entry_pttl {
    my @keys;
    for (1 .. 100) {
        @keys = split /\n/, redis()->cmd('KEYS', 'kordon:cache:e:*');
        last if @keys;
        sleep 0.01;
    }
    die "entries: @keys\n" unless @keys == 1;
    return redis()->cmd('PTTL', $keys[0]);
}

# A GET whose answer is cut short: the client sees a MISS and the
# upstream's hit count $n before the cut.
sub truncated {
    my ($path, $n) = @_;
    my $res = Test::Kordon::send_request(get($path));
    my $raw = $res->{raw} // '';
    die "not a cut MISS: $raw\n"
        unless $raw =~ /\r\nX-Cache: MISS\r\n/ && $raw =~ /\r\n\r\nhits $n /;
}

run_tests();

__DATA__

=== TEST 1: errors are passed on, never stored
--- request eval
["GET /c/err?status=404", "GET /c/err?status=404", "GET /c/err?status=500",
 "GET /c/err?status=500"]
--- error_code eval
[404, 404, 500, 500]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/err\n", "hits 2 /c/err\n", "hits 3 /c/err\n", "hits 4 /c/err\n"]



=== TEST 2: kordon_cache_statuses narrows the set: 203 not stored here
--- config
    location /s/ {
        kordon_cache main;
        kordon_cache_statuses 200;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /s/x?status=203", "GET /s/x?status=203", "GET /c/y?status=203",
 "GET /c/y?status=203"]
--- error_code eval
[203, 203, 203, 203]
--- response_body eval
["hits 1 /s/x\n", "hits 2 /s/x\n", "hits 1 /c/y\n", "hits 1 /c/y\n"]



=== TEST 3: no-store and no-cache are never stored
--- request eval
["GET /c/ns?cc=no-store", "GET /c/ns?cc=no-store",
 "GET /c/nc?cc=max-age%3D60,%20no-cache",
 "GET /c/nc?cc=max-age%3D60,%20no-cache"]
--- response_body eval
["hits 1 /c/ns\n", "hits 2 /c/ns\n", "hits 1 /c/nc\n", "hits 2 /c/nc\n"]



=== TEST 4: private: not on a shared key, yes when the key has the user
--- config
    location /u/ {
        kordon_cache main;
        kordon_cache_key $http_x_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/c/p?cc=private'), get('/c/p?cc=private'),
 get('/u/p?cc=private', 'X-User: alice'),
 get('/u/p?cc=private', 'X-User: alice'),
 get('/u/p?cc=private'), get('/u/p?cc=private')]
--- response_headers eval
["Cache-Control: private", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/p\n", "hits 2 /c/p\n", "hits 1 /u/p\n", "hits 1 /u/p\n",
 "hits 2 /u/p\n", "hits 3 /u/p\n"]



=== TEST 5: an answer that sets a cookie is never stored
--- request eval
["GET /c/cookie?cookie=1", "GET /c/cookie?cookie=1"]
--- response_headers eval
["Set-Cookie: s=1; Path=/", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/cookie\n", "hits 2 /c/cookie\n"]



=== TEST 12: an encoded body, "Vary: *" or a Vary on a header the key lacks is not stored; a 204 is
--- request eval
["GET /c/gz?h=Content-Encoding:%20gzip", "GET /c/gz?h=Content-Encoding:%20gzip",
 "GET /c/v?h=Vary:%20*", "GET /c/v?h=Vary:%20*",
 "GET /c/v2?h=Vary:%20Origin", "GET /c/v2?h=Vary:%20Origin",
 "GET /c/204?status=204", "GET /c/204?status=204"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 204, 204]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: MISS\nVary: Origin", "X-Cache: MISS\nX-Origin-Hits: 1",
 "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/gz\n", "hits 2 /c/gz\n", "hits 1 /c/v\n", "hits 2 /c/v\n",
 "hits 1 /c/v2\n", "hits 2 /c/v2\n", "", ""]



=== TEST 13: an upstream that closes early leaves no entry
--- request eval
[sub { truncated('/c/short?short=1', 1) }, sub { truncated('/c/short?short=1', 2) },
 "GET /c/stats-after-short"]
--- response_body eval
["hits 1 /c/stats-after-short\n"]
--- error_log
upstream prematurely closed connection



=== TEST 6: Authorization or X-Api-Key on a shared key: BYPASS, no lookup
--- config
    location /u/ {
        kordon_cache main;
        kordon_cache_key $http_x_user;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
[get('/c/a'), get('/c/a', 'Authorization: Bearer x'),
 get('/c/a', 'X-Api-Key: kdk_0123456789abcdef_x'), get('/c/a'),
 get('/u/a', 'Authorization: Bearer x', 'X-User: alice'),
 get('/u/a', 'Authorization: Bearer x', 'X-User: alice')]
--- response_headers eval
["X-Cache: MISS", "X-Cache: BYPASS", "X-Cache: BYPASS", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/a\n", "hits 2 /c/a\n", "hits 3 /c/a\n", "hits 1 /c/a\n",
 "hits 1 /u/a\n", "hits 1 /u/a\n"]



=== TEST 7: the size bound: a body over kordon_cache_max_size is not stored
--- config
    location /m/ {
        kordon_cache main;
        kordon_cache_max_size 100;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /m/big?size=200", "GET /m/big?size=200", "GET /m/small?size=80",
 "GET /m/small?size=80", "GET /c/large?size=50000",
 "GET /c/large?size=50000"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: HIT\nContent-Length: 50016"]
--- response_body_like eval
["^hits 1 /m/big\nx{200}\\z", "^hits 2 /m/big\n", "^hits 1 /m/small\nx{80}\\z",
 "^hits 1 /m/small\nx{80}\\z", "^hits 1 /c/large\nx{50000}\\z",
 "^hits 1 /c/large\nx{50000}\\z"]



=== TEST 8: a chunked body is bounded while it streams
--- config
    location /m/ {
        kordon_cache main;
        kordon_cache_max_size 1k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2/gen/;
    }
    location /m2/ {
        kordon_cache main;
        kordon_cache_max_size 100k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT2/gen/;
    }
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT2;
        location /gen/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT/;
            proxy_buffering off;
            chunked_transfer_encoding on;
            proxy_hide_header Content-Length;
        }
    }
--- request eval
["GET /m/g?size=5000", "GET /m/g?size=5000", "GET /m2/g?size=5000",
 "GET /m2/g?size=5000"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT"]
--- response_body_like eval
["^hits 1 /g\n", "^hits 2 /g\n", "^hits 3 /g\nx{5000}\\z",
 "^hits 3 /g\nx{5000}\\z"]



=== TEST 9: the TTL is the smaller of kordon_cache_ttl and max-age
--- config
    location /t/ {
        kordon_cache main;
        kordon_cache_ttl 10s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /t/a?cc=max-age%3D3",
 sub { my $t = entry_pttl(); redis()->cmd('FLUSHALL');
       die "pttl $t\n" unless $t > 2000 && $t <= 3000 },
 "GET /t/a?cc=max-age%3D100",
 sub { my $t = entry_pttl(); redis()->cmd('FLUSHALL');
       die "pttl $t\n" unless $t > 9000 && $t <= 10000 },
 "GET /t/a",
 sub { my $t = entry_pttl(); redis()->cmd('FLUSHALL');
       die "pttl $t\n" unless $t > 9000 && $t <= 10000 },
 "GET /t/a?cc=max-age%3D100,%20s-maxage%3D2",
 sub { my $t = entry_pttl(); die "pttl $t\n" unless $t > 1000 && $t <= 2000 }]
--- response_body eval
["hits 1 /t/a\n", "hits 2 /t/a\n", "hits 3 /t/a\n", "hits 4 /t/a\n"]



=== TEST 10: an entry expires with its max-age; max-age=0 is not stored
--- request eval
["GET /c/e?cc=max-age%3D1", "GET /c/e?cc=max-age%3D1",
 sub { sleep 1.1 }, "GET /c/e?cc=max-age%3D1",
 "GET /c/z?cc=max-age%3D0", "GET /c/z?cc=max-age%3D0"]
--- response_headers eval
["X-Cache: MISS\n!Age", "X-Cache: HIT\nCache-Control: max-age=1",
 "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/e\n", "hits 1 /c/e\n", "hits 2 /c/e\n", "hits 1 /c/z\n",
 "hits 2 /c/z\n"]



=== TEST 11: the not-stored answers are counted
--- config
    location = /stats { kordon_cache_stats; }
--- request eval
["GET /c/n?status=404", "GET /c/n?cc=no-store", "GET /c/n?cookie=1",
 "GET /c/n", sub { sleep 0.2 }, "GET /stats"]
--- error_code eval
[404, 200, 200, 200, 200]
--- response_body_like eval
["", "", "", "", qr/"misses":4,.*"stores":1,"store_errors":0,"not_stored":3,/]
