# The ledger's schema guards money by itself, whatever the code does: a
# posted transfer cannot be updated or deleted (even by the superuser, even
# through its partition), a pending one may only become posted or voided,
# the service's role may not touch what it must not, a wallet cannot be
# overdrawn by any UPDATE, and transfers land in their month's partition.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Kordon::E2E;
use Kordon::Ledger;

my ($alice, $bob) = map { user_id($_) } qw(alice bob);
my $a_eur = open_wallet($alice, 'EUR');
my $b_eur = open_wallet($bob, 'EUR');
fund($a_eur, 1_000);
my $t = pay($alice, $a_eur, $b_eur, 400)->{json};
ok $t->{id}, 'a posted transfer';
my $id = $t->{id};

sub refused {
    my ($sql, $re, $name) = @_;
    my ($rc, $out) = psql_super($sql);
    isnt $rc, 0, "$name: refused";
    like $out, $re, "$name: says why" or diag $out;
}

# Posted rows are frozen, for everyone.
refused("update ledger.transfers set amount = 1 where id = '$id'",
    qr/transfer "$id" is posted, and cannot change/, 'changing the amount');
refused("update ledger.transfers set status = 'voided' where id = '$id'",
    qr/is posted, and cannot change/, 'voiding a posted transfer');
refused("delete from ledger.transfers where id = '$id'",
    qr/transfer "$id" cannot be deleted/, 'deleting it');
my $part = sql_value("select tableoid::regclass from ledger.transfers where id = '$id'");
refused("update $part set reason = 'x' where id = '$id'",
    qr/cannot change/, 'changing it through its partition');
refused("delete from $part where id = '$id'", qr/cannot be deleted/,
    'deleting it through its partition');
is sql_value("select amount || ' ' || status from ledger.transfers where id = '$id'"),
    '400 posted', 'the transfer is as it was';

# A pending transfer resolves once, to posted or voided, and changes nothing
# else.  (Run in a block that rolls itself back.)
my ($rc, $out) = psql_super(<<SQL);
do \$\$
declare
    t uuid;
begin
    insert into ledger.transfers (debit_account_id, credit_account_id, amount,
                                  currency, kind, status, actor)
    values ('$a_eur->{id}', '$b_eur->{id}', 5, 'EUR', 'hold', 'pending', 'test')
    returning id into t;
    begin
        update ledger.transfers set amount = 6 where id = t;
        raise notice 'pending amount: changed';
    exception when integrity_constraint_violation then
        raise notice 'pending amount: refused';
    end;
    update ledger.transfers set status = 'posted', resolved_at = now() where id = t;
    raise notice 'pending to posted: done';
    begin
        update ledger.transfers set status = 'voided' where id = t;
        raise notice 'posted to voided: changed';
    exception when integrity_constraint_violation then
        raise notice 'posted to voided: refused';
    end;
    raise exception 'rolled back on purpose';
end
\$\$;
SQL
like $out, qr/pending amount: refused/, 'a pending transfer\'s amount is frozen';
like $out, qr/pending to posted: done/, 'it may be posted';
like $out, qr/posted to voided: refused/, 'and then no more';
like $out, qr/rolled back on purpose/, 'and it left nothing behind';

# The service's role: DML it needs, nothing more.
my $as_service = "set role kordon_ledger; set search_path = ledger;";
refused("$as_service update transfers set amount = 1 where id = '$id'",
    qr/permission denied for table transfers/, 'the service updating an amount');
refused("$as_service delete from accounts where id = '$a_eur->{id}'",
    qr/permission denied for table accounts/, 'the service deleting an account');
refused("$as_service update accounts set owner = 'mallory' where id = '$a_eur->{id}'",
    qr/permission denied for table accounts/, 'the service giving an account away');
refused("$as_service update idempotency set code = 'ok' where false",
    qr/permission denied for table idempotency/, 'the service rewriting an outcome');
refused("$as_service insert into currencies values ('XTS', 2, 'test')",
    qr/permission denied for table currencies/, 'the service adding a currency');
refused("$as_service select count(*) from $part",
    qr/permission denied/, 'the service reading a partition directly');

# The database itself refuses an overdraft, whoever asks.
refused("update ledger.accounts set debits_posted = credits_posted + 1
    where id = '$a_eur->{id}'", qr/accounts_debits_within_credits/,
    'a wallet debited beyond its credits');
refused("update ledger.accounts set credits_pending = -1 where id = '$b_eur->{id}'",
    qr/accounts_totals_non_negative/, 'a negative total');
refused("insert into ledger.transfers (debit_account_id, credit_account_id, amount,
    currency, kind, status, actor) values ('$a_eur->{id}', '$b_eur->{id}', 0, 'EUR',
    'p2p', 'posted', 'test')", qr/transfers_amount_positive/, 'a zero transfer');
refused("insert into ledger.transfers (debit_account_id, credit_account_id, amount,
    currency, kind, status, actor) values ('$a_eur->{id}', '$a_eur->{id}', 1, 'EUR',
    'p2p', 'posted', 'test')", qr/transfers_two_accounts/, 'a transfer to itself');
refused("insert into ledger.accounts (owner, currency, kind, debits_must_not_exceed_credits)
    values ('$alice->{user}', 'EUR', 'wallet', true)", qr/accounts_wallet/,
    'a second EUR wallet for one user');
refused("insert into ledger.accounts (owner, currency, kind, debits_must_not_exceed_credits)
    values ('x', 'GBP', 'wallet', false)", qr/accounts_wallet_no_overdraft/,
    'a wallet that may be overdrawn');

# No foreign keys on transfers (sql/ledger/014: 3,000 RI checks a
# 1,000-transfer batch): the posting functions find both accounts under
# their row locks, accounts and currencies are never deleted, and a
# transfer naming an unknown account is refused before anything is
# written (101); invariants_ok proves every transfer's accounts exist.
is sql_value("select count(*) from pg_constraint
    where conrelid = 'ledger.transfers'::regclass and contype = 'f'"), 0,
    'transfers carry no per-row foreign key checks';
($rc, $out) = psql_super("set role kordon_ledger;
    delete from ledger.accounts where id = '$b_eur->{id}'");
like $out, qr/permission denied/, 'the service cannot delete an account';
($rc, $out) = psql_super("set role kordon_ledger;
    delete from ledger.currencies where code = 'EUR'");
like $out, qr/permission denied/, 'nor a currency';
my $ghost = '01a20af9-0532-7808-bb9f-6faf61b1da84';
my $before = sql_value('select count(*) from ledger.transfers');
my $r = pay($alice, $a_eur, { id => $ghost, currency => 'EUR' }, 1);
is $r->{status}, 422, 'paying an unknown account is refused';
is sql_value('select count(*) from ledger.transfers'), $before,
    'and writes no transfer';

# The posting functions plan generically and never JIT-compile (014): the
# replay query's estimate crossed jit_above_cost, and one replayed
# transfer cost seconds of LLVM with the batch's accounts locked.
for my $f ('post_transfers(json)', 'post_transfers_decide(ledger.post_item[])') {
    like sql_value("select array_to_string(proconfig, ' ') from pg_proc
        where oid = 'ledger.$f'::regprocedure"),
        qr/plan_cache_mode=force_generic_plan jit=off/,
        "$f: generic plans, no JIT";
}

# Partitions: by month of the UUIDv7 id.
my $month = sql_value("select to_char(now() at time zone 'UTC', 'YYYYMM')");
is $part, "ledger.transfers_p$month", 'the transfer is in this month\'s partition';
cmp_ok sql_value("select count(*) from pg_inherits where inhparent = 'ledger.transfers'::regclass"),
    '>=', 25, 'two years of months and a default partition';
my $ahead = sql_value("select to_char((now() at time zone 'UTC')::date
    + interval '23 months', 'YYYYMM')");
ok sql_value("select to_regclass('ledger.transfers_p$ahead') is not null"),
    '24 months ahead exist';
($rc, $out) = psql_super("set role kordon_ledger;
    select ledger.transfer_partitions_ahead(24)");
is "$rc $out", '0 0', 'the service role keeps them so: nothing to make now'
    or diag $out;
($rc, $out) = psql_super("set role kordon_ledger;
    select ledger.transfer_partitions_ahead(99)");
like $out, qr/months must be in 1..36/, 'and takes no more than 36 months';
($rc, $out) = psql_super("set role kordon_ledger;
    select ledger.ensure_transfer_partitions(current_date, 1)");
like $out, qr/permission denied/, 'the service cannot call the DDL itself';
is sql_value("select abs(extract(epoch from created_at) * 1000
    - ('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint) < 5000
    from ledger.transfers where id = '$id'"), 't', 'the id carries its creation time';
is sql_value("select substr(id::text, 15, 1) from ledger.transfers where id = '$id'"),
    '7', 'a version 7 UUID';

invariants_ok('schema');
done_testing;
