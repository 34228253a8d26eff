# Request metrics (kordon_metrics) and routes (kordon_route,
# $kordon_route): known requests, then the exact samples they leave in
# /metrics.  Each block has a fresh nginx, so the counts are exact.  The
# outcome metrics (auth, limits, cache): t/042-metrics-outcomes.t.

use Test::Kordon;
use HTTP::Tiny;
use Kordon::Redis ();

my $redis = Kordon::Redis::redis_server();
$ENV{TEST_NGINX_REDIS_PORT} = $redis->port;
$ENV{TEST_NGINX_UNUSED_PORT} = Kordon::Redis::unused_port();

run_tests();

# Dies unless each histogram of the route has buckets that never
# decrease, +Inf equal to _count and that equal to $n.
sub check_histogram {
    my ($route, $n) = @_;
    my $port = Test::Kordon::server_port();
    my $res = HTTP::Tiny->new->get("http://127.0.0.1:$port/metrics");
    die "GET /metrics: $res->{status}\n" unless $res->{success};
    for my $h (qw(request_duration upstream_duration)) {
        my $name = "kordon_edge_http_${h}_seconds";
        my @b = $res->{content}
            =~ /^${name}_bucket\{route="\Q$route\E",le="[^"]+"\} (\d+)$/mg;
        next if $h eq 'upstream_duration' && !@b;
        die "$name: " . scalar(@b) . " buckets\n" unless @b == 12;
        for (1 .. $#b) {
            die "$name: bucket $_ ($b[$_]) < bucket @{[$_ - 1]}\n"
                if $b[$_] < $b[$_ - 1];
        }
        my ($count) = $res->{content}
            =~ /^${name}_count\{route="\Q$route\E"\} (\d+)$/m;
        die "$name: +Inf $b[-1], count $count, want $n\n"
            unless $b[-1] == $count && $count == $n;
    }
    return 1;
}

__DATA__

=== TEST 1: requests count by location name, method and class, never by URI
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /v1/accounts/ { return 200 ok; }
    location /v1/missing/ { return 404; }
--- request eval
["GET /v1/accounts/7f3e", "GET /v1/accounts/0a1b?x=1", "POST /v1/accounts/x\nbody",
 "DELETE /v1/missing/1", "GET /metrics"]
--- error_code eval
[200, 200, 200, 404, 200]
--- response_body_like eval
[undef, undef, undef, undef,
 qr{\nkordon_edge_http_requests_total\{route="/v1/accounts/",method="GET",code_class="2xx"\}[ ]2\n
    kordon_edge_http_requests_total\{route="/v1/accounts/",method="POST",code_class="2xx"\}[ ]1\n
    kordon_edge_http_requests_total\{route="/v1/missing/",method="DELETE",code_class="4xx"\}[ ]1\n
    \#[ ]HELP[ ]kordon_edge_http_request_duration_seconds}x]
--- response_body_unlike eval
[undef, undef, undef, undef, qr{7f3e|0a1b|route="/metrics"}]



=== TEST 2: kordon_route names a regex location's template
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location ~ ^/v1/users/[0-9a-f-]+$ {
        kordon_route "/v1/users/{id}";
        return 200 $kordon_route;
    }
--- request eval
["GET /v1/users/1a2b", "GET /v1/users/3c4d", "GET /metrics"]
--- response_body_like eval
["\\A/v1/users/\\{id\\}\\z", "\\A/v1/users/\\{id\\}\\z",
 qr{^kordon_edge_http_requests_total\{route="/v1/users/\{id\}",method="GET",code_class="2xx"\} 2$}m]



=== TEST 3: $kordon_route defaults to the location's name, inherits an explicit one
--- config
    location /b/ { return 200 "[$kordon_route]"; }
    location /s/ {
        kordon_route "/s/{x}";
        location /s/in/ { return 200 "[$kordon_route]"; }
    }
--- request eval
["GET /b/c/d", "GET /s/in/1"]
--- response_body eval
["[/b/]", "[/s/{x}]"]



=== TEST 4: an error page keeps the route that failed
--- config eval
'location = /metrics { kordon_metrics; kordon_metrics_requests off; }
 location = /v1/secret { return 401; }
' . problem_config()
--- request eval
["GET /v1/secret", "GET /metrics"]
--- error_code eval
[401, 200]
--- response_body_like eval
[undef,
 qr{^kordon_edge_http_requests_total\{route="/v1/secret",method="GET",code_class="4xx"\} 1$}m]
--- response_body_unlike eval
[undef, qr{kordon/problem}]
--- response_headers eval
["Content-Type: application/problem+json", undef]
--- no_error_log
[error]



=== TEST 5: a runtime route outside the configured set is "other"; labels stay bounded
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /dyn/ { kordon_route $arg_r; return 204; }
    location /known/ { return 204; }
--- request eval
[(map { "GET /dyn/?r=user-$_" } 1 .. 20), "GET /dyn/?r=/known/", "GET /metrics"]
--- error_code eval
[(204) x 21, 200]
--- response_body_like eval
[(undef) x 21,
 qr{^kordon_edge_http_requests_total\{route="other",method="GET",code_class="2xx"\}[ ]20\n
     kordon_edge_http_requests_total\{route="/known/",method="GET",code_class="2xx"\}[ ]1$}mx]
--- response_body_unlike eval
[(undef) x 21, qr{user-}]



=== TEST 6: histograms: cumulative buckets, +Inf equals the count
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /up/ { proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT; }
    location /local/ { return 200; }
--- request eval
["GET /up/1", "GET /up/2", "GET /up/3", "GET /local/", "GET /metrics"]
--- response_body_like eval
[undef, undef, undef, undef,
 qr{kordon_edge_http_request_duration_seconds_bucket\{route="/up/",le="0.005"\}[ ](\d)\n
    (?:kordon_edge_http_request_duration_seconds_bucket\{route="/up/",le="[0-9.]+"\}[ ]\d\n){10}
    kordon_edge_http_request_duration_seconds_bucket\{route="/up/",le="\+Inf"\}[ ]3\n
    kordon_edge_http_request_duration_seconds_sum\{route="/up/"\}[ ]\d+\.\d{3}\n
    kordon_edge_http_request_duration_seconds_count\{route="/up/"\}[ ]3\n
    .*kordon_edge_http_request_duration_seconds_count\{route="/local/"\}[ ]1\n
    .*\#[ ]TYPE[ ]kordon_edge_http_upstream_duration_seconds[ ]histogram\n
    (?:kordon_edge_http_upstream_duration_seconds_bucket\{route="/up/",le="[0-9.]+"\}[ ]\d\n){11}
    kordon_edge_http_upstream_duration_seconds_bucket\{route="/up/",le="\+Inf"\}[ ]3\n
    kordon_edge_http_upstream_duration_seconds_sum\{route="/up/"\}[ ]\d+\.\d{3}\n
    kordon_edge_http_upstream_duration_seconds_count\{route="/up/"\}[ ]3\n
    \#[ ]HELP}sx]
--- response_body_unlike eval
[undef, undef, undef, undef, qr{upstream_duration_seconds_count\{route="/local/"}]



=== TEST 7: buckets never decrease and end at the count
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /t/ { return 200; }
--- request eval
[(map { "GET /t/$_" } 1 .. 7), sub { main::check_histogram('/t/', 7) }]



=== TEST 8: without the modules that set them, outcome metrics are zero and nothing is logged
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /x/ { return 200; }
--- request eval
["GET /x/", "GET /metrics"]
--- response_body_like eval
[undef, qr{\Qkordon_edge_auth_failures_total{reason="expired"} 0\E\n(?:.*\n)*
 \Qkordon_edge_cache_requests_total{result="hit"} 0\E\n(?:.*\n)*
 \Qkordon_edge_kafka_messages_dropped_total{reason="queue_full"} 0\E\n}x]
--- no_error_log
[error]
[warn]



=== TEST 9: counters survive a reload that keeps the route
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /keep/ { return 200; }
--- request eval
["GET /keep/1", "GET /keep/2", sub { Test::Kordon::reload_nginx() },
 "GET /keep/3", "GET /metrics"]
--- response_body_like eval
[undef, undef, undef,
 qr{^\Qkordon_edge_http_requests_total{route="/keep/",method="GET",code_class="2xx"} 3\E$}m]



=== TEST 10: kordon_route longer than a label may be is refused
--- config eval
"location /long/ { kordon_route /" . ("a" x 300) . "; return 200; }"
--- must_die
--- error_log
is longer than 255 bytes



=== TEST 11: kordon_redis' counters per server, from its own zone
--- http_config
    kordon_redis main 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=200ms;
    kordon_redis gone 127.0.0.1:$TEST_NGINX_UNUSED_PORT timeout=200ms;
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location = /h/main { kordon_redis_health main; }
    location = /h/gone { kordon_redis_health gone; }
--- request eval
["GET /h/main", "GET /h/main", "GET /h/gone", "GET /metrics"]
--- error_code eval
[200, 200, 503, 200]
--- response_body_like eval
[undef, undef, undef,
 qr{^\Qkordon_edge_redis_commands_total{server="main"} \E[2-9]\n
    \Qkordon_edge_redis_commands_total{server="gone"} 0\E\n
    .*^\Qkordon_edge_redis_unavailable_total{server="gone"} \E[1-9]\d*\n
    .*^\Qkordon_edge_redis_connect_failures_total{server="main"} 0\E\n
    \Qkordon_edge_redis_connect_failures_total{server="gone"} \E[1-9]\d*\n}msx]



=== TEST 12: a request that never reached a location counts as "other", not as its error page
--- config eval
'location = /metrics { kordon_metrics; kordon_metrics_requests off; }
' . problem_config()
--- raw_request eval
["GET /v1/\x00bad HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
 "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"]
--- error_code eval
[400, 200]
--- response_body_like eval
[undef,
 qr{^\Qkordon_edge_http_requests_total{route="other",method="GET",code_class="4xx"} 1\E$}m]
--- response_body_unlike eval
[undef, qr{kordon/problem}]
