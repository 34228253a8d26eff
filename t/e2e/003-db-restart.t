# The PostgreSQL pool recovers by itself after the server restarts:
# during the outage requests get 503 problem+json, never a crash or a
# hang, and once the server is back they succeed again.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;

my $r = kitd(GET => '/db');
is $r->{status}, 200, 'database reachable before';
is $r->{json}{answer}, 42, 'through a prepared statement';
my $pid = pid_of('pids/kitd.pid');

is stack(stop => 'postgres'), 0, 'postgres stopped';
$r = kitd(GET => '/db');
is $r->{status}, 503, 'database down: 503';
is $r->{headers}{'content-type'}, 'application/problem+json', 'as a problem';
$r = kitd(GET => '/readyz');
is $r->{status}, 503, 'not ready while the database is down';
is kitd(GET => '/healthz')->{status}, 200, 'but alive';

is stack(start => 'postgres'), 0, 'postgres started again';
ok wait_until(sub { kitd(GET => '/db')->{status} == 200 }, 15),
    'requests succeed again after the restart';
my $ok = grep { kitd(GET => '/db')->{status} == 200 } 1 .. 20;
is $ok, 20, 'every later request succeeds (all pool connections recovered)';
is kitd(GET => '/readyz')->{status}, 200, 'ready again';
# A restart nobody noticed: every pooled connection is stale, and each
# must be found dead when lent, not fail the request it was lent to.
is stack(stop => 'postgres'), 0, 'postgres stopped again, no requests meanwhile';
is stack(start => 'postgres'), 0, 'and started';
# In parallel, so that every pooled connection is lent at least once.
my @kids = map {
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        my $bad = grep { kitd(GET => '/db')->{status} != 200 } 1 .. 3;
        exit($bad ? 1 : 0);
    }
    $kid;
} 1 .. 8;
my $failed = grep { waitpid($_, 0); $? != 0 } @kids;
is $failed, 0, 'the very first requests after it succeed, on every connection';

is pid_of('pids/kitd.pid'), $pid, 'the service never restarted';
ok kill(0, $pid), 'and is still running';

done_testing;
