# Refunds: the payee gives a payment back in full or in parts, never more
# than it was (not even when refunds race); the fee comes back pro rata
# when the currency's rule says so, else the ledger keeps it; cashback
# earned on a merchant payment goes back with it.  Uses NOK.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $admin = admin_id();
my ($ann, $ben, $shop, $eve) = map { user_id($_) } qw(ann ben shop eve);
my $a = open_wallet($ann, 'NOK');
my $b = open_wallet($ben, 'NOK');
my $s = open_wallet($shop, 'NOK');
fund($a, 100_000);

sub admin { ledger($_[0], $_[1], $admin, $_[2]) }
sub posted { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json}{posted} }
sub refund {
    my ($id, $t, $body, $k) = @_;
    return ledger(POST => "/v1/transfers/$t/refund", $id, $body,
        { 'Idempotency-Key' => $k // key() });
}
sub revenue {
    sql_value(q{select coalesce(sum(credits_posted - debits_posted), 0)
        from ledger.accounts where kind = 'fee_revenue' and currency = 'NOK'});
}

is admin(PUT => '/v1/admin/fee-rules/p2p/NOK', { fee_bps => 100,
    refund_fee => JSON::PP::true })->{status}, 200, 'NOK p2p: 1%, refunded';

# In two parts: the fee comes back pro rata, the rest on the last part.
my $t = pay($ann, $a, $b, 1_000)->{json};
is $t->{fee}, 10, 'a payment of 1000 with a fee of 10';
my ($a0, $r0) = (posted($a), revenue());
my $k = key();
my $r = refund($ben, $t->{id}, { amount => 350 }, $k);
is $r->{status}, 201, 'the payee refunds 350';
is "$r->{json}{amount} $r->{json}{fee_refunded} $r->{json}{refunded_total}",
    '350 3 350', 'with 3 of the fee (rounded down); 350 refunded so far';
is $r->{json}{transfer_id}, $t->{id}, 'naming the payment';
is posted($a) - $a0, 353, 'the payer got 353 back';
is $r0 - revenue(), 3, 'from fee revenue';
my $again = refund($ben, $t->{id}, { amount => 350 }, $k);
is $again->{json}{id}, $r->{json}{id}, 'retried with its key: the same refund';
is $again->{headers}{'idempotent-replayed'}, 'true', 'a replay';
problem_ok(refund($ben, $t->{id}, { amount => 651 }), 422, '/amount',
    qr/above the original/, 'more than what is left');
$r = refund($ben, $t->{id});
is $r->{status}, 201, 'the rest, with no amount';
is "$r->{json}{amount} $r->{json}{fee_refunded} $r->{json}{refunded_total}",
    '650 7 1000', '650 and the fee\'s rest: 7';
is posted($a) - $a0, 1_010, 'the payer has all 1010 back';
is posted($b), 0, 'the payee nothing';
problem_ok(refund($ben, $t->{id}), 409, undef, qr/already refunded/,
    'a third refund');

# Who may refund, and bad input: a problem each, nothing written.
$t = pay($ann, $a, $b, 1_000)->{json};
my $n = sql_value("select count(*) from ledger.transfers where kind = 'refund'");
problem_ok(refund($ann, $t->{id}), 403, undef, qr/payee or an admin/,
    'the payer cannot refund herself');
problem_ok(refund($eve, $t->{id}), 404, undef, qr/no such transfer/,
    'a stranger sees no transfer');
problem_ok(refund($ben, 'nope'), 404, undef, undef, 'a malformed id');
problem_ok(refund($ben, $t->{id}, { amount => 0 }), 422, '/amount', undef,
    'amount 0');
problem_ok(refund($ben, $t->{id}, { amount => '5' }), 422, '/amount', undef,
    'amount as a string');
problem_ok(refund($ben, $t->{id}, { amount => 5, why => 'x' }), 422, '', undef,
    'an unknown field');
problem_ok(ledger(POST => "/v1/transfers/$t->{id}/refund", $ben, {}), 400,
    undef, qr/Idempotency-Key/, 'no Idempotency-Key');
my $fee_id = sql_value("select id from ledger.transfers where group_id = '$t->{id}'
    and kind = 'fee'");
problem_ok(refund($admin, $fee_id), 422, '/transfer_id', qr/not a payment/,
    'a fee is not a payment');
is sql_value("select count(*) from ledger.transfers where kind = 'refund'"), $n,
    'no refund written';

# The payee must have the money.
my $c = open_wallet(user_id('carl'), 'NOK');
fund($c, 5_000);
my $bt = ledger(POST => '/v1/transfers', $ben, { from_account_id => $b->{id},
    to_account_id => $c->{id}, amount => 900, currency => 'NOK' },
    { 'Idempotency-Key' => key() });
is $bt->{status}, 201, 'the payee spends 900 (fee 9) of the 1000';
problem_ok(refund($ben, $t->{id}), 422, '/amount', qr/insufficient/,
    'so a full refund does not fit');
is refund($ben, $t->{id}, { amount => 91 })->{status}, 201, 'but 91 does';

# The fee kept, when the rule says so; admins may refund.
is admin(PUT => '/v1/admin/fee-rules/p2p/NOK', { fee_bps => 100 })->{status}, 200,
    'NOK p2p: 1%, kept on refund';
fund($b, 2_000);
$t = pay($ann, $a, $b, 2_000)->{json};
$r = refund($admin, $t->{id});
is "$r->{status} $r->{json}{amount} $r->{json}{fee_refunded}", '201 2000 0',
    'an admin refunds 2000; the fee of 20 is kept';

# Cashback goes back with a merchant refund.
is admin(PUT => '/v1/admin/fee-rules/merchant/NOK', { cashback_bps => 200 })
    ->{status}, 200, 'NOK merchants: 2% cashback';
is admin(PUT => "/v1/admin/accounts/$s->{id}/merchant", { merchant => JSON::PP::true })
    ->{status}, 200, 'a merchant';
$t = pay($ann, $a, $s, 1_000)->{json};
is $t->{cashback}, 20, 'paying it earns 20';
$r = refund($shop, $t->{id}, { amount => 500 });
is "$r->{json}{amount} $r->{json}{cashback_reversed}", '500 10',
    'half refunded: half the cashback goes back';

# A captured hold is a payment too: its capture can be refunded.
my $h = ledger(POST => '/v1/holds', $ann, { from_account_id => $a->{id},
    to_account_id => $b->{id}, amount => 800, currency => 'NOK' },
    { 'Idempotency-Key' => key() })->{json};
my $cap = ledger(POST => "/v1/holds/$h->{id}/capture", $ben, { amount => 600 },
    { 'Idempotency-Key' => key() })->{json};
my $before_a = posted($a);
$r = refund($ben, $cap->{capture_transfer_id}, { amount => 600 });
is "$r->{status} $r->{json}{amount} $r->{json}{fee_refunded}", '201 600 0',
    'the capture refunded in full (captures carry no fee)';
is posted($a) - $before_a, 600, 'the payer has it back';
problem_ok(refund($ben, $h->{id}), 422, '/transfer_id', qr/not a payment/,
    'the hold itself is not a payment');

# Racing refunds never exceed the payment.
$t = pay($ann, $a, $b, 1_000)->{json};
my @pids;
pipe my $rd, my $wr or die "pipe: $!";
for (1 .. 10) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        syswrite $wr, refund($ben, $t->{id}, { amount => 150 })->{status} . "\n";
        exit 0;
    }
    push @pids, $pid;
}
close $wr;
my @st = map { chomp; $_ } <$rd>;
waitpid $_, 0 for @pids;
is scalar(grep { $_ == 201 } @st), 6, 'ten refunds of 150 at once: six fit in 1000';
is join(',', sort grep { $_ != 201 } @st), '422,422,422,422',
    'the others refused';
is sql_value("select sum(amount) from ledger.transfers where parent_id = '$t->{id}'
    and kind = 'refund'"), 900, '900 refunded';
is sql_value("select count(*) || ' ' || max((data->>'refunded_total')::int)
    from ledger.outbox where type = 'ledger.transfer.refunded'
    and subject = '$t->{id}'"), '6 900',
    'a ledger.transfer.refunded event for each, the last saying 900';

# Clean up the rules for other tests.
admin(DELETE => $_) for '/v1/admin/fee-rules/p2p/NOK', '/v1/admin/fee-rules/merchant/NOK';
is sql_value(q{select count(*) from ledger.transfers o
    where o.kind in ('p2p', 'capture')
      and o.amount < (select sum(r.amount) from ledger.transfers r
                       where r.parent_id = o.id and r.kind = 'refund')}), 0,
    'no payment refunded beyond its amount';
invariants_ok('refunds');
done_testing;
