# kordon_events: one JSON event per request to Kafka, against the real
# broker (build/bin/kordon-broker, read back with kcat): every field, the
# key, "off" per location, the flush at exit, and an outage (SIGUSR1 to
# the broker) that leaves requests unaffected and drops counted in
# /metrics until the broker is back.  Each block writes to a topic of its
# own, so it reads only its events.

use Test::Kordon;
use Test::More;
use Kordon::Broker;
use Kordon::JWT;

broker_setup();

# a map fakes $kordon_limit_status and $kordon_cache_status when no
# built module defines them (one that does makes a map of that name
# impossible; its own tests cover its values, and test 1 skips them)
my $fakes = '';
for my $v (qw(kordon_limit_status kordon_cache_status)) {
    my $defined = grep { my $b = do { local $/; open my $f, '<', $_; <$f> };
                         !m{/ngx_http_kordon_(?:events_)?module\.so$}
                         && index($b, $v) >= 0 }
                  glob(Test::Kordon::servroot() =~ s{t/[^/]+$}{}r
                       . 'build/nginx/modules/*.so');
    $fakes .= "    map \$http_x_test_$v \$$v { default \$http_x_test_$v; }\n"
        unless $defined;
}
our $Fakes = $fakes;

add_block_preprocessor(sub {
    my $block = shift;
    my $n = $block->no_error_log;
    $block->set_value(no_error_log => join "\n", grep { defined }
                                       $n, '[alert]', '[crit]', '[emerg]')
        unless defined $block->must_die;
});

run_tests();

sub one_event {
    my ($topic, $route) = @_;
    my @ev = grep { ($_->{value}{route} // '') eq $route } events($topic);
    is(scalar @ev, 1, "one event of route $route in $topic")
        or diag(explain([events($topic, wait => 0)]));
    return $ev[0] // { value => {} };
}

__DATA__

=== TEST 1: an event with every field, keyed by the client without a user
--- http_config eval
"    kordon_events brokers=\$TEST_NGINX_KAFKA topic=t041-1;\n$main::Fakes"
--- config
    location /v1/things/ {
        kordon_route "/v1/things/{id}";
        add_header X-Id $request_id;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers
X-Test-Kordon-Limit-Status: ok
X-Test-Kordon-Cache-Status: MISS
--- request eval
["POST /v1/things/abc?q=secret\n{\"a\":1}",
 sub {
     my $e = main::one_event('t041-1', '/v1/things/{id}');
     my $v = $e->{value};
     is($e->{key}, '127.0.0.1', 'key: the client');
     is($v->{type}, 'edge.request', 'type');
     like($v->{time}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time');
     like($v->{request_id}, qr/^[0-9a-f]{32}$/, 'request_id');
     is($v->{method}, 'POST', 'method');
     is($v->{status}, 200, 'status');
     ok($v->{duration_ms} >= 0 && $v->{upstream_ms} >= 0, 'times');
     ok($v->{upstream_ms} <= $v->{duration_ms}, 'upstream within total');
     ok($v->{bytes_sent} > 100, 'bytes_sent');
     ok($v->{bytes_received} > 20, 'bytes_received');
     is($v->{client_ip}, '127.0.0.1', 'client_ip');
     is($v->{user}, undef, 'no user');
     is($v->{api_key_id}, undef, 'no api key');
     is($v->{limit}, 'ok', 'limit decision') if $main::Fakes =~ /limit/;
     is($v->{cache}, 'MISS', 'cache decision') if $main::Fakes =~ /cache/;
     unlike(JSON::PP->new->canonical->encode($v), qr/secret|abc/,
            'no URI, no query');
     is(join(',', sort keys %$v),
        'api_key_id,bytes_received,bytes_sent,cache,client_ip,duration_ms,'
        . 'limit,method,request_id,route,status,time,type,upstream_ms,user',
        'members');
 }]



=== TEST 2: a verified user is the event's user and key
--- http_config eval
Kordon::JWT::jwt_http() . "    kordon_events brokers=\$TEST_NGINX_KAFKA topic=t041-2;\n"
--- config
    location /me {
        kordon_auth jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_ECHO_PORT;
    }
--- more_headers eval: Kordon::JWT::bearer(sub => '6f0c1a2e-user')
--- request eval
["GET /me",
 sub {
     my $e = main::one_event('t041-2', '/me');
     is($e->{key}, '6f0c1a2e-user', 'key: the user');
     is($e->{value}{user}, '6f0c1a2e-user', 'user');
     is($e->{value}{status}, 200, 'status');
 }]



=== TEST 3: "kordon_events off" silences a location; an error page keeps the route; local answers have no upstream
--- http_config
    kordon_events brokers=$TEST_NGINX_KAFKA topic=t041-3;
--- config eval
'location /quiet/ { kordon_events off; return 200; }
 location /loud/ { return 403; }
 location = /last { return 200; }
' . problem_config()
--- request eval
["GET /quiet/1", "GET /loud/1", "GET /last",
 sub {
     my @ev = events('t041-3', n => 2);
     is(join(' ', map { "$_->{value}{route}:$_->{value}{status}" } @ev),
        '/loud/:403 /last:200', 'only the loud ones, in order');
     is($ev[1]{value}{upstream_ms}, undef, 'no upstream');
 }]
--- error_code eval
[200, 403, 200]



=== TEST 4: the broker down: requests unaffected, drops counted; back: events flow again
--- http_config
    kordon_events brokers=$TEST_NGINX_KAFKA topic=t041-4 queue=20 timeout=4s;
--- config
    location = /metrics { kordon_metrics; kordon_metrics_requests off;
                          kordon_events off; }
    location /r/ { return 200 ok; }
--- request eval
["GET /r/before",
 sub { events('t041-4') or die "no event before the outage\n";
       broker_down() },
 (map { "GET /r/down" } 1 .. 60),
 sub {
     my $m = metrics();
     my $k = 'kordon_edge_kafka_messages';
     my $full = $m->{"${k}_dropped_total{reason=\"queue_full\"}"};
     # the 20 queued wait up to timeout=4s; the rest find the queue full
     # (unless this machine took seconds for the 60 requests)
     ok($full >= 1, "queue_full drops counted ($full)");
     is($m->{"${k}_produced_total"} + $full, 61, 'every request produced or dropped');
     ok($m->{kordon_edge_kafka_queue_messages} <= 20, 'queue bounded');
     sleep 5;    # the queued ones time out (timeout=4s)
     $m = metrics();
     ok($m->{"${k}_dropped_total{reason=\"delivery_failed\"}"} >= 1,
        'timed-out events counted');
     broker_up();
 },
 "GET /r/after",
 sub {
     my @ev = grep { $_->{value}{route} eq '/r/' } events('t041-4', n => 2, wait => 15);
     ok(@ev >= 2, 'events flow again after the outage') or diag(scalar @ev);
     my $m = metrics();
     ok($m->{kordon_edge_kafka_messages_delivered_total} >= 2, 'delivered counted');
 }]
--- error_code eval
[200, (200) x 60, 200]
--- no_error_log
[error]



=== TEST 5: the worker flushes its queue when it exits
--- http_config
    kordon_events brokers=$TEST_NGINX_KAFKA topic=t041-5 linger=3s flush=5s;
--- config
    location /bye { return 200; }
--- request eval
["GET /bye",
 sub {
     Test::Kordon::stop_nginx();
     my @ev = events('t041-5', wait => 0);
     is(scalar @ev, 1, 'the lingering event was sent at exit');
 }]



=== TEST 6: settings are checked when nginx reads its configuration
--- http_config
    kordon_events brokers=$TEST_NGINX_KAFKA queue=0;
--- config
--- must_die
--- error_log
invalid queue "queue=0"



=== TEST 7: brokers= only in http{}
--- config
    location / { kordon_events brokers=$TEST_NGINX_KAFKA; }
--- must_die
--- error_log
only in http



=== TEST 8: no brokers, no events and no producer
--- http_config
--- config
    location / { kordon_events off; return 200; }
--- request
GET /
--- no_error_log
kordon_events
