# Blocking reaches the edge: an admin blocks a user, and within a second
# the edge refuses that user's live access token (401, token revoked)
# on every backend's routes, from the revocation stream alone; other
# users' tokens keep working.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use Kordon::E2E;
use Kordon::Users;

my $admin = login($ENV{KORDON_ADMIN_EMAIL}, $ENV{KORDON_ADMIN_PASSWORD})->{access_token};
my $bad_email = new_address('blocked');
my $bad = signup($bad_email);
my $bad_at = login($bad_email)->{access_token};
my $good_email = new_address('bystander');
signup($good_email);
my $good_at = login($good_email)->{access_token};

is api(GET => '/v1/users/me', undef, $bad_at)->{status}, 200, 'the token works before the block';
is api(GET => '/v1/users/me', undef, $good_at)->{status}, 200, 'so does another user\'s';

my $t0 = time;
is api(POST => "/v1/admin/users/$bad/block", { reason => 'account takeover' }, $admin)->{status}, 204,
    'the admin blocks the user';
my $r;
ok wait_until(sub { $r = api(GET => '/v1/users/me', undef, $bad_at); $r->{status} == 401 }, 1),
    'the edge refuses the blocked user\'s live token within a second';
my $took = time - $t0;
cmp_ok $took, '<=', 1.0, sprintf('after %.2f s', $took);
problem_ok($r, 401, undef, qr/revoked/, 'a problem+json naming the revocation');
is api(GET => '/v1/accounts', undef, $bad_at)->{status}, 401, 'on another backend\'s routes too';
is api(GET => '/v1/users/me', undef, $good_at)->{status}, 200, 'another user is unaffected';
is api(POST => '/v1/auth/login', { email => $bad_email, password => PASSWORD })->{status}, 403,
    'and the blocked user cannot log in again';

is api(POST => "/v1/admin/users/$bad/unblock", undef, $admin)->{status}, 204, 'unblock';
sleep 1.1;    # the cut's not-before is the second after the block
my $again = login($bad_email)->{access_token};
is api(GET => '/v1/users/me', undef, $again)->{status}, 200, 'a token issued after the unblock works';

done_testing;
