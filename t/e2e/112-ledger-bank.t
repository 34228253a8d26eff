# The bank test: 16 clients move money at random -- transfers, holds,
# captures, voids, refunds, and retries with their keys -- while the
# ledger is killed with SIGKILL and restarted, and PostgreSQL is
# restarted.  Clients retry every request with its key until it gets a
# definite answer.  Afterwards every acknowledged operation exists
# exactly once, nothing else moved these wallets' money, each balance is
# what the acknowledgements say, and the invariants hold.
#
# LEDGER_BANK_SECONDS (default 20) sets the length; `make test-bank` runs
# the full minute.  LEDGER_SEED=<n> replays the clients' choices.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Kordon::E2E;
use Kordon::Ledger;

my $SECONDS = $ENV{LEDGER_BANK_SECONDS} // 20;
my $USERS   = 12;
my $CLIENTS = 16;
my $FUNDS   = 100_000;
my $seed = $ENV{LEDGER_SEED} // int rand 1_000_000;
diag "LEDGER_SEED=$seed LEDGER_BANK_SECONDS=$SECONDS";

my @users = map { user_id("bank$_") } 1 .. $USERS;
my @wallets = map { open_wallet($_, 'GBP') } @users;
fund($_, $FUNDS) for @wallets;
my $json = JSON::PP->new->canonical;

# One request, retried with the same key until the answer is definite
# (not a connection failure, not a 5xx); gives up after 90 s.
sub call {
    my ($ua, $method, $path, $u, $body, $key) = @_;
    my $deadline = time + 90;
    while (1) {
        my $h = signed_headers($method, $path, $users[$u]);
        $h->{'Content-Type'} = 'application/json' if $body;
        $h->{'Idempotency-Key'} = $key if $key;
        my $r = $ua->request($method, "$ENV{KORDON_LEDGER_URL}$path",
            { headers => $h, $body ? (content => $json->encode($body)) : () });
        $r->{json} = json_of($r->{content});
        return $r if $r->{status} < 500 || time > $deadline;
        sleep 0.2;
    }
}

sub client {
    my ($n, $end, $out) = @_;
    srand($seed + $n);
    my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
    open my $fh, '>', $out or die "cannot write \"$out\": $!";
    select((select($fh), $| = 1)[0]);
    my (@holds, @paid, $i);
    while (time < $end) {
        $i++;
        my $k = "bank-$seed-$n-$i";
        my $f = int rand $USERS;
        my $t = ($f + 1 + int rand($USERS - 1)) % $USERS;
        my $op = rand;
        my $r;
        if ($op < 0.5) {
            my $b = { from_account_id => $wallets[$f]{id},
                      to_account_id => $wallets[$t]{id},
                      amount => 1 + int rand 2_000, currency => 'GBP' };
            $r = call($ua, POST => '/v1/transfers', $f, $b, $k);
            if ($r->{status} == 201) {
                print $fh "T $r->{json}{id} $f $t $b->{amount}\n";
                push @paid, [$r->{json}{id}, $f, $t, $b->{amount}];
            }
            if (rand() < 0.2) {
                my $again = call($ua, POST => '/v1/transfers', $f, $b, $k);
                print $fh 'P ', ($again->{status} == $r->{status}
                    && ($again->{json}{id} // '') eq ($r->{json}{id} // '')
                    ? 'same' : "differs $r->{status} $again->{status}"), "\n";
            }
        } elsif ($op < 0.65) {
            my $b = { from_account_id => $wallets[$f]{id},
                      to_account_id => $wallets[$t]{id},
                      amount => 1 + int rand 1_000, currency => 'GBP',
                      expires_in => rand() < 0.3 ? 1 : 600 };
            $r = call($ua, POST => '/v1/holds', $f, $b, $k);
            if ($r->{status} == 201) {
                print $fh "H $r->{json}{id} $f $t $b->{amount}\n";
                push @holds, [$r->{json}{id}, $f, $t, $b->{amount}];
            }
        } elsif ($op < 0.85 && @holds) {
            my $h = splice @holds, int rand @holds, 1;
            if (rand() < 0.6) {
                my $b = rand() < 0.5 ? {} : { amount => 1 + int rand $h->[3] };
                $r = call($ua, POST => "/v1/holds/$h->[0]/capture", $h->[2], $b, $k);
                print $fh "C $h->[0] $r->{json}{captured_amount} "
                    . "$r->{json}{capture_transfer_id}\n" if $r->{status} == 200;
            } else {
                $r = call($ua, POST => "/v1/holds/$h->[0]/void", $h->[1], {}, $k);
                print $fh "V $h->[0]\n" if $r->{status} == 200;
            }
        } elsif (@paid) {
            my $p = $paid[int rand @paid];
            my $b = { amount => 1 + int rand $p->[3] };
            $r = call($ua, POST => "/v1/transfers/$p->[0]/refund", $p->[2], $b, $k);
            print $fh "R $r->{json}{id} $p->[0] $b->{amount}\n"
                if $r->{status} == 201;
        } else {
            next;
        }
        print $fh "S $r->{status}\n";
    }
    close $fh;
}

my $dir = tempdir(CLEANUP => 1);
my $end = time + $SECONDS;
my @pids;
for my $n (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        client($n, $end, "$dir/$n");
        exit 0;
    }
    push @pids, $pid;
}

# The chaos: SIGKILL the ledger a third of the way in, restart
# PostgreSQL at two thirds.
sleep $SECONDS / 3;
my $ledger = pid_of('pids/ledger.pid');
ok kill('KILL', $ledger), "the ledger ($ledger) killed with SIGKILL";
ok wait_until(sub { !kill 0, $ledger }, 10), 'and gone';
is stack(start => 'ledger'), 0, 'and started again';
sleep $SECONDS / 3;
is stack(stop => 'postgres'), 0, 'postgres stopped';
sleep 1;
is stack(start => 'postgres'), 0, 'postgres started again';
waitpid $_, 0 for @pids;
isnt pid_of('pids/ledger.pid'), $ledger, 'the ledger is a new process';

my (%n, @t, @h, @c, @v, @r, %status, @differs);
for my $f (glob "$dir/*") {
    open my $fh, '<', $f or die "$f: $!";
    while (<$fh>) {
        my @w = split;
        my $kind = shift @w;
        $n{$kind}++;
        push @t, [@w] if $kind eq 'T';
        push @h, [@w] if $kind eq 'H';
        push @c, [@w] if $kind eq 'C';
        push @v, [@w] if $kind eq 'V';
        push @r, [@w] if $kind eq 'R';
        $status{ $w[0] }++ if $kind eq 'S';
        push @differs, "@w" if $kind eq 'P' && $w[0] ne 'same';
    }
}
diag join ' ', map { "$_=$n{$_}" } sort keys %n;
diag 'answers: ' . join ' ', map { "$_: $status{$_}" } sort keys %status;
is join(',', grep { $_ >= 500 } keys %status), '', 'every request got a definite answer';
cmp_ok scalar @t, '>', 50, 'transfers were acknowledged (' . scalar(@t) . ')';
ok @h && @c && @r, 'and holds, captures and refunds';
is scalar @differs, 0, 'every retry with a key got the first answer';

# Each acknowledged operation exists exactly once; nothing else moved.
my $accts = join ',', map { "'$_->{id}'" } @wallets;
sub ids_ok {
    my ($name, $sql, @ids) = @_;
    my %seen;
    $seen{$_}++ for @ids;
    is scalar(grep { $_ > 1 } values %seen), 0, "$name: none acknowledged twice";
    my %db = map { $_ => 1 } split /\n/, psql_all($sql);
    is scalar(grep { !$db{$_} } keys %seen), 0, "$name: every acknowledged one exists";
    is scalar(grep { !$seen{$_} } keys %db), 0, "$name: none exists unacknowledged";
}
sub psql_all {
    my ($sql) = @_;
    my ($rc, $out) = psql_super($sql);
    die $out if $rc;
    return $out;
}
ids_ok('transfers', "select id from ledger.transfers where kind = 'p2p'
    and debit_account_id in ($accts)", map { $_->[0] } @t);
ids_ok('holds', "select id from ledger.holds where debit_account_id in ($accts)",
    map { $_->[0] } @h);
ids_ok('captures', "select id from ledger.transfers where kind = 'capture'
    and debit_account_id in ($accts)", map { $_->[2] } @c);
ids_ok('refunds', "select id from ledger.transfers where kind = 'refund'
    and credit_account_id in ($accts) and parent_id in (select id from
    ledger.transfers where kind = 'p2p')", map { $_->[0] } @r);

# Balances: what the acknowledgements say.
my %hold = map { $_->[0] => $_ } @h;
my %pay = map { $_->[0] => $_ } @t;
my @expect = ($FUNDS) x $USERS;
for (@t) { $expect[ $_->[1] ] -= $_->[3]; $expect[ $_->[2] ] += $_->[3] }
for (@c) {
    my $x = $hold{ $_->[0] } or next;
    $expect[ $x->[1] ] -= $_->[1];
    $expect[ $x->[2] ] += $_->[1];
}
for (@r) {
    my $x = $pay{ $_->[1] } or next;
    $expect[ $x->[2] ] -= $_->[2];
    $expect[ $x->[1] ] += $_->[2];
}
my @posted = map { psql_all("select credits_posted - debits_posted
    from ledger.accounts where id = '$_->{id}'") } @wallets;
is_deeply \@posted, \@expect, 'each balance is what the acknowledgements say';
is scalar(grep { $_ == 0 } map { psql_all("select count(*) from ledger.holds
    where id = '$_->[0]' and state = 'captured'") } @c), 0,
    'every acknowledged capture is a captured hold';
is scalar(grep { $_ == 0 } map { psql_all("select count(*) from ledger.holds
    where id = '$_->[0]' and state = 'voided'") } @v), 0,
    'every acknowledged void is a voided hold';

invariants_ok('after the bank run');
done_testing;
