# The stack that `make run` starts: every part up, reachable as the env
# file says, the edge on HTTPS/HTTP2 in front of every backend.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use JSON::PP;

for my $v (qw(KORDON_URL KORDON_CA KAFKA_BOOTSTRAP PGHOST PGPORT PGUSER
              PGDATABASE REDIS_URL KORDON_METRICS_URL)) {
    ok $ENV{$v}, "env file sets $v";
}

my $r = edge(GET => '/healthz');
is $r->{status}, 200, 'edge answers over HTTPS, verified by the local CA';
is $r->{json}{status}, 'ok', 'edge liveness body';
like $r->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, 'edge sets X-Request-Id';

my $proto = qx{curl -s -o /dev/null -w '%{http_version}' --http2 --cacert "$ENV{KORDON_CA}" "$ENV{KORDON_URL}/healthz"};
is $proto, '2', 'edge speaks HTTP/2';

$r = http(GET => "$ENV{KORDON_HTTP_URL}/v1/users/me?x=1");
is $r->{status}, 301, 'plain HTTP redirects';
is $r->{headers}{location}, "$ENV{KORDON_URL}/v1/users/me?x=1",
    'to the same path on HTTPS';

for my $svc (qw(users ledger notify worker)) {
    $r = edge(GET => "/healthz/$svc");
    is $r->{status}, 200, "$svc reached through the edge";
    is $r->{json}{status}, 'ok', "$svc liveness body comes from the kit";
}

# Each backend's prefix is behind the edge's token check: without a
# bearer token the edge answers 401 itself, as problem+json.
for my $path (qw(/v1/users/me /v1/accounts /v1/notifications /v1/admin/jobs)) {
    $r = edge(GET => $path);
    is $r->{status}, 401, "$path needs a token at the edge";
    is $r->{headers}{'content-type'}, 'application/problem+json',
        "$path: problem+json";
    like $r->{headers}{'www-authenticate'} // '', qr/^Bearer/, "$path: WWW-Authenticate";
    like $r->{json}{detail} // '', qr/missing bearer token/, "$path: says why";
    my $hid = $r->{headers}{'x-request-id'};
    is $r->{json}{request_id}, ref $hid ? $hid->[0] : $hid,
        "$path: request_id is the edge's";
    ok !ref $hid, "$path: one X-Request-Id header";
}

# A client cannot bring its own identity: the edge drops X-Kordon-*
# even when the signature would be valid, and signs the token's.
$r = edge(POST => '/v1/auth/login', { 'Content-Type' => 'application/json' },
    JSON::PP->new->encode({ email => $ENV{KORDON_ADMIN_EMAIL},
                            password => $ENV{KORDON_ADMIN_PASSWORD} }));
is $r->{status}, 200, 'the seeded admin logs in';
my $token = $r->{json}{access_token};
my $id = { user => 'u-forged', roles => 'admin', session => 's', request_id => 'r1' };
$r = edge(GET => '/v1/users/me', { %{ signed_headers(GET => '/v1/users/me', $id) },
    Authorization => "Bearer $token" });
is $r->{status}, 200, 'a token with forged identity headers';
is $r->{json}{email}, $ENV{KORDON_ADMIN_EMAIL}, 'the service saw the token\'s identity, not the forged one';

$r = edge(GET => '/no/such/thing');
is $r->{status}, 404, 'unknown path: 404 from the edge';
is $r->{headers}{'content-type'}, 'application/problem+json', 'as problem+json';
is $r->{json}{status}, 404, 'problem status';

$r = http(GET => $ENV{KORDON_METRICS_URL});
is $r->{status}, 200, 'edge metrics answer';
like $r->{content}, qr/^kordon_edge_\w+ \d+/m, 'in Prometheus text format';

(my $internal = $ENV{KORDON_METRICS_URL}) =~ s{/metrics$}{};
$r = http(GET => "$internal/healthz/redis");
is $r->{status}, 200, 'the edge reaches Redis through its non-blocking client';
is $r->{json}{status}, 'ok', 'and Redis answered PING';

like psql_reader("select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname in ('users','ledger','notify','worker')"),
    qr/^ledger,notify,users,worker$/, 'one schema per service';
cmp_ok psql_reader("select count(*) from kordon_meta.migrations"), '>=', 8,
    'migrations recorded';

my ($rhost, $rport) = $ENV{REDIS_URL} =~ m{redis://([^:]+):(\d+)};
is qx{redis-cli -h $rhost -p $rport ping}, "PONG\n", 'redis answers';

my $topics = qx{kcat -b $ENV{KAFKA_BOOTSTRAP} -L 2>&1};
like $topics, qr/topic "$_"/, "broker has topic $_"
    for qw(edge.requests users.events ledger.events notify.events);

done_testing;
