# A machine client with an API key: conf/routes.conf opens the ledger's
# account and transfer routes to `kordon_auth jwt apikey`.  A user makes
# a wallet with a token, a key is made for that user (scripts/apikey),
# the key reads the user's accounts (X-Api-Key alone, the edge signs the
# owner as X-Kordon-User), routes not opened to keys refuse it, and a
# revoked key is refused within the store's ttl (5 s).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Users;
use Kordon::Ledger qw(problem_ok);

my $email = new_address('machine');
my $uid = signup($email);
my $at = login($email)->{access_token};

my $r = api(POST => '/v1/accounts', { currency => 'EUR' }, $at);
is $r->{status}, 201, 'the user opens a EUR wallet with a token';
my $wallet = $r->{json}{id};

my $out = `scripts/apikey create --owner $uid --roles user --name e2e-211 2>&1`;
is $?, 0, 'scripts/apikey creates a key for the user';
my ($id) = $out =~ /^id:\s+([0-9a-f]{16})$/m;
my ($key) = $out =~ /^key:\s+(kdk_\S+)$/m;
ok $id && $key, 'and prints its id and the key once';

my $k = { 'X-Api-Key' => $key };
$r = api(GET => '/v1/accounts', undef, undef, $k);
is $r->{status}, 200, 'the key reads the accounts';
is_deeply [map { $_->{id} } @{ $r->{json}{items} || $r->{json}{accounts} || [] }],
    [$wallet], 'only that user\'s wallet'
    or diag $r->{content};
$r = api(GET => "/v1/accounts/$wallet", undef, undef, $k);
is $r->{status}, 200, 'and the wallet itself';
is $r->{json}{owner}, $uid, 'owned by the key\'s owner';
$r = api(GET => '/v1/transfers/00000000-0000-4000-8000-000000000000', undef, undef, $k);
is $r->{status}, 404, 'the transfer routes take the key too (the ledger answers: no such transfer)'
    or diag $r->{content};

$r = api(GET => '/v1/users/me', undef, undef, $k);
problem_ok($r, 401, undef, qr/bearer token/, 'a route not opened to keys');
$r = api(GET => '/v1/accounts', undef, undef,
    { 'X-Api-Key' => "kdk_${id}_" . ('A' x 43) });
problem_ok($r, 401, undef, qr/^invalid api key$/, 'a wrong secret');

is system("scripts/apikey revoke $id > /dev/null"), 0, 'the key is revoked';
ok wait_until(sub { api(GET => '/v1/accounts', undef, undef, $k)->{status} == 401 }, 7),
    'and refused within the cache\'s 5 s';
$r = api(GET => '/v1/accounts', undef, undef, $k);
problem_ok($r, 401, undef, qr/^api key revoked$/, 'a revoked key');
is $r->{headers}{'www-authenticate'}, 'ApiKey', 'challenged as an API key';
is api(GET => '/v1/accounts', undef, $at)->{status}, 200, 'the user\'s token still works';

done_testing;
