# Social login through the edge against the local OpenID Connect provider
# (t/fixtures/oidc, on the port the stack's users names as provider
# "local"): start redirects with a state cookie; the callback answers
# tokens (amr ["oidc"]), creating an account or linking one by verified
# email.  A state mismatch, a missing cookie, a replayed code, a badly
# signed id_token and a wrong nonce are all refused with problem+json.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;
use Kordon::OIDC;

plan skip_all => 'the stack names no oidc port' unless $ENV{KORDON_OIDC_PORT};
my $idp = oidc_start(port => $ENV{KORDON_OIDC_PORT});
END { oidc_stop($idp) }
my $tag = "$$-" . time;

# start: returns (cookie value, authorization URL)
sub start {
    my $r = api(GET => '/v1/auth/oauth/local/start');
    is $r->{status}, 302, 'start: 302';
    my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /kordon_oauth_state=([^;]+)/;
    return ($cookie, $r->{headers}{location}, $r);
}

# callback: the browser comes back through the edge with the cookie
sub callback {
    my ($cb, $cookie) = @_;
    my ($path) = $cb->{location} =~ m{^https://[^/]+(/.*)$};
    return api(GET => $path, undef, undef, $cookie ? { Cookie => "kordon_oauth_state=$cookie" } : {});
}

sub login_as {
    my (%user) = @_;
    my ($cookie, $url) = start();
    return callback(oidc_authorize($url, %user), $cookie);
}

my ($cookie, $url, $r) = start();
like $url, qr{^\Q$idp->{issuer}\E/authorize\?}, 'to the provider\'s authorization endpoint';
like $url, qr/code_challenge_method=S256/, 'with PKCE S256';
like $url, qr/[?&]nonce=/, 'and a nonce';
like $r->{headers}{'set-cookie'}, qr/HttpOnly/, 'the state cookie is HttpOnly';
like $r->{headers}{'set-cookie'}, qr/Secure/, '... and Secure';
like $url, qr/[?&]state=\Q$cookie\E(&|$)/, 'the state in the URL is the cookie';

# a new person
my $email = new_address('oidc');
my $cb = oidc_authorize($url, sub => "s-$email", email => $email, email_verified => 1);
is $cb->{status}, 302, 'the provider sends the browser back';
$r = callback($cb, $cookie);
is $r->{status}, 200, 'callback: 200';
my $at = $r->{json}{access_token};
ok $at && $r->{json}{refresh_token}, 'tokens';
is_deeply claims($at)->{amr}, ['oidc'], 'amr ["oidc"]';
like $r->{headers}{'set-cookie'} // '', qr/kordon_oauth_state=;.*Max-Age=0/, 'the state cookie is cleared';
my $me = api(GET => '/v1/users/me', undef, $at);
is $me->{status}, 200, 'the token works at the edge';
is $me->{json}{email}, lc $email, 'a new account with the provider\'s email';
is $me->{json}{status}, 'active', 'active';
my $uid = $me->{json}{id};
is audit_count('user.register', $uid), 1, 'the new account is audited';

# the same person again: the same account
$r = login_as(sub => "s-$email", email => $email, email_verified => 1);
is $r->{status}, 200, 'a second social login: 200';
is claims($r->{json}{access_token})->{sub}, $uid, 'the same account';

# link by verified email to an account with a password
my $pw_email = new_address('link');
my $pw_uid = signup($pw_email);
$r = login_as(sub => "s-$pw_email", email => $pw_email, email_verified => 1);
is $r->{status}, 200, 'a verified email links to the existing account';
is claims($r->{json}{access_token})->{sub}, $pw_uid, 'the same user id';
ok login($pw_email)->{access_token}, 'its password still works';

# an unverified email never links
my $other = new_address('nolink');
signup($other);
problem_ok(login_as(sub => "s-$other", email => $other, email_verified => 0), 409, undef,
    qr/exists/, 'an unverified email of a known account: 409, no link');

# refusals
problem_ok(api(GET => '/v1/auth/oauth/nosuch/start'), 404, undef, qr/no such login provider/,
    'an unknown provider: 404');

my ($c1, $u1) = start();
my ($c2, $u2) = start();
problem_ok(callback(oidc_authorize($u1, sub => "x1-$tag", email => new_address('x'), email_verified => 1), $c2),
    400, undef, qr/state/i, 'state mismatch (another login\'s cookie): 400');
problem_ok(callback(oidc_authorize($u2, sub => "x2-$tag", email => new_address('x'), email_verified => 1), undef),
    400, undef, qr/state/i, 'no state cookie: 400');

# a code works once: the code of a finished login, brought to a new login
($c1, $u1) = start();
my $used = oidc_authorize($u1, sub => "x3-$tag", email => new_address('x'), email_verified => 1);
is callback($used, $c1)->{status}, 200, 'a login';
problem_ok(callback($used, $c1), 400, undef, qr/state/i, 'the same callback again: its state is spent');
($c2, $u2) = start();
my ($state2) = $u2 =~ /[?&]state=([^&]+)/;
(my $replay = { %$used })->{location} =~ s/([?&]state=)[^&]+/$1$state2/;
problem_ok(callback($replay, $c2), 400, undef, undef, 'a replayed code on a fresh state: 400');

oidc_control($idp, sig => 'other');
problem_ok(login_as(sub => "x4-$tag", email => new_address('x'), email_verified => 1), 401, undef,
    qr/signature|id_token/i, 'an id_token signed by an unpublished key: 401');
oidc_control($idp, reset => 1);
oidc_control($idp, sig => 'none');
problem_ok(login_as(sub => "x5-$tag", email => new_address('x'), email_verified => 1), 401, undef, undef,
    'an unsigned id_token (alg none): 401');
oidc_control($idp, reset => 1);
oidc_control($idp, nonce => 'wrong');
problem_ok(login_as(sub => "x6-$tag", email => new_address('x'), email_verified => 1), 401, undef,
    qr/nonce/i, 'a wrong nonce: 401');
oidc_control($idp, reset => 1);
oidc_control($idp, aud => 'wrong');
problem_ok(login_as(sub => "x7-$tag", email => new_address('x'), email_verified => 1), 401, undef, undef,
    'another client\'s id_token: 401');
oidc_control($idp, reset => 1);
is login_as(sub => "x8-$tag", email => new_address('x'), email_verified => 1)->{status}, 200,
    'with the provider behaving again: 200';
is psql_reader("select count(*) from users.users u join users.oauth_identities i on i.user_id = u.id"
    . " where i.sub in ('x4-$tag', 'x5-$tag', 'x6-$tag', 'x7-$tag')"), 0, 'no account came of a refused login';

# a deleted account: its identity goes with it; the provider's person
# may start afresh
my $gone = new_address('gone');
$r = login_as(sub => "s-$gone", email => $gone, email_verified => 1);
my $gone_id = claims($r->{json}{access_token})->{sub};
is api(DELETE => '/v1/users/me', undef, $r->{json}{access_token})->{status}, 204, 'a social account deletes itself';
$r = login_as(sub => "s-$gone", email => $gone, email_verified => 1);
is $r->{status}, 200, 'the same person logs in again';
isnt claims($r->{json}{access_token})->{sub}, $gone_id, 'into a new account, not the anonymized one';

done_testing;
