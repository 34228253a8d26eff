# users behind the edge: which routes are public, which need a token and
# which a role (the contract's list); the admin seeded on first start,
# once, with its credentials in .run/env; revocations survive a Redis
# outage (they wait in the pending table and go out once Redis is back).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

sub edge_refused { my ($r) = @_; $r->{status} == 401 && ($r->{headers}{'www-authenticate'} // '') =~ /^Bearer/ }
sub reached_users {
    my ($r) = @_;
    return !exists $r->{headers}{'www-authenticate'} && $r->{status} != 403;
}

# The seeded admin.
ok $ENV{KORDON_ADMIN_EMAIL} && $ENV{KORDON_ADMIN_PASSWORD}, '.run/env has the admin credentials';
my $admin = login($ENV{KORDON_ADMIN_EMAIL}, $ENV{KORDON_ADMIN_PASSWORD});
is_deeply claims($admin->{access_token})->{roles}, ['user', 'admin'], 'the admin has roles user and admin';
is api(GET => '/v1/users/me', undef, $admin->{access_token})->{json}{status}, 'active', 'and is active';
is stack(stop => 'users'), 0, 'users stopped';
is stack(start => 'users'), 0, 'and started again';
is psql_reader("select count(*) from users.users where email = '\L$ENV{KORDON_ADMIN_EMAIL}\E'"), 1,
    'still one admin after a restart';
is psql_reader("select count(*) from users.audit where action = 'user.seed_admin'"), 1, 'seeded once';

# Public routes: no token needed (they reach users, not the edge's 401).
for my $p (['POST', '/v1/auth/register'], ['POST', '/v1/auth/verify'], ['POST', '/v1/auth/verify/resend'],
           ['POST', '/v1/auth/login'], ['POST', '/v1/auth/login/mfa'], ['POST', '/v1/auth/refresh'],
           ['POST', '/v1/auth/password/forgot'], ['POST', '/v1/auth/password/reset'],
           ['GET', '/v1/auth/oauth/google/start'], ['GET', '/v1/auth/oauth/vk/callback'],
           ['GET', '/.well-known/jwks.json'], ['GET', '/healthz/users']) {
    my $r = api($p->[0], $p->[1], $p->[0] eq 'POST' ? {} : undef);
    ok !edge_refused($r), "$p->[0] $p->[1] is public ($r->{status})";
}
is api(GET => '/.well-known/jwks.json')->{status}, 200, 'the JWKS is served';
for my $p (['POST', '/v1/auth/logout'], ['POST', '/v1/auth/logout-all'], ['POST', '/v1/auth/password/change'],
           ['POST', '/v1/auth/2fa/totp/setup'], ['GET', '/v1/users/me'], ['GET', '/v1/users/me/sessions'],
           ['GET', '/v1/auth/oauth/google/other'], ['GET', '/v1/admin/users']) {
    ok edge_refused(api($p->[0], $p->[1])), "$p->[0] $p->[1] needs a token";
}

# Roles on the admin routes.
my $user = login(do { my $e = new_address('role'); signup($e); $e });
my $se = new_address('support');
my $sid = signup($se);
psql_super("update users.users set roles = '{user,support}' where id = '$sid'");
my $support = login($se);
is_deeply claims($support->{access_token})->{roles}, ['user', 'support'], 'a support token';
for my $c (
    [$user, 'GET', '/v1/admin/users', 403], [$support, 'GET', '/v1/admin/users', 'pass'],
    [$admin, 'GET', '/v1/admin/users', 'pass'], [$support, 'GET', "/v1/admin/users/$sid", 'pass'],
    [$support, 'GET', '/v1/admin/audit', 'pass'], [$user, 'GET', '/v1/admin/audit', 403],
    [$support, 'POST', "/v1/admin/users/$sid/block", 403], [$support, 'PATCH', "/v1/admin/users/$sid", 403],
    [$support, 'GET', "/v1/admin/users/$sid/sessions", 403],
    [$admin, 'POST', "/v1/admin/users/$sid/block", 'pass'], [$user, 'POST', '/v1/admin/adjustments', 403],
    [$support, 'GET', '/v1/admin/jobs', 403],
) {
    my ($who, $m, $path, $want) = @$c;
    my $r = api($m, $path, $m eq 'GET' ? undef : {}, $who->{access_token});
    my $name = "$m $path as " . join(',', @{ claims($who->{access_token})->{roles} });
    if ($want eq 'pass') {
        ok reached_users($r), "$name: passes the edge ($r->{status})";
    } else {
        is $r->{status}, 403, "$name: 403 at the edge";
        is $r->{headers}{'content-type'}, 'application/problem+json', "$name: problem+json";
    }
}
is api(GET => '/v1/admin/whatever', undef, $admin->{access_token})->{status}, 404, 'other admin paths: 404';

# Revocations wait out a Redis outage.
my $e = new_address('outage');
my $uid = signup($e);
my $t = login($e);
is stack(stop => 'redis'), 0, 'redis stopped';
is api(POST => '/v1/auth/logout-all', undef, $t->{access_token})->{status}, 204,
    'logout-all works while Redis is down';
sleep 1.5;
cmp_ok psql_reader("select count(*) from users.pending_revocations where value = '$uid'"), '>=', 1,
    'the cut waits in the pending table';
is stack(start => 'redis'), 0, 'redis back';
ok wait_until(sub { psql_reader("select count(*) from users.pending_revocations") == 0 }, 15),
    'the pending cuts are pushed';
ok((grep { ($_->{sub} // '') eq $uid } revocations()), 'the user-wide cut is in the stream');

done_testing;
