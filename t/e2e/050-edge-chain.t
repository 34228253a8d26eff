# The whole edge chain as conf/ wires it, in the real stack: a body the
# API document refuses never reaches the ledger (400 for one that is not
# JSON, 422 listing each pointer for one that breaks the schema); paths
# and methods the document lacks are 404/405 from the edge; the login
# guard locks an account out after KORDON_LOGIN_FAILURES failures with
# Retry-After, before users sees the try; the per-address limit answers
# 429 with the RateLimit fields once lowered (KORDON_LIMIT_IP_*, the
# stack's knob, then nginx reloaded); the JWKS comes from the Redis
# cache; metrics count by route template with the outcomes, and each
# request leaves one edge.requests event with its template.
use strict;
use warnings;
use lib 't/lib';
use HTTP::Tiny;
use Test::More;
use Kordon::E2E;
use Kordon::Users;

my $ua = HTTP::Tiny->new(timeout => 10);
my $uuid = '0b9e3c52-6f0e-4a53-9d0e-2a1c6c0f9f11';

# whether a service's log holds a request id (its JSON lines name them)
sub logged {
    my ($service, $id) = @_;
    open my $fh, '<', "$ENV{KORDON_LOGS}/$service.log" or return 0;
    while (<$fh>) { return 1 if index($_, "\"$id\"") >= 0 }
    return 0;
}

# nginx started again with %env over the stack's defaults (a reload);
# waits until new workers answer with the ip limit's burst $burst
sub edge_with {
    my ($burst, %env) = @_;
    local @ENV{keys %env} = values %env;
    is stack('start', 'nginx'), 0, "the edge reloaded with @{[%env]}";
    ok wait_until(sub {
            (edge(GET => '/healthz/users')->{headers}{'ratelimit-policy'} // '')
                =~ /"ip";q=$burst;/
        }, 20), "... and answers with its new limits";
    # a fresh bucket for the address: the reload changed the rate
    redis_cli('DEL', $_) for grep { /^kordon:limit:ip:/ }
        redis_cli('--scan', '--pattern', 'kordon:limit:ip:*');
}

my $email = new_address('chain');
signup($email);
my $token = login($email)->{access_token};
my $acct = api(POST => '/v1/accounts', { currency => 'EUR' }, $token);
is $acct->{status}, 201, 'an account opens through the edge';

# 1. Bodies the document refuses stop at the edge.
my %key = ('Idempotency-Key' => 'chain-' . $$ . '-' . time);
my $r = api(POST => '/v1/transfers', '{"amount": 10', $token, \%key);
problem_ok($r, 400, '', qr/does not match the API/, 'a body that is not JSON');
like $r->{json}{errors}[0]{message}, qr/not valid JSON/, '... says so';
my $bad_json = $r->{headers}{'x-request-id'};

$r = api(POST => '/v1/transfers',
         { from_account_id => 'x', to_account_id => $uuid, amount => '10',
           currency => 'euro', note => 1 }, $token, \%key);
is $r->{status}, 422, 'a transfer that breaks the schema: 422';
is $r->{headers}{'content-type'}, 'application/problem+json', '... problem+json';
is_deeply [sort map { $_->{pointer} } @{ $r->{json}{errors} || [] }],
    ['/amount', '/currency', '/from_account_id', '/note'],
    '... one error per member at fault, by JSON Pointer';
my $bad_schema = $r->{headers}{'x-request-id'};

$r = api(POST => '/v1/transfers', { from_account_id => $acct->{json}{id},
         to_account_id => $uuid, amount => 10, currency => 'EUR' }, $token);
problem_ok($r, 400, '', undef, 'no Idempotency-Key: 400');
is $r->{json}{errors}[0]{parameter}, 'Idempotency-Key', '... naming the header';

$r = api(POST => '/v1/transfers', { from_account_id => $acct->{json}{id},
         to_account_id => $uuid, amount => 10, currency => 'EUR' }, $token, \%key);
ok $r->{status} != 400 && $r->{status} < 500,
    "a valid transfer passes the edge (the ledger answers $r->{status})";
my $valid = $r->{headers}{'x-request-id'};
ok wait_until(sub { logged('ledger', $valid) }, 10), '... and the ledger saw it';
ok !logged('ledger', $bad_json), 'the ledger never saw the body that is not JSON';
ok !logged('ledger', $bad_schema), '... nor the one that breaks the schema';

# 2. Routes the document lacks.
problem_ok(api(GET => '/v1/nothing', undef, $token), 404, undef, undef,
    'an unknown route: 404');
problem_ok(api(GET => "/v1/accounts/$uuid/nope", undef, $token), 404, undef,
    qr/no such route/, 'an unknown path under a known prefix: 404');
$r = api(DELETE => '/v1/transfers', undef, $token);
problem_ok($r, 405, undef, undef, 'a method the route lacks: 405');
is $r->{headers}{allow}, 'POST', '... with Allow';
problem_ok(api(GET => "/v1/accounts/$uuid"), 401, undef, undef,
    'no token: 401 before validation');
my $acct_id = api(GET => "/v1/accounts/$acct->{json}{id}", undef, $token)
    ->{headers}{'x-request-id'};

# 3. The JWKS from the Redis cache.
api(GET => '/.well-known/jwks.json');
$r = api(GET => '/.well-known/jwks.json');
is $r->{status}, 200, 'the JWKS';
is $r->{headers}{'x-cache'}, 'HIT', '... served from the Redis cache';
ok !exists $r->{headers}{'x-kordon-cache-tags'}, '... its tag kept from clients';
my $cc = $r->{headers}{'cache-control'};
ok !ref $cc, '... with one Cache-Control, its own'
    or diag explain $cc;
like ref $cc ? "@$cc" : $cc // '', qr/max-age=\d+/, '... which lets clients cache it';
is api(GET => '/healthz')->{headers}{'cache-control'}, 'no-store',
    'an answer without its own Cache-Control gets no-store';

# 4. The login guard, lowered to 3 failures, and the per-address limit,
#    lowered to a burst of 5: one reload.
my $victim = new_address('guard');
signup($victim);
edge_with(5, KORDON_LOGIN_FAILURES => 3, KORDON_LIMIT_IP_RATE => '60/m',
          KORDON_LIMIT_IP_BURST => 5);
redis_cli('DEL', $_) for grep { /^kordon:limit:ip:/ }
    redis_cli('--scan', '--pattern', 'kordon:limit:ip:*');
for my $i (1 .. 3) {
    is api(POST => '/v1/auth/login', { email => $victim, password => 'a wrong password' })
        ->{status}, 401, "failure $i: 401 from users";
}
$r = api(POST => '/v1/auth/login', { email => $victim, password => PASSWORD });
problem_ok($r, 429, undef, qr/too many failed attempts/,
    'then even the right password is refused by the edge');
cmp_ok $r->{headers}{'retry-after'} // 0, '>=', 1, '... with Retry-After';
ok !logged('users', $r->{headers}{'x-request-id'}), '... before users saw it';

# the address's bucket: 5 at once (4 were just spent), then 429
redis_cli('DEL', $_) for grep { /^kordon:limit:ip:/ }
    redis_cli('--scan', '--pattern', 'kordon:limit:ip:*');
my @st = map { edge(GET => '/healthz/users') } 1 .. 6;
is_deeply [map { $_->{status} } @st], [200, 200, 200, 200, 200, 429],
    'a burst of 5 per address, then 429';
my $limited = $st[5];
is $limited->{headers}{'content-type'}, 'application/problem+json', '... problem+json';
like $limited->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, '... Retry-After';
like $limited->{headers}{'ratelimit-policy'} // '', qr/"ip";q=5;w=5/, '... RateLimit-Policy';
like $limited->{headers}{ratelimit} // '', qr/"ip";r=0;t=\d+/, '... RateLimit';
like $st[0]{headers}{ratelimit} // '', qr/"ip";r=4;/, 'every answer says what is left';

edge_with(100000);

# 5. Metrics by route template, with the outcomes.
my $m = $ua->get($ENV{KORDON_METRICS_URL})->{content};
sub count {
    my ($re) = @_;
    return $m =~ /^\Q$re\E (\d+)$/m ? $1 : 0;
}
cmp_ok count('kordon_edge_http_requests_total{route="/v1/transfers",method="POST",code_class="4xx"}'),
    '>=', 4, 'refused transfers counted under /v1/transfers';
cmp_ok count('kordon_edge_http_requests_total{route="/v1/accounts/{id}",method="GET",code_class="2xx"}'),
    '>=', 1, 'an account read under /v1/accounts/{id}';
cmp_ok count('kordon_edge_http_requests_total{route="other",method="GET",code_class="4xx"}'),
    '>=', 1, 'unknown routes under "other"';
unlike $m, qr/route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}-/, 'no id in any route label';
cmp_ok count('kordon_edge_rate_limited_total{limit="ip"}'), '>=', 1, 'the 429 by limit';
cmp_ok count('kordon_edge_rate_limited_total{limit="login"}'), '>=', 1, 'the lockout by limit';
cmp_ok count('kordon_edge_auth_failures_total{reason="missing"}'), '>=', 1,
    'auth failures by reason';
cmp_ok count('kordon_edge_cache_requests_total{result="hit"}'), '>=', 1, 'cache hits';

# 6. One edge.requests event per request, with its route template.
my %want = ($bad_schema => ['/v1/transfers', 422], $bad_json => ['/v1/transfers', 400],
            $acct_id => ['/v1/accounts/{id}', 200]);
my %ev;
ok wait_until(sub {
        %ev = ();
        for (kafka_read('edge.requests')) {
            my $id = $_->{value}{request_id} // '';
            push @{ $ev{$id} }, $_->{value} if $want{$id};
        }
        keys %ev == keys %want;
    }, 20), 'the events reached edge.requests';
for my $id (sort keys %want) {
    my @e = @{ $ev{$id} || [] };
    is scalar(@e), 1, "one event for $want{$id}[0] ($want{$id}[1])";
    is $e[0]{route}, $want{$id}[0], '... labelled by the template';
    is $e[0]{status}, $want{$id}[1], '... with the status';
}

# The stack keeps verified tokens (conf: jwt-cache.conf, KORDON_JWT_CACHE):
# the zone was made at start, sized for 100,000 tokens and more.
{
    my ($room) = 0;
    if (open my $fh, '<', "$ENV{KORDON_LOGS}/edge-error.log") {
        while (<$fh>) { $room = $1 if /kordon_jwt_cache zone "kordon_jwt" has room for (\d+) tokens/ }
    }
    cmp_ok $room, '>=', 100_000, 'the edge caches verified tokens (room for 100,000 or more)';
}

done_testing;
