# Login through the edge: the token pair and the access token's claims
# (the contract the edge verifies); wrong passwords and unknown accounts
# answered alike and in about the same time; the lockout after 5
# failures, doubling up to 15 minutes, reset by a success, each failure
# audited.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use Kordon::E2E;
use Kordon::Users;

my $email = new_address('login');
my $uid = signup($email);

my $r = api(POST => '/v1/auth/login', { email => $email, password => PASSWORD, device => 'pixel 8' },
    undef, { 'User-Agent' => 'kordon-test/1.0' });
is $r->{status}, 200, 'login answers 200';
my $t = $r->{json};
is $t->{token_type}, 'Bearer', 'token_type Bearer';
is $t->{expires_in}, 900, 'expires_in 900';
like $t->{refresh_token}, qr/^[A-Za-z0-9_-]{43}$/, 'refresh token: 256 bits, base64url';
my $h = header($t->{access_token});
is $h->{alg}, 'ES256', 'ES256';
is $h->{typ}, 'at+jwt', 'typ at+jwt';
my $jwks = api(GET => '/.well-known/jwks.json')->{json};
ok((grep { $_->{kid} eq $h->{kid} && $_->{alg} eq 'ES256' && $_->{use} eq 'sig' } @{ $jwks->{keys} }),
    'kid is in the public JWKS, with alg and use');
ok !(grep { exists $_->{d} } @{ $jwks->{keys} }), 'the JWKS has no private part';
my $c = claims($t->{access_token});
is $c->{iss}, 'kordon-users', 'iss';
is $c->{aud}, 'kordon', 'aud';
is $c->{sub}, $uid, 'sub is the user id';
is_deeply $c->{roles}, ['user'], 'roles';
is_deeply $c->{amr}, ['pwd'], 'amr';
like $c->{sid}, qr/^[0-9a-f-]{36}$/, 'sid';
like $c->{jti}, qr/^[0-9a-f-]{36}$/, 'jti';
is $c->{exp} - $c->{iat}, 900, 'exp = iat + 900';
cmp_ok abs($c->{iat} - time), '<', 60, 'iat is now';
isnt claims(login($email)->{access_token})->{jti}, $c->{jti}, 'a new jti each time';

$r = api(GET => '/v1/users/me', undef, $t->{access_token});
is $r->{status}, 200, 'the edge accepts the token';
is $r->{json}{id}, $uid, 'GET /v1/users/me: id';
is $r->{json}{email}, $email, '... email';
is $r->{json}{status}, 'active', '... status';
is_deeply $r->{json}{roles}, ['user'], '... roles';
ok exists $r->{json}{phone}, '... phone (null)';
is psql_reader("select device || '|' || user_agent from users.sessions where id = '$c->{sid}'"),
    'pixel 8|kordon-test/1.0', 'the session keeps device and user agent';
is audit_count('login.ok', $uid), 2, 'logins audited';

# Wrong password and unknown account: the same answer.
my $wrong = api(POST => '/v1/auth/login', { email => $email, password => 'not the password' });
my $ghost = api(POST => '/v1/auth/login', { email => new_address('ghost'), password => 'not the password' });
problem_ok($wrong, 401, undef, qr/invalid credentials/, 'wrong password');
problem_ok($ghost, 401, undef, qr/invalid credentials/, 'unknown account');
delete $_->{json}{request_id} for $wrong, $ghost;
is_deeply $ghost->{json}, $wrong->{json}, 'the same body for both';
sub median_ms {
    my ($body) = @_;
    my @t;
    for (1 .. 3) {
        my $t0 = time;
        api(POST => '/v1/auth/login', $body);
        push @t, (time - $t0) * 1000;
    }
    return (sort { $a <=> $b } @t)[1];
}
my $other = new_address('timing');
signup($other);
my $known = median_ms({ email => $other, password => 'a wrong password' });
my $unknown = median_ms({ email => new_address('ghost'), password => 'a wrong password' });
psql_super("update users.users set failed_logins = 0, locked_until = null where email = '$other'");
cmp_ok $unknown / $known, '>', 0.33, "unknown account takes about as long ($unknown vs $known ms): not much faster";
cmp_ok $unknown / $known, '<', 3, '... nor much slower';
cmp_ok audit_count('login.failed'), '>=', 5, 'failures audited, unknown accounts too';

# Lockout: 5 failures lock for 1 s, then 2 s, ... at most 15 minutes.
my $lock = new_address('lock');
my $lid = signup($lock);
for my $i (1 .. 5) {
    $r = api(POST => '/v1/auth/login', { email => $lock, password => "wrong $i" });
    is $r->{status}, 401, "failure $i: 401";
}
is audit_count('login.failed', $lid), 5, 'each failure audited';
$r = api(POST => '/v1/auth/login', { email => $lock, password => PASSWORD });
problem_ok($r, 429, undef, qr/too many failed logins/, 'locked: even the right password waits');
like $r->{headers}{'retry-after'}, qr/^\d+$/, 'with Retry-After';
sleep 1.2;
$r = api(POST => '/v1/auth/login', { email => $lock, password => PASSWORD });
is $r->{status}, 200, 'after the delay the right password works';
is psql_reader("select failed_logins from users.users where id = '$lid'"), 0,
    'and a success resets the counter';
api(POST => '/v1/auth/login', { email => $lock, password => "wrong $_" }) for 1 .. 5;
sleep 1.2;
api(POST => '/v1/auth/login', { email => $lock, password => 'wrong 6' });
my $secs = psql_reader("select round(extract(epoch from locked_until - now())) from users.users where id = '$lid'");
ok $secs >= 1 && $secs <= 2, "the 6th failure locks for 2 s ($secs)";
psql_super("update users.users set failed_logins = 40, locked_until = null where id = '$lid'");
api(POST => '/v1/auth/login', { email => $lock, password => 'wrong 41' });
$secs = psql_reader("select round(extract(epoch from locked_until - now())) from users.users where id = '$lid'");
ok $secs > 890 && $secs <= 900, "the delay stops at 15 minutes ($secs)";
$r = api(POST => '/v1/auth/login', { email => $lock, password => 'wrong 42' });
is $r->{status}, 429, 'a try while locked is refused';
$secs = psql_reader("select round(extract(epoch from locked_until - now())) from users.users where id = '$lid'");
ok $secs <= 900, '... and does not lock longer';

# An address without an account locks the same way, so the lockout does
# not tell which addresses exist.
my $nobody = new_address('nobody');
for my $i (1 .. 5) {
    is api(POST => '/v1/auth/login', { email => $nobody, password => "wrong $i" })->{status}, 401,
        "unknown address, failure $i: 401";
}
$r = api(POST => '/v1/auth/login', { email => $nobody, password => 'wrong 6' });
is $r->{status}, 429, 'unknown address: the 6th try is 429 too';
like $r->{headers}{'retry-after'}, qr/^\d+$/, '... with Retry-After';

# Bad input.
problem_ok(api(POST => '/v1/auth/login', { email => $email }), 422, '/password', undef, 'login: no password');
problem_ok(api(POST => '/v1/auth/login', { password => PASSWORD }), 422, '/email', undef, 'login: no address');
problem_ok(api(POST => '/v1/auth/login', { email => 'nope', password => PASSWORD }), 422, '/email', undef, 'login: bad email');
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => ['x'] }), 422, '/password', undef, 'login: password not a string');
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => 'x' x 129 }), 422, '/password', undef, 'login: 129 characters');
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => PASSWORD, device => 'd' x 201 }), 422, '/device', undef, 'login: device too long');
problem_ok(api(POST => '/v1/auth/login', { email => $email, password => PASSWORD, remember => 1 }), 422, '/remember', undef, 'login: unknown field');

done_testing;
