# mode=hybrid: decisions in shared memory as mode=local, the counts sent
# to Redis in batches every sync= interval, and what other edges did
# (the state in Redis) limiting this one after the next sync; Redis
# gone: the local decisions stand.  The accuracy figures with three
# edges are in t/032-limit-edges.t.

use Test::Kordon;
use Kordon::Redis;
use Time::HiRes qw(sleep);

redis_setup();

add_block_preprocessor(sub { redis()->cmd('FLUSHALL') if redis()->{pid} });

# what another edge would have left in Redis: the key $ahead_s ahead
sub spent_elsewhere {
    my ($key, $ahead_s) = @_;
    my ($s, $us) = split /\n/, redis()->cmd('TIME');
    my $tat = $s * 1_000_000 + $us + $ahead_s * 1_000_000;
    redis()->cmd('SET', $key, $tat, 'PX', $ahead_s * 1000);
}

run_tests();

__DATA__

=== TEST 1: admitted locally, then counted in Redis within sync=
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=hy rate=6/m burst=3 key=$remote_addr
                      mode=hybrid redis=main sync=50ms;
--- config
    location / { kordon_limit hy; add_header X-Limit $kordon_limit_status always; }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /index.html", "GET /index.html",
 sub {
     sleep 0.2;
     my $ttl = redis()->cmd('PTTL', 'kordon:limit:hy:127.0.0.1');
     die "pttl $ttl\n" unless $ttl > 19000 && $ttl <= 20001;
 },
 "GET /stats"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["", "", '"mode":"hybrid","admitted":2,.*"keys":1,"synced":[12],"sync_dropped":0']
--- response_headers eval
["RateLimit-Policy: \"hy\";q=3;w=30\nRateLimit: \"hy\";r=2;t=10\nX-Limit: ok",
 "RateLimit: \"hy\";r=1;t=20", ""]
--- no_error_log
[error]



=== TEST 2: what other edges spent limits this one after a sync
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=hy rate=6/m burst=3 key=$remote_addr
                      mode=hybrid redis=main sync=50ms;
--- config
    location / { kordon_limit hy; }
--- request eval
[sub { spent_elsewhere('kordon:limit:hy:127.0.0.1', 30) },
 "GET /index.html", sub { sleep 0.2 }, "GET /index.html"]
--- error_code eval
[200, 429]
--- response_headers_like eval
["", "Retry-After: ^(?:1[0-9]|20)\$"]



=== TEST 3: share=3: a third of the burst between syncs
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=hy rate=6/m burst=6 key=$remote_addr
                      mode=hybrid redis=main share=3;
--- config
    location / { kordon_limit hy; }
--- request eval
["GET /index.html", "GET /index.html", "GET /index.html"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"hy\";q=6;w=60", "", "Retry-After: 30"]



=== TEST 4: Redis gone: local decisions stand, the failure is logged
--- http_config
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT;
    kordon_limit_zone name=hy rate=6/m burst=2 key=$remote_addr
                      mode=hybrid redis=gone sync=50ms;
--- config
    location / { kordon_limit hy; add_header X-Limit $kordon_limit_status always; }
--- request eval
["GET /index.html", sub { sleep 0.2 }, "GET /index.html", "GET /index.html"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-Limit: ok", "X-Limit: ok", "X-Limit: limited:hy"]
--- error_log eval
[qr/kordon limit "hy": redis "gone" failed \(down\), failing open/]
--- no_error_log
[alert]



=== TEST 5: a key far under its rate takes one slot of the sync, not one a request
At a million a second each request finds the key's bucket full again;
the key stays listed until its sync, so five requests are one key count
in one script call (they were five, and a busy key filled the 256 slots
with copies of itself and dropped the rest).
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    kordon_limit_zone name=hy rate=1000000/s burst=10 key=$remote_addr
                      mode=hybrid redis=main sync=2s;
--- config
    location / { kordon_limit hy; }
    location = /stats { kordon_limit_stats; }
--- request eval
["GET /index.html", "GET /index.html", "GET /index.html", "GET /index.html",
 "GET /index.html", sub { sleep 2.5 }, "GET /stats"]
--- response_body_like eval
["", "", "", "", "", '"admitted":5,.*"synced":1,"sync_dropped":0']
--- no_error_log
[error]



=== TEST 6: sync= outside mode=hybrid fails nginx -t
--- http_config
    kordon_limit_zone name=hy rate=6/m burst=2 key=$remote_addr sync=50ms;
--- must_die
--- error_log
has sync= or share= outside mode=hybrid
