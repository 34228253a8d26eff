# Statements, balances as of a time, and the daily report.  A statement
# lists the account's posted transfers in time order with the balance
# after each; pages are keyset pages that carry the balance on; from/to
# cut by time; the report sums payments, refunds, fees and cashback per
# day and currency.  Uses DKK (statements) and CZK (report with fees).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use Kordon::E2E;
use Kordon::Ledger;

my $admin = admin_id();
my ($ida, $idb) = (user_id('ida'), user_id('bo'));
my $a = open_wallet($ida, 'DKK');
my $b = open_wallet($idb, 'DKK');

sub now_text { sql_value("select ledger.ts_text(clock_timestamp())") }
sub statement { ledger(GET => "/v1/accounts/$a->{id}/statement$_[0]", $_[1] // $ida) }

fund($a, 1_000);
fund($b, 500);
is pay($ida, $a, $b, 100)->{status}, 201, 'ida pays 100';
sleep 0.05;
my $mid = now_text();
sleep 0.05;
is pay($idb, $b, $a, 50)->{status}, 201, 'bo pays ida 50';
is pay($ida, $a, $b, 200)->{status}, 201, 'ida pays 200';

my $r = statement('');
is $r->{status}, 200, 'a statement';
my @e = @{ $r->{json}{entries} };
is join(' ', map { $_->{amount} } @e), '1000 -100 50 -200', 'every entry, signed';
is join(' ', map { $_->{balance} } @e), '1000 900 950 750', 'with the balance after each';
is join(' ', map { $_->{direction} } @e), 'credit debit credit debit', 'and its direction';
is $e[1]{counterparty_account_id}, $b->{id}, 'and who was on the other side';
is $r->{json}{opening_balance}, 0, 'opening at 0';
ok !defined $r->{json}{next_cursor}, 'no next page';

# Keyset pages carry the balance on.
$r = statement('?limit=3');
is scalar @{ $r->{json}{entries} }, 3, 'a page of 3';
ok my $cur = $r->{json}{next_cursor}, 'and a cursor';
$r = statement("?limit=3&cursor=$cur");
is join(' ', map { "$_->{amount}=$_->{balance}" } @{ $r->{json}{entries} }),
    '-200=750', 'the next page goes on after it';
is $r->{json}{opening_balance}, 950, 'opening with the balance so far';
ok !defined $r->{json}{next_cursor}, 'the last page';

# Time bounds, and the balance as of a time.
$r = statement("?from=$mid");
is join(' ', map { $_->{amount} } @{ $r->{json}{entries} }), '50 -200',
    'from a time: what came after';
is $r->{json}{opening_balance}, 900, 'opening with the balance at that time';
$r = statement("?to=$mid");
is join(' ', map { $_->{amount} } @{ $r->{json}{entries} }), '1000 -100',
    'to a time: what came before';
$r = ledger(GET => "/v1/accounts/$a->{id}/balance?at=$mid", $ida);
is "$r->{status} $r->{json}{posted}", '200 900', 'the balance as of that time';
is ledger(GET => "/v1/accounts/$a->{id}/balance", $ida)->{json}{posted}, 750,
    'and now';

# Who may read, and bad queries: 4xx problems.
is statement('', support_id())->{status}, 200, 'support reads it';
problem_ok(statement('', $idb), 404, undef, qr/no such account/,
    'someone else does not');
problem_ok(statement('?from=now'), 400, undef, qr/"from"/, 'from=now');
problem_ok(statement('?to=2026-13-45'), 400, undef, qr/"to"/, 'a date that is not one');
problem_ok(statement("?from=$mid&to=$mid"), 400, undef, qr/before/, 'an empty range');
problem_ok(statement('?cursor=xyz'), 400, undef, qr/cursor/, 'a bad cursor');
problem_ok(statement('?limit=0'), 400, undef, qr/limit/, 'limit 0');
problem_ok(statement('?limit=201'), 400, undef, qr/limit/, 'limit 201');
problem_ok(statement('?limit=2x'), 400, undef, qr/limit/, 'limit 2x');
problem_ok(ledger(GET => '/v1/accounts/nope/statement', $ida), 404, undef,
    undef, 'a malformed account id');
problem_ok(ledger(GET => "/v1/accounts/$a->{id}/balance?at=yesterday", $ida),
    400, undef, qr/"at"/, 'at=yesterday');

# The daily report.
my $today = sql_value("select (now() at time zone 'UTC')::date");
sub czk_today {
    my $r = ledger(GET => "/v1/admin/reports/daily?from=$today&to=$today", $admin);
    my ($row) = grep { $_->{currency} eq 'CZK' } @{ $r->{json}{days} || [] };
    return $row || { payments => 0, turnover => 0, fees => 0, fee_revenue => 0,
                     refunds => 0, fees_refunded => 0 };
}
my $before = czk_today();
is ledger(PUT => '/v1/admin/fee-rules/p2p/CZK', $admin,
    { fee_bps => 1000, refund_fee => JSON::PP::true })->{status}, 200,
    'CZK p2p: 10%, refunded';
my ($x, $y) = (open_wallet(user_id('x'), 'CZK'), open_wallet(my $yid = user_id('y'), 'CZK'));
my $xid = { user => sql_value("select owner from ledger.accounts where id = '$x->{id}'"),
            roles => 'user' };
fund($x, 10_000);
my $t = pay($xid, $x, $y, 1_000)->{json};
pay($xid, $x, $y, 2_000);
is ledger(POST => "/v1/transfers/$t->{id}/refund", $yid, { amount => 500 },
    { 'Idempotency-Key' => key() })->{status}, 201, 'half of one refunded';
my $after = czk_today();
is $after->{payments} - $before->{payments}, 2, 'report: two more payments';
is $after->{turnover} - $before->{turnover}, 3_000, 'turnover 3000';
is $after->{fees} - $before->{fees}, 300, 'fees 300';
is $after->{refunds} - $before->{refunds}, 500, 'refunds 500';
is $after->{fees_refunded} - $before->{fees_refunded}, 50, 'fees refunded 50';
is $after->{fee_revenue} - $before->{fee_revenue}, 250, 'fee revenue 250';
ledger(DELETE => '/v1/admin/fee-rules/p2p/CZK', $admin);
problem_ok(ledger(GET => "/v1/admin/reports/daily?from=$today&to=$today", $ida),
    403, undef, qr/admin/, 'users get no report');
problem_ok(ledger(GET => '/v1/admin/reports/daily?from=2026-02-01&to=2026-01-01',
    $admin), 400, undef, qr/range/, 'a range that runs backwards');
problem_ok(ledger(GET => '/v1/admin/reports/daily?from=2024-01-01&to=2026-01-01',
    $admin), 400, undef, qr/366/, 'more than 366 days');
problem_ok(ledger(GET => '/v1/admin/reports/daily?from=2026-01-01', $admin),
    400, undef, qr/required/, 'no "to"');
problem_ok(ledger(GET => '/v1/admin/reports/daily?from=x&to=2026-01-01', $admin),
    400, undef, qr/"from"/, 'from=x');

invariants_ok('statements');
done_testing;
