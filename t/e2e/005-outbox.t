# The transactional outbox: events written in a service's transaction
# reach Kafka through the relay, in the blueprint's envelope, keyed; and a
# broker outage loses none of them: once the broker is back, every event
# written meanwhile arrives, once.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;

my $topic = 'kitd.events';

sub batch_events {
    my ($batch) = @_;
    return grep { ($_->{value}{data}{batch} // '') eq $batch } kafka_read($topic);
}

sub unsent { psql_reader("select count(*) from kitd.outbox where sent_at is null") }

# Broker up: events flow.
my $r = kitd(POST => '/events?n=5', { 'X-Request-Id' => 'batch-up' });
is $r->{status}, 201, 'five events written in one transaction';
my @got;
ok wait_until(sub { @got = batch_events('batch-up'); @got == 5 }, 20),
    'all five reach the topic';
my $e = $got[0]{value};
ok $e->{$_}, "envelope has $_" for qw(id type occurred_at data);
is $e->{type}, 'kitd.test', 'event type';
is $e->{request_id}, 'batch-up', 'request_id of the writing request';
like $e->{occurred_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'RFC 3339 time';
is_deeply [sort map { $_->{key} } @got], [map { "k$_" } 1 .. 5],
    'keyed as written';

# Broker down: events wait in the outbox.
my $broker = pid_of('kafka/broker.pid');
ok kill('USR1', $broker), 'broker taken down';
$r = kitd(POST => '/events?n=40', { 'X-Request-Id' => 'batch-down' });
is $r->{status}, 201, 'writes still succeed while the broker is down';
sleep 2;
cmp_ok unsent(), '>=', 40, 'the events wait in the outbox';

# Broker back: every event arrives, once.
ok kill('USR2', $broker), 'broker back up';
ok wait_until(sub { unsent() == 0 }, 60), 'the relay drains the outbox';
@got = batch_events('batch-down');
is scalar(@got), 40, 'all 40 events arrived';
my %seen;
$seen{ $_->{value}{id} }++ for @got;
is scalar(keys %seen), 40, 'each event once (no duplicates)';
is_deeply [sort { $a <=> $b } map { $_->{value}{data}{seq} } @got],
    [1 .. 40], 'every sequence number';

# A relay restart loses nothing.
$r = kitd(POST => '/events?n=20', { 'X-Request-Id' => 'batch-restart' });
is $r->{status}, 201, 'twenty more';
is stack(stop => 'kitd'), 0, 'service stopped mid-stream';
is stack(start => 'kitd'), 0, 'and started again';
ok wait_until(sub { batch_events('batch-restart') == 20 }, 30),
    'all twenty arrive across the restart';

done_testing;
