# Fees, cashback and limits.  A payment and its fee (and, paying a
# merchant, its cashback) post together or not at all; the fee goes to
# the currency's fee revenue (sharded into 8 sub-accounts, summed here);
# admins manage the rules and the per-currency limits; a daily limit
# holds under concurrent payments.  Uses SEK, which no other test prices.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes ();
use Kordon::E2E;
use Kordon::Ledger;

my $admin = admin_id();
my ($ann, $ben, $shop) = map { user_id($_) } qw(ann ben shop);
my $a = open_wallet($ann, 'SEK');
my $b = open_wallet($ben, 'SEK');
my $s = open_wallet($shop, 'SEK');

sub admin { ledger($_[0], $_[1], $admin, $_[2]) }
sub posted { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json}{posted} }
sub revenue {
    sql_value(q{select coalesce(sum(credits_posted - debits_posted), 0)
        from ledger.accounts where kind = 'fee_revenue' and currency = 'SEK'});
}
sub cashback_paid {
    sql_value(q{select coalesce(sum(debits_posted - credits_posted), 0)
        from ledger.accounts where kind = 'cashback_expense' and currency = 'SEK'});
}

# Without a fee rule for its currency a payment needs no fee revenue or
# cashback account (sql/ledger/016), so it locks none: with every SEK
# shard locked by another transaction for 20 s, a payment posts at once
# (it used to wait for them, then fail on lock_timeout).
{
    my ($iy, $iz) = map { user_id($_) } qw(cy cz);
    my ($cy, $cz) = map { open_wallet($_, 'SEK') } $iy, $iz;
    fund($cy, 500);
    my $pid = fork // die "cannot fork: $!";
    if (!$pid) {
        psql_super(q{begin;
            select 1 from ledger.accounts where currency = 'SEK'
               and kind in ('fee_revenue', 'cashback_expense') for update;
            select pg_sleep(20); commit});
        exit 0;
    }
    ok wait_until(sub { (psql_super(q{select count(*) from pg_stat_activity
        where query like '%pg_sleep(20)%' and wait_event = 'PgSleep'}))[1]
        eq '1' }),
        'every SEK fee and cashback shard locked elsewhere';
    my $t0 = Time::HiRes::time();
    is pay($iy, $cy, $cz, 100)->{status}, 201,
        'a SEK payment without a fee rule posts';
    cmp_ok Time::HiRes::time() - $t0, '<', 3, 'without waiting for them';
    psql_super(q{select pg_cancel_backend(pid) from pg_stat_activity
        where query like '%pg_sleep(20)%' and pid <> pg_backend_pid()});
    waitpid $pid, 0;
}

# Rules: admins only, every field checked.
problem_ok(ledger(PUT => '/v1/admin/fee-rules/p2p/SEK', $ann, { fee_bps => 1 }),
    403, undef, qr/admin/, 'a user cannot set a rule');
problem_ok(admin(PUT => '/v1/admin/fee-rules/p2p/SEK', { fee_bps => 10001,
    fee_min => -1, fee_max => 'x', cashback => 1 }), 422, '/fee_bps', undef,
    'bad fields');
problem_ok(admin(PUT => '/v1/admin/fee-rules/p2p/SEK', { cashback_bps => 5 }),
    422, '/cashback_bps', qr/cashback/, 'cashback on p2p');
problem_ok(admin(PUT => '/v1/admin/fee-rules/p2p/SEK', { fee_min => 50,
    fee_max => 10 }), 422, '/fee_max', undef, 'max below min');
problem_ok(admin(PUT => '/v1/admin/fee-rules/gift/SEK', {}), 404, undef,
    qr/transfer kind/, 'an unknown kind');
problem_ok(admin(PUT => '/v1/admin/fee-rules/p2p/XXX', {}), 404, undef,
    qr/currency/, 'an unknown currency');
my $r = admin(PUT => '/v1/admin/fee-rules/p2p/SEK', { fee_bps => 100,
    fee_fixed => 5, fee_min => 10, fee_max => 500, refund_fee => JSON::PP::true });
is $r->{status}, 200, 'p2p in SEK: 1% + 5, at least 10, at most 500';
is $r->{json}{updated_by}, $admin->{user}, 'who set it is kept';
is admin(PUT => '/v1/admin/fee-rules/merchant/SEK', { cashback_bps => 200 })
    ->{status}, 200, 'merchant payments in SEK: no fee, 2% cashback';
my @rules = grep { $_->{currency} eq 'SEK' }
    @{ admin(GET => '/v1/admin/fee-rules')->{json}{rules} };
is scalar @rules, 2, 'both listed';

# A payment with its fee: one linked group.
fund($a, 1_015);
my $rev0 = revenue();
$r = pay($ann, $a, $b, 1_000);
is $r->{status}, 201, 'pay 1000';
is $r->{json}{fee}, 15, 'fee 1% + 5 = 15';
is $r->{json}{cashback}, 0, 'no cashback between people';
is posted($a), 0, 'the payer paid 1015';
is posted($b), 1_000, 'the payee got 1000';
is revenue() - $rev0, 15, 'fee revenue got 15';
is sql_value("select count(*) || ' ' || string_agg(kind, ',' order by kind)
    from ledger.transfers where group_id = '$r->{json}{id}'"), '2 fee,p2p',
    'the payment and its fee share a group';
is ledger(GET => "/v1/transfers/$r->{json}{id}", $ann)->{json}{fee}, 15,
    'GET shows the fee';

# All or nothing: the fee must fit too.
fund($a, 1_000);
problem_ok(pay($ann, $a, $b, 1_000), 422, '/amount', qr/insufficient/,
    '1000 with a fee of 15 from 1000');
is posted($a), 1_000, 'nothing moved';
is revenue() - $rev0, 15, 'no fee taken';

# Clamped to min and max.
fund($a, 200_000);
is pay($ann, $a, $b, 100)->{json}{fee}, 10, 'a small payment: the minimum';
is pay($ann, $a, $b, 100_000)->{json}{fee}, 500, 'a large one: the maximum';

# Paying a merchant: cashback instead of the fee.
problem_ok(ledger(PUT => "/v1/admin/accounts/$s->{id}/merchant", $ann,
    { merchant => JSON::PP::true }), 403, undef, undef, 'users cannot flag merchants');
problem_ok(admin(PUT => "/v1/admin/accounts/$s->{id}/merchant", { merchant => 1 }),
    422, '/merchant', undef, 'merchant must be a boolean');
is admin(PUT => "/v1/admin/accounts/$s->{id}/merchant", { merchant => JSON::PP::true })
    ->{status}, 200, 'an admin flags the shop as a merchant';
my $cb0 = cashback_paid();
my $before = posted($a);
$r = pay($ann, $a, $s, 1_000);
is "$r->{json}{fee} $r->{json}{cashback}", '0 20', 'no fee, 20 cashback';
is $before - posted($a), 980, 'the payer is 980 down';
is posted($s), 1_000, 'the merchant got 1000';
is cashback_paid() - $cb0, 20, 'cashback expense paid 20';

# Limits per currency.
problem_ok(ledger(PUT => '/v1/admin/limits/SEK', $ann, { transfer_max => 1 }),
    403, undef, undef, 'users cannot set limits');
problem_ok(admin(PUT => '/v1/admin/limits/SEK', { transfer_max => 0 }), 422,
    '/transfer_max', undef, 'a limit of 0');
is admin(PUT => '/v1/admin/limits/SEK', { transfer_max => 5_000,
    daily_out_max => 8_000 })->{status}, 200, 'SEK: 5000 a transfer, 8000 a day';
my $c = open_wallet(user_id('cat'), 'SEK');
my $cat = { user => sql_value("select owner from ledger.accounts where id = '$c->{id}'"),
            roles => 'user' };
fund($c, 50_000);
problem_ok(pay($cat, $c, $b, 5_001), 422, '/amount', qr/above the limit/,
    'above the per-transfer maximum');
problem_ok(hold($cat, $c, $b, 5_001), 422, '/amount', qr/above the limit/,
    'a hold above it too');
is pay($cat, $c, $b, 5_000)->{status}, 201, 'the maximum itself';
is pay($cat, $c, $b, 2_000)->{status}, 201, '7000 today';
problem_ok(pay($cat, $c, $b, 1_001), 422, '/amount', qr/daily limit/,
    'beyond 8000 today');
is pay($cat, $c, $b, 1_000)->{status}, 201, 'exactly 8000';
is sql_value("select amount from ledger.daily_outgoing where account_id = '$c->{id}'"),
    8_000, 'the day\'s total is kept';
problem_ok(hold($cat, $c, $b, 1), 422, '/amount', qr/daily limit/,
    'a hold counts toward the day too');

# The daily limit under concurrent payments: never more than the limit.
is admin(PUT => '/v1/admin/limits/SEK', { transfer_max => undef,
    daily_out_max => 1_000 })->{status}, 200, 'SEK: 1000 a day';
my $d = open_wallet(my $dan = user_id('dan'), 'SEK');
fund($d, 100_000);
my @pids;
pipe my $rd, my $wr or die "pipe: $!";
for (1 .. 10) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        syswrite $wr, pay($dan, $d, $b, 150)->{status} . "\n";
        exit 0;
    }
    push @pids, $pid;
}
close $wr;
my @st = map { chomp; $_ } <$rd>;
waitpid $_, 0 for @pids;
is scalar(grep { $_ == 201 } @st), 6, 'ten payments of 150 at once: six fit in 1000';
is scalar(grep { $_ == 422 } @st), 4, 'four refused';
is sql_value("select amount from ledger.daily_outgoing where account_id = '$d->{id}'"),
    900, 'the day\'s total is 900';

problem_ok(hold($dan, $d, $b, 101), 422, '/amount', qr/daily limit/,
    'a hold beyond the day\'s rest');
is hold($dan, $d, $b, 100)->{status}, 201, 'a hold of the rest';
is sql_value("select amount from ledger.daily_outgoing where account_id = '$d->{id}'"),
    1_000, 'the day is full';
problem_ok(pay($dan, $d, $b, 1), 422, '/amount', qr/daily limit/,
    'so a payment of 1 is refused');

# Clean up: SEK is free again for other tests.
is admin(PUT => '/v1/admin/limits/SEK', { transfer_max => undef,
    daily_out_max => undef })->{status}, 200, 'limits lifted';
is admin(DELETE => '/v1/admin/fee-rules/merchant/SEK')->{status}, 200,
    'the merchant rule deleted';
problem_ok(admin(DELETE => '/v1/admin/fee-rules/merchant/SEK'), 404, undef,
    qr/no such fee rule/, 'deleting it again');

invariants_ok('fees and limits');
done_testing;
