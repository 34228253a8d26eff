# Holds, two-phase: a hold reserves money (pending), a capture posts all
# or part of it and releases the rest, a void releases it, the service
# releases an expired one itself, and whichever comes first wins: a hold
# resolves exactly once, even when a capture and a void race.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep);
use Kordon::E2E;
use Kordon::Ledger;

my ($payer, $shop, $eve) = map { user_id($_) } qw(payer shop eve);
my $p = open_wallet($payer, 'EUR');
my $s = open_wallet($shop, 'EUR');
fund($p, 1_000);

sub acct { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json} }
sub bal { my $a = acct($_[0]); "$a->{posted}/$a->{pending}/$a->{available}" }
sub holds_count { sql_value('select count(*) from ledger.holds') }

# A hold reserves: the payer's available money drops, nobody's posted does.
my $r = hold($payer, $p, $s, 700, { expires_in => 600 });
is $r->{status}, 201, 'hold: 201';
my $h = $r->{json};
is $h->{status}, 'pending', 'pending';
is $h->{amount}, 700, 'of 700';
ok $h->{expires_at} && $h->{created_at}, 'with its expiry';
is bal($p), '1000/300/300', 'payer: posted 1000, 700 reserved';
is bal($s), '0/700/0', 'shop: 700 pending, nothing available yet';
problem_ok(pay($payer, $p, $s, 400), 422, '/amount', qr/insufficient/,
    'reserved money cannot be paid away');
problem_ok(hold($payer, $p, $s, 301), 422, '/amount', qr/insufficient/,
    'nor held twice');
is ledger(GET => "/v1/holds/$h->{id}", $shop)->{json}{status}, 'pending',
    'the payee sees the hold';
problem_ok(ledger(GET => "/v1/holds/$h->{id}", $eve), 404, undef,
    qr/no such hold/, 'a stranger does not');

# Capture: the payee only, at most the hold, once.
problem_ok(resolve($payer, $h->{id}, 'capture'), 403, undef,
    qr/payee or an admin/, 'the payer cannot capture');
problem_ok(resolve($eve, $h->{id}, 'capture'), 404, undef, qr/no such hold/,
    'a stranger cannot either');
problem_ok(resolve($shop, $h->{id}, 'capture', { amount => 701 }), 422,
    '/amount', qr/above the hold/, 'capture above the hold');
problem_ok(resolve($shop, $h->{id}, 'capture', { amount => 0 }), 422,
    '/amount', undef, 'capture of 0');
problem_ok(resolve($shop, $h->{id}, 'capture', { amount => 5, x => 1 }), 422,
    '', undef, 'an unknown field');
is bal($p), '1000/300/300', 'refusals changed nothing';
my $ck = key();
$r = resolve($shop, $h->{id}, 'capture', { amount => 500 }, $ck);
is $r->{status}, 200, 'capture 500 of 700';
is $r->{json}{status}, 'captured', 'captured';
is $r->{json}{captured_amount}, 500, 'for 500';
is bal($p), '500/500/500', 'payer: 500 paid, 200 released';
is bal($s), '500/500/500', 'shop: 500 received';
my $again = resolve($shop, $h->{id}, 'capture', { amount => 500 }, $ck);
is $again->{status}, 200, 'the capture retried with its key: 200';
is $again->{headers}{'idempotent-replayed'}, 'true', 'a replay';
is $again->{json}{capture_transfer_id}, $r->{json}{capture_transfer_id},
    'of the same capture';
problem_ok(resolve($shop, $h->{id}, 'capture', { amount => 100 }, $ck), 409,
    undef, qr/different request/, 'its key with another amount');
problem_ok(resolve($shop, $h->{id}, 'capture'), 409, undef,
    qr/already captured/, 'a second capture');
problem_ok(resolve($payer, $h->{id}, 'void'), 409, undef,
    qr/already captured/, 'a void after the capture');
my $t = ledger(GET => "/v1/transfers/$r->{json}{capture_transfer_id}", $payer);
is "$t->{json}{kind} $t->{json}{amount} $t->{json}{status}", 'capture 500 posted',
    'the capture is a posted transfer';
is bal($p), '500/500/500', 'still paid once';

# Void: either side, releases everything.
$h = hold($payer, $p, $s, 200)->{json};
is bal($p), '500/300/300', 'another hold of 200';
$r = resolve($payer, $h->{id}, 'void');
is $r->{status}, 200, 'the payer voids it';
is $r->{json}{status}, 'voided', 'voided';
is bal($p), '500/500/500', 'released';
is bal($s), '500/500/500', 'the shop got nothing';

# Expiry: released by the service itself.
$h = hold($payer, $p, $s, 50, { expires_in => 1 })->{json};
is bal($p), '500/450/450', 'a hold that expires in a second';
my $st;
for (1 .. 60) {
    $st = ledger(GET => "/v1/holds/$h->{id}", $payer)->{json}{status};
    last if $st ne 'pending';
    sleep 0.1;
}
is $st, 'expired', 'it expires without anyone asking';
is bal($p), '500/500/500', 'and its money is back';
problem_ok(resolve($shop, $h->{id}, 'capture'), 409, undef, qr/expired/,
    'an expired hold cannot be captured');

# Bad input: a 4xx problem each, and no hold made.
my $n = holds_count();
problem_ok(hold($payer, $p, $s, 0), 422, '/amount', undef, 'amount 0');
problem_ok(hold($payer, $p, $s, -5), 422, '/amount', undef, 'negative');
problem_ok(hold($payer, $p, $s, 1.5), 422, '/amount', undef, 'fractional');
problem_ok(hold($payer, $p, $s, 5, { expires_in => 0 }), 422, '/expires_in',
    undef, 'expiry 0');
problem_ok(hold($payer, $p, $s, 5, { expires_in => 99_999_999 }), 422,
    '/expires_in', undef, 'expiry beyond 30 days');
problem_ok(hold($payer, $p, $s, 5, { currency => 'USD' }), 422, '/currency',
    qr/currency mismatch/, 'another currency');
problem_ok(hold($payer, $s, $p, 5), 422, '/from_account_id', undef,
    'someone else\'s account');
problem_ok(hold($payer, $p, $p, 5), 422, '/to_account_id', undef, 'to itself');
problem_ok(ledger(POST => '/v1/holds', $payer, { from_account_id => $p->{id},
    to_account_id => $s->{id}, amount => 5, currency => 'EUR' }), 400, undef,
    qr/Idempotency-Key/, 'no Idempotency-Key');
problem_ok(resolve($shop, 'not-a-uuid', 'capture'), 404, undef, undef,
    'capture of a malformed id');
problem_ok(resolve($shop, '0190a0a0-0000-7000-8000-000000000000', 'void'), 404,
    undef, undef, 'void of an unknown hold');
is holds_count(), $n, 'no hold was made';
is bal($p), '500/500/500', 'nothing moved';

# Capture and void race: each hold resolves exactly once.
my @holds = map { hold($payer, $p, $s, 10)->{json}{id} } 1 .. 10;
my @pids;
pipe my $rd, my $wr or die "pipe: $!";
for my $hid (@holds) {
    for my $op (qw(capture void)) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my $a = resolve($op eq 'capture' ? $shop : $payer, $hid, $op);
            syswrite $wr, "$hid $op $a->{status}\n";
            exit 0;
        }
        push @pids, $pid;
    }
}
close $wr;
my @got = map { [split] } <$rd>;
waitpid $_, 0 for @pids;
my %won;
$won{ $_->[0] } .= $_->[1] for grep { $_->[2] == 200 } @got;
is scalar(grep { $_->[2] == 409 } @got), 10, 'ten lost the race with a 409';
is scalar(keys %won), 10, 'every hold resolved';
is scalar(grep { $_ eq 'capture' || $_ eq 'void' } values %won), 10,
    'each by exactly one of capture and void';
my $captured = grep { $_ eq 'capture' } values %won;
is bal($p), sprintf('%d/%d/%d', (500 - 10 * $captured) x 3),
    "the payer paid for the $captured captured ones only";

invariants_ok('holds');
done_testing;
