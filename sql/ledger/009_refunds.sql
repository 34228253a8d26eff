-- Refunds: POST /v1/transfers/{id}/refund, full or partial.
--
-- A refund is a new linked group against a posted payment (kind p2p or
-- capture): the payee pays amount back to the payer (kind refund,
-- parent_id = the payment), and, pro rata, the payment's fee comes back
-- from the fee revenue shard that took it when the p2p rule of the
-- currency says refund_fee (else the ledger keeps it), and the cashback
-- the payer earned goes back to cashback expense.  The last refund that
-- completes the payment takes the rounding rest, so a full refund in
-- parts returns exactly the fee and cashback a full refund at once does.
--
-- Never above the original: the refunds so far are summed after every
-- account of the group is locked (payee first among them, in id order
-- as always), so two concurrent refunds of one payment are decided one
-- after the other.  The payee (or an admin) refunds.

create function refund_transfer(p jsonb) returns jsonb
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    v_actor  constant text := p->>'actor';
    v_key    constant text := p->>'idem_key';
    v_hash   constant bytea := op_hash(p);
    v_admin  constant boolean := coalesce((p->>'admin')::boolean, false);
    ik       record;
    t        transfers;
    f        transfers;     -- the payment's fee, if any
    b        transfers;     -- its cashback, if any
    payee    accounts;
    v_amt    bigint;
    v_done   bigint;
    v_fee    bigint := 0;
    v_cb     bigint := 0;
    v_keep   boolean;
    v_id     uuid;
    v_code   text;
begin
    select * into ik from idem_take(v_actor, 'refund', v_key, v_hash);
    if ik.seen then
        if not ik.same then
            return op_refusal('idempotency_conflict');
        end if;
        if ik.code <> 'ok' then
            return op_refusal(ik.code, true);
        end if;
        return jsonb_build_object('code', 'ok', 'replayed', true,
                                  'data', refund_json(ik.transfer_id));
    end if;
    select * into t from transfers where id = (p->>'transfer_id')::uuid;
    select * into f from transfers
     where parent_id = t.id and kind = 'fee' and group_id = t.id;
    select * into b from transfers
     where parent_id = t.id and kind = 'cashback' and group_id = t.id;
    perform from accounts
     where id in (t.debit_account_id, t.credit_account_id,
                  f.credit_account_id, b.debit_account_id)
     order by id for update;
    select * into payee from accounts where id = t.credit_account_id;
    -- Locked now: the refunds so far cannot change under us.
    select coalesce(sum(amount), 0) into v_done from transfers
     where parent_id = t.id and kind = 'refund';
    v_amt := coalesce((p->>'amount')::bigint, t.amount - v_done);
    v_code := case
        when t.id is null
             or not (v_admin or coalesce(payee.owner = v_actor, false)
                     or exists (select from accounts d
                                 where d.id = t.debit_account_id
                                   and d.owner = v_actor))
            then 'transfer_not_found'
        when not v_admin and payee.owner is distinct from v_actor
            then 'refund_forbidden'
        when t.kind not in ('p2p', 'capture') or t.status <> 'posted'
            then 'not_refundable'
        when v_done >= t.amount then 'already_refunded'
        when v_amt > t.amount - v_done then 'refund_exceeds_original'
        when payee.closed then 'credit_account_closed'
        when payee.credits_posted - payee.debits_posted
             - payee.debits_pending < v_amt then 'insufficient_funds'
        end;
    if v_code is not null then
        if v_code <> 'transfer_not_found' then
            perform idem_keep(v_actor, 'refund', v_key, v_hash, v_code, null);
        end if;
        return op_refusal(v_code);
    end if;

    select not coalesce(r.refund_fee, false) into v_keep
      from (select 1) one
      left join fee_rules r on r.kind = 'p2p' and r.currency = t.currency;
    if f.id is not null and not v_keep then
        v_fee := refund_share(f.amount, t.amount, v_done, v_amt,
                              (select coalesce(sum(amount), 0)::bigint
                                 from transfers
                                where parent_id = f.id and kind = 'refund'));
    end if;
    if b.id is not null then
        v_cb := refund_share(b.amount, t.amount, v_done, v_amt,
                             (select coalesce(sum(amount), 0)::bigint
                                from transfers
                               where parent_id = b.id and kind = 'refund'));
    end if;

    v_id := uuid7();
    insert into transfers (id, debit_account_id, credit_account_id, amount,
                           currency, kind, status, parent_id, group_id,
                           actor, request_id, idempotency_key)
    select x.id, x.d, x.c, x.amount, t.currency, 'refund', 'posted',
           x.parent, v_id, v_actor, coalesce(p->>'request_id', ''), x.k
      from (values (v_id, t.credit_account_id, t.debit_account_id, v_amt,
                    t.id, v_key),
                   (uuid7(), f.credit_account_id, t.debit_account_id, v_fee,
                    f.id, null),
                   (uuid7(), t.debit_account_id, b.debit_account_id, v_cb,
                    b.id, null)) x(id, d, c, amount, parent, k)
     where x.amount > 0;
    update accounts a
       set debits_posted = a.debits_posted + m.d,
           credits_posted = a.credits_posted + m.c
      from (select id, sum(d) as d, sum(c) as c
              from (select debit_account_id as id, amount as d, 0 as c
                      from transfers where group_id = v_id
                    union all
                    select credit_account_id, 0, amount
                      from transfers where group_id = v_id) u
             group by id) m
     where a.id = m.id;
    insert into outbox (topic, key, type, request_id, actor, subject, data)
    select 'ledger.events', r.debit_account_id::text,
           'ledger.transfer.posted', coalesce(p->>'request_id', ''), v_actor,
           r.id::text, jsonb_build_object('id', r.id, 'kind', 'refund',
               'status', 'posted', 'group_id', v_id, 'parent_id', r.parent_id,
               'from_account_id', r.debit_account_id,
               'to_account_id', r.credit_account_id, 'amount', r.amount,
               'currency', r.currency, 'created_at', ts_text(r.created_at))
      from transfers r where r.group_id = v_id;
    insert into outbox (topic, key, type, request_id, actor, subject, data)
    values ('ledger.events', t.debit_account_id::text,
            'ledger.transfer.refunded', coalesce(p->>'request_id', ''),
            v_actor, t.id::text, refund_json(v_id));
    perform pg_notify('kordon_outbox_' || current_schema(), '');
    perform idem_keep(v_actor, 'refund', v_key, v_hash, 'ok', v_id);
    return jsonb_build_object('code', 'ok', 'replayed', false,
                              'data', refund_json(v_id));
end
$$;

-- The part of a payment's fee (or cashback) of `whole` that a refund of
-- p_amount returns, p_done of p_total refunded before and p_back of the
-- whole returned before: pro rata, rounded down, and the rest on the
-- refund that completes the payment.
create function refund_share(p_whole bigint, p_total bigint, p_done bigint,
    p_amount bigint, p_back bigint) returns bigint
language sql immutable
return case when p_done + p_amount >= p_total then p_whole - p_back
            else least(floor(p_whole::numeric * (p_done + p_amount)
                             / p_total)::bigint - p_back, p_whole - p_back)
       end;

-- A refund as the API shows it: the refund transfer, what came back with
-- it, and how much of the payment is refunded now.
create function refund_json(p_id uuid) returns jsonb
language sql stable
set search_path from current
return (
    select jsonb_build_object(
        'id', r.id, 'kind', 'refund', 'status', r.status,
        'transfer_id', r.parent_id,
        'from_account_id', r.debit_account_id,
        'to_account_id', r.credit_account_id,
        'amount', r.amount, 'currency', r.currency, 'exponent', c.exponent,
        'fee_refunded', coalesce((select sum(g.amount) from transfers g
                                   join transfers o on o.id = g.parent_id
                                  where g.group_id = r.id and g.id <> r.id
                                    and o.kind = 'fee'), 0),
        'cashback_reversed', coalesce((select sum(g.amount)
                                         from transfers g
                                         join transfers o on o.id = g.parent_id
                                        where g.group_id = r.id
                                          and g.id <> r.id
                                          and o.kind = 'cashback'), 0),
        'refunded_total', (select sum(x.amount) from transfers x
                            where x.parent_id = r.parent_id
                              and x.kind = 'refund'),
        'created_at', ts_text(r.created_at))
      from transfers r join currencies c on c.code = r.currency
     where r.id = p_id);

revoke all on function refund_transfer(jsonb) from public;
grant execute on function refund_transfer(jsonb) to kordon_ledger;
