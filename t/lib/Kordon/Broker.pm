package Kordon::Broker;

# Kordon::Broker -- the Kafka broker of the edge's event tests
# (t/041-*.t), so that a block reads as a config, requests, a step done
# to the broker and the events that came out.
#
# The broker is build/bin/kordon-broker (librdkafka's mock cluster in a
# process, the one `scripts/stack` runs), started once per test file from
# a temporary directory and stopped when the test ends, whatever happens.
#
#   broker_setup()           starts it; TEST_NGINX_KAFKA is its bootstrap
#   broker_down()            SIGUSR1: every broker down (data kept)
#   broker_up()              SIGUSR2: up again
#   events($topic, %opt)     the events of a topic from its beginning, as
#                            [{key, value (decoded JSON)}]: waits up to
#                            wait => seconds (default 10) for at least
#                            n => events (default 1), then returns what
#                            the topic holds
#   metrics()                /metrics of the test's nginx, as
#                            { 'name{labels}' => value }

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Test::Kordon ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(broker_setup broker_down broker_up events metrics);

my $Top = Test::Kordon::servroot() =~ s{/t/[^/]+$}{}r;
my $Binary = $ENV{KORDON_BROKER_BINARY} || "$Top/build/bin/kordon-broker";
my $Parent = $$;
my ($Pid, $Bootstrap);

sub broker_setup {
    die "no broker at \"$Binary\": run make\n" unless -x $Binary;
    my $dir = tempdir('kordon-broker-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    defined($Pid = fork) or die "fork: $!";
    if ($Pid == 0) {
        open STDOUT, '>', "$dir/broker.log";
        open STDERR, '>&', \*STDOUT;
        { exec $Binary, '--bootstrap-file', "$dir/bootstrap",
               '--topics', 'edge.requests', '--partitions', '1' };
        POSIX::_exit(127);
    }
    my $deadline = time + 10;
    until (-s "$dir/bootstrap") {
        die "the broker did not start:\n" . slurp("$dir/broker.log")
            if time > $deadline || waitpid($Pid, POSIX::WNOHANG()) == $Pid;
        sleep 0.05;
    }
    chomp($Bootstrap = slurp("$dir/bootstrap"));
    $ENV{TEST_NGINX_KAFKA} = $Bootstrap;
    return $Bootstrap;
}

sub broker_down { kill 'USR1', $Pid or die "broker: $!\n"; sleep 0.2; 1 }
sub broker_up   { kill 'USR2', $Pid or die "broker: $!\n"; sleep 0.2; 1 }

sub events {
    my ($topic, %opt) = @_;
    my $n = $opt{n} // 1;
    my $deadline = time + ($opt{wait} // 10);
    my @ev;
    while (1) {
        @ev = read_topic($topic);
        return @ev if @ev >= $n || time > $deadline;
        sleep 0.2;
    }
}

sub read_topic {
    my ($topic) = @_;
    my @cmd = ('kcat', '-b', $Bootstrap, '-C', '-t', $topic, '-o',
               'beginning', '-e', '-q', '-f', '%k\t%s\n',
               '-X', 'topic.metadata.refresh.interval.ms=100');
    open my $fh, '-|', @cmd or die "cannot run kcat: $!";
    my @ev;
    while (my $line = <$fh>) {
        chomp $line;
        my ($k, $v) = split /\t/, $line, 2;
        my $json = eval { JSON::PP->new->utf8->decode($v) };
        push @ev, { key => $k, value => $json // { invalid => $v } };
    }
    close $fh;
    return @ev;
}

sub metrics {
    my $port = Test::Kordon::server_port();
    my $res = HTTP::Tiny->new(timeout => 5)
        ->get("http://127.0.0.1:$port/metrics");
    die "GET /metrics: $res->{status} $res->{reason}\n"
        unless $res->{success};
    my %m;
    for (split /\n/, $res->{content}) {
        next if /^#/;
        my ($k, $v) = /^(\S+(?:\{[^}]*\})?) (\S+)$/ or next;
        $m{$k} = $v;
    }
    return \%m;
}

sub slurp {
    my $path = shift;
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh>;
}

END {
    if ($Pid && $$ == $Parent) {
        kill 'TERM', $Pid;
        waitpid $Pid, 0;
    }
}

1;
