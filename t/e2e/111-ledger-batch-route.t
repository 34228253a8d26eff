# POST /v1/transfers/batch: up to 1,000 transfers in one request and one
# transaction, each with its own idempotency_key and its own outcome
# (TigerBeetle's create_transfers): a refusal refuses only itself, a
# retry of the batch replays every outcome, and a malformed batch is
# refused whole with every problem's pointer, before anything is written.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my ($ola, $per) = (user_id('ola'), user_id('per'));
my $o = open_wallet($ola, 'PLN');
my $p = open_wallet($per, 'PLN');
fund($o, 10_000);

sub batch { ledger(POST => '/v1/transfers/batch', $_[1] // $ola, { transfers => $_[0] }) }
sub item { { from_account_id => $o->{id}, to_account_id => $p->{id},
             amount => $_[0], currency => 'PLN', idempotency_key => $_[1] // key() } }
sub posted { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json}{posted} }

my @items = (item(1_000), item(2_000), item(50_000), item(3_000));
my $r = batch(\@items);
is $r->{status}, 200, 'a batch of four';
my @res = @{ $r->{json}{results} };
is join(' ', map { $_->{status} } @res), '201 201 422 201',
    'each its own outcome: the third cannot be afforded';
is $res[2]{code}, 'insufficient_funds', 'and says why';
is $res[0]{transfer}{amount}, 1_000, 'a posted one shows its transfer';
is posted($o), 4_000, 'the other three moved 6000';

$r = batch(\@items);
is join(' ', map { $_->{status} } @{ $r->{json}{results} }), '201 201 422 201',
    'the same batch again: the same outcomes';
is join(' ', map { $_->{replayed} ? 1 : 0 } @{ $r->{json}{results} }), '1 1 1 1',
    'all replayed';
is $r->{json}{results}[1]{transfer}{id}, $res[1]{transfer}{id}, 'the same transfers';
is posted($o), 4_000, 'nothing moved twice';
$items[0]{amount} = 999;
is batch([$items[0]])->{json}{results}[0]{status}, 409,
    'a key reused with another amount: 409 for that item';

# Refused whole, nothing written.
my $n = sql_value("select count(*) from ledger.transfers where debit_account_id = '$o->{id}'");
my $k = key();
problem_ok(batch([item(1, $k), item(2, $k)]), 422, '/transfers/1/idempotency_key',
    qr/invalid/, 'one key twice');
$r = batch([item(1, $k), item(2), item(3, $k), item(4, $k)]);
problem_ok($r, 422, '/transfers/2/idempotency_key', qr/invalid/,
    'one key three times');
is join(' ', sort map { $_->{pointer} } @{ $r->{json}{errors} }),
    '/transfers/2/idempotency_key /transfers/3/idempotency_key',
    'every later use is named, the first is not';
problem_ok(batch([item(1), { %{ item(0) } }, 'x']), 422, '/transfers/1/amount',
    undef, 'a bad amount');
problem_ok(batch([item(1), 'x']), 422, '/transfers/1', undef, 'not an object');
my %nokey = %{ item(1) };
delete $nokey{idempotency_key};
problem_ok(batch([\%nokey]), 422, '/transfers/0/idempotency_key', undef, 'no key');
problem_ok(batch([]), 422, '/transfers', undef, 'an empty batch');
problem_ok(batch([map { item(1) } 1 .. 1001]), 422, '/transfers', qr/invalid/,
    '1001 transfers');
$r = batch([item(1)], $per);
is $r->{json}{results}[0]{code}, 'debit_account_not_found',
    'paying from someone else\'s account is refused per item';
is sql_value("select count(*) from ledger.transfers where debit_account_id = '$o->{id}'"),
    $n, 'nothing written by the refused batches';

# A full batch of 1,000.
fund($o, 1_000_000);
$r = batch([map { item(1) } 1 .. 1000]);
is $r->{status}, 200, '1000 transfers in one request';
is scalar(grep { $_->{status} == 201 } @{ $r->{json}{results} }), 1000, 'all posted';

invariants_ok('batch route');
done_testing;
