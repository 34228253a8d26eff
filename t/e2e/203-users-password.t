# Passwords through the edge: change (needs the current one, ends the
# other sessions, tells the edge, answers fresh tokens for this one),
# forgot (the same 202 for any address; the code on users.events only
# for a real account) and reset (code checked like verification, every
# session ended).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

my $email = new_address('pw');
my $uid = signup($email);
my $here = login($email);
my $there = login($email);
my $new = 'a brand new passphrase';

# change
problem_ok(api(POST => '/v1/auth/password/change', { current_password => 'not it at all', new_password => $new },
    $here->{access_token}), 422, '/current_password', qr/current password is wrong/, 'change: wrong current password');
is audit_count('password.change_failed', $uid), 1, 'a failed change is audited';
my $r = api(POST => '/v1/auth/password/change', { current_password => PASSWORD, new_password => 'iloveyou' },
    $here->{access_token});
problem_ok($r, 422, '/new_password', undef, 'change: a common new password');
like $r->{json}{errors}[0]{message}, qr/too common/, '... says why';
problem_ok(api(POST => '/v1/auth/password/change', { current_password => PASSWORD, new_password => 'short' },
    $here->{access_token}), 422, '/new_password', undef, 'change: a short new password');
problem_ok(api(POST => '/v1/auth/password/change', { new_password => $new },
    $here->{access_token}), 422, '/current_password', undef, 'change: no current password');
problem_ok(api(POST => '/v1/auth/password/change', { current_password => PASSWORD, new_password => $new, x => 1 },
    $here->{access_token}), 422, '/x', undef, 'change: unknown field');
is api(POST => '/v1/auth/password/change', { current_password => PASSWORD, new_password => $new })->{status},
    401, 'change: without a token the edge refuses';

$r = api(POST => '/v1/auth/password/change', { current_password => PASSWORD, new_password => $new },
    $here->{access_token});
is $r->{status}, 200, 'change: 200';
ok $r->{json}{access_token} && $r->{json}{refresh_token}, 'with fresh tokens for this session';
is claims($r->{json}{access_token})->{sid}, claims($here->{access_token})->{sid}, 'the same session';
is api(POST => '/v1/auth/refresh', { refresh_token => $here->{refresh_token} })->{status}, 200,
    'this session lives on';
is api(POST => '/v1/auth/refresh', { refresh_token => $there->{refresh_token} })->{status}, 401,
    'the other session is ended';
ok wait_until(sub { grep { ($_->{sub} // '') eq $uid } revocations() }, 5),
    'a user-wide cut reached the stream';
is api(POST => '/v1/auth/login', { email => $email, password => PASSWORD })->{status}, 401,
    'the old password no longer works';
ok login($email, $new)->{access_token}, 'the new one does';
is audit_count('password.change', $uid), 1, 'audited';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.password_changed' && $_->{key} eq $uid } kafka_read('users.events') }, 20),
    'user.password_changed event';

# forgot: the same answer for a real account and for nobody.
my $f1 = api(POST => '/v1/auth/password/forgot', { email => $email });
my $f2 = api(POST => '/v1/auth/password/forgot', { email => new_address('nobody') });
is $f1->{status}, 202, 'forgot: 202';
is $f2->{status}, 202, 'forgot for an unknown address: 202';
is $f1->{content}, $f2->{content}, 'the same body';
my $code = code_for($email, 'user.password_reset_requested');
like $code, qr/^\d{6}$/, 'the reset code arrives on users.events';
is api(POST => '/v1/auth/password/forgot', { email => $email })->{status}, 202, 'an immediate second request: 202';
sleep 1;
is scalar(events_for($email, 'user.password_reset_requested')), 1, '... but no second code within 30 s';

# reset
my $s1 = login($email, $new);
my $newer = 'the newest passphrase';
my $wrong = $code eq '000000' ? '000001' : '000000';
problem_ok(api(POST => '/v1/auth/password/reset', { email => $email, code => $wrong, password => $newer }),
    422, '/code', undef, 'reset: wrong code');
problem_ok(api(POST => '/v1/auth/password/reset', { email => $email, code => $code, password => 'password' }),
    422, '/password', undef, 'reset: a common password is refused first');
problem_ok(api(POST => '/v1/auth/password/reset', { email => new_address('ghost'), code => $code, password => $newer }),
    422, '/code', undef, 'reset for an unknown address looks like a wrong code');
problem_ok(api(POST => '/v1/auth/password/reset', { email => $email, password => $newer }),
    422, '/code', undef, 'reset: no code');
$r = api(POST => '/v1/auth/password/reset', { email => $email, code => $code, password => $newer });
is $r->{status}, 200, 'reset with the code: 200';
problem_ok(api(POST => '/v1/auth/password/reset', { email => $email, code => $code, password => 'yet another one' }),
    422, '/code', undef, 'the code is single use');
is api(POST => '/v1/auth/refresh', { refresh_token => $s1->{refresh_token} })->{status}, 401,
    'every session ended by the reset';
ok login($email, $newer)->{access_token}, 'the reset password works';
is audit_count('password.reset', $uid), 1, 'audited';

# A reset also lifts a lockout.
api(POST => '/v1/auth/login', { email => $email, password => "wrong $_" }) for 1 .. 5;
psql_super("update users.codes set created_at = created_at - interval '1 minute' where user_id = '$uid'");
api(POST => '/v1/auth/password/forgot', { email => $email });
ok wait_until(sub { events_for($email, 'user.password_reset_requested') == 2 }, 20), 'a second reset code';
$code = code_for($email, 'user.password_reset_requested');
is api(POST => '/v1/auth/password/reset', { email => $email, code => $code, password => $new })->{status}, 200,
    'reset while locked';
ok login($email, $new)->{access_token}, 'the lockout is lifted';

problem_ok(api(POST => '/v1/auth/password/forgot', {}), 422, '/email', undef, 'forgot: no address');
problem_ok(api(POST => '/v1/auth/password/forgot', { phone => '12' }), 422, '/phone', undef, 'forgot: bad phone');

done_testing;
