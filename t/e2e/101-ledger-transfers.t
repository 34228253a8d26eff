# P2P transfers: money moves from the caller's wallet to another wallet
# of the same currency, in minor units, never below zero; every bad input
# is a 4xx problem naming its field and writes nothing; a transfer is
# visible to both parties and staff, and announced on ledger.events.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my ($alice, $bob, $carol) = map { user_id($_) } qw(alice bob carol);
my $a_eur = open_wallet($alice, 'EUR');
my $b_eur = open_wallet($bob, 'EUR');
my $c_usd = open_wallet($carol, 'USD');
fund($a_eur, 10_000);

sub balance { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json}{posted} }
sub transfers_now { sql_value('select count(*) from ledger.transfers') }

# A transfer.
my $r = pay($alice, $a_eur, $b_eur, 2_500);
is $r->{status}, 201, 'alice pays bob 25.00';
my $t = $r->{json};
is_deeply [@$t{qw(status kind from_account_id to_account_id amount currency exponent)}],
    ['posted', 'p2p', $a_eur->{id}, $b_eur->{id}, 2500, 'EUR', 2], 'posted, as asked';
is $t->{formatted}{amount}, '25.00', 'formatted amount';
like $t->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'created_at in UTC';
is balance($a_eur), 7_500, 'alice has 75.00';
is balance($b_eur), 2_500, 'bob has 25.00';
$r = ledger(GET => "/v1/accounts/$a_eur->{id}", $alice);
is_deeply [@{ $r->{json} }{qw(debits_posted credits_posted available)}],
    [2_500, 10_000, 7_500], 'alice\'s running totals';

# Who sees it.
$r = ledger(GET => "/v1/transfers/$t->{id}", $alice);
is $r->{status}, 200, 'the payer reads it';
is_deeply $r->{json}, $t, 'the same as the answer';
is ledger(GET => "/v1/transfers/$t->{id}", $bob)->{status}, 200, 'the payee reads it';
is ledger(GET => "/v1/transfers/$t->{id}", support_id())->{status}, 200, 'support reads it';
problem_ok(ledger(GET => "/v1/transfers/$t->{id}", $carol), 404, undef,
    qr/no such transfer/, 'a third user');
problem_ok(ledger(GET => '/v1/transfers/nope', $alice), 404, undef,
    qr/no such transfer/, 'a malformed id');

# Down to exactly zero, never below.
$r = pay($alice, $a_eur, $b_eur, 7_501);
problem_ok($r, 422, '/amount', qr/insufficient funds/, 'one cent more than alice has');
is balance($a_eur), 7_500, 'nothing moved';
is pay($alice, $a_eur, $b_eur, 7_500)->{status}, 201, 'all alice has';
is balance($a_eur), 0, 'alice has 0';
problem_ok(pay($alice, $a_eur, $b_eur, 1), 422, '/amount', qr/insufficient/,
    'then not one cent more');
is pay($bob, $b_eur, $a_eur, 5_000)->{status}, 201, 'bob pays some back';

# Bad input: each a 4xx naming its field, and nothing written.
my $before = transfers_now() + 1;     # the funding just below
my %ok = (from_account_id => $a_eur->{id}, to_account_id => $b_eur->{id},
          amount => 100, currency => 'EUR');
my @bad = (
    [ 'amount zero',             { amount => 0 },              '/amount', qr/invalid fields/ ],
    [ 'amount negative',         { amount => -5 },             '/amount', undef ],
    [ 'amount fractional',       { amount => 1.5 },            '/amount', undef ],
    [ 'amount a whole real',     '{"amount": 100.0}',          '/amount', undef ],
    [ 'amount in exponent form', '{"amount": 1e2}',            '/amount', undef ],
    [ 'amount a string',         { amount => '100' },          '/amount', undef ],
    [ 'amount a boolean',        { amount => JSON::PP::true }, '/amount', undef ],
    [ 'amount null',             { amount => undef },          '/amount', undef ],
    [ 'amount over int64',       '{"amount": 9223372036854775808}', '/amount', qr/64-bit/ ],
    [ 'amount far over int64',   '{"amount": 99999999999999999999999}', '/amount', qr/64-bit/ ],
    [ 'amount over the maximum', { amount => 1_000_000_001 },  '/amount', undef ],
    [ 'from malformed',          { from_account_id => 'x' },   '/from_account_id', undef ],
    [ 'to malformed',            { to_account_id => 42 },      '/to_account_id', undef ],
    [ 'currency lower case',     { currency => 'eur' },        '/currency', undef ],
    [ 'paying yourself',         { to_account_id => $a_eur->{id} }, '/to_account_id', undef ],
    [ 'an unknown field',        { memo => 'hi' },             '/memo', undef ],
);
for my $case (@bad) {
    my ($name, $change, $ptr, $re) = @$case;
    my $body;
    if (ref $change) {
        $body = { %ok, %$change };
    } else {
        # Raw JSON for what Perl cannot say: spliced over the amount.
        (my $raw = JSON::PP->new->canonical->encode({ %ok, amount => 7 }))
            =~ s/"amount":7/substr($change, 1, -1)/e;
        $body = $raw;
    }
    problem_ok(ledger(POST => '/v1/transfers', $alice, $body, { 'Idempotency-Key' => key() }),
        422, $ptr, $re, $name);
}
for my $f (qw(from_account_id to_account_id amount currency)) {
    my %b = %ok;
    delete $b{$f};
    problem_ok(ledger(POST => '/v1/transfers', $alice, \%b, { 'Idempotency-Key' => key() }),
        422, "/$f", undef, "$f missing");
}
problem_ok(ledger(POST => '/v1/transfers', $alice, '{"amount": 1,', { 'Idempotency-Key' => key() }),
    400, undef, qr/not valid JSON/, 'malformed JSON');
problem_ok(ledger(POST => '/v1/transfers', $alice, '"EUR"', { 'Idempotency-Key' => key() }),
    400, undef, qr/JSON/, 'a JSON string');

# Refusals that need the accounts.
problem_ok(pay($bob, $a_eur, $b_eur, 100), 422, '/from_account_id',
    qr/unknown account/, 'paying from someone else\'s wallet');
problem_ok(pay($alice, $a_eur, { id => '00000000-0000-7000-8000-000000000000' }, 100, undef, 'EUR'),
    422, '/to_account_id', qr/unknown account/, 'to an account that does not exist');
my $system = { id => fund($b_eur, 1)->{from_account_id} };
problem_ok(pay($alice, $a_eur, $system, 100, undef, 'EUR'), 422, '/to_account_id',
    qr/unknown account/, 'to a system account (P2P pays wallets only)');
problem_ok(pay($alice, $a_eur, $c_usd, 100), 422, '/to_account_id',
    qr/currency mismatch/, 'EUR to a USD wallet (cross-currency)');
like ledger(POST => '/v1/transfers', $alice, { %ok, to_account_id => $c_usd->{id} },
    { 'Idempotency-Key' => key() })->{json}{errors}[0]{message}, qr/cross-currency/,
    'says cross-currency transfers are not supported';
problem_ok(pay($alice, $a_eur, $b_eur, 100, undef, 'USD'), 422, '/currency',
    qr/currency mismatch/, 'a currency the wallets do not hold');

# Missing or bad Idempotency-Key.
problem_ok(ledger(POST => '/v1/transfers', $alice, \%ok), 400, undef,
    qr/Idempotency-Key.*required/, 'no Idempotency-Key');
problem_ok(ledger(POST => '/v1/transfers', $alice, \%ok, { 'Idempotency-Key' => 'k' x 256 }),
    400, undef, qr/Idempotency-Key/, 'a key of 256 characters');
problem_ok(ledger(POST => '/v1/transfers', $alice, \%ok, { 'Idempotency-Key' => "k\tk" }),
    400, undef, qr/printable/, 'a key with a control character');
is ledger(POST => '/v1/transfers', $alice, \%ok, { 'Idempotency-Key' => 'k' x 255 })->{status},
    201, 'a key of 255 characters is fine';
$before++;

# Identity.
problem_ok(ledger(POST => '/v1/transfers', undef, \%ok, { 'Idempotency-Key' => key() }),
    401, undef, qr/identity signature/, 'no edge signature');

is transfers_now(), $before, 'no refused request wrote a transfer';
is balance($a_eur), 4_900, 'alice: 0 + 50.00 - 1.00';
is balance($b_eur), 5_101, 'bob: 25.00 + 75.00 - 50.00 + 1.00 + 0.01';

# Closed accounts (no route closes one yet: the operator does).
my $dave = user_id('dave');
my $d_eur = open_wallet($dave, 'EUR');
fund($d_eur, 1_000);
my ($rc) = psql_super("update ledger.accounts set closed = true where id = '$d_eur->{id}'");
is $rc, 0, 'dave\'s wallet closed';
problem_ok(pay($alice, $a_eur, $d_eur, 100), 422, '/to_account_id', qr/closed/,
    'paying into a closed wallet');
problem_ok(pay($dave, $d_eur, $a_eur, 100), 422, '/from_account_id', qr/closed/,
    'paying out of a closed wallet');

# The event.
my $row = sql_value("select key || ' ' || type || ' ' || (data->>'amount') || ' ' || (data->>'to_owner')
    from ledger.outbox where subject = '$t->{id}'");
is $row, "$a_eur->{id} ledger.transfer.posted 2500 $bob->{user}",
    'an outbox event keyed by the paying account, naming both owners';
# The broker's address as it is now: 099-restart.t restarts the stack, and
# the mock broker with it, on a new port.
if (open my $fh, '<', "$ENV{KORDON_RUN}/kafka/bootstrap") {
    chomp($ENV{KAFKA_BOOTSTRAP} = <$fh>);
}
my ($event) = (undef);
ok wait_until(sub {
    ($event) = grep { ($_->{value}{subject} // '') eq $t->{id} } kafka_read('ledger.events');
    $event }, 30), 'the event reaches ledger.events';
is $event->{key}, $a_eur->{id}, 'keyed by the paying account';
is $event->{value}{type}, 'ledger.transfer.posted', 'type';
is $event->{value}{actor}, $alice->{user}, 'actor is the payer';
is $event->{value}{data}{from_owner}, $alice->{user}, 'data names the payer';

invariants_ok('transfers');
done_testing;
