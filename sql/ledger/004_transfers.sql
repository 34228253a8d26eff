-- Transfers: each moves a positive amount from one account (debit) to
-- another (credit) in one currency, and is the only thing that changes an
-- account's totals.  A posted transfer is never updated or deleted: a
-- trigger refuses it, and corrections are new transfers.
--
-- Ids are UUIDv7 (a 48-bit millisecond timestamp first, then random bits),
-- so they sort by time.  That is what the table is partitioned by: one
-- partition per month of ids, plus a default one.  A lookup by id prunes
-- to one partition, the primary key needs no extra column, and a
-- statement pages through (account, id) in time order.  Reports by month
-- read whole partitions; old months can be detached and archived.
--
-- Idempotency keys live in their own table, scoped by the caller and the
-- operation, with the hash of the request and the outcome -- failures
-- included, so a retry can never turn a refusal into a transfer.

-- A version 7 UUID for ts: its 48-bit Unix time in ms, then random bits.
create function uuid7(ts timestamptz default clock_timestamp()) returns uuid
language sql volatile parallel safe
return encode(
    set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch from ts)
                                                 * 1000)::bigint) from 3)
                from 1 for 6),
        52, 1), 53, 1),
    'hex')::uuid;

-- The smallest version 7 UUID of ts's millisecond (the rest zero): the
-- bound of a partition, or of a scan from a time on.
create function uuid7_floor(ts timestamptz) returns uuid
language sql immutable parallel safe
return encode(
    substring(int8send(floor(extract(epoch from ts) * 1000)::bigint) from 3)
    || '\x00000000000000000000'::bytea,
    'hex')::uuid;

create table transfers (
    id                 uuid        not null default uuid7(),
    debit_account_id   uuid        not null references accounts,
    credit_account_id  uuid        not null references accounts,
    amount             bigint      not null,
    currency           text        not null references currencies,
    kind               text        not null,
    status             text        not null,
    parent_id          uuid,
    group_id           uuid,
    reason             text,
    actor              text        not null,
    request_id         text        not null default '',
    idempotency_key    text,
    created_at         timestamptz not null default now(),
    resolved_at        timestamptz,
    primary key (id),
    constraint transfers_amount_positive check (amount > 0),
    constraint transfers_two_accounts check (
        debit_account_id <> credit_account_id),
    constraint transfers_kind check (kind in (
        'p2p', 'adjustment', 'deposit', 'withdrawal', 'fee', 'cashback',
        'refund', 'hold')),
    constraint transfers_status check (
        status in ('pending', 'posted', 'voided')),
    constraint transfers_adjustment_reason check (
        kind <> 'adjustment' or coalesce(length(btrim(reason)), 0) > 0)
) partition by range (id);

comment on table transfers is
    'double-entry transfers, immutable once posted; partitioned by month '
    'of their UUIDv7 id';

-- Statements: an account's transfers in time order, either side.
create index transfers_debit on transfers (debit_account_id, id);
create index transfers_credit on transfers (credit_account_id, id);
create index transfers_group on transfers (group_id)
    where group_id is not null;
create index transfers_parent on transfers (parent_id)
    where parent_id is not null;

create table transfers_default partition of transfers default;

-- The monthly partitions from p_from's month on, p_months of them, that do
-- not exist yet; returns how many it made.  A month whose rows already
-- sit in the default partition cannot be split off this way (PostgreSQL
-- refuses, naming the row), so make them ahead: the migration makes two
-- years, and a scheduled job is to keep the horizon there.  The service
-- role reaches rows through the parent only.
create function ensure_transfer_partitions(p_from date, p_months int)
returns int
language plpgsql
set search_path from current
as $$
declare
    m        timestamp;
    name     text;
    made     int := 0;
begin
    if p_months not between 1 and 120 then
        raise exception 'months must be in 1..120, not %', p_months;
    end if;
    for k in 0 .. p_months - 1 loop
        m := date_trunc('month', p_from::timestamp)
             + make_interval(months => k);
        name := 'transfers_p' || to_char(m, 'YYYYMM');
        continue when to_regclass(name) is not null;
        execute format('create table %I partition of transfers '
                       'for values from (%L) to (%L)', name,
                       uuid7_floor(m at time zone 'UTC'),
                       uuid7_floor((m + interval '1 month')
                                   at time zone 'UTC'));
        execute format('revoke all on %I from kordon_ledger', name);
        made := made + 1;
    end loop;
    return made;
end
$$;

revoke all on function ensure_transfer_partitions(date, int) from public;

select ensure_transfer_partitions(current_date, 24);
revoke all on transfers_default from kordon_ledger;

-- Posted and voided transfers are frozen; a pending one may change its
-- status (to posted or voided) and its resolved_at, nothing else.  No
-- transfer is ever deleted.  Cloned onto every partition, present and
-- future, so the rule holds whichever table a statement names.
create function transfers_guard() returns trigger
language plpgsql
as $$
begin
    if tg_op = 'DELETE' then
        raise exception 'transfer "%" cannot be deleted', old.id
            using errcode = 'integrity_constraint_violation',
                  hint = 'Correct a transfer with a new transfer.';
    end if;
    if old.status <> 'pending' then
        raise exception 'transfer "%" is %, and cannot change', old.id,
                        old.status
            using errcode = 'integrity_constraint_violation',
                  hint = 'Correct a transfer with a new transfer.';
    end if;
    if new.status not in ('posted', 'voided')
       or (new.id, new.debit_account_id, new.credit_account_id, new.amount,
           new.currency, new.kind, new.parent_id, new.group_id, new.reason,
           new.actor, new.request_id, new.idempotency_key, new.created_at)
          is distinct from
          (old.id, old.debit_account_id, old.credit_account_id, old.amount,
           old.currency, old.kind, old.parent_id, old.group_id, old.reason,
           old.actor, old.request_id, old.idempotency_key, old.created_at)
    then
        raise exception 'pending transfer "%" may only become posted or '
                        'voided', old.id
            using errcode = 'integrity_constraint_violation';
    end if;
    return new;
end
$$;

create trigger transfers_guard
    before update or delete on transfers
    for each row execute function transfers_guard();

revoke update, delete, truncate on transfers from kordon_ledger;
grant update (status, resolved_at) on transfers to kordon_ledger;

-- One row per Idempotency-Key: who used it (owner) for what (scope:
-- "transfer", "adjustment"), the SHA-256 of the request's fields, and the
-- outcome: "ok" with the transfer, or the code of the refusal.  Written
-- in the transaction that decided the outcome.  Kept for good for now;
-- expiring old keys is a later job.
create table idempotency (
    owner         text        not null,
    scope         text        not null,
    key           text        not null,
    request_hash  bytea       not null,
    code          text        not null,
    transfer_id   uuid,
    created_at    timestamptz not null default now(),
    primary key (owner, scope, key),
    constraint idempotency_hash check (length(request_hash) = 32),
    constraint idempotency_outcome check (
        (code = 'ok') = (transfer_id is not null))
);

comment on table idempotency is
    'the outcome of every request made with an Idempotency-Key';

revoke update, delete, truncate on idempotency from kordon_ledger;
