# `make run` is idempotent and `make stop` + `make run` keep the data.
# Runs last: it stops and starts the whole test stack.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;

my %pids = map { $_ => pid_of($_) }
    qw(pids/users.pid pids/ledger.pid pids/kitd.pid kafka/broker.pid
       redis/redis.pid nginx/nginx.pid);

is stack('start'), 0, 'start on a running stack succeeds';
is pid_of($_), $pids{$_}, "$_: the same process, none doubled" for sort keys %pids;
is edge(GET => '/healthz/users')->{status}, 200, 'still healthy';

my $r = kitd(POST => '/events?n=3', { 'X-Request-Id' => 'before-stop' });
is $r->{status}, 201, 'data written before the stop';
my $rows = psql_reader("select count(*) from kitd.outbox");
my ($rhost, $rport) = $ENV{REDIS_URL} =~ m{redis://([^:]+):(\d+)};
qx{redis-cli -h $rhost -p $rport set kordon:test:restart kept};

is stack('stop'), 0, 'stop';
ok !kill(0, $pids{$_}), "$_ is gone" for sort keys %pids;
isnt edge(GET => '/healthz')->{status}, 200, 'nothing answers';

is stack('start'), 0, 'start again';
is edge(GET => '/healthz/users')->{status}, 200, 'the stack is back';
is psql_reader("select count(*) from kitd.outbox"), $rows,
    'PostgreSQL kept the rows';
is qx{redis-cli -h $rhost -p $rport get kordon:test:restart}, "kept\n",
    'Redis kept its data';

done_testing;
