# Second factor through the edge: TOTP setup, enable (answers ten
# recovery codes), login answering mfa_required with a ticket, login/mfa
# with a TOTP code (each time step accepted once) or a recovery code
# (single use), amr ["pwd","otp"], the brute-force bound, disable with a
# code or the password.  Codes are computed here, as an app would.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

my $email = new_address('mfa');
my $uid = signup($email);
my $tok = login($email)->{access_token};

sub wrong_code {
    my ($b32) = @_;
    my %live = map { totp_code($b32, $_) => 1 } -1 .. 1;
    my $c = 0;
    $c++ while $live{ sprintf '%06d', $c };
    return sprintf '%06d', $c;
}

# setup and enable
is api(POST => '/v1/auth/2fa/totp/setup', undef)->{status}, 401, 'setup needs a token';
problem_ok(api(POST => '/v1/auth/2fa/totp/enable', { code => '123456' }, $tok), 409, undef,
    qr/set up/, 'enable before setup');
my $r = api(POST => '/v1/auth/2fa/totp/setup', undef, $tok);
is $r->{status}, 200, 'setup: 200';
my $b32 = $r->{json}{secret};
like $b32, qr/^[A-Z2-7]{32}$/, 'a base32 secret of 160 bits';
like $r->{json}{otpauth_uri}, qr{^otpauth://totp/Kordon:.*secret=$b32.*issuer=Kordon}, 'and its otpauth URI';
is psql_reader("select count(*) from users.users where id = '$uid' and totp_pending is not null"
    . " and position(convert_to('$b32', 'UTF8') in totp_pending) = 0"), 1, 'the pending secret is stored sealed';
problem_ok(api(POST => '/v1/auth/2fa/totp/enable', { code => wrong_code($b32) }, $tok), 422, '/code',
    qr/does not match/, 'enable: a wrong code');
problem_ok(api(POST => '/v1/auth/2fa/totp/enable', { code => '12345' }, $tok), 422, '/code', undef,
    'enable: five digits');
problem_ok(api(POST => '/v1/auth/2fa/totp/enable', {}, $tok), 422, '/code', undef, 'enable: no code');
my $now = totp_code($b32, 0);
$r = api(POST => '/v1/auth/2fa/totp/enable', { code => $now }, $tok);
is $r->{status}, 200, 'enable with the current code: 200';
my @rc = @{ $r->{json}{recovery_codes} || [] };
is scalar(@rc), 10, 'ten recovery codes';
like $rc[0], qr/^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/, 'shaped xxxx-xxxx-xxxx-xxxx';
is psql_reader("select count(*) from users.recovery_codes where user_id = '$uid' and used_at is null"), 10,
    'kept (hashed) at rest';
problem_ok(api(POST => '/v1/auth/2fa/totp/setup', undef, $tok), 409, undef, qr/on already/,
    'setup while on: 409');
is audit_count('2fa.enabled', $uid), 1, 'enable audited';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.2fa_enabled' && $_->{key} eq $uid } kafka_read('users.events') }, 20),
    'user.2fa_enabled event';

# login answers a ticket
$r = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD });
is $r->{status}, 200, 'login with 2FA on: 200';
is $r->{json}{status}, 'mfa_required', 'mfa_required';
ok !exists $r->{json}{access_token}, 'and no tokens';
my $ticket = $r->{json}{mfa_ticket};
like $ticket, qr/^[A-Za-z0-9_-]{43}$/, 'an opaque ticket';
is api(POST => '/v1/auth/login', { email => $email, password => 'not the password' })->{status}, 401,
    'a wrong password still gets a plain 401';

problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket }), 422, '', undef,
    'login/mfa: neither code nor recovery_code');
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $now, recovery_code => $rc[0] }),
    422, '', undef, 'login/mfa: both');
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => 'x' x 43, code => $now }), 401, undef,
    qr/ticket/, 'login/mfa: an unknown ticket');
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $now }), 401, undef,
    qr/used already/, 'the code that enabled 2FA is not accepted again (its step is used)');
my $next = totp_code($b32, 1);
$r = api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $next });
is $r->{status}, 200, 'login/mfa with the next step\'s code: 200';
my $at = $r->{json}{access_token};
ok $at && $r->{json}{refresh_token}, 'tokens';
is_deeply claims($at)->{amr}, ['pwd', 'otp'], 'amr ["pwd","otp"]';
is api(GET => '/v1/users/me', undef, $at)->{status}, 200, 'the token works at the edge';
is api(POST => '/v1/auth/refresh', { refresh_token => $r->{json}{refresh_token} })->{status}, 200,
    'and refreshes';
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $next }), 401, undef,
    qr/ticket/, 'the ticket is single use');

# the same step again on a new ticket
$ticket = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD })->{json}{mfa_ticket};
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $next }), 401, undef,
    qr/used already/, 'a code is accepted once, even on a new ticket');

# recovery codes
$r = api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => uc $rc[0] });
is $r->{status}, 200, 'login/mfa with a recovery code (any case): 200';
is_deeply claims($r->{json}{access_token})->{amr}, ['pwd', 'otp'], 'amr ["pwd","otp"]';
$ticket = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD })->{json}{mfa_ticket};
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => $rc[0] }), 401, undef,
    qr/recovery code/, 'a recovery code is single use');
is psql_reader("select count(*) from users.recovery_codes where user_id = '$uid' and used_at is null"), 9,
    'nine left';
is audit_count('login.mfa_failed', $uid), 3, 'each failure audited';

# brute force: a ticket dies after 5 wrong codes, and the account locks
my $wrong = wrong_code($b32);
for my $i (2 .. 5) {    # the failure above counted once on this ticket
    api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, code => $wrong });
}
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => $rc[1] }), 401, undef,
    qr/ticket/, 'after five wrong tries the ticket is dead, even for a right code');
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => PASSWORD }), 429, undef, undef,
    'and the account is locked out like after five bad passwords');
sleep 3;
$ticket = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD })->{json}{mfa_ticket};
ok $ticket, 'the lockout ends';
is api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => $rc[1] })->{status}, 200,
    'and a right factor logs in';

# disable
problem_ok(api(POST => '/v1/auth/2fa/totp/disable', {}, $tok), 422, '', undef, 'disable: nothing given');
problem_ok(api(POST => '/v1/auth/2fa/totp/disable', { password => 'wrong password here' }, $tok), 422,
    '/password', qr/password is wrong/, 'disable: a wrong password');
is api(POST => '/v1/auth/2fa/totp/disable', { password => PASSWORD }, $tok)->{status}, 204,
    'disable with the password: 204';
is audit_count('2fa.disabled', $uid), 1, 'audited';
$r = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD });
ok $r->{json}{access_token}, 'login answers tokens again';
is_deeply claims($r->{json}{access_token})->{amr}, ['pwd'], 'amr ["pwd"]';
is psql_reader("select count(*) from users.recovery_codes where user_id = '$uid'"), 0,
    'the recovery codes are gone';
problem_ok(api(POST => '/v1/auth/2fa/totp/disable', { password => PASSWORD }, $tok), 409, undef, undef,
    'disable when off: 409');

# on again, then off with a code
$b32 = api(POST => '/v1/auth/2fa/totp/setup', undef, $tok)->{json}{secret};
$r = api(POST => '/v1/auth/2fa/totp/enable', { code => totp_code($b32, -1) }, $tok);
is $r->{status}, 200, 'enable with the previous step\'s code (clock skew)';
@rc = @{ $r->{json}{recovery_codes} || [] };

# new recovery codes: a current code proves it, the old codes stop working
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', {}, $tok), 422, '/code', undef,
    'recovery-codes: no code');
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', { code => '12a456' }, $tok), 422, '/code', undef,
    'recovery-codes: not six digits');
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', { code => wrong_code($b32) }, $tok), 422, '/code',
    qr/wrong or was used/, 'recovery-codes: a wrong code');
is audit_count('2fa.recovery_failed', $uid), 1, 'the wrong code audited';
is psql_reader("select count(*) from users.recovery_codes where user_id = '$uid' and used_at is null"), 10,
    'and the codes unchanged';
my $fresh = totp_code($b32, 0);
$r = api(POST => '/v1/auth/2fa/recovery-codes', { code => $fresh }, $tok);
is $r->{status}, 200, 'recovery-codes with a fresh code: 200';
is $r->{json}{status}, 'renewed', 'status renewed';
my @rc2 = @{ $r->{json}{recovery_codes} || [] };
is scalar(@rc2), 10, 'ten new codes';
is scalar(grep { my $n = $_; grep { $_ eq $n } @rc } @rc2), 0, 'none of them an old one';
is psql_reader("select count(*) from users.recovery_codes where user_id = '$uid'"), 10,
    'only the ten new ones are kept';
is audit_count('2fa.recovery_renewed', $uid), 1, 'audited';
ok wait_until(sub { grep { $_->{value}{type} eq 'user.2fa_recovery_renewed' && $_->{key} eq $uid }
                    kafka_read('users.events') }, 20), 'user.2fa_recovery_renewed event';
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', { code => $fresh }, $tok), 422, '/code',
    qr/used already/, 'the same code does not renew twice');
$ticket = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD })->{json}{mfa_ticket};
problem_ok(api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => $rc[0] }), 401, undef,
    qr/recovery code/, 'an old, unused recovery code no longer logs in');
is api(POST => '/v1/auth/login/mfa', { mfa_ticket => $ticket, recovery_code => $rc2[0] })->{status}, 200,
    'a new one does';
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', { code => totp_code($b32, 1) }), 401, undef, undef,
    'recovery-codes needs a token');

problem_ok(api(POST => '/v1/auth/2fa/totp/disable', { code => totp_code($b32, -1) }, $tok), 422, '/code',
    undef, 'disable: a used step');
is api(POST => '/v1/auth/2fa/totp/disable', { code => totp_code($b32, 1) }, $tok)->{status}, 204,
    'disable with a fresh code: 204';
problem_ok(api(POST => '/v1/auth/2fa/recovery-codes', { code => totp_code($b32, 0) }, $tok), 409, undef,
    qr/is off/, 'recovery-codes with 2FA off: 409');

done_testing;
