# Manual adjustments: only an admin makes them, always with a reason and
# an Idempotency-Key, always as a new balancing transfer against the
# currency's adjustments account -- which may go below zero, while the
# user's wallet may not.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $admin = admin_id();
my $alice = user_id('alice');
my $wallet = open_wallet($alice, 'CHF');

sub adjust {
    my ($id, $body, $k) = @_;
    return ledger(POST => '/v1/admin/adjustments', $id, $body,
        { 'Idempotency-Key' => $k // key() });
}
my %ok = (account_id => $wallet->{id}, amount => 5_000, currency => 'CHF',
          direction => 'credit', reason => 'goodwill credit, ticket 4711');
sub balance { ledger(GET => "/v1/accounts/$_[0]", support_id())->{json} }

my $adj_before = sql_value(q{select credits_posted - debits_posted
    from ledger.accounts where kind = 'adjustments' and currency = 'CHF'});

# Credit.
my $r = adjust($admin, \%ok);
is $r->{status}, 201, 'an admin credits 50.00';
my $t = $r->{json};
is_deeply [@$t{qw(kind status to_account_id amount currency reason)}],
    ['adjustment', 'posted', $wallet->{id}, 5_000, 'CHF', $ok{reason}],
    'a posted adjustment carrying its reason';
my $system = balance($t->{from_account_id});
is $system->{kind}, 'adjustments', 'paid by the adjustments account';
is $system->{owner}, undef, 'which nobody owns';
is $system->{posted}, $adj_before - 5_000, 'and which goes below zero for it';
is balance($wallet->{id})->{posted}, 5_000, 'alice has 50.00';

# Debit.
$r = adjust($admin, { %ok, amount => 2_000, direction => 'debit',
                      reason => 'duplicate credit reversed' });
is $r->{status}, 201, 'an admin debits 20.00';
is $r->{json}{from_account_id}, $wallet->{id}, 'from alice';
is $r->{json}{to_account_id}, $t->{from_account_id}, 'to the adjustments account';
is balance($wallet->{id})->{posted}, 3_000, 'alice has 30.00';
problem_ok(adjust($admin, { %ok, amount => 3_001, direction => 'debit' }), 422,
    '/amount', qr/insufficient funds/, 'a debit below zero');
is balance($wallet->{id})->{posted}, 3_000, 'refused whole';

# Retried with its key: once.
my $k = key();
my $first = adjust($admin, { %ok, amount => 10 }, $k);
my $again = adjust($admin, { %ok, amount => 10 }, $k);
is $again->{content}, $first->{content}, 'a retried adjustment answers the same';
is balance($wallet->{id})->{posted}, 3_010, 'and credits once';
problem_ok(adjust($admin, { %ok, amount => 10, reason => 'other' }, $k), 409, undef,
    qr/different request/, 'the key with another reason');

# Who may.
problem_ok(adjust($alice, \%ok), 403, undef, qr/admin role/, 'a user');
problem_ok(adjust(support_id(), \%ok), 403, undef, qr/admin role/, 'support');
problem_ok(ledger(POST => '/v1/admin/adjustments', $admin, \%ok), 400, undef,
    qr/Idempotency-Key/, 'no Idempotency-Key');

# Bad input.
for my $case (
    [ 'no reason',          { reason => undef },        '/reason' ],
    [ 'an empty reason',    { reason => '' },           '/reason' ],
    [ 'a blank reason',     { reason => " \t " },       '/reason' ],
    [ 'a reason too long',  { reason => 'x' x 501 },    '/reason' ],
    [ 'a numeric reason',   { reason => 42 },           '/reason' ],
    [ 'no direction',       { direction => undef },     '/direction' ],
    [ 'a sideways one',     { direction => 'sideways' },'/direction' ],
    [ 'amount 0',           { amount => 0 },            '/amount' ],
    [ 'amount fractional',  { amount => 0.5 },          '/amount' ],
    [ 'a malformed account',{ account_id => 'acc-1' },  '/account_id' ],
    [ 'an unknown field',   { memo => 1 },              '/memo' ],
) {
    my ($name, $change, $ptr) = @$case;
    my %b = (%ok, %$change);
    delete $b{$_} for grep { !defined $b{$_} } keys %b;
    problem_ok(adjust($admin, \%b), 422, $ptr, undef, $name);
}
problem_ok(adjust($admin, { %ok, account_id => '00000000-0000-7000-8000-000000000000' }),
    422, '/account_id', qr/unknown account/, 'an account that does not exist');
problem_ok(adjust($admin, { %ok, currency => 'EUR' }), 422, '/currency',
    qr/currency mismatch/, 'a currency the wallet does not hold');
problem_ok(adjust($admin, { %ok, currency => 'XXX' }), 422, '/currency',
    qr/unknown currency/, 'a currency the ledger does not hold');
is adjust($admin, { %ok, reason => 'x' x 500, amount => 1 })->{status}, 201,
    'a reason of 500 bytes is fine';
is balance($wallet->{id})->{posted}, 3_011, 'only the good ones moved money';

# The adjustments show in the log of events.
is sql_value("select data->>'reason' from ledger.outbox where subject = '$t->{id}'"),
    $ok{reason}, 'the event carries the reason';
is sql_value("select actor from ledger.transfers where id = '$t->{id}'"),
    $admin->{user}, 'the transfer records which admin';

invariants_ok('adjustments');
done_testing;
