# Money under concurrency: 20 clients move money at random among 10
# wallets at once, retrying some requests with their key and misusing
# some keys.  Afterwards every acknowledged (201) transfer exists exactly
# once, nothing else moved money, each wallet's balance is what the
# acknowledged transfers say, none is below zero, the totals match the
# transfers, debits equal credits, and each transfer has one event.
#
# The run is random but replayable: LEDGER_SEED=<n> repeats one.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my $USERS       = 10;
my $CLIENTS     = 20;
my $PER_CLIENT  = 60;
my $FUNDS       = 20_000;
my $AMOUNT_MAX  = 5_000;
my $seed = $ENV{LEDGER_SEED} // int rand 1_000_000;
diag "LEDGER_SEED=$seed";

my @users = map { user_id("bank$_") } 1 .. $USERS;
my @wallets = map { open_wallet($_, 'EUR') } @users;
fund($_, $FUNDS) for @wallets;
my %index = map { $wallets[$_]{id} => $_ } 0 .. $#wallets;

my $json = JSON::PP->new->canonical;

# The body without its request_id, which is each answer's own.
sub answer_of {
    my $b = $json->decode($_[0]{content});
    delete $b->{request_id};
    return $json->encode($b);
}

# One client: its own keep-alive connection; one line per request.
sub client {
    my ($n, $out) = @_;
    srand($seed + $n);
    my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 30);
    my $post = sub {
        my ($f, $t, $amount, $k) = @_;
        my $h = signed_headers(POST => '/v1/transfers', $users[$f]);
        $h->{'Content-Type'} = 'application/json';
        $h->{'Idempotency-Key'} = $k;
        return $ua->request(POST => "$ENV{KORDON_LEDGER_URL}/v1/transfers",
            { headers => $h, content => $json->encode({
                from_account_id => $wallets[$f]{id},
                to_account_id => $wallets[$t]{id},
                amount => $amount, currency => 'EUR' }) });
    };
    open my $fh, '>', $out or die "cannot write \"$out\": $!";
    for my $i (1 .. $PER_CLIENT) {
        my $f = int rand $USERS;
        my $t = ($f + 1 + int rand($USERS - 1)) % $USERS;
        my $amount = 1 + int rand $AMOUNT_MAX;
        my $k = "c$n-$i-$seed";
        my $r = $post->($f, $t, $amount, $k);
        my $id = $r->{status} == 201 ? $json->decode($r->{content})->{id} : '-';
        print $fh "answer $r->{status} $id $f $t $amount\n";
        if (rand() < 0.15) {
            my $again = $post->($f, $t, $amount, $k);
            print $fh "replay ", ($again->{status} == $r->{status}
                && answer_of($again) eq answer_of($r) ? 'same' : 'differs'), "\n";
        }
        if (rand() < 0.05) {
            my $other = $post->($f, $t, $amount + 1, $k);
            print $fh "misuse $other->{status}\n";
        }
    }
    close $fh;
}

my $dir = tempdir(CLEANUP => 1);
my @pids;
for my $n (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        client($n, "$dir/$n");
        exit 0;
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;

my (%status, @acked, $replays, $replay_bad, $misuses, $misuse_bad);
for my $n (1 .. $CLIENTS) {
    open my $fh, '<', "$dir/$n" or die "client $n wrote nothing: $!";
    while (<$fh>) {
        my @w = split;
        if ($w[0] eq 'answer') {
            $status{ $w[1] }++;
            push @acked, { id => $w[2], from => $w[3], to => $w[4], amount => $w[5] }
                if $w[1] == 201;
        } elsif ($w[0] eq 'replay') {
            $replays++;
            $replay_bad++ if $w[1] ne 'same';
        } else {
            $misuses++;
            $misuse_bad++ if $w[1] != 409;
        }
    }
}
my $total = 0;
$total += $_ for values %status;
is $total, $CLIENTS * $PER_CLIENT, "every one of the $total requests answered";
is join(',', grep { $_ != 201 && $_ != 422 } sort keys %status), '',
    'only 201 (posted) and 422 (insufficient funds) answers';
cmp_ok $status{201} // 0, '>', $total / 2, "most posted ($status{201})";
ok $replays, "some requests retried ($replays)";
is $replay_bad // 0, 0, 'every retry got the first answer again';
is $misuse_bad // 0, 0, "every reuse of a key for another amount got 409 (${\($misuses // 0)})";

# Exactly the acknowledged transfers exist, each once.
my %seen;
$seen{ $_->{id} }++ for @acked;
is scalar(grep { $_ > 1 } values %seen), 0, 'no transfer acknowledged twice';
my $ids = join ',', map { "'$_->{id}'" } @acked;
is sql_value("select count(*) from ledger.transfers where id in ($ids)"), scalar @acked,
    'every acknowledged transfer is in the ledger';
my $accts = join ',', map { "'$_->{id}'" } @wallets;
is sql_value("select count(*) from ledger.transfers where kind = 'p2p'
    and (debit_account_id in ($accts) or credit_account_id in ($accts))"), scalar @acked,
    'and nothing else moved these wallets\' money';

# Balances: what the acknowledged transfers say.
my @expect = ($FUNDS) x $USERS;
for (@acked) {
    $expect[ $_->{from} ] -= $_->{amount};
    $expect[ $_->{to} ] += $_->{amount};
}
my @posted = map { ledger(GET => "/v1/accounts/$_->{id}", $users[ $index{ $_->{id} } ])->{json} }
    @wallets;
is_deeply [map { $_->{posted} } @posted], \@expect, 'each balance is what the 201s moved';
is scalar(grep { $_->{available} < 0 } @posted), 0, 'no wallet below zero';
my $sum = 0;
$sum += $_ for @expect;
is $sum, $USERS * $FUNDS, 'the wallets together hold what was funded';

is sql_value("select count(*) from ledger.outbox where type = 'ledger.transfer.posted'
    and subject in (" . join(',', map { "'$_->{id}'" } @acked) . ")"), scalar @acked,
    'one event per acknowledged transfer';

invariants_ok('after the concurrent run');
done_testing;
