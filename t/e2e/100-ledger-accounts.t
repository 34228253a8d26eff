# Ledger accounts: a user opens one wallet per currency (again is the same
# wallet), sees balances in minor units with the currency's exponent, and
# reads only their own accounts; support and admin read anyone's; anything
# else looks like an account that does not exist.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $alice = user_id('alice');
my $bob   = user_id('bob');

# Opening.
my $r = ledger(POST => '/v1/accounts', $alice, { currency => 'EUR' });
is $r->{status}, 201, 'a EUR wallet is opened';
my $eur = $r->{json};
like $eur->{id}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    'its id is a UUID';
is_deeply [@$eur{qw(owner kind currency exponent posted pending available closed)}],
    [$alice->{user}, 'wallet', 'EUR', 2, 0, 0, 0, JSON::PP::false],
    'owned by the caller, empty, open';
is_deeply $eur->{formatted}, { posted => '0.00', pending => '0.00', available => '0.00' },
    'formatted with two decimals';
is $eur->{$_}, 0, "$_ is 0" for qw(debits_posted credits_posted debits_pending credits_pending);

$r = ledger(POST => '/v1/accounts', $alice, { currency => 'EUR' });
is $r->{status}, 200, 'opening it again answers 200';
is $r->{json}{id}, $eur->{id}, 'with the same wallet';

$r = ledger(POST => '/v1/accounts', $alice, { currency => 'JPY' });
is $r->{status}, 201, 'a JPY wallet';
is $r->{json}{exponent}, 0, 'JPY has no minor unit';
is $r->{json}{formatted}{available}, '0', 'and shows no decimals';
$r = ledger(POST => '/v1/accounts', $alice, { currency => 'KWD' });
is $r->{json}{formatted}{available}, '0.000', 'KWD shows three decimals';

# Listing.
$r = ledger(GET => '/v1/accounts', $alice);
is $r->{status}, 200, 'list';
is $r->{json}{owner}, $alice->{user}, 'of the caller';
is_deeply [map { $_->{currency} } @{ $r->{json}{items} }], [qw(EUR JPY KWD)],
    'every wallet, by currency';
$r = ledger(GET => '/v1/accounts', $bob);
is_deeply $r->{json}{items}, [], 'another user has none';
$r = ledger(GET => "/v1/accounts?owner=$alice->{user}", $bob);
problem_ok($r, 403, undef, qr/support and admin/, "a user listing another's");
$r = ledger(GET => "/v1/accounts?owner=$alice->{user}", support_id());
is scalar @{ $r->{json}{items} }, 3, 'support lists anyone\'s';

# Reading one.
$r = ledger(GET => "/v1/accounts/$eur->{id}", $alice);
is $r->{status}, 200, 'the owner reads it';
is_deeply $r->{json}, $eur, 'as it was opened';
problem_ok(ledger(GET => "/v1/accounts/$eur->{id}", $bob), 404, undef,
    qr/no such account/, 'another user');
is ledger(GET => "/v1/accounts/$eur->{id}", support_id())->{status}, 200,
    'support reads it';
is ledger(GET => "/v1/accounts/$eur->{id}", admin_id())->{status}, 200,
    'admin reads it';
problem_ok(ledger(GET => '/v1/accounts/' . uc $eur->{id}, $bob), 404, undef,
    qr/no such account/, 'the id in capitals is the same id');
is ledger(GET => '/v1/accounts/' . uc $eur->{id}, $alice)->{status}, 200,
    'which its owner reads';
problem_ok(ledger(GET => '/v1/accounts/00000000-0000-7000-8000-000000000000', $alice),
    404, undef, qr/no such account/, 'an unknown id');
problem_ok(ledger(GET => '/v1/accounts/not-a-uuid', $alice), 404, undef,
    qr/no such account/, 'a malformed id');

# Bad requests.
problem_ok(ledger(POST => '/v1/accounts', $bob, { currency => 'XXX' }), 422,
    '/currency', qr/unknown currency/, 'a currency the ledger does not hold');
problem_ok(ledger(POST => '/v1/accounts', $bob, { currency => 'eur' }), 422,
    '/currency', undef, 'a lower-case code');
problem_ok(ledger(POST => '/v1/accounts', $bob, { currency => 978 }), 422,
    '/currency', undef, 'a numeric code');
problem_ok(ledger(POST => '/v1/accounts', $bob, {}), 422, '/currency', undef,
    'no currency');
problem_ok(ledger(POST => '/v1/accounts', $bob, { currency => 'EUR', kind => 'adjustments' }),
    422, '/kind', undef, 'an unknown field');
problem_ok(ledger(POST => '/v1/accounts', $bob, '{"currency": "EUR"'), 400,
    undef, qr/not valid JSON/, 'truncated JSON');
problem_ok(ledger(POST => '/v1/accounts', $bob, '["EUR"]'), 400, undef,
    qr/JSON object/, 'an array');
problem_ok(ledger(POST => '/v1/accounts', $bob, '{"currency":"EUR"}',
    { 'Content-Type' => 'text/plain' }), 415, undef, qr/application\/json/,
    'not JSON');
is_deeply ledger(GET => '/v1/accounts', $bob)->{json}{items}, [],
    'none of it opened anything';

# Identity.
problem_ok(ledger(GET => '/v1/accounts', undef), 401, undef,
    qr/missing identity signature/, 'no edge signature');
problem_ok(ledger(GET => '/v1/accounts', { roles => 'user' }), 401, undef,
    qr/names no user/, 'a signed identity without a user');

# Concurrent openings of one wallet: one opens it, all get it.
my $carol = user_id('carol');
my @pids;
pipe my $rd, my $wr or die "pipe: $!";
for (1 .. 10) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        my $a = ledger(POST => '/v1/accounts', $carol, { currency => 'SEK' });
        syswrite $wr, "$a->{status} " . ($a->{json}{id} // '-') . "\n";
        exit 0;
    }
    push @pids, $pid;
}
close $wr;
my @got = map { [split] } <$rd>;
waitpid $_, 0 for @pids;
is scalar @got, 10, 'ten concurrent openings answered';
is scalar(grep { $_->[0] == 201 } @got), 1, 'exactly one opened it';
is scalar(grep { $_->[0] == 200 } @got), 9, 'the others found it';
my %ids = map { $_->[1] => 1 } @got;
is scalar keys %ids, 1, 'all with the same wallet';
is sql_value("select count(*) from ledger.accounts where owner = '$carol->{user}'"), 1,
    'one row in the database';

# System accounts, owned by nobody: per currency one adjustments account
# and 8 shards each of fee revenue and cashback expense.
is sql_value(q{select count(*) from ledger.currencies c
    where (select count(*) from ledger.accounts a
            where a.currency = c.code and a.owner is null) <> 17
       or (select count(distinct (kind, shard)) from ledger.accounts a
            where a.currency = c.code and a.owner is null) <> 17}), 0,
    'every currency has its fee and cashback shards and adjustments account';

invariants_ok('accounts');
done_testing;
