# SIGTERM stops a service gracefully: it stops accepting, every request
# in flight is answered, and it exits.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Time::HiRes qw(sleep);

my $n = 8;
my $pid = pid_of('pids/kitd.pid');
ok $pid && kill(0, $pid), 'kitd runs';

# Each child makes one slow request and reports its status by exit code.
my @kids;
for my $i (1 .. $n) {
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        my $r = kitd(GET => '/slow?ms=1500');
        exit($r->{status} == 200 && $r->{json}{slept_ms} == 1500 ? 0 : 1);
    }
    push @kids, $kid;
}
sleep 0.5;
ok kill('TERM', $pid), 'SIGTERM sent with requests in flight';

my $answered = 0;
for my $kid (@kids) {
    waitpid $kid, 0;
    $answered++ if $? == 0;
}
is $answered, $n, "all $n requests in flight were answered";
ok wait_until(sub { !kill(0, $pid) }, 30), 'the service exited';

my $log = do { local (@ARGV, $/) = ("$ENV{KORDON_RUN}/log/kitd.log"); <> };
like $log, qr/"msg":"stopped"/, 'and said so in its log';

is stack(start => 'kitd'), 0, 'kitd starts again';
is kitd(GET => '/healthz')->{status}, 200, 'and serves';

done_testing;
