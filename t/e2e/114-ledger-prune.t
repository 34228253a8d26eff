# Pruning (sql/ledger/015): the ledger's sweeper deletes sent outbox
# events and idempotency keys older than KORDON_LEDGER_RETENTION_S, every
# KORDON_LEDGER_PRUNE_MS; what is recent stays, an unsent event stays
# however old, a key within the retention still replays its answer, and
# a key past it is forgotten (the same key posts anew).
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my ($alice, $bob) = map { user_id($_) } qw(alice bob);
my $a = open_wallet($alice, 'EUR');
my $b = open_wallet($bob, 'EUR');
fund($a, 10_000);

sub super_ok {
    my ($sql, $name) = @_;
    my ($rc, $out) = psql_super($sql);
    is $rc, 0, $name or diag $out;
    return $out;
}
sub keys_of { sql_value("select count(*) from ledger.idempotency where key = '$_[0]'") }
sub events_of { sql_value("select count(*) from ledger.outbox where type = '$_[0]'") }

# Two payments; the first one's key made two hours old (as the superuser:
# the service cannot), and two sent events of a test type, one as old.
my ($k_old, $k_new) = (key(), key());
my $old = pay($alice, $a, $b, 100, $k_old);
my $new = pay($alice, $a, $b, 200, $k_new);
is $_->{status}, 201, 'a payment posts' for $old, $new;
super_ok("update ledger.idempotency set created_at = now() - interval '2 hours'
           where key = '$k_old'", 'the first key aged two hours');
# Outbox ids rise with time, which prune_old() relies on: the old event
# takes an id before every other.
super_ok(q{insert into ledger.outbox (id, topic, key, type, data, created_at,
                                     sent_at)
           overriding system value
           select min(id) - 1, 'ledger.events', 'x', 'ledger.test.old', '{}',
                  now() - interval '2 hours', now() - interval '2 hours'
             from ledger.outbox;
           insert into ledger.outbox (topic, key, type, data, sent_at)
           values ('ledger.events', 'x', 'ledger.test.recent', '{}', now())},
    'an old and a recent sent event');
ok wait_until(sub { sql_value("select count(*) from ledger.outbox
                                where subject = '$new->{json}{id}'
                                  and sent_at is not null") == 1 }, 10),
    "the second payment's event is sent";

# The ledger again, keeping one hour, pruning every 100 ms.
{
    local $ENV{KORDON_LEDGER_RETENTION_S} = 3600;
    local $ENV{KORDON_LEDGER_PRUNE_MS} = 100;
    is stack(stop => 'ledger'), 0, 'ledger stopped';
    is stack(start => 'ledger'), 0, 'and started with a retention of an hour';
}
ok wait_until(sub { keys_of($k_old) == 0 }, 10), 'the old key is pruned';
is events_of('ledger.test.old'), 0, 'the old sent event is pruned';
is keys_of($k_new), 1, 'the recent key is kept';
is events_of('ledger.test.recent'), 1, 'the recent sent event is kept';
is sql_value("select count(*) from ledger.outbox where subject = '$new->{json}{id}'"),
    1, "the recent payment's event is kept";
like slurp("$ENV{KORDON_RUN}/log/ledger.log"),
    qr/pruned \d+ sent events and \d+ idempotency keys older than 3600 s/,
    'the ledger logs what it pruned';

# An unsent event is never pruned, however old (in a transaction the
# relay cannot see, rolled back).
is super_ok(q{begin;
    insert into ledger.outbox (topic, key, type, data, created_at)
    values ('ledger.events', 'x', 'ledger.test.unsent', '{}',
            now() - interval '2 hours');
    select events from ledger.prune_old(3600, 10000);
    select count(*) from ledger.outbox where type = 'ledger.test.unsent';
    rollback}, 'prune_old beside an old unsent event'), "0\n1",
    'it prunes nothing and the unsent event stays';

# Within the retention a key replays its answer; past it, it is forgotten.
my $again = pay($alice, $a, $b, 200, $k_new);
is $again->{status}, 201, 'the recent key: 201';
is $again->{content}, $new->{content}, 'the very same answer';
is $again->{headers}{'idempotent-replayed'}, 'true', 'marked replayed';
my $anew = pay($alice, $a, $b, 100, $k_old);
is $anew->{status}, 201, 'the pruned key: 201';
ok !$anew->{headers}{'idempotent-replayed'}, 'not a replay';
isnt $anew->{json}{id}, $old->{json}{id}, 'a new transfer';
is ledger(GET => "/v1/accounts/$a->{id}", support_id())->{json}{posted},
    10_000 - 400, 'the payer paid three times';

# The service role cannot delete keys itself; only through prune_old().
like((psql_super("set role kordon_ledger;
    delete from ledger.idempotency where key = '$k_new'"))[1],
    qr/permission denied/, 'the service role has no DELETE on idempotency');
like((psql_super('set role kordon_ledger;
    select * from ledger.prune_old(0, 10)'))[1],
    qr/retention must be positive/, 'prune_old refuses a retention of 0');

is stack(stop => 'ledger'), 0, 'ledger stopped';
is stack(start => 'ledger'), 0, 'and started with the default settings';
invariants_ok('prune');
done_testing;

sub slurp { local (@ARGV, $/) = @_; return <> // '' }
