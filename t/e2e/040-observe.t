# The edge's observability in the whole stack, as `make run` starts it:
# a request through the edge leaves its event in edge.requests (the
# stack's nginx.conf points kordon_events at the stack's broker), its
# count in /metrics under its route template, and Prometheus (started by
# scripts/stack, scraping the internal listener) holds kordon_edge_
# series, which its own HTTP API returns.

use strict;
use warnings;
use lib 't/lib';
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Kordon::E2E;

my $ua = HTTP::Tiny->new(timeout => 10);

# The edge makes each request's id and answers it in X-Request-Id.
my $r = edge(GET => '/healthz/users?token=must-not-leak');
is $r->{status}, 200, 'a request through the edge';
my $id = $r->{headers}{'x-request-id'};
like $id, qr/^[0-9a-f]{32}$/, 'the edge named it';

my @ev;
ok wait_until(sub {
        @ev = grep { ($_->{value}{request_id} // '') eq $id }
              kafka_read('edge.requests');
        @ev == 1
    }, 20), 'its event reached edge.requests once'
    or diag(scalar(@ev) . ' events with that id');
my $e = $ev[0]{value} // {};
is $e->{route}, '/healthz/users', 'labelled by the route';
is $e->{method}, 'GET', 'method';
is $e->{status}, 200, 'status';
ok defined $e->{upstream_ms}, 'proxied: upstream time';
is $ev[0]{key}, '127.0.0.1', 'keyed by the client without a user';
unlike encode_json($e), qr/must-not-leak/, 'no query string in the event';

my $m = $ua->get($ENV{KORDON_METRICS_URL});
is $m->{status}, 200, '/metrics on the internal listener';
like $m->{content},
    qr/^kordon_edge_http_requests_total\{route="\/healthz\/users",method="GET",code_class="2xx"\} [1-9]\d*$/m,
    'the request is counted under its route';
like $m->{content}, qr/^kordon_edge_kafka_messages_produced_total [1-9]/m,
    'events produced are counted';
unlike $m->{content}, qr/route="\/metrics"/, 'scrapes are not counted';

ok $ENV{PROMETHEUS_URL}, 'the env file names Prometheus';
my $series;
ok wait_until(sub {
        my $q = $ua->get("$ENV{PROMETHEUS_URL}/api/v1/query?query="
                         . 'kordon_edge_http_requests_total');
        return 0 unless $q->{success};
        $series = eval { decode_json($q->{content}) } or return 0;
        return @{ $series->{data}{result} // [] } > 0;
    }, 30), 'Prometheus scraped kordon_edge_ series'
    or diag(explain($series));
my ($s) = grep { $_->{metric}{route} eq '/healthz/users' }
          @{ $series->{data}{result} // [] };
ok $s, 'with the route label';
is $s->{metric}{job}, 'kordon-edge', 'from the kordon-edge job';

ok wait_until(sub {
        $ua->get("$ENV{PROMETHEUS_URL}/api/v1/targets")->{content}
            =~ /"health":"up"/
    }, 15), 'the edge target is up';

done_testing;
