# The Redis response cache: tags and purges.  An answer's
# X-Kordon-Cache-Tags never reaches the client; its entry joins one set
# per tag; a tag is purged through the internal location
# (kordon_cache_purge) or by any service with
# "FCALL kordon_cache_purge 0 <tag>" (the function library each worker
# loads into Redis).  The upstream is t/lib/Kordon/Origin.pm.

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;
use Time::HiRes qw(sleep time);

redis_setup();
origin_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    redis()->cmd('FUNCTION', 'FLUSH');
    $block->set_value('http_config', <<'CONF') unless $block->http_config;
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
CONF
    $block->set_value('config', <<'CONF' . ($block->config // ''));
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /.kordon/cache/purge { kordon_cache_purge main; }
CONF
});

# What a service does after a write: one FCALL, once the edge has loaded
# the library (it checks every second).
sub service_purge {
    my $tag = shift;
    my $deadline = time + 3;
    while (1) {
        my $n = eval { redis()->cmd('FCALL', 'kordon_cache_purge', '0', $tag) };
        return $n if defined $n;
        die "FCALL failed: $@" if time > $deadline;
        sleep 0.05;
    }
}

# waits until the entries are stored (the store follows the answer)
sub stored {
    my $n = shift;
    for (1 .. 100) {
        my @k = split /\n/, redis()->cmd('KEYS', 'kordon:cache:e:*');
        return if @k >= $n;
        sleep 0.01;
    }
    die "fewer than $n entries stored\n";
}

run_tests();

__DATA__

=== TEST 1: tags are stripped, stored as sets with the entry's expiry
--- config
    location /t/ {
        kordon_cache main;
        kordon_cache_ttl 30s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /t/a?tags=user:1%20orders,bad*tag",
 sub {
     stored(1);
     my $m = redis()->cmd('SMEMBERS', 'kordon:cache:tag:user:1');
     die "members: $m\n" unless $m =~ /^kordon:cache:e:[0-9a-f]{64}$/;
     die "orders\n" unless redis()->cmd('SISMEMBER', 'kordon:cache:tag:orders', $m);
     die "bad tag stored\n" if redis()->cmd('EXISTS', 'kordon:cache:tag:bad*tag');
     my $t = redis()->cmd('PTTL', 'kordon:cache:tag:orders');
     die "pttl $t\n" unless $t > 29000 && $t <= 30000;
 },
 "GET /t/a?tags=user:1%20orders,bad*tag"]
--- response_headers eval
["!X-Kordon-Cache-Tags\nX-Cache: MISS", "!X-Kordon-Cache-Tags\nX-Cache: HIT"]
--- response_body eval
["hits 1 /t/a\n", "hits 1 /t/a\n"]



=== TEST 2: purging a tag through the internal location drops its entries only
--- request eval
["GET /c/a?tags=t1", "GET /c/b?tags=t1%20t2", "GET /c/c?tags=t2",
 sub { stored(3) },
 "POST /.kordon/cache/purge?tag=t1",
 "GET /c/a?tags=t1", "GET /c/b?tags=t1%20t2", "GET /c/c?tags=t2",
 "DELETE /.kordon/cache/purge?tag=nothing"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "Content-Type: application/json", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: HIT", ""]
--- response_body eval
["hits 1 /c/a\n", "hits 1 /c/b\n", "hits 1 /c/c\n",
 qq({"tag":"t1","purged":2}\n), "hits 2 /c/a\n", "hits 2 /c/b\n",
 "hits 1 /c/c\n", qq({"tag":"nothing","purged":0}\n)]
--- error_log
kordon cache: tag "t1" purged, 2 entries



=== TEST 3: a service purges with FCALL kordon_cache_purge, no edge involved
--- request eval
["GET /c/s?tags=catalog", "GET /c/s?tags=catalog",
 sub { stored(1); my $n = service_purge('catalog'); die "purged $n\n" unless $n == 1 },
 "GET /c/s?tags=catalog"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/s\n", "hits 1 /c/s\n", "hits 2 /c/s\n"]
--- error_log
kordon cache: function library "kordon_cache_v1" loaded into redis "main"



=== TEST 4: the library comes back after Redis lost it
--- request eval
[sub { service_purge('x'); redis()->cmd('FUNCTION', 'FLUSH') },
 "GET /c/l?tags=again", sub { stored(1) },
 sub { my $n = service_purge('again'); die "purged $n\n" unless $n == 1 },
 "GET /c/l?tags=again"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/l\n", "hits 2 /c/l\n"]



=== TEST 5: bad purges are problems: no tag, a bad tag, a GET
--- request eval
["POST /.kordon/cache/purge", "POST /.kordon/cache/purge?tag=a%20b",
 "POST /.kordon/cache/purge?tag=" . ('a' x 129),
 "GET /.kordon/cache/purge?tag=x"]
--- problem eval
["400 the query parameter \"tag\" must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
 "400 the query parameter \"tag\" must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
 "400 the query parameter \"tag\" must be 1 to 128 characters of A-Z a-z 0-9 _ . : -",
 "405 use POST or DELETE"]



=== TEST 6: Redis gone: the purge answers 503, at once
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
--- config
    location = /gone/purge { kordon_cache_purge gone; }
--- request
POST /gone/purge?tag=x
--- problem: 503 redis is not reachable



=== TEST 7: the purge counter
--- config
    location = /stats { kordon_cache_stats; }
--- request eval
["POST /.kordon/cache/purge?tag=a", "POST /.kordon/cache/purge?tag=b",
 "GET /stats"]
--- response_body_like eval
["", "", qr/"purges":2,/]
