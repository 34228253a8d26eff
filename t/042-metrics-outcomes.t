# The outcome metrics of kordon_metrics: auth failures by reason, rate
# limits by name, cache results, read from $kordon_auth_error,
# $kordon_limit_status and $kordon_cache_status by name.  A map stands in
# here for the modules that set them; when a built module defines one of
# them itself, a map of the same name cannot be made, so this file is
# skipped (the generic path is the same for all three; those modules'
# own tests then cover their values).

use Test::Kordon;

my $modules = Test::Kordon::servroot() =~ s{t/[^/]+$}{}r . 'build/nginx/modules';
for my $so (glob("$modules/*.so")) {
    next if $so =~ m{/ngx_http_kordon_(?:events_)?module\.so$};  # readers
    my $bin = do { local $/; open my $fh, '<', $so or next; <$fh> };
    for my $v (qw(kordon_auth_error kordon_limit_status kordon_cache_status)) {
        Test::More::plan(skip_all => "\$$v is defined by $so")
            if index($bin, $v) >= 0;
    }
}

run_tests();

__DATA__

=== TEST 1: auth failures by reason, from $kordon_auth_error
--- http_config
    map $arg_auth $kordon_auth_error { default $arg_auth; }
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /a/ { return 401; }
--- request eval
["GET /a/?auth=expired", "GET /a/?auth=expired", "GET /a/?auth=revoked",
 "GET /a/?auth=made-up-by-a-client", "GET /a/", "GET /metrics"]
--- error_code eval
[401, 401, 401, 401, 401, 200]
--- response_body_like eval
[(undef) x 5, qr{\Qkordon_edge_auth_failures_total{reason="expired"} 2\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="revoked"} 1\E\n
 (?:.*\n)*?\Qkordon_edge_auth_failures_total{reason="other"} 1\E\n}x]
--- response_body_unlike eval
[(undef) x 5, qr{made-up}]



=== TEST 2: rate-limited requests by limit, from $kordon_limit_status
--- http_config
    map $arg_l $kordon_limit_status { default $arg_l; }
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /l/ { return 200; }
--- request eval
["GET /l/?l=limited:per_ip", "GET /l/?l=limited:per_ip",
 "GET /l/?l=limited:per_user", "GET /l/?l=ok", "GET /l/?l=error:per_user",
 "GET /l/", "GET /metrics"]
--- response_body_like eval
[(undef) x 6, qr{\Qkordon_edge_rate_limited_total{limit="per_ip"} 2\E\n
 \Qkordon_edge_rate_limited_total{limit="per_user"} 1\E\n
 \#[ ]HELP[ ]kordon_edge_rate_limit_errors_total[^\n]*\n[^\n]*\n
 \Qkordon_edge_rate_limit_errors_total{limit="per_ip"} 0\E\n
 \Qkordon_edge_rate_limit_errors_total{limit="per_user"} 1\E\n}x]



=== TEST 3: cache results from $kordon_cache_status
--- http_config
    map $arg_c $kordon_cache_status { default $arg_c; }
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off; }
    location /c/ { return 200; }
--- request eval
["GET /c/?c=HIT", "GET /c/?c=HIT", "GET /c/?c=MISS", "GET /c/?c=BYPASS",
 "GET /c/?c=STALE", "GET /c/", "GET /metrics"]
--- response_body_like eval
[(undef) x 6, qr{\Qkordon_edge_cache_requests_total{result="hit"} 2\E\n
 \Qkordon_edge_cache_requests_total{result="miss"} 1\E\n
 \Qkordon_edge_cache_requests_total{result="bypass"} 1\E\n}x]



