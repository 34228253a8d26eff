# Idempotency-Key, TigerBeetle's way: the same key with the same request
# gets the first answer again (status and body), with a different request
# a 409; an attempt the ledger refused stays refused on every retry; a key
# belongs to one user and one operation; and concurrent duplicates make
# one transfer, whose answer every one of them gets.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my ($alice, $bob) = map { user_id($_) } qw(alice bob);
my $a_eur = open_wallet($alice, 'EUR');
my $b_eur = open_wallet($bob, 'EUR');
fund($a_eur, 10_000);

sub balance { ledger(GET => "/v1/accounts/$_[0]{id}", support_id())->{json}{posted} }
sub rows_with_key {
    sql_value("select count(*) from ledger.transfers where idempotency_key = '$_[0]'");
}

# Same key, same request: the same answer, once.
my $k = key();
my $first = pay($alice, $a_eur, $b_eur, 1_000, $k);
is $first->{status}, 201, 'first request posts';
ok !$first->{headers}{'idempotent-replayed'}, 'and is not a replay';
my $again = pay($alice, $a_eur, $b_eur, 1_000, $k);
is $again->{status}, 201, 'the retry answers 201 too';
is $again->{content}, $first->{content}, 'with the very same body';
is $again->{headers}{'idempotent-replayed'}, 'true', 'marked Idempotent-Replayed';
isnt $again->{headers}{'x-request-id'}, $first->{headers}{'x-request-id'},
    'each answer has its own request id';
my $reordered = sprintf '{ "currency" : "EUR", "amount":1000, "to_account_id":"%s",'
    . ' "from_account_id":"%s" }', uc $b_eur->{id}, $a_eur->{id};
my $r = ledger(POST => '/v1/transfers', $alice, $reordered, { 'Idempotency-Key' => $k });
is $r->{content}, $first->{content}, 'the same fields in another order and case: a retry';
is rows_with_key($k), 1, 'one transfer';
is balance($a_eur), 9_000, 'moved once';

# Same key, another request: 409, nothing moves.
problem_ok(pay($alice, $a_eur, $b_eur, 1_001, $k), 409, undef,
    qr/already used with a different request/, 'another amount');
my $c_eur = open_wallet(user_id('carol'), 'EUR');
problem_ok(pay($alice, $a_eur, $c_eur, 1_000, $k), 409, undef, qr/different/,
    'another payee');
is rows_with_key($k), 1, 'still one transfer';
is balance($a_eur), 9_000, 'nothing moved';

# A key is the caller's: bob's same key is his own.
fund($b_eur, 500);
$r = pay($bob, $b_eur, $a_eur, 500, $k);
is $r->{status}, 201, 'bob uses the same key string for his own transfer';
isnt $r->{json}{id}, $first->{json}{id}, 'a different transfer';

# ... and one operation's: an admin's adjustment and transfer keys differ.
my $admin = admin_id();
my $adm_eur = open_wallet($admin, 'EUR');
my $ak = key();
$r = ledger(POST => '/v1/admin/adjustments', $admin,
    { account_id => $adm_eur->{id}, amount => 300, currency => 'EUR',
      direction => 'credit', reason => 'scope test' }, { 'Idempotency-Key' => $ak });
is $r->{status}, 201, 'an adjustment with key K';
is pay($admin, $adm_eur, $b_eur, 300, $ak)->{status}, 201,
    'and a transfer with key K by the same admin';

# A refusal stays a refusal.
my $poor = user_id('poor');
my $p_eur = open_wallet($poor, 'EUR');
my $fk = key();
problem_ok(pay($poor, $p_eur, $a_eur, 700, $fk), 422, '/amount', qr/insufficient/,
    'refused: no money');
fund($p_eur, 1_000);
$r = pay($poor, $p_eur, $a_eur, 700, $fk);
problem_ok($r, 422, '/amount', qr/insufficient/, 'the retry after funding is still refused');
is $r->{headers}{'idempotent-replayed'}, 'true', 'as a replay';
is pay($poor, $p_eur, $a_eur, 700)->{status}, 201, 'a new key posts';
is balance($p_eur), 300, 'once';

# An answer decided from the request alone is not recorded.
my $vk = key();
problem_ok(pay($poor, $p_eur, $a_eur, 0, $vk), 422, '/amount', undef, 'amount 0');
is pay($poor, $p_eur, $a_eur, 100, $vk)->{status}, 201,
    'the corrected request may use the key (nothing was decided under it)';

# Concurrent duplicates: one transfer, one answer for all.
sub race {
    my ($n, $make) = @_;
    my @pids;
    pipe my $rd, my $wr or die "pipe: $!";
    for my $i (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my $a = $make->($i);
            syswrite $wr, join("\t", $i, $a->{status}, $a->{json}{id} // '-',
                $a->{json}{amount} // '-', $a->{content}) . "\n";
            exit 0;
        }
        push @pids, $pid;
    }
    close $wr;
    my @got = map { chomp; [split /\t/, $_, 5] } <$rd>;
    waitpid $_, 0 for @pids;
    return @got;
}

my $dk = key();
my @got = race(12, sub { pay($alice, $a_eur, $b_eur, 250, $dk) });
is scalar @got, 12, 'twelve concurrent duplicates answered';
is scalar(grep { $_->[1] == 201 } @got), 12, 'all 201';
my %ids = map { $_->[2] => 1 } @got;
is scalar keys %ids, 1, 'all with the same transfer';
my %bodies = map { $_->[4] => 1 } @got;
is scalar keys %bodies, 1, 'and the same body';
is rows_with_key($dk), 1, 'one transfer row';

my $mk = key();
@got = race(12, sub { pay($alice, $a_eur, $b_eur, $_[0] % 2 ? 11 : 22, $mk) });
my @won = grep { $_->[1] == 201 } @got;
my @lost = grep { $_->[1] == 409 } @got;
is @won + @lost, 12, 'a race of two different requests on one key: 201 or 409';
%ids = map { $_->[2] => 1 } @won;
is scalar keys %ids, 1, 'every 201 is the one transfer';
my $amount = $won[0][3];
is scalar(grep { $_->[3] == $amount } @won), scalar @won, 'the 201s asked for its amount';
is scalar(grep { ($_->[0] % 2 ? 11 : 22) != $amount } @lost), scalar @lost,
    'the 409s asked for the other';
is rows_with_key($mk), 1, 'one transfer row';

# A 503 is safe to retry: an account locked past the ledger's lock
# timeout (5 s) refuses the request for now and records nothing, and the
# retry with the same key posts.
my $lk = key();
my $locker = fork // die "fork: $!";
if (!$locker) {
    psql_super("begin; select from ledger.accounts where id = '$a_eur->{id}' for update;"
        . " select pg_sleep(7); commit;");
    exit 0;
}
sleep 1;
my $t0 = time;
$r = pay($alice, $a_eur, $b_eur, 5, $lk);
problem_ok($r, 503, undef, qr/not available/, 'an account locked too long');
is $r->{headers}{'retry-after'}, '1', 'with Retry-After';
cmp_ok time - $t0, '<', 7, 'answered before the lock went';
waitpid $locker, 0;
is pay($alice, $a_eur, $b_eur, 5, $lk)->{status}, 201, 'the retry with its key posts';
is rows_with_key($lk), 1, 'once';

invariants_ok('idempotency');
done_testing;
