# Tokens and sessions through the edge: refresh rotates (the old token
# still works for 10 s, then reusing it ends the whole family and tells
# the edge); logout, logout-all and ending one session, each pushed to
# the kordon:revocations stream after the commit; the session list;
# GET/PATCH/DELETE /v1/users/me.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

sub cut_for {
    my ($kind, $id) = @_;
    my $got;
    wait_until(sub { ($got) = grep { ($_->{$kind} // '') eq $id } revocations(); $got }, 5);
    return $got;
}

my $email = new_address('tok');
my $uid = signup($email);
my $t1 = login($email);
my $sid = claims($t1->{access_token})->{sid};

# Refresh rotates.
my $r = api(POST => '/v1/auth/refresh', { refresh_token => $t1->{refresh_token} });
is $r->{status}, 200, 'refresh answers 200';
my $t2 = $r->{json};
isnt $t2->{refresh_token}, $t1->{refresh_token}, 'with a new refresh token';
is $t2->{token_type}, 'Bearer', 'and the same shape as login';
is claims($t2->{access_token})->{sid}, $sid, 'in the same session';
is api(GET => '/v1/users/me', undef, $t2->{access_token})->{status}, 200, 'the new access token works';
$r = api(POST => '/v1/auth/refresh', { refresh_token => $t1->{refresh_token} });
is $r->{status}, 200, 'the rotated token within the 10 s grace: still 200';
my $t3 = $r->{json};

# After the grace, reuse ends the family.
psql_super("update users.refresh_tokens set rotated_at = now() - interval '11 seconds' where token_sha256 = sha256('$t1->{refresh_token}')");
$r = api(POST => '/v1/auth/refresh', { refresh_token => $t1->{refresh_token} });
problem_ok($r, 401, undef, qr/reused/, 'reuse after the grace');
is psql_reader("select end_reason from users.sessions where id = '$sid'"), 'refresh_reuse',
    'the session is ended';
$r = api(POST => '/v1/auth/refresh', { refresh_token => $t3->{refresh_token} });
problem_ok($r, 401, undef, qr/invalid refresh token/, 'every token of the family is dead');
my $cut = cut_for(sid => $sid);
ok $cut, 'the edge is told: a sid cut in kordon:revocations';
cmp_ok abs($cut->{nbf} - time), '<', 60, 'with nbf = now';
is audit_count('refresh.reuse', $uid), 1, 'reuse audited';
is psql_reader("select count(*) from users.pending_revocations"), 0, 'nothing left pending';

# Refresh: bad input and unknown tokens.
problem_ok(api(POST => '/v1/auth/refresh', {}), 422, '/refresh_token', undef, 'refresh: no token');
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => 5 }), 422, '/refresh_token', undef, 'refresh: not a string');
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => 'x' x 43 . 'y' }), 401, undef, undef, 'refresh: wrong shape');
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => 'A' x 43 }), 401, undef, qr/invalid refresh token/, 'refresh: unknown token');
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => 'A' x 43, extra => 1 }), 422, '/extra', undef, 'refresh: unknown field');

# Sessions: list, end one (not the caller's), logout.
my $a = login($email, undef, { device => 'phone' });
my $b = login($email, undef, { device => 'laptop' });
my ($asid, $bsid) = map { claims($_->{access_token})->{sid} } $a, $b;
$r = api(GET => '/v1/users/me/sessions', undef, $a->{access_token});
is $r->{status}, 200, 'session list';
my %s = map { $_->{id} => $_ } @{ $r->{json}{sessions} };
ok $s{$asid} && $s{$bsid}, 'both live sessions listed';
ok !$s{$sid}, 'the ended one is not';
ok $s{$asid}{current} && !$s{$bsid}{current}, 'the caller\'s is marked current';
is $s{$bsid}{device}, 'laptop', 'device';
ok $s{$bsid}{ip} && $s{$bsid}{last_used_at} && $s{$bsid}{created_at}, 'ip, created and last use';

$r = api(DELETE => "/v1/users/me/sessions/$bsid", undef, $a->{access_token});
is $r->{status}, 204, 'end another session: 204';
ok cut_for(sid => $bsid), '... pushed as a sid cut';
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => $b->{refresh_token} }), 401, undef, undef,
    'its refresh token is dead');
problem_ok(api(DELETE => "/v1/users/me/sessions/$bsid", undef, $a->{access_token}), 404, undef, undef,
    'ending it again: 404');
# The edge refuses it against conf/openapi.yaml, naming the parameter.
my $bad = api(DELETE => '/v1/users/me/sessions/not-a-uuid', undef, $a->{access_token});
problem_ok($bad, 400, '', undef, 'a malformed session id: 400');
is_deeply [map { "$_->{in} $_->{parameter}: $_->{message}" } @{ $bad->{json}{errors} || [] }],
    ['path id: must be a valid uuid'], '... naming the id';
my $other = signup(new_address('other'));
my $o = login(psql_reader("select email from users.users where id = '$other'"));
my $osid = claims($o->{access_token})->{sid};
problem_ok(api(DELETE => "/v1/users/me/sessions/$osid", undef, $a->{access_token}), 404, undef, undef,
    'someone else\'s session: 404');
is api(POST => '/v1/auth/refresh', { refresh_token => $o->{refresh_token} })->{status}, 200,
    '... and it still works';

$r = api(POST => '/v1/auth/logout', undef, $a->{access_token});
is $r->{status}, 204, 'logout: 204';
ok cut_for(sid => $asid), 'logout pushes a sid cut';
problem_ok(api(POST => '/v1/auth/refresh', { refresh_token => $a->{refresh_token} }), 401, undef, undef,
    'after logout the refresh token is dead');

# logout-all: every session, and a user-wide cut.
my @all = map { login($email) } 1 .. 2;
$r = api(POST => '/v1/auth/logout-all', undef, $all[0]{access_token});
is $r->{status}, 204, 'logout-all: 204';
$cut = cut_for(sub => $uid);
ok $cut, 'a sub cut for the user';
is psql_reader("select count(*) from users.sessions where user_id = '$uid' and ended_at is null"), 0,
    'no live session left';
for my $x (@all) {
    is api(POST => '/v1/auth/refresh', { refresh_token => $x->{refresh_token} })->{status}, 401,
        'each refresh token is dead';
}

# Without a token the edge refuses.
for my $c (['GET', '/v1/users/me', undef, 'me without a token'],
           ['POST', '/v1/auth/logout', undef, 'logout without a token'],
           ['GET', '/v1/users/me', 'x.y.z', 'me with garbage']) {
    $r = api($c->[0], $c->[1], undef, $c->[2]);
    is $r->{status}, 401, "$c->[3]: 401 from the edge";
    is $r->{headers}{'content-type'}, 'application/problem+json', "$c->[3]: problem+json";
}

# PATCH and DELETE /v1/users/me.
my $m = login($email);
$r = api(PATCH => '/v1/users/me', { name => "Zo\x{eb} Kordon" }, $m->{access_token});
is $r->{status}, 200, 'PATCH me: 200';
is $r->{json}{name}, "Zo\xc3\xab Kordon", 'the name changed (UTF-8)';
problem_ok(api(PATCH => '/v1/users/me', { name => 'x' x 201 }, $m->{access_token}), 422, '/name', undef, 'PATCH: long name');
problem_ok(api(PATCH => '/v1/users/me', { name => 5 }, $m->{access_token}), 422, '/name', undef, 'PATCH: name not a string');
problem_ok(api(PATCH => '/v1/users/me', { email => 'a@b.io' }, $m->{access_token}), 422, '/email', undef, 'PATCH: email is not changed here');
problem_ok(api(PATCH => '/v1/users/me', { roles => ['admin'] }, $m->{access_token}), 422, '/roles', undef, 'PATCH: nobody grants themselves roles');
problem_ok(api(PATCH => '/v1/users/me', {}, $m->{access_token}), 422, '', undef, 'PATCH: nothing to change');
$r = api(PATCH => '/v1/users/me', { name => undef }, $m->{access_token});
is $r->{json}{name}, undef, 'name cleared with null';

$r = api(DELETE => '/v1/users/me', undef, $m->{access_token});
is $r->{status}, 204, 'DELETE me: 204';
is psql_reader("select status || '|' || coalesce(email, '-') || '|' || coalesce(password_hash, '-') from users.users where id = '$uid'"),
    'deleted|-|-', 'anonymized: no address, no password, status deleted';
cmp_ok audit_count('login.ok', $uid), '>', 0, 'the audit trail stays';
ok wait_until(sub { grep { ($_->{sub} // '') eq $uid && $_->{nbf} >= $cut->{nbf} } revocations() }, 5),
    'a sub cut for the deleted user';
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => PASSWORD }), 401, undef, undef,
    'a deleted account cannot log in');
is api(POST => '/v1/auth/register', { email => $email, password => PASSWORD })->{status}, 202,
    'and its address can register again';

done_testing;
