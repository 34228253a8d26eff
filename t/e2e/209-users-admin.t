# The admin API through the edge: search (email, phone, id prefix) with
# filters and keyset pages, one user (its read audited), PATCH, roles,
# block (ends every session, cuts the tokens at the stream), unblock,
# confirm, unlock, the audit trail; and the role matrix as the edge and
# the service enforce it (support reads, admin does everything).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

my $admin = login($ENV{KORDON_ADMIN_EMAIL}, $ENV{KORDON_ADMIN_PASSWORD})->{access_token};
my $admin_id = claims($admin)->{sub};
my $tag = "adm$$" . int(time);
my $u1_email = new_address("$tag-one");
my $u1 = signup($u1_email);
my $u1_tok = login($u1_email);
my $s_email = new_address("$tag-sup");
my $s_id = signup($s_email);

sub list { api(GET => "/v1/admin/users?$_[0]", undef, $_[1] // $admin) }
sub ids { [ map { $_->{id} } @{ $_[0]{json}{items} || [] } ] }

# roles
my $r = api(PUT => "/v1/admin/users/$s_id/roles", { roles => ['user', 'support'] }, $admin);
is $r->{status}, 200, 'admin sets roles: 200';
is_deeply $r->{json}{roles}, ['user', 'support'], 'and answers the user with them';
problem_ok(api(PUT => "/v1/admin/users/$s_id/roles", { roles => ['root'] }, $admin), 422, '/roles', undef,
    'an unknown role');
problem_ok(api(PUT => "/v1/admin/users/$s_id/roles", { roles => ['user', 'user'] }, $admin), 422, '/roles',
    undef, 'a repeated role');
problem_ok(api(PUT => "/v1/admin/users/$admin_id/roles", { roles => ['user'] }, $admin), 409, undef,
    qr/own roles/, 'an admin cannot demote themself');
is audit_count('role.change', $s_id), 1, 'a role change is audited';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.roles_changed' && $_->{key} eq $s_id } kafka_read('users.events') }, 20),
    'user.roles_changed event';
my $support = login($s_email)->{access_token};
is_deeply claims($support)->{roles}, ['user', 'support'], 'a new login carries the roles';

# the role matrix, through the edge
is list("q=$tag", $u1_tok->{access_token})->{status}, 403, 'user: list refused';
is api(GET => "/v1/admin/audit", undef, $u1_tok->{access_token})->{status}, 403, 'user: audit refused';
is list("q=$tag", $support)->{status}, 200, 'support: list';
is api(GET => "/v1/admin/users/$u1", undef, $support)->{status}, 200, 'support: one user';
is api(GET => "/v1/admin/audit?user=$u1", undef, $support)->{status}, 200, 'support: audit';
is api(POST => "/v1/admin/users/$u1/block", { reason => 'x' }, $support)->{status}, 403, 'support: block refused';
is api(PATCH => "/v1/admin/users/$u1", { name => 'x' }, $support)->{status}, 403, 'support: patch refused';
is api(PUT => "/v1/admin/users/$u1/roles", { roles => ['admin'] }, $support)->{status}, 403,
    'support: roles refused';
is api(POST => "/v1/admin/users/$u1/unlock", undef, $support)->{status}, 403, 'support: unlock refused';
is api(GET => '/v1/admin/users')->{status}, 401, 'no token: 401';

# search
$r = list("q=" . substr($u1_email, 0, length($u1_email) - 3));
is $r->{status}, 200, 'search by email prefix: 200';
is_deeply ids($r), [$u1], 'finds the one';
$r = list('q=' . substr($u1, 0, 13));
ok((grep { $_ eq $u1 } @{ ids($r) }), 'search by id prefix (with a dash) finds it');
$r = list('q=' . uc substr($u1_email, 0, 10) . '%25');
is_deeply ids($r), [], 'LIKE wildcards in q are literal';
$r = api(PATCH => "/v1/admin/users/$u1", { phone => '+4915' . substr(time, -8), name => 'Ann' }, $admin);
is $r->{status}, 200, 'admin patch: 200';
is $r->{json}{name}, 'Ann', 'the name changed';
my $phone = $r->{json}{phone};
is_deeply ids(list('q=' . substr($phone, 0, 12) =~ s/\+/%2B/r)), [$u1], 'search by phone prefix';
problem_ok(api(PATCH => "/v1/admin/users/$u1", { email => $s_email }, $admin), 409, undef,
    qr/another account/, 'patch: an email of another account');
problem_ok(api(PATCH => "/v1/admin/users/$u1", { email => 'nope' }, $admin), 422, '/email', undef,
    'patch: a bad email');
problem_ok(api(PATCH => "/v1/admin/users/$u1", {}, $admin), 422, '', undef, 'patch: nothing');

# filters and pages
my @p = map { my $e = new_address("$tag-page"); signup($e) } 1 .. 3;
my $unverified = new_address("$tag-unv");
api(POST => '/v1/auth/register', { email => $unverified, password => PASSWORD });
is_deeply ids(list("q=$tag-unv&status=unverified")), [ psql_reader("select id from users.users where email = '$unverified'") ],
    'status filter';
is_deeply ids(list("q=$tag-unv&status=active")), [], '... excludes the others';
is_deeply ids(list("q=$tag&role=support")), [$s_id], 'role filter';
is_deeply ids(list("q=$tag-page&created_from=2099-01-01T00:00:00Z")), [], 'created_from in the future: none';
is scalar @{ ids(list("q=$tag-page&created_to=2099-01-01")) }, 3, 'created_to (a date) in the future: all';
$r = list("q=$tag-page&limit=2");
is_deeply ids($r), [ reverse @p[1, 2] ], 'a page of 2, newest first';
ok $r->{json}{next_cursor}, 'with a cursor';
$r = list("q=$tag-page&limit=2&cursor=$r->{json}{next_cursor}");
is_deeply ids($r), [ $p[0] ], 'the next page';
ok !defined $r->{json}{next_cursor}, 'and no cursor after the last';
problem_ok(list('status=gone'), 422, '/status', undef, 'a bad status');
problem_ok(list('created_from=yesterday'), 422, '/created_from', undef, 'a bad date');
problem_ok(list('created_from=2026-02-30'), 422, '', undef, 'a date out of range');
problem_ok(list('limit=0'), 422, '/limit', undef, 'limit 0');
problem_ok(list('cursor=abc'), 422, '/cursor', undef, 'a bad cursor');

# one user, its read audited
$r = api(GET => "/v1/admin/users/$u1", undef, $admin);
is $r->{status}, 200, 'one user: 200';
is $r->{json}{email}, lc $u1_email, 'with its email';
is $r->{json}{active_sessions}, 1, 'and its live sessions';
is psql_reader("select count(*) from users.audit where action = 'admin.user_read' and subject = '$u1'"
    . " and actor = '$admin_id'"), 1, 'the admin read is audited with the admin as actor';
problem_ok(api(GET => '/v1/admin/users/01890000-0000-7000-8000-000000000000', undef, $admin), 404, undef,
    undef, 'an unknown user: 404');

# block
problem_ok(api(POST => "/v1/admin/users/$u1/block", {}, $admin), 422, '/reason', undef, 'block without a reason');
problem_ok(api(POST => "/v1/admin/users/$admin_id/block", { reason => 'oops' }, $admin), 409, undef,
    qr/yourself/, 'an admin cannot block themself');
is api(POST => "/v1/admin/users/$u1/block", { reason => 'fraud review' }, $admin)->{status}, 204, 'block: 204';
is api(POST => '/v1/auth/refresh', { refresh_token => $u1_tok->{refresh_token} })->{status}, 401,
    'every session ended: the refresh token is dead';
ok wait_until(sub { grep { ($_->{sub} // '') eq $u1 } revocations() }, 5), 'a user-wide cut reached the stream';
problem_ok(api(POST => '/v1/auth/login', { email => $u1_email, password => PASSWORD }), 403, undef,
    qr/blocked/, 'login: the account is blocked');
is list("q=$tag-one&status=blocked")->{json}{items}[0]{blocked_reason}, 'fraud review', 'the reason is kept';
is audit_count('user.block', $u1), 1, 'block audited';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.blocked' && $_->{key} eq $u1 } kafka_read('users.events') }, 20),
    'user.blocked event';

# unblock
is api(POST => "/v1/admin/users/$u1/unblock", undef, $admin)->{status}, 204, 'unblock: 204';
problem_ok(api(POST => "/v1/admin/users/$u1/unblock", { reason => 'again' }, $admin), 409, undef,
    qr/not blocked/, 'unblock when not blocked: 409');
ok login($u1_email)->{access_token}, 'login works again';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.unblocked' && $_->{key} eq $u1 } kafka_read('users.events') }, 20),
    'user.unblocked event';

# confirm
is api(POST => '/v1/auth/login', { email => $unverified, password => PASSWORD })->{status}, 403,
    'an unverified account cannot log in';
my $unv_id = psql_reader("select id from users.users where email = '$unverified'");
is api(POST => "/v1/admin/users/$unv_id/confirm", undef, $admin)->{status}, 204, 'confirm: 204';
ok login($unverified)->{access_token}, 'and it can';
is audit_count('user.confirm', $unv_id), 1, 'confirm audited';

# unlock
api(POST => '/v1/auth/login', { email => $u1_email, password => 'wrong password!' }) for 1 .. 5;
is api(POST => '/v1/auth/login', { email => $u1_email, password => PASSWORD })->{status}, 429, 'locked out';
is api(POST => "/v1/admin/users/$u1/unlock", undef, $admin)->{status}, 204, 'unlock: 204';
ok login($u1_email)->{access_token}, 'the lockout is lifted at once';

# the audit trail
$r = api(GET => "/v1/admin/audit?user=$u1&action=user.block", undef, $admin);
is $r->{status}, 200, 'audit: 200';
is scalar @{ $r->{json}{items} }, 1, 'filtered by user and action';
is $r->{json}{items}[0]{actor}, $admin_id, 'with the actor';
is $r->{json}{items}[0]{data}{reason}, 'fraud review', 'and the data';
$r = api(GET => "/v1/admin/audit?user=$u1&limit=2", undef, $admin);
my @first = map { $_->{id} } @{ $r->{json}{items} };
$r = api(GET => "/v1/admin/audit?user=$u1&limit=2&cursor=$r->{json}{next_cursor}", undef, $admin);
ok $first[1] > $r->{json}{items}[0]{id}, 'the next page continues below the cursor';
is scalar @{ api(GET => "/v1/admin/audit?user=$u1&from=2099-01-01T00:00:00Z", undef, $admin)->{json}{items} }, 0,
    'from in the future: none';
problem_ok(api(GET => '/v1/admin/audit?user=bob', undef, $admin), 422, '/user', undef, 'a bad user id');
problem_ok(api(GET => '/v1/admin/audit?action=DROP%20TABLE', undef, $admin), 422, '/action', undef,
    'a bad action');

# taking a role away cuts the live tokens, which carry it
ok !(grep { ($_->{sub} // '') eq $s_id } revocations()), 'granting a role cut nothing';
is api(PUT => "/v1/admin/users/$s_id/roles", { roles => ['user'] }, $admin)->{status}, 200, 'support demoted';
ok wait_until(sub { grep { ($_->{sub} // '') eq $s_id } revocations() }, 5), 'a user-wide cut reached the stream';
ok wait_until(sub { list("q=$tag", $support)->{status} == 401 }, 2),
    'the edge refuses the token that still says support';

done_testing;
