# The service kit (backends/common) as every backend gets it, through the
# kitd fixture, called directly: bad input gets a clear 4xx problem,
# identity needs a fresh signature by the edge's key, the health routes.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;

my $json = { 'Content-Type' => 'application/json' };

sub problem_ok {
    my ($r, $status, $detail_re, $name) = @_;
    is $r->{status}, $status, "$name: $status";
    is $r->{headers}{'content-type'}, 'application/problem+json',
        "$name: problem+json";
    is $r->{json}{status}, $status, "$name: status in body";
    ok $r->{json}{title}, "$name: has a title";
    like $r->{json}{detail} // '', $detail_re, "$name: detail says what";
    is $r->{json}{request_id}, $r->{headers}{'x-request-id'},
        "$name: request_id matches X-Request-Id";
}

my $r = kitd(POST => '/echo', $json, '{"amount": 100, "currency": "EUR"}');
is $r->{status}, 200, 'valid JSON is accepted';
is_deeply $r->{json}, { amount => 100, currency => 'EUR' }, 'and parsed';

problem_ok(kitd(POST => '/echo', $json, '{"amount": 100,'), 400,
    qr/line 1/, 'truncated JSON');
problem_ok(kitd(POST => '/echo', $json, "\xff\xfe"), 400, qr/./,
    'not UTF-8');
problem_ok(kitd(POST => '/echo', $json, '{"a":1,"a":2}'), 400, qr/./,
    'duplicate keys');
problem_ok(kitd(POST => '/echo', $json, ('[' x 100) . (']' x 100)), 400,
    qr/./, 'nesting beyond the bound');
problem_ok(kitd(POST => '/echo', $json, '{"x":"' . ('a' x 70000) . '"}'),
    413, qr/./, 'body over the limit');
problem_ok(kitd(POST => '/echo', { 'Content-Type' => 'text/plain' }, '{}'),
    415, qr/application\/json/, 'wrong content type');
problem_ok(kitd(POST => '/echo', {}, '{}'), 415, qr/./, 'no content type');

$r = kitd(POST => '/echo', { 'Content-Type' => 'application/json; charset=utf-8' }, '[1,2]');
is $r->{status}, 200, 'charset parameter is fine';

problem_ok(kitd(GET => '/no-such-route'), 404, qr/./, 'unknown route');
$r = kitd(DELETE => '/echo');
problem_ok($r, 405, qr/./, 'wrong method');
like $r->{headers}{allow} // '', qr/POST/, '405 says what is allowed';

# Identity.
my $id = { user => 'u-1', roles => 'user,support', session => 's-9',
           request_id => 'req-abc' };
$r = kitd(GET => '/whoami', signed_headers(GET => '/whoami', $id));
is $r->{status}, 200, 'a valid signature is accepted';
is $r->{json}{user}, 'u-1', 'user from the signed identity';
is $r->{json}{session}, 's-9', 'session too';
is $r->{json}{request_id}, 'req-abc', 'and the request id';
is $r->{headers}{'x-request-id'}, 'req-abc', 'which the answer echoes';

problem_ok(kitd(GET => '/whoami'), 401, qr/missing identity signature/,
    'no signature');
problem_ok(kitd(GET => '/whoami', signed_headers(GET => '/whoami', $id, time - 3600)),
    401, qr/stale/, 'an hour-old signature');
problem_ok(kitd(GET => '/whoami', signed_headers(GET => '/whoami', $id, undef, 'k' x 32)),
    401, qr/invalid identity signature/, 'signed with another key');
my $h = signed_headers(GET => '/whoami', $id);
$h->{'X-Kordon-Roles'} = 'admin';
problem_ok(kitd(GET => '/whoami', $h), 401, qr/invalid identity signature/,
    'roles changed after signing');
problem_ok(kitd(GET => '/whoami', signed_headers(POST => '/whoami', $id)), 401,
    qr/invalid identity signature/, 'signed for another method');
problem_ok(kitd(GET => '/whoami', { 'X-Kordon-Signature' => 'garbage' }), 401,
    qr/malformed identity signature/, 'malformed signature');

# Health, readiness, metrics.
$r = kitd(GET => '/healthz');
is $r->{status}, 200, '/healthz';
$r = kitd(GET => '/readyz');
is $r->{status}, 200, '/readyz with the database up';
$r = kitd(GET => '/metrics');
is $r->{status}, 200, '/metrics';
like $r->{content}, qr/^kordon_http_requests_total\{[^}]*route="\/echo"[^}]*status="400"[^}]*\} \d+/m,
    'requests counted by route and status';
like $r->{content}, qr/^kordon_http_request_duration_seconds_bucket\{/m,
    'latency histogram';

# A handler may suspend and answer later from another thread.
$r = kitd(GET => '/suspended');
is $r->{status}, 200, 'suspended request answered';
is $r->{json}{resumed}, JSON::PP::true, 'by the resumed handler';

done_testing;
