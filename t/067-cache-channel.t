# The Redis response cache: purges by PUBLISH.  With
# "kordon_cache_purge_channel main kordon:cache:purge;" worker 0 of the
# edge subscribes on a connection of its own; a service that PUBLISHes
# "tag1 tag2" there drops those tags' entries (the same script as FCALL
# kordon_cache_purge).  The subscription comes back after a Redis
# restart; a message that is not a tag list is logged and ignored.
# The upstream is t/lib/Kordon/Origin.pm ("hits N <path>").

use Test::Kordon;
use Kordon::Redis;
use Kordon::Origin;
use Time::HiRes qw(sleep time);

redis_setup();
origin_setup();

add_block_preprocessor(sub {
    my $block = shift;
    redis()->cmd('FLUSHALL');
    $block->set_value('http_config', <<'CONF') unless $block->http_config;
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
    kordon_cache_purge_channel main kordon:cache:purge;
CONF
    $block->set_value('config', <<'CONF' . ($block->config // ''));
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location = /stats { kordon_cache_stats; }
CONF
});

# What a service does after a write.  PUBLISH answers how many
# subscribers heard it: wait (at most 5 s) until the edge's one is there.
sub publish {
    my $msg = shift;
    my $deadline = time + 5;
    while (1) {
        my $n = redis()->cmd('PUBLISH', 'kordon:cache:purge', $msg);
        die "$n subscribers\n" if $n > 1;
        return if $n == 1;
        die "no subscriber on kordon:cache:purge\n" if time > $deadline;
        sleep 0.05;
    }
}

# waits until Redis holds $n entries (a store follows its answer; a
# purge follows its message)
sub entries {
    my $n = shift;
    my @k;
    for (1 .. 200) {
        @k = split /\n/, redis()->cmd('KEYS', 'kordon:cache:e:*');
        return if @k == $n;
        sleep 0.01;
    }
    die scalar(@k) . " entries, not $n\n";
}

# waits until the edge's shared connection is back (a lookup that is not
# a BYPASS; a 404 is never stored)
sub lookups_ready {
    for (1 .. 100) {
        my $res = Test::Kordon::send_request(
            "GET /c/probe?status=404 HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n");
        return if ($res->{raw} // '') =~ /\r\nX-Cache: MISS\r\n/;
        sleep 0.05;
    }
    die "lookups still bypass\n";
}

run_tests();

__DATA__

=== TEST 1: a published tag drops its entries, and only them
--- request eval
["GET /c/a?tags=t1", "GET /c/b?tags=t1%20t2", "GET /c/c?tags=t2",
 sub { entries(3) }, "GET /c/a?tags=t1",
 sub { publish('t1'); entries(1) },
 "GET /c/a?tags=t1", "GET /c/b?tags=t1%20t2", "GET /c/c?tags=t2"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT",
 "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT"]
--- response_body eval
["hits 1 /c/a\n", "hits 1 /c/b\n", "hits 1 /c/c\n", "hits 1 /c/a\n",
 "hits 2 /c/a\n", "hits 2 /c/b\n", "hits 1 /c/c\n"]
--- error_log
redis "main (subscriber)" (127.0.0.1:
subscribed to channel "kordon:cache:purge"
kordon cache: tag "t1" purged from the channel, 2 entries
--- no_error_log
[alert]



=== TEST 2: one message, several tags (spaces or commas)
--- request eval
["GET /c/x?tags=a", "GET /c/y?tags=b", "GET /c/z?tags=c",
 sub { entries(3); publish(' a, b ') ; entries(1) },
 "GET /c/x?tags=a", "GET /c/y?tags=b", "GET /c/z?tags=c", "GET /stats"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", ""]
--- response_body_like eval
["hits 1", "hits 1", "hits 1", "hits 2 /c/x", "hits 2 /c/y", "hits 1 /c/z",
 qr/"purges":2,"channel_messages":1,"channel_ignored":0,/]



=== TEST 3: garbage is logged and ignored whole; the next message works
--- request eval
["GET /c/g?tags=keep", sub { entries(1) },
 sub { publish('keep bad*tag'); publish(''); publish("\x00\xff\r\n");
       publish(join ' ', map { "t$_" } 1 .. 17); publish('x' x 129);
       sleep 0.3; entries(1) },
 "GET /c/g?tags=keep",
 sub { publish('keep'); entries(0) },
 "GET /c/g?tags=keep", "GET /stats"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS", ""]
--- response_body_like eval
["hits 1", "hits 1", "hits 2",
 qr/"purges":1,"channel_messages":1,"channel_ignored":5,/]
--- error_log
ignored a message of 12 bytes on channel "kordon:cache:purge": not a list of 1 to 16 valid tags
ignored a message of 0 bytes on channel
ignored a message of 4 bytes on channel
ignored a message of 129 bytes on channel
--- no_error_log
[alert]
[error]



=== TEST 4: Redis restarted: the edge subscribes again, purges go on
--- request eval
["GET /c/r?tags=rt", sub { entries(1); publish('nothing') },
 sub { redis()->restart; publish('nothing'); lookups_ready() },
 "GET /c/r?tags=rt", "GET /c/r?tags=rt",
 sub { publish('rt'); entries(0) },
 "GET /c/r?tags=rt"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/r\n", "hits 2 /c/r\n", "hits 2 /c/r\n", "hits 3 /c/r\n"]
--- error_log
lost the connection to redis "main (subscriber)"
kordon cache: tag "rt" purged from the channel, 1 entries
--- no_error_log
[alert]



=== TEST 5: Redis gone at start: nginx starts, retries, never blocks a request
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_UNUSED_PORT timeout=200ms;
    kordon_cache_purge_channel main kordon:cache:purge;
--- request eval
["GET /c/gone", "GET /c/gone"]
--- response_headers eval
["X-Cache: BYPASS", "X-Cache: BYPASS"]
--- error_log
could not connect to redis "main (subscriber)"
--- no_error_log
[alert]



=== TEST 6: a reload: the old worker's subscriber goes, the new one takes over
--- request eval
["GET /c/rl?tags=rl", sub { entries(1) },
 sub { reload_nginx(); publish('rl'); entries(0) },
 "GET /c/rl?tags=rl"]
--- response_headers eval
["X-Cache: MISS", "X-Cache: MISS"]
--- response_body eval
["hits 1 /c/rl\n", "hits 2 /c/rl\n"]
--- no_error_log
[alert]
open socket



=== TEST 7: nginx -t refuses a pattern as the channel
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_cache_purge_channel main kordon:cache:*;
--- must_die
--- error_log
invalid channel "kordon:cache:*": 1 to 256 bytes, no pattern characters



=== TEST 8: no channel, no subscriber
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
--- request eval
["GET /c/none", sub { sleep 0.3;
    my $n = redis()->cmd('PUBLISH', 'kordon:cache:purge', 'x');
    die "$n subscribers\n" if $n }]
--- response_headers eval
["X-Cache: MISS"]
--- no_error_log
subscribed to channel
