-- Holds obey the limits (008) too: hold_create() of 007 refused a hold
-- only for the account's own reasons, so a hold and its capture could
-- move more than a currency's per-transfer maximum or an account's daily
-- outgoing limit.  A hold now counts toward the day it is made (a void
-- or an expiry does not give the day's room back: the conservative
-- choice, and what a card issuer does with an authorization).

-- POST /v1/holds: {actor, request_id, idem_key, from_account_id,
-- to_account_id, amount, currency, expires_in (seconds)}.
create or replace function hold_create(p jsonb) returns jsonb
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
    lim      limits;
    v_today  constant date := (now() at time zone 'UTC')::date;
    v_sent   bigint;
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
    -- The limits, read under the payer's row lock as post_transfers()
    -- reads them: a hold counts as sent today when it is made.
    select * into lim from limits where currency = v_cur;
    select amount into v_sent from daily_outgoing
     where account_id = v_from and day = v_today;
    v_code := coalesce(v_code, case
        when v_amount > lim.transfer_max then 'transfer_limit_exceeded'
        when coalesce(v_sent, 0) > lim.daily_out_max - v_amount
            then 'daily_limit_exceeded'
        end);
    if v_code is not null then
        perform idem_keep(v_actor, 'hold', v_key, v_hash, v_code, null);
        return op_refusal(v_code);
    end if;
    v_id := uuid7();
    insert into daily_outgoing (account_id, day, amount)
    values (v_from, v_today, v_amount)
    on conflict (account_id, day)
    do update set amount = daily_outgoing.amount + excluded.amount;
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
