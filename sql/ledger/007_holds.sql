-- Holds: two-phase transfers, TigerBeetle's way.
--
-- A hold is a pending transfer: it moves amount into debits_pending of
-- the paying wallet and credits_pending of the payee, so the money is no
-- longer available to the payer but not yet the payee's.  It resolves
-- exactly once, in one of three ways:
--
--   captured  all or part of it is posted as a new transfer (kind
--             'capture', parent_id = the hold); the rest is released
--   voided    released on request
--   expired   released by the service itself once expires_at passed
--
-- Either way the pending transfer itself becomes 'voided' (its pending
-- amount counts no more) and the holds row records how it ended.  The
-- holds row is what makes "exactly once" hold: every resolution locks it
-- first and acts only on a row still 'pending'.
--
-- Lock order, shared with post_transfers(): idempotency keys (advisory,
-- 006), then the holds row, then accounts in id order.  The sweeper
-- skips holds rows another transaction holds.
--
-- The operations here answer one jsonb document each: {"code": "ok",
-- "replayed": false, "data": {...}} or {"code": "<refusal>"}; the service
-- maps codes to HTTP answers.  Requests with an Idempotency-Key are
-- recorded with their outcome like transfers are; the request hash is
-- the SHA-256 of the operation's arguments as canonical jsonb, without
-- who asked and the key itself.

alter table transfers drop constraint transfers_kind;
alter table transfers add constraint transfers_kind check (kind in (
    'p2p', 'adjustment', 'deposit', 'withdrawal', 'fee', 'cashback',
    'refund', 'hold', 'capture'));

create table holds (
    id                 uuid        primary key,     -- its pending transfer
    debit_account_id   uuid        not null references accounts,
    credit_account_id  uuid        not null references accounts,
    amount             bigint      not null,
    currency           text        not null references currencies,
    state              text        not null default 'pending',
    captured           bigint      not null default 0,
    capture_id         uuid,
    actor              text        not null,
    expires_at         timestamptz not null,
    created_at         timestamptz not null default now(),
    resolved_at        timestamptz,
    constraint holds_amount_positive check (amount > 0),
    constraint holds_state check (
        state in ('pending', 'captured', 'voided', 'expired')),
    constraint holds_resolution check (
        (state = 'pending') = (resolved_at is null)
        and (state = 'captured') = (capture_id is not null)
        and captured between 0 and amount
        and (state = 'captured' or captured = 0))
);

comment on table holds is
    'two-phase transfers: each pending transfer of kind hold and how it '
    'resolved (once)';

create index holds_expiring on holds (expires_at) where state = 'pending';

revoke update, delete, truncate on holds from kordon_ledger;
grant update (state, captured, capture_id, resolved_at) on holds
    to kordon_ledger;

-- A hold is resolved once: a resolved row never changes again.
create function holds_guard() returns trigger
language plpgsql
as $$
begin
    if old.state <> 'pending' then
        raise exception 'hold "%" is %, and cannot change', old.id, old.state
            using errcode = 'integrity_constraint_violation';
    end if;
    return new;
end
$$;

create trigger holds_guard
    before update on holds
    for each row execute function holds_guard();


-- ---- idempotency for the operations below ----------------------------

-- Takes the key (advisory lock, as post_transfers() does) and reads what
-- an earlier request with it decided: seen, same (hash matches), its
-- code and transfer.  The read is a statement after the lock, so it sees
-- what a concurrent holder committed.
create function idem_take(p_owner text, p_scope text, p_key text,
    p_hash bytea, out seen boolean, out same boolean, out code text,
    out transfer_id uuid)
language plpgsql
set search_path from current
as $$
begin
    seen := false;
    if p_key is null then
        return;
    end if;
    perform pg_advisory_xact_lock(idem_lock_space(),
                                  idem_lock_key(p_owner, p_scope, p_key));
    select true, k.request_hash = p_hash, k.code, k.transfer_id
      into seen, same, code, transfer_id
      from idempotency k
     where k.owner = p_owner and k.scope = p_scope and k.key = p_key;
    seen := coalesce(seen, false);
end
$$;

create function idem_keep(p_owner text, p_scope text, p_key text,
    p_hash bytea, p_code text, p_transfer uuid) returns void
language sql
set search_path from current
begin atomic
    insert into idempotency (owner, scope, key, request_hash, code,
                             transfer_id)
    select p_owner, p_scope, p_key, p_hash, p_code, p_transfer
     where p_key is not null;
end;

-- The hash of an operation's arguments: everything but who asked, the
-- request id and the key.
create function op_hash(p jsonb) returns bytea
language sql immutable parallel safe
return sha256(convert_to(
    (p - 'actor' - 'request_id' - 'idem_key' - 'admin')::text, 'UTF8'));

create function op_refusal(p_code text, p_replayed boolean default false)
returns jsonb
language sql immutable parallel safe
return jsonb_build_object('code', p_code, 'replayed', p_replayed);


-- ---- holds -----------------------------------------------------------

create function hold_json(h holds) returns jsonb
language sql stable
set search_path from current
return (
    select jsonb_strip_nulls(jsonb_build_object(
        'id', h.id, 'status', h.state,
        'from_account_id', h.debit_account_id,
        'to_account_id', h.credit_account_id,
        'amount', h.amount, 'captured_amount', h.captured,
        'currency', h.currency, 'exponent', c.exponent,
        'capture_transfer_id', h.capture_id,
        'expires_at', ts_text(h.expires_at),
        'created_at', ts_text(h.created_at),
        'resolved_at', ts_text(h.resolved_at)))
      from currencies c where c.code = h.currency);

create function hold_ok(p_id uuid, p_replayed boolean) returns jsonb
language sql stable
set search_path from current
return (
    select jsonb_build_object('code', 'ok', 'replayed', p_replayed,
                              'data', hold_json(h))
      from holds h where h.id = p_id);

-- The two accounts of a movement, locked in id order; null when missing.
create function accounts_lock(p_a uuid, p_b uuid) returns setof accounts
language sql
set search_path from current
as $$
    select * from accounts where id in (p_a, p_b) order by id for update
$$;

-- Why a wallet-to-wallet movement of p_amount from d to c may not happen
-- now, or null when it may.  d must be p_owner's (when p_owner is given).
create function movement_refusal(d accounts, c accounts, p_owner text,
    p_amount bigint, p_currency text) returns text
language sql immutable
return case
    when d.id is null or (p_owner is not null and d.owner is distinct from
                          p_owner) then 'debit_account_not_found'
    when c.id is null or c.kind <> 'wallet' then 'credit_account_not_found'
    when d.id = c.id then 'same_account'
    when d.currency <> p_currency then 'debit_currency_mismatch'
    when c.currency <> p_currency then 'credit_currency_mismatch'
    when d.closed then 'debit_account_closed'
    when c.closed then 'credit_account_closed'
    when d.debits_must_not_exceed_credits
         and d.credits_posted - d.debits_posted - d.debits_pending
             < p_amount then 'insufficient_funds'
    when d.debits_pending > 9223372036854775807 - p_amount
         or c.credits_pending > 9223372036854775807 - p_amount
         or d.debits_posted > 9223372036854775807 - p_amount
         or c.credits_posted > 9223372036854775807 - p_amount
        then 'overflow'
    end;

-- POST /v1/holds: {actor, request_id, idem_key, from_account_id,
-- to_account_id, amount, currency, expires_in (seconds)}.
create function hold_create(p jsonb) returns jsonb
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    v_actor  constant text := p->>'actor';
    v_key    constant text := p->>'idem_key';
    v_hash   constant bytea := op_hash(p);
    v_from   constant uuid := (p->>'from_account_id')::uuid;
    v_to     constant uuid := (p->>'to_account_id')::uuid;
    v_amount constant bigint := (p->>'amount')::bigint;
    v_cur    constant text := p->>'currency';
    ik       record;
    d        accounts;
    c        accounts;
    v_code   text;
    v_id     uuid;
begin
    select * into ik from idem_take(v_actor, 'hold', v_key, v_hash);
    if ik.seen then
        if not ik.same then
            return op_refusal('idempotency_conflict');
        end if;
        return case when ik.code = 'ok' then hold_ok(ik.transfer_id, true)
                    else op_refusal(ik.code, true) end;
    end if;
    perform from accounts_lock(v_from, v_to);
    select * into d from accounts where id = v_from;
    select * into c from accounts where id = v_to;
    v_code := movement_refusal(d, c, v_actor, v_amount, v_cur);
    if v_code is not null then
        perform idem_keep(v_actor, 'hold', v_key, v_hash, v_code, null);
        return op_refusal(v_code);
    end if;
    v_id := uuid7();
    update accounts set debits_pending = debits_pending + v_amount
     where id = v_from;
    update accounts set credits_pending = credits_pending + v_amount
     where id = v_to;
    insert into transfers (id, debit_account_id, credit_account_id, amount,
                           currency, kind, status, actor, request_id,
                           idempotency_key)
    values (v_id, v_from, v_to, v_amount, v_cur, 'hold', 'pending', v_actor,
            coalesce(p->>'request_id', ''), v_key);
    insert into holds (id, debit_account_id, credit_account_id, amount,
                       currency, actor, expires_at)
    values (v_id, v_from, v_to, v_amount, v_cur, v_actor,
            now() + make_interval(secs => (p->>'expires_in')::int));
    perform idem_keep(v_actor, 'hold', v_key, v_hash, 'ok', v_id);
    perform hold_event(v_id, 'ledger.hold.created', p->>'request_id',
                       v_actor);
    return hold_ok(v_id, false);
end
$$;

-- One event about hold p_id, keyed by its paying account.
create function hold_event(p_id uuid, p_type text, p_request_id text,
    p_actor text) returns void
language plpgsql
set search_path from current
as $$
begin
    insert into outbox (topic, key, type, request_id, actor, subject, data)
    select 'ledger.events', h.debit_account_id::text, p_type,
           coalesce(p_request_id, ''), coalesce(p_actor, ''), h.id::text,
           hold_json(h) - 'exponent'
      from holds h where h.id = p_id;
    perform pg_notify('kordon_outbox_' || current_schema(), '');
end
$$;

-- Ends hold h (locked by the caller, still pending): its pending amount
-- released from both accounts, cap of it posted as a capture transfer.
-- Returns the capture transfer's id, or null.
create function hold_finish(h holds, p_state text, p_cap bigint,
    p_actor text, p_request_id text) returns uuid
language plpgsql
set search_path from current
as $$
declare
    v_cap  uuid;
begin
    perform from accounts_lock(h.debit_account_id, h.credit_account_id);
    update accounts
       set debits_pending = debits_pending - h.amount,
           debits_posted = debits_posted + p_cap
     where id = h.debit_account_id;
    update accounts
       set credits_pending = credits_pending - h.amount,
           credits_posted = credits_posted + p_cap
     where id = h.credit_account_id;
    update transfers set status = 'voided', resolved_at = now()
     where id = h.id;
    if p_cap > 0 then
        v_cap := uuid7();
        insert into transfers (id, debit_account_id, credit_account_id,
                               amount, currency, kind, status, parent_id,
                               actor, request_id)
        values (v_cap, h.debit_account_id, h.credit_account_id, p_cap,
                h.currency, 'capture', 'posted', h.id, coalesce(p_actor, ''),
                coalesce(p_request_id, ''));
        insert into outbox (topic, key, type, request_id, actor, subject,
                            data)
        select 'ledger.events', h.debit_account_id::text,
               'ledger.transfer.posted', coalesce(p_request_id, ''),
               coalesce(p_actor, ''), v_cap::text,
               jsonb_build_object('id', v_cap, 'kind', 'capture',
                   'status', 'posted', 'hold_id', h.id,
                   'from_account_id', h.debit_account_id,
                   'to_account_id', h.credit_account_id, 'amount', p_cap,
                   'currency', h.currency, 'created_at', ts_text(now()));
    end if;
    update holds
       set state = p_state, captured = p_cap, capture_id = v_cap,
           resolved_at = now()
     where id = h.id;
    perform hold_event(h.id, 'ledger.hold.' || p_state, p_request_id,
                       p_actor);
    return v_cap;
end
$$;

-- POST /v1/holds/{id}/capture and /void: {actor, admin, request_id,
-- idem_key, hold_id, op ("capture" | "void"), amount (capture; null =
-- all)}.  The payee captures; either side voids; an admin may do both.
create function hold_resolve(p jsonb) returns jsonb
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    v_actor  constant text := p->>'actor';
    v_op     constant text := p->>'op';
    v_key    constant text := p->>'idem_key';
    v_hash   constant bytea := op_hash(p);
    v_admin  constant boolean := coalesce((p->>'admin')::boolean, false);
    ik       record;
    h        holds;
    v_payer  text;
    v_payee  text;
    v_cap    bigint;
    v_code   text;
begin
    select * into ik from idem_take(v_actor, v_op, v_key, v_hash);
    if ik.seen then
        if not ik.same then
            return op_refusal('idempotency_conflict');
        end if;
        return case when ik.code = 'ok' then hold_ok(ik.transfer_id, true)
                    else op_refusal(ik.code, true) end;
    end if;
    select * into h from holds where id = (p->>'hold_id')::uuid for update;
    select d.owner, c.owner into v_payer, v_payee
      from accounts d, accounts c
     where d.id = h.debit_account_id and c.id = h.credit_account_id;
    v_cap := coalesce((p->>'amount')::bigint, h.amount);
    v_code := case
        when h.id is null
             or not (v_admin or coalesce(v_actor in (v_payer, v_payee),
                                         false))
            then 'hold_not_found'
        when v_op = 'capture' and not v_admin
             and v_actor is distinct from v_payee then 'hold_capture_forbidden'
        when h.state <> 'pending' then 'hold_' || h.state
        when h.expires_at <= now() then 'hold_expired'
        when v_cap > h.amount then 'capture_exceeds_hold'
        end;
    if v_code = 'hold_expired' and h.state = 'pending' then
        -- Past its expiry, not yet swept: released now, by this request.
        perform hold_finish(h, 'expired', 0, null, null);
    end if;
    if v_code is not null then
        -- A hold the caller may not see leaves no trace under its key.
        if v_code <> 'hold_not_found' then
            perform idem_keep(v_actor, v_op, v_key, v_hash, v_code, null);
        end if;
        return op_refusal(v_code);
    end if;
    perform hold_finish(h, case when v_op = 'capture' then 'captured'
                                else 'voided' end,
                        case when v_op = 'capture' then v_cap else 0 end,
                        v_actor, p->>'request_id');
    perform idem_keep(v_actor, v_op, v_key, v_hash, 'ok', h.id);
    return hold_ok(h.id, false);
end
$$;

-- GET /v1/holds/{id}: {actor, admin (staff), hold_id}.
create function hold_get(p jsonb) returns jsonb
language sql stable
set search_path from current
return coalesce((
    select hold_ok(h.id, false)
      from holds h
      join accounts d on d.id = h.debit_account_id
      join accounts c on c.id = h.credit_account_id
     where h.id = (p->>'hold_id')::uuid
       and (coalesce((p->>'admin')::boolean, false)
            or p->>'actor' in (d.owner, c.owner))),
    op_refusal('hold_not_found'));

-- Releases up to p_limit holds past their expiry, oldest first, skipping
-- any another transaction is resolving; returns how many.  The service
-- calls it from a timer; any number of instances may.
create function holds_expire(p_limit int) returns int
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    h     holds;
    n     int := 0;
begin
    for h in select * from holds
              where state = 'pending' and expires_at <= now()
              order by expires_at
              limit p_limit
                for update skip locked
    loop
        perform hold_finish(h, 'expired', 0, null, null);
        n := n + 1;
    end loop;
    return n;
end
$$;

revoke all on function hold_create(jsonb), hold_resolve(jsonb),
    hold_get(jsonb), holds_expire(int) from public;
grant execute on function hold_create(jsonb), hold_resolve(jsonb),
    hold_get(jsonb), holds_expire(int) to kordon_ledger;
