# Registration and verification through the edge: the code reaches the
# users.events topic (as notify reads it), is single use, dies after 5
# wrong tries; re-sends are limited; every bad body is a 422 naming the
# field; an address already registered gets the same answer as a new one.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use Kordon::E2E;
use Kordon::Users;

my $email = new_address('reg');
my $r = api(POST => '/v1/auth/register', { email => uc $email, password => PASSWORD });
is $r->{status}, 202, 'register answers 202';
is $r->{json}{status}, 'verification_pending', 'pending verification';
my $pending = $r->{content};

my $code = code_for($email);
like $code, qr/^\d{6}$/, 'the code arrives on users.events, 6 digits';
my ($ev) = events_for($email, 'user.verification_requested');
is $ev->{value}{data}{email}, lc $email, 'event names the lower-cased email';
ok $ev->{value}{id} && $ev->{value}{occurred_at}, 'in the blueprint envelope';
is scalar(events_for($email, 'user.registered')), 1, 'user.registered emitted';
my $uid = psql_reader("select id from users.users where email = '\L$email\E'");
like $uid, qr/^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'id is a UUIDv7';
is $ev->{key}, $uid, 'event keyed by the user id';
is psql_reader("select status from users.users where id = '$uid'"), 'unverified',
    'account starts unverified';
is psql_reader("select count(*) from users.codes where user_id = '$uid' and code_hmac::text like '%$code%'"),
    0, 'the code is not stored in clear';

$r = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD });
problem_ok($r, 403, undef, qr/not verified/, 'login before verification');

my $wrong = $code eq '000000' ? '000001' : '000000';
$r = api(POST => '/v1/auth/verify', { email => $email, code => $wrong });
problem_ok($r, 422, '/code', qr/wrong, expired/, 'a wrong code');
$r = api(POST => '/v1/auth/verify', { email => $email, code => $code });
is $r->{status}, 200, 'the right code verifies';
is $r->{json}{status}, 'active', 'account active';
$r = api(POST => '/v1/auth/verify', { email => $email, code => $code });
problem_ok($r, 422, '/code', undef, 'a code is single use');
is audit_count('user.verify', $uid), 1, 'verification audited';
ok login($email)->{access_token}, 'and the account can log in';

# Five tries, then the code is dead even when right.
my $e2 = new_address('tries');
api(POST => '/v1/auth/register', { email => $e2, password => PASSWORD });
my $c2 = code_for($e2);
my $bad = $c2 eq '111111' ? '222222' : '111111';
api(POST => '/v1/auth/verify', { email => $e2, code => $bad }) for 1 .. 5;
$r = api(POST => '/v1/auth/verify', { email => $e2, code => $c2 });
problem_ok($r, 422, '/code', undef, 'after 5 wrong tries the right code is refused');
is psql_reader("select status from users.users where email = '$e2'"), 'unverified',
    'still unverified';

# Resend: a new code replaces the old one; within 30 s nothing new is sent.
psql_super("update users.codes set created_at = created_at - interval '1 minute' where user_id = (select id from users.users where email = '$e2')");
$r = api(POST => '/v1/auth/verify/resend', { email => $e2 });
is $r->{status}, 202, 'resend answers 202';
my @before = events_for($e2, 'user.verification_requested');
ok wait_until(sub { events_for($e2, 'user.verification_requested') == 2 }, 20),
    'a new code was sent';
my $c3 = code_for($e2);
isnt $c3, $c2, 'a different code';
$r = api(POST => '/v1/auth/verify/resend', { email => $e2 });
is $r->{status}, 202, 'an immediate second resend answers the same';
sleep 1;
is scalar(events_for($e2, 'user.verification_requested')), 2,
    '... but sends nothing (30 s between codes)';
$r = api(POST => '/v1/auth/verify', { email => $e2, code => $c3 });
is $r->{status}, 200, 'the new code verifies';
$r = api(POST => '/v1/auth/verify/resend', { email => new_address('nobody') });
is $r->{status}, 202, 'resend for an unknown address: the same 202';

# Phone numbers.
my $phone = '+1555' . sprintf('%07d', ($$ * 7 + time) % 10_000_000);
$r = api(POST => '/v1/auth/register', { phone => $phone, password => PASSWORD });
is $r->{status}, 202, 'register by phone';
my $pc = code_for($phone);
like $pc, qr/^\d{6}$/, 'code event names data.phone';
$r = api(POST => '/v1/auth/verify', { phone => $phone, code => $pc });
is $r->{status}, 200, 'phone verified';
ok api(POST => '/v1/auth/login', { phone => $phone, password => PASSWORD })->{json}{access_token},
    'login by phone';

# No enumeration: an address already registered gets the same answer.
$r = api(POST => '/v1/auth/register', { email => $email, password => 'another good passphrase' });
is $r->{status}, 202, 'registering a verified address again: 202';
is $r->{content}, $pending, '... with the same body as a new address';
ok wait_until(sub { events_for($email, 'user.registration_attempted') }, 20),
    'the owner is told by an event instead';
is scalar(events_for($email, 'user.verification_requested')), 1, 'no new code';
ok login($email)->{access_token}, 'the password did not change';

# ... and in about the same time (both hash the password first).
sub median_ms {
    my ($mk) = @_;
    my @t;
    for (1 .. 3) {
        my $t0 = time;
        api(POST => '/v1/auth/register', { email => $mk->(), password => 'another good passphrase' });
        push @t, (time - $t0) * 1000;
    }
    return (sort { $a <=> $b } @t)[1];
}
my $known = median_ms(sub { $email });
my $fresh = median_ms(sub { new_address('timing') });
cmp_ok $known / $fresh, '>', 0.33, "a known address takes about as long ($known vs $fresh ms): not much faster";
cmp_ok $known / $fresh, '<', 3, '... nor much slower';

# Bad input: 422 naming the field (or 415 for a body that is not JSON).
my @bad = (
    [{ password => PASSWORD }, '/email', 'no address'],
    [{ email => $email, phone => $phone, password => PASSWORD }, '/phone', 'both'],
    [{ email => 'not-an-email', password => PASSWORD }, '/email', 'bad email'],
    [{ email => 'a b@x.io', password => PASSWORD }, '/email', 'email with a space'],
    [{ email => 7, password => PASSWORD }, '/email', 'email not a string'],
    [{ phone => '5551234567', password => PASSWORD }, '/phone', 'phone not E.164'],
    [{ phone => '+0551234567', password => PASSWORD }, '/phone', 'phone with country 0'],
    [{ email => new_address(), }, '/password', 'no password'],
    [{ email => new_address(), password => 'short1!' }, '/password', '7 characters'],
    [{ email => new_address(), password => 'x' x 129 }, '/password', '129 characters'],
    [{ email => new_address(), password => 'password1' }, '/password', 'a common password'],
    [{ email => new_address(), password => 'Trustno1' }, '/password', 'common, other case'],
    [{ email => new_address(), password => PASSWORD, admin => 1 }, '/admin', 'unknown field'],
);
for my $b (@bad) {
    problem_ok(api(POST => '/v1/auth/register', $b->[0]), 422, $b->[1], undef, "register: $b->[2]");
}
$r = api(POST => '/v1/auth/register', { email => new_address(), password => "\x{e9}" x 8 });
is $r->{status}, 202, '8 characters of two bytes each are enough';
problem_ok(api(POST => '/v1/auth/register', [1]), 422, '', undef, 'a body that is not an object');
problem_ok(api(POST => '/v1/auth/register', 'email=x', undef, { 'Content-Type' => 'application/x-www-form-urlencoded' }),
    415, undef, qr/application\/json/, 'a form body');
$r = api(POST => '/v1/auth/register', '{"email":');
is $r->{status}, 400, 'malformed JSON: 400';
problem_ok(api(POST => '/v1/auth/verify', { email => $email, code => '12345' }), 422, '/code', undef, 'verify: 5 digits');
problem_ok(api(POST => '/v1/auth/verify', { email => $email, code => 'abcdef' }), 422, '/code', undef, 'verify: letters');
problem_ok(api(POST => '/v1/auth/verify', { email => $email }), 422, '/code', undef, 'verify: no code');
problem_ok(api(POST => '/v1/auth/verify', { code => '123456' }), 422, '/email', undef, 'verify: no address');
problem_ok(api(POST => '/v1/auth/verify/resend', { email => 'x' }), 422, '/email', undef, 'resend: bad email');
$r = api(POST => '/v1/auth/verify', { email => new_address('ghost'), code => '123456' });
problem_ok($r, 422, '/code', undef, 'verify for an unknown address looks like a wrong code');

done_testing;
