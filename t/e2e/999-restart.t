# `make run` is idempotent and `make stop` + `make run` keep the data.
# Runs last: it stops and starts the whole test stack.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Kordon::E2E;

$ENV{KORDON_TOP_DIR} = top_dir();

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

# A component that cannot start is named, with the tail of its log, and
# the start fails.  Here something else holds the users port.
is stack(stop => 'users'), 0, 'users stopped';
my ($uport) = $ENV{KORDON_USERS_URL} =~ /:(\d+)$/;
my $squatter = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$uport",
    Listen => 1, ReuseAddr => 1) or die "cannot listen on $uport: $!";
my $out = qx{$ENV{KORDON_TOP_DIR}/scripts/stack start users 2>&1};
isnt $?, 0, 'start fails when a component fails';
like $out, qr/users failed to start; last lines of \S+users\.log/,
    'naming the component and its log';
like $out, qr/could not (bind|listen)|in use/i, 'with the reason from the log';
close $squatter;
is stack(start => 'users'), 0, 'starts once the port is free';

done_testing;
