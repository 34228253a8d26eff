# kordon_metrics: nginx's connection counters in the Prometheus text
# format, first in the body.  Each block has a fresh nginx, so the counts
# are exact.  The request metrics that follow them: t/040-metrics.t.

use Test::Kordon;

plan tests => repeat_each() * (blocks() * 3 + 1);

run_tests();

__DATA__

=== TEST 1: the first request sees itself
--- config
    location = /metrics { kordon_metrics; }
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_like eval
"\\A" . quotemeta(<<'TEXT') . "# HELP kordon_edge_http_requests_total "
# HELP kordon_edge_connections_accepted_total Client connections accepted.
# TYPE kordon_edge_connections_accepted_total counter
kordon_edge_connections_accepted_total 1
# HELP kordon_edge_connections_handled_total Client connections handled (not dropped for lack of resources).
# TYPE kordon_edge_connections_handled_total counter
kordon_edge_connections_handled_total 1
# HELP kordon_edge_connections_active Client connections open now, idle ones included.
# TYPE kordon_edge_connections_active gauge
kordon_edge_connections_active 1
# HELP kordon_edge_connections_reading Connections where nginx reads a request header.
# TYPE kordon_edge_connections_reading gauge
kordon_edge_connections_reading 0
# HELP kordon_edge_connections_writing Connections with a request in progress.
# TYPE kordon_edge_connections_writing gauge
kordon_edge_connections_writing 1
# HELP kordon_edge_connections_waiting Idle keepalive connections.
# TYPE kordon_edge_connections_waiting gauge
kordon_edge_connections_waiting 0
# HELP kordon_edge_requests_total Client requests.
# TYPE kordon_edge_requests_total counter
kordon_edge_requests_total 1
TEXT



=== TEST 2: counters grow with each request
--- config
    location = /metrics { kordon_metrics; }
    location /t { return 204; }
--- request eval
["GET /t", "GET /t", "GET /metrics"]
--- error_code eval
[204, 204, 200]
--- response_body_like eval
[undef, undef,
 qr/\nkordon_edge_connections_accepted_total[ ]3\n.*
    \nkordon_edge_connections_active[ ]1\n.*
    \nkordon_edge_requests_total[ ]3\n\#[ ]HELP[ ]kordon_edge_http_/sx]



=== TEST 3: HEAD has no body
--- config
    location = /metrics { kordon_metrics; }
--- request
HEAD /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body:



=== TEST 4: other methods are refused with a problem
--- config
    location = /metrics { kordon_metrics; }
    error_page 405 @problem;
    location @problem { kordon_problem; }
--- request
POST /metrics
x=1
--- problem: 405
--- no_error_log
[error]



=== TEST 5: every family is HELP, TYPE, then its samples
--- config
    location = /metrics { kordon_metrics; }
--- request
GET /metrics
--- response_body_like eval
qr/\A(?:\# \s HELP \s (kordon_edge_[a-z_]+) \s [^\n]+\n
       \# \s TYPE \s \1 \s (?:counter|gauge|histogram)\n
       (?:\1(?:_bucket|_sum|_count)? (?:\{[^}\n]*\})? \s [0-9.]+\n)*){20,}\z/x
--- no_error_log
[error]
