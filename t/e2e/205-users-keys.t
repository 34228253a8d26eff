# Signing-key rotation the blueprint's way (scripts/rotate-jwt-key):
# the new key joins the JWKS and the edge reloads before users signs with
# it, so tokens signed before and after both pass; once the old key's
# tokens have expired, prune drops it and the edge refuses what is left.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;

my $rotate = top_dir() . '/scripts/rotate-jwt-key';
my $email = new_address('keys');
signup($email);
my $old = login($email)->{access_token};
my $kid0 = header($old)->{kid};
is api(GET => '/v1/users/me', undef, $old)->{status}, 200, 'a token of the first key';

is system($rotate), 0, 'rotate-jwt-key: rotate';
my @kids = map { $_->{kid} } @{ api(GET => '/.well-known/jwks.json')->{json}{keys} };
is scalar(@kids), 2, 'the JWKS now holds two keys';
ok((grep { $_ eq $kid0 } @kids), 'the old one among them');
my $new;
ok wait_until(sub { $new = login($email)->{access_token}; header($new)->{kid} ne $kid0 }, 5),
    'users signs with the new key without a restart';
is api(GET => '/v1/users/me', undef, $new)->{status}, 200, 'the edge accepts the new key';
is api(GET => '/v1/users/me', undef, $old)->{status}, 200, 'and still the old key\'s tokens';

$ENV{KORDON_JWT_RETIRE_S} = 3600;
is system($rotate, 'prune'), 0, 'prune before the old tokens expired';
is scalar(@{ api(GET => '/.well-known/jwks.json')->{json}{keys} }), 2, '... keeps the old key';

$ENV{KORDON_JWT_RETIRE_S} = 0;
is system($rotate, 'prune'), 0, 'prune once they have';
@kids = map { $_->{kid} } @{ api(GET => '/.well-known/jwks.json')->{json}{keys} };
is_deeply \@kids, [header($new)->{kid}], 'only the new key is left';
ok !-e "$ENV{KORDON_RUN}/keys/$kid0.pem", 'the old private key is deleted';
my $r;
ok wait_until(sub { $r = api(GET => '/v1/users/me', undef, $old); $r->{status} == 401 }, 5),
    'the edge refuses a token of the dropped key';
like $r->{json}{detail} // '', qr/unknown key/, '... as an unknown key';
is api(GET => '/v1/users/me', undef, $new)->{status}, 200, 'the new key\'s tokens pass';

done_testing;
