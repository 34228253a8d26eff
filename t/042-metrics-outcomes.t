# The outcome metrics of kordon_metrics: auth failures by reason, rate
# limits by name, cache results, read from $kordon_auth_error,
# $kordon_limit_status and $kordon_cache_status by name, each set by the
# real module: kordon_jwt refusing tokens (Kordon::JWT's keys and
# tokens), kordon_limit with local zones and a cluster zone whose Redis
# is gone, kordon_cache with a real Redis (Kordon::Redis).  And
# kordon_cache's own counters (stores, purges, channel messages, lock
# waits), read from its zone.

use Test::Kordon;
use Kordon::JWT;
use Kordon::Redis;
use Kordon::Origin;

redis_setup();
origin_setup();

# a raw GET with extra header lines
sub get {
    my ($path, @h) = @_;
    return join("\r\n", "GET $path HTTP/1.1", 'Host: localhost',
                'Connection: close', @h) . "\r\n\r\n";
}

add_block_preprocessor(sub { redis()->cmd('FLUSHALL') });

# PUBLISH on the purge channel once the edge's subscriber is there (5 s)
sub publish {
    my $msg = shift;
    for (1 .. 100) {
        return if redis()->cmd('PUBLISH', 'kordon:cache:purge', $msg) == 1;
        select(undef, undef, undef, 0.05);
    }
    die "no subscriber on kordon:cache:purge\n";
}

# waits until Redis holds $n cache entries (a store follows its answer)
sub entries {
    my $n = shift;
    for (1 .. 200) {
        my @k = split /\n/, redis()->cmd('KEYS', 'kordon:cache:e:*');
        return if @k == $n;
        select(undef, undef, undef, 0.01);
    }
    die "not $n entries\n";
}

run_tests();

__DATA__

=== TEST 1: auth failures by reason, from kordon_jwt's $kordon_auth_error
Two expired tokens, none, a signature by another key, a wrong issuer;
a good token counts nowhere.
--- http_config eval: jwt_http()
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /a/ {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- raw_request eval
my $now = time;
[@{ auth_requests('GET /a/',
        'Bearer ' . token(iat => $now - 2000, exp => $now - 1000),
        'Bearer ' . token(iat => $now - 2000, exp => $now - 1000), undef,
        'Bearer ' . token(-sign => 'rs_other'),
        'Bearer ' . token(iss => 'https://elsewhere.test'),
        'Bearer ' . token()) },
 get('/metrics')]
--- error_code eval
[401, 401, 401, 401, 401, 200, 200]
--- response_body_like eval
[(undef) x 6, qr{\Qkordon_edge_auth_failures_total{reason="missing"} 1\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="expired"} 2\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="bad_signature"} 1\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="wrong_issuer"} 1\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="other"} 0\E\n}x]



=== TEST 2: rate-limited requests by limit, from kordon_limit's status
A burst of one per key: the second request of a key is limited:<zone>;
a cluster zone whose Redis is not there fails open as error:<zone>; a
request with an empty key is not limited and counts nowhere.
--- http_config
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT timeout=100ms;
    kordon_limit_zone name=per_ip rate=1/m burst=1 key=$arg_ip;
    kordon_limit_zone name=per_user rate=1/m burst=1 key=$arg_user;
    kordon_limit_zone name=per_user_cluster rate=1/m burst=1 key=$arg_c
                      mode=cluster redis=gone fail=open timeout=100ms;
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location / {
        kordon_limit per_ip;
        kordon_limit per_user;
        add_header X-Limit $kordon_limit_status always;
    }
    location /c/ {
        kordon_limit per_user_cluster;
        add_header X-Limit $kordon_limit_status always;
        alias html/;
    }
--- request eval
["GET /index.html?ip=a", "GET /index.html?ip=a", "GET /index.html?ip=a",
 "GET /index.html?user=u", "GET /index.html?user=u",
 "GET /c/index.html?c=x", "GET /index.html", "GET /metrics"]
--- error_code eval
[200, 429, 429, 200, 429, 200, 200, 200]
--- response_headers eval
["X-Limit: ok", "X-Limit: limited:per_ip", "X-Limit: limited:per_ip",
 "X-Limit: ok", "X-Limit: limited:per_user", "X-Limit: error:per_user_cluster",
 "!X-Limit", ""]
--- response_body_like eval
[(undef) x 7,
 qr{\Qkordon_edge_rate_limited_total{limit="per_ip"} 2\E\n
 \Qkordon_edge_rate_limited_total{limit="per_user"} 1\E\n
 \Qkordon_edge_rate_limited_total{limit="per_user_cluster"} 0\E\n
 \#[ ]HELP[ ]kordon_edge_rate_limit_errors_total[^\n]*\n[^\n]*\n
 \Qkordon_edge_rate_limit_errors_total{limit="per_ip"} 0\E\n
 \Qkordon_edge_rate_limit_errors_total{limit="per_user"} 0\E\n
 \Qkordon_edge_rate_limit_errors_total{limit="per_user_cluster"} 1\E\n}x]



=== TEST 3: cache results from kordon_cache's status
A miss is stored and the next two are hits from Redis; a request with
credentials on a shared key bypasses the cache; a location without the
cache counts nowhere.
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
    location /n/ { proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT; }
--- raw_request eval
[get("/c/one"), get("/c/one"), get("/c/one"),
 get("/c/one", "Authorization: Bearer x"), get("/n/one"), get("/metrics")]
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT", "X-Cache: BYPASS",
 "!X-Cache", ""]
--- response_body_like eval
[qr{^hits 1 /c/one}, qr{^hits 1 /c/one}, qr{^hits 1 /c/one},
 qr{^hits 2 /c/one}, qr{^hits 1 /n/one},
 qr{\Qkordon_edge_cache_requests_total{result="hit"} 2\E\n
 \Qkordon_edge_cache_requests_total{result="miss"} 1\E\n
 \Qkordon_edge_cache_requests_total{result="bypass"} 1\E\n}x]



=== TEST 4: kordon_cache's counters (stores, purges, channel, lock)
Two answers stored, one not (no-store), a tag purged by the route and
one by a channel message, a message that is no tag list ignored: the
same figures as its stats route, under Prometheus names.
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms;
    kordon_cache_purge_channel main kordon:cache:purge;
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location = /purge { kordon_cache_purge main; }
    location = /stats { kordon_cache_stats; }
    location /c/ {
        kordon_cache main;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ORIGIN_PORT;
    }
--- request eval
["GET /c/a?tags=t1", "GET /c/b?tags=t2", "GET /c/n?cc=no-store",
 sub { entries(2) }, "POST /purge?tag=t1",
 sub { publish("t2"); publish("\x01"); entries(0); select(undef, undef, undef, 0.1) },
 "GET /stats", "GET /metrics"]
--- response_body_like eval
[qr{^hits 1 /c/a}, qr{^hits 1 /c/b}, qr{^hits 1 /c/n}, qr{},
 qr{"stores":2,.*"purges":2,"channel_messages":1,"channel_ignored":1,},
 qr{\n[#][ ]TYPE[ ]kordon_edge_cache_stores_total[ ]counter\n
 kordon_edge_cache_stores_total[ ]2\n
 (?:[^\n]*\n){2}kordon_edge_cache_store_errors_total[ ]0\n
 (?:[^\n]*\n){2}kordon_edge_cache_not_stored_total[ ]1\n
 (?:[^\n]*\n){2}kordon_edge_cache_redis_errors_total[ ]0\n
 (?:[^\n]*\n){2}kordon_edge_cache_purges_total[ ]2\n
 (?:[^\n]*\n){2}kordon_edge_cache_channel_messages_total[ ]1\n
 (?:[^\n]*\n){2}kordon_edge_cache_channel_ignored_total[ ]1\n
 (?:[^\n]*\n){2}kordon_edge_cache_lock_waits_total[ ]0\n
 (?:[^\n]*\n){2}kordon_edge_cache_lock_timeouts_total[ ]0\n}x]
--- no_error_log
[alert]
