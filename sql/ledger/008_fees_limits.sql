-- Fees, cashback and limits, applied where money moves.
--
-- A P2P transfer is now a linked group of up to three transfers, all
-- posted or none: the payment itself, its fee (payer -> fee revenue) and,
-- for a payment to a merchant, its cashback (cashback expense -> payer).
-- They share group_id (the payment's id) and parent_id (the payment).
-- The payer must afford amount + fee; the cashback arrives with it.
--
-- fee_rules says what each costs, per kind ("p2p", or "merchant" when
-- the payee's account is flagged as a merchant) and currency: basis
-- points of the amount plus a fixed part, clamped to [min, max], and for
-- merchants a cashback in basis points.  refund_fee says whether a
-- refund gives the fee back (pro rata) or the ledger keeps it.
--
-- The hot account: every transfer credits fee revenue.  One row would be
-- locked by every batch in turn, serializing the ledger on it.  So fee
-- revenue and cashback expense are sharded: FEE_SHARDS sub-accounts per
-- currency (accounts.shard 0..7), and each batch names its shard (the
-- service gives each batcher its own), so concurrent batches never wait
-- for each other there.  The revenue is the sum over the shards.
--
-- Limits, per currency (limits): a per-transfer maximum and a daily
-- outgoing maximum per account (UTC days), kept in daily_outgoing, which
-- is only read and written while the paying account's row is locked, so
-- two concurrent payments can never both fit under what is left.

-- ---- sharded system accounts ----------------------------------------

-- 007's movement_refusal() has an SQL-standard body, which pins the
-- accounts row type; it comes back below, unchanged but for that.
drop function movement_refusal(accounts, accounts, text, bigint, text);

alter table accounts add column shard smallint not null default 0;
alter table accounts add constraint accounts_shard check (
    shard between 0 and 7 and (shard = 0 or kind in ('fee_revenue',
                                                      'cashback_expense')));
alter table accounts add column merchant boolean not null default false;
alter table accounts add constraint accounts_merchant check (
    not merchant or kind = 'wallet');
grant update (merchant) on accounts to kordon_ledger;

drop index accounts_system;
create unique index accounts_system on accounts (kind, currency, shard)
    where kind <> 'wallet';

create or replace function currencies_open_system_accounts() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into accounts (owner, currency, kind,
                          debits_must_not_exceed_credits, shard)
    select null, new.code, k, false, s
      from unnest(array['fee_revenue', 'cashback_expense', 'adjustments']) k
     cross join generate_series(0, 7) s
     where s = 0 or k <> 'adjustments'
    on conflict do nothing;
    return new;
end
$$;

insert into accounts (owner, currency, kind, debits_must_not_exceed_credits,
                      shard)
select null, c.code, k, false, s
  from currencies c
 cross join unnest(array['fee_revenue', 'cashback_expense']) k
 cross join generate_series(1, 7) s;


create function movement_refusal(d accounts, c accounts, p_owner text,
    p_amount bigint, p_currency text) returns text
language sql immutable
as $$
select case
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
    end
$$;


-- ---- rules and limits ------------------------------------------------

create table fee_rules (
    kind          text        not null,
    currency      text        not null references currencies,
    fee_bps       int         not null default 0,
    fee_fixed     bigint      not null default 0,
    fee_min       bigint      not null default 0,
    fee_max       bigint,
    cashback_bps  int         not null default 0,
    refund_fee    boolean     not null default false,
    updated_at    timestamptz not null default now(),
    updated_by    text        not null,
    primary key (kind, currency),
    constraint fee_rules_kind check (kind in ('p2p', 'merchant')),
    constraint fee_rules_bps check (fee_bps between 0 and 10000
                                    and cashback_bps between 0 and 10000),
    constraint fee_rules_amounts check (
        fee_fixed >= 0 and fee_min >= 0
        and (fee_max is null or fee_max >= fee_min)),
    constraint fee_rules_cashback check (kind = 'merchant' or cashback_bps = 0)
);

comment on table fee_rules is
    'what a transfer costs (fee) and gives back (cashback), per kind and '
    'currency';

create table limits (
    currency       text        primary key references currencies,
    transfer_max   bigint,
    daily_out_max  bigint,
    updated_at     timestamptz not null default now(),
    updated_by     text        not null,
    constraint limits_positive check (
        (transfer_max is null or transfer_max > 0)
        and (daily_out_max is null or daily_out_max > 0))
);

comment on table limits is
    'per currency: the largest transfer, and the most one account may send '
    'in a UTC day';

create table daily_outgoing (
    account_id  uuid    not null references accounts,
    day         date    not null,
    amount      bigint  not null,
    primary key (account_id, day),
    constraint daily_outgoing_amount check (amount >= 0)
);

comment on table daily_outgoing is
    'what each account sent per UTC day, for the daily limit';

revoke delete, truncate on daily_outgoing from kordon_ledger;

-- fee = clamp(amount * bps / 10^4 + fixed, min, max), rounded down (in
-- the payer's favour); no rule, no fee.
create function rule_fee(r fee_rules, p_amount bigint) returns bigint
language sql immutable
return case when r.kind is null then 0 else
    least(greatest(floor(p_amount::numeric * r.fee_bps / 10000)::bigint
                   + r.fee_fixed, r.fee_min),
          coalesce(r.fee_max, 9223372036854775807)) end;

create function rule_cashback(r fee_rules, p_amount bigint) returns bigint
language sql immutable
return case when r.kind is null then 0 else
    floor(p_amount::numeric * r.cashback_bps / 10000)::bigint end;


-- ---- the posting function, again ------------------------------------

alter type post_item add attribute shard int;
alter type post_result add attribute fee bigint;
alter type post_result add attribute cashback bigint;

drop function post_transfers(json);
drop function post_transfers_decide(json);

-- As 005 (read it first), with: fee and cashback transfers linked to
-- each p2p payment, the per-currency limits, and system accounts found
-- by kind, currency and shard.  New outcome codes: transfer_limit_exceeded,
-- daily_limit_exceeded.
create function post_transfers_decide(p_items json) returns setof post_result
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    int8_max    constant bigint := 9223372036854775807;
    now_text    constant text := ts_text(now());
    today       constant date := (now() at time zone 'UTC')::date;
    it          post_item[];
    n           int;
    dbt         uuid[];
    cdt         uuid[];
    fac         uuid[];     -- per item: its fee revenue shard
    bac         uuid[];     -- per item: its cashback expense shard
    amt         bigint[];
    cur         text[];
    own         text[];
    kinds       text[];
    outcome     text[];
    tid         uuid[];
    fee_id      uuid[];
    cb_id       uuid[];
    fee         bigint[];
    cb          bigint[];
    lim_one     bigint[];
    lim_day     bigint[];
    rep         boolean[];
    need        uuid[] := '{}';
    acc         uuid[];
    a_owner     text[];
    a_kind      text[];
    a_cur       text[];
    a_flag      boolean[];
    a_closed    boolean[];
    a_merchant  boolean[];
    a_dp        bigint[];
    a_cp        bigint[];
    a_dpend     bigint[];
    a_day       bigint[];   -- sent today, before this batch
    a_touched   boolean[];
    a_sent      boolean[];
    dix         int[];
    cix         int[];
    fix         int[];
    bix         int[];
    dpos        int;
    cpos        int;
    fpos        int;
    bpos        int;
    need_out    bigint;
    posted      int := 0;
    replayed    int := 0;
begin
    select array_agg(x order by x.i) into it
      from json_populate_recordset(null::post_item, p_items) x;
    n := coalesce(cardinality(it), 0);
    if n = 0 then
        return;
    end if;

    select array_agg(coalesce(x.debit,
                         (select s.id from accounts s
                           where s.kind = x.debit_system
                             and s.kind <> 'wallet' and s.shard = 0
                             and s.currency = x.currency)) order by x.i),
           array_agg(coalesce(x.credit,
                         (select s.id from accounts s
                           where s.kind = x.credit_system
                             and s.kind <> 'wallet' and s.shard = 0
                             and s.currency = x.currency)) order by x.i),
           array_agg(case when x.kind = 'p2p' then
                         (select s.id from accounts s
                           where s.kind = 'fee_revenue'
                             and s.currency = x.currency
                             and s.shard = coalesce(x.shard, 0) % 8)
                     end order by x.i),
           array_agg(case when x.kind = 'p2p' then
                         (select s.id from accounts s
                           where s.kind = 'cashback_expense'
                             and s.currency = x.currency
                             and s.shard = coalesce(x.shard, 0) % 8)
                     end order by x.i),
           array_agg(x.amount order by x.i),
           array_agg(x.currency order by x.i),
           array_agg(x.must_own order by x.i),
           array_agg(x.kind order by x.i),
           array_agg(case when not ik.same then 'idempotency_conflict'
                          else ik.code end order by x.i),
           array_agg(case when ik.same then ik.transfer_id end order by x.i),
           array_agg(coalesce(ik.same, false) order by x.i),
           array_agg(l.transfer_max order by x.i),
           array_agg(l.daily_out_max order by x.i)
      into dbt, cdt, fac, bac, amt, cur, own, kinds, outcome, tid, rep,
           lim_one, lim_day
      from unnest(it) x
      left join limits l on l.currency = x.currency and x.kind = 'p2p'
      left join lateral (
          select k.code, k.transfer_id,
                 k.request_hash = decode(x.idem_hash, 'hex') as same
            from idempotency k
           where k.owner = x.idem_owner and k.scope = x.idem_scope
             and k.key = x.idem_key
           limit 1) ik on true;

    for k in 1 .. n loop
        if (it[k]).i is distinct from k then
            raise exception 'post item % is numbered %', k, (it[k]).i;
        end if;
        if amt[k] is null or amt[k] <= 0 then
            raise exception 'post item % has amount %, not a positive one',
                            k, amt[k];
        end if;
        if outcome[k] is null then
            need := need || dbt[k] || cdt[k];
            if fac[k] is not null then
                need := need || fac[k] || bac[k];
            end if;
        elsif rep[k] and outcome[k] = 'ok' then
            replayed := replayed + 1;
        end if;
    end loop;

    -- Lock in id order: no two batches can wait for each other in a cycle.
    select array_agg(l.id order by l.id),
           array_agg(l.owner order by l.id),
           array_agg(l.kind order by l.id),
           array_agg(l.currency order by l.id),
           array_agg(l.debits_must_not_exceed_credits order by l.id),
           array_agg(l.closed order by l.id),
           array_agg(l.merchant order by l.id),
           array_agg(l.debits_posted order by l.id),
           array_agg(l.credits_posted order by l.id),
           array_agg(l.debits_pending order by l.id)
      into acc, a_owner, a_kind, a_cur, a_flag, a_closed, a_merchant, a_dp,
           a_cp, a_dpend
      from (select a.*
              from accounts a
             where a.id = any(need)
             order by a.id
               for update) l;
    a_touched := array_fill(false, array[coalesce(cardinality(acc), 0)]);
    a_sent := a_touched;
    -- Read while the accounts are locked: nobody else can add to them.
    select array_agg(coalesce(d.amount, 0) order by u.ord)
      into a_day
      from unnest(acc) with ordinality u(id, ord)
      left join daily_outgoing d on d.account_id = u.id and d.day = today;

    select array_agg(dl.ord::int order by u.ord),
           array_agg(cl.ord::int order by u.ord),
           array_agg(fl.ord::int order by u.ord),
           array_agg(bl.ord::int order by u.ord)
      into dix, cix, fix, bix
      from unnest(dbt, cdt, fac, bac) with ordinality
           u(debit, credit, fee, cb, ord)
      left join unnest(acc) with ordinality dl(id, ord) on dl.id = u.debit
      left join unnest(acc) with ordinality cl(id, ord) on cl.id = u.credit
      left join unnest(acc) with ordinality fl(id, ord) on fl.id = u.fee
      left join unnest(acc) with ordinality bl(id, ord) on bl.id = u.cb;

    -- Each p2p payment's fee and cashback, by the payee's kind.
    select array_agg(rule_fee(r, u.amount) order by u.ord),
           array_agg(rule_cashback(r, u.amount) order by u.ord)
      into fee, cb
      from unnest(kinds, cur, amt, cix) with ordinality
           u(kind, currency, amount, ci, ord)
      left join fee_rules r
        on u.kind = 'p2p' and u.ci is not null and r.currency = u.currency
       and r.kind = case when a_merchant[u.ci] then 'merchant'
                         else 'p2p' end;

    -- Decide each transfer in order, as if alone.
    for k in 1 .. n loop
        continue when outcome[k] is not null;
        dpos := dix[k];
        cpos := cix[k];
        fpos := fix[k];
        bpos := bix[k];
        need_out := amt[k] + fee[k];
        if dpos is null
           or (own[k] is not null and a_owner[dpos] is distinct from own[k])
        then
            outcome[k] := 'debit_account_not_found';
        elsif cpos is null
              or (kinds[k] = 'p2p' and a_kind[cpos] <> 'wallet')
        then
            outcome[k] := 'credit_account_not_found';
        elsif dpos = cpos then
            outcome[k] := 'same_account';
        elsif a_cur[dpos] <> cur[k] then
            outcome[k] := 'debit_currency_mismatch';
        elsif a_cur[cpos] <> cur[k] then
            outcome[k] := 'credit_currency_mismatch';
        elsif a_closed[dpos] then
            outcome[k] := 'debit_account_closed';
        elsif a_closed[cpos] then
            outcome[k] := 'credit_account_closed';
        elsif kinds[k] = 'p2p' and (fpos is null or bpos is null) then
            raise exception 'no fee or cashback account for "%" shard %',
                            cur[k], (it[k]).shard;
        elsif amt[k] > lim_one[k] then
            outcome[k] := 'transfer_limit_exceeded';
        elsif lim_day[k] is not null and a_day[dpos] > lim_day[k] - amt[k]
        then
            outcome[k] := 'daily_limit_exceeded';
        elsif a_flag[dpos]
              and a_cp[dpos] - a_dp[dpos] - a_dpend[dpos] < need_out
        then
            outcome[k] := 'insufficient_funds';
        elsif a_dp[dpos] > int8_max - need_out
              or a_cp[cpos] > int8_max - amt[k]
              or (fee[k] > 0 and a_cp[fpos] > int8_max - fee[k])
              or (cb[k] > 0 and (a_dp[bpos] > int8_max - cb[k]
                                 or a_cp[dpos] > int8_max - cb[k]))
        then
            outcome[k] := 'overflow';
        else
            a_dp[dpos] := a_dp[dpos] + need_out;
            a_cp[cpos] := a_cp[cpos] + amt[k];
            a_touched[dpos] := true;
            a_touched[cpos] := true;
            if fee[k] > 0 then
                a_cp[fpos] := a_cp[fpos] + fee[k];
                a_touched[fpos] := true;
                fee_id[k] := uuid7();
            end if;
            if cb[k] > 0 then
                a_dp[bpos] := a_dp[bpos] + cb[k];
                a_cp[dpos] := a_cp[dpos] + cb[k];
                a_touched[bpos] := true;
                cb_id[k] := uuid7();
            end if;
            if kinds[k] = 'p2p' then
                a_day[dpos] := a_day[dpos] + amt[k];
                a_sent[dpos] := true;
            end if;
            outcome[k] := 'ok';
            tid[k] := uuid7();
            posted := posted + 1;
        end if;
    end loop;

    -- Every write in one statement, as in 005; a payment's fee and
    -- cashback are rows of their own, linked by group_id and parent_id.
    with moved as (
        update accounts a
           set debits_posted = u.dp, credits_posted = u.cp
          from unnest(acc, a_dp, a_cp, a_touched) u(id, dp, cp, touched)
         where u.touched and a.id = u.id and a.id = any(acc)),
    sent as (
        insert into daily_outgoing (account_id, day, amount)
        select u.id, today, u.amount
          from unnest(acc, a_day, a_sent) u(id, amount, sent)
         where u.sent
        on conflict (account_id, day) do update set amount = excluded.amount),
    fresh as (
        select x.*, tid[x.i] as t_id, dbt[x.i] as d_id, cdt[x.i] as c_id,
               a_owner[dix[x.i]] as d_owner, a_owner[cix[x.i]] as c_owner,
               fee_id[x.i] as f_id, cb_id[x.i] as b_id, fac[x.i] as f_acc,
               bac[x.i] as b_acc, fee[x.i] as f_amt, cb[x.i] as b_amt
          from unnest(it) x
         where outcome[x.i] = 'ok' and not rep[x.i]),
    linked as (
        select t_id as id, d_id as debit, c_id as credit, amount, kind,
               null::uuid as parent, case when f_id is not null
               or b_id is not null then t_id end as grp, reason, actor,
               request_id, idem_key, d_owner, c_owner, currency
          from fresh
        union all
        select f_id, d_id, f_acc, f_amt, 'fee', t_id, t_id, null, actor,
               request_id, null, d_owner, null, currency
          from fresh where f_id is not null
        union all
        select b_id, b_acc, d_id, b_amt, 'cashback', t_id, t_id, null, actor,
               request_id, null, null, d_owner, currency
          from fresh where b_id is not null),
    made as (
        insert into transfers (id, debit_account_id, credit_account_id,
                               amount, currency, kind, status, parent_id,
                               group_id, reason, actor, request_id,
                               idempotency_key, created_at)
        select id, debit, credit, amount, currency, kind, 'posted', parent,
               grp, reason, coalesce(actor, ''), coalesce(request_id, ''),
               idem_key, now()
          from linked),
    told as (
        insert into outbox (topic, key, type, request_id, actor, subject,
                            data)
        select 'ledger.events', debit::text, 'ledger.transfer.posted',
               coalesce(request_id, ''), coalesce(actor, ''), id::text,
               jsonb_strip_nulls(jsonb_build_object(
                   'id', id, 'kind', kind, 'status', 'posted',
                   'group_id', grp, 'parent_id', parent,
                   'from_account_id', debit, 'from_owner', d_owner,
                   'to_account_id', credit, 'to_owner', c_owner,
                   'amount', amount, 'currency', currency,
                   'reason', reason, 'created_at', now_text))
          from linked),
    kept as (
        insert into idempotency (owner, scope, key, request_hash, code,
                                 transfer_id)
        select x.idem_owner, x.idem_scope, x.idem_key,
               decode(x.idem_hash, 'hex'), outcome[x.i], tid[x.i]
          from unnest(it) x
         where x.idem_key is not null and not rep[x.i]
           and outcome[x.i] <> 'idempotency_conflict')
    select count(*) into posted from fresh;
    if posted > 0 then
        perform pg_notify('kordon_outbox_' || current_schema(), '');
    end if;

    return query
    select x.i, outcome[x.i], rep[x.i], f.id, f.debit, f.credit, f.amount,
           f.currency, f.exponent, f.kind, f.status, f.reason, f.created_at,
           f.fee, f.cashback
      from unnest(it) x
      left join lateral (
          select tid[x.i] as id, dbt[x.i] as debit, cdt[x.i] as credit,
                 x.amount, x.currency, c.exponent, x.kind,
                 'posted'::text as status, x.reason, now_text as created_at,
                 fee[x.i] as fee, cb[x.i] as cashback
            from currencies c
           where c.code = x.currency and outcome[x.i] = 'ok'
             and not rep[x.i]) f on true
     where not (rep[x.i] and outcome[x.i] = 'ok');
    if replayed > 0 then
        return query
        select x.i, outcome[x.i], true, t.id, t.debit_account_id,
               t.credit_account_id, t.amount, t.currency, c.exponent, t.kind,
               t.status, t.reason, ts_text(t.created_at),
               coalesce((select g.amount from transfers g
                          where g.group_id = t.id and g.kind = 'fee'), 0),
               coalesce((select g.amount from transfers g
                          where g.group_id = t.id and g.kind = 'cashback'),
                        0)
          from unnest(it) x
          join transfers t on t.id = tid[x.i]
          join currencies c on c.code = t.currency
         where rep[x.i] and outcome[x.i] = 'ok';
    end if;
end
$$;

-- The entry point, as in 006: keys first, then the decision.
create function post_transfers(p_items json) returns setof post_result
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
begin
    perform pg_advisory_xact_lock(idem_lock_space(), k.h)
       from (select distinct idem_lock_key(x.idem_owner, x.idem_scope,
                                           x.idem_key) as h
               from json_populate_recordset(null::post_item, p_items) x
              where x.idem_key is not null
              order by 1) k;
    return query select * from post_transfers_decide(p_items);
end
$$;

revoke all on function post_transfers(json), post_transfers_decide(json)
    from public;
grant execute on function post_transfers(json), post_transfers_decide(json)
    to kordon_ledger;


-- ---- admin: rules, limits, merchants ---------------------------------

create function fee_rule_json(r fee_rules) returns jsonb
language sql stable
return jsonb_build_object('kind', r.kind, 'currency', r.currency,
    'fee_bps', r.fee_bps, 'fee_fixed', r.fee_fixed, 'fee_min', r.fee_min,
    'fee_max', r.fee_max, 'cashback_bps', r.cashback_bps,
    'refund_fee', r.refund_fee, 'updated_at', ts_text(r.updated_at),
    'updated_by', r.updated_by);

create function limit_json(l limits) returns jsonb
language sql stable
return jsonb_build_object('currency', l.currency,
    'transfer_max', l.transfer_max, 'daily_out_max', l.daily_out_max,
    'updated_at', ts_text(l.updated_at), 'updated_by', l.updated_by);

-- PUT /v1/admin/fee-rules/{kind}/{currency}: {actor, kind, currency, and
-- the rule's fields (checked by the service; the table checks again)}.
create function fee_rule_put(p jsonb) returns jsonb
language plpgsql
set search_path from current
as $$
declare
    r  fee_rules;
begin
    if not exists (select from currencies where code = p->>'currency') then
        return op_refusal('unknown_currency');
    end if;
    if p->>'kind' = 'p2p' and coalesce((p->>'cashback_bps')::int, 0) > 0 then
        return op_refusal('cashback_p2p');
    end if;
    if (p->>'fee_max')::bigint < coalesce((p->>'fee_min')::bigint, 0) then
        return op_refusal('fee_max_below_min');
    end if;
    insert into fee_rules as f (kind, currency, fee_bps, fee_fixed, fee_min,
                                fee_max, cashback_bps, refund_fee,
                                updated_by)
    values (p->>'kind', p->>'currency',
            coalesce((p->>'fee_bps')::int, 0),
            coalesce((p->>'fee_fixed')::bigint, 0),
            coalesce((p->>'fee_min')::bigint, 0), (p->>'fee_max')::bigint,
            coalesce((p->>'cashback_bps')::int, 0),
            coalesce((p->>'refund_fee')::boolean, false), p->>'actor')
    on conflict (kind, currency) do update
       set fee_bps = excluded.fee_bps, fee_fixed = excluded.fee_fixed,
           fee_min = excluded.fee_min, fee_max = excluded.fee_max,
           cashback_bps = excluded.cashback_bps,
           refund_fee = excluded.refund_fee, updated_at = now(),
           updated_by = excluded.updated_by
    returning * into r;
    return jsonb_build_object('code', 'ok', 'data', fee_rule_json(r));
end
$$;

create function fee_rule_delete(p jsonb) returns jsonb
language sql
set search_path from current
as $$
    with d as (delete from fee_rules
                where kind = p->>'kind' and currency = p->>'currency'
                returning *)
    select coalesce((select jsonb_build_object('code', 'ok', 'data',
                                               fee_rule_json(d)) from d),
                    op_refusal('rule_not_found'))
$$;

create function fee_rules_list(p jsonb) returns jsonb
language sql stable
set search_path from current
return jsonb_build_object('code', 'ok', 'data', jsonb_build_object('rules',
    coalesce((select jsonb_agg(fee_rule_json(r) order by r.currency, r.kind)
                from fee_rules r), '[]'::jsonb)));

-- PUT /v1/admin/limits/{currency}: {actor, currency, transfer_max,
-- daily_out_max}; null removes a limit.
create function limit_put(p jsonb) returns jsonb
language plpgsql
set search_path from current
as $$
declare
    l  limits;
begin
    if not exists (select from currencies where code = p->>'currency') then
        return op_refusal('unknown_currency');
    end if;
    insert into limits as x (currency, transfer_max, daily_out_max,
                             updated_by)
    values (p->>'currency', (p->>'transfer_max')::bigint,
            (p->>'daily_out_max')::bigint, p->>'actor')
    on conflict (currency) do update
       set transfer_max = excluded.transfer_max,
           daily_out_max = excluded.daily_out_max, updated_at = now(),
           updated_by = excluded.updated_by
    returning * into l;
    return jsonb_build_object('code', 'ok', 'data', limit_json(l));
end
$$;

create function limits_list(p jsonb) returns jsonb
language sql stable
set search_path from current
return jsonb_build_object('code', 'ok', 'data', jsonb_build_object('limits',
    coalesce((select jsonb_agg(limit_json(l) order by l.currency)
                from limits l), '[]'::jsonb)));

-- PUT /v1/admin/accounts/{id}/merchant: {account_id, merchant}.
create function merchant_put(p jsonb) returns jsonb
language plpgsql
set search_path from current
as $$
declare
    v_id  uuid;
begin
    update accounts set merchant = (p->>'merchant')::boolean
     where id = (p->>'account_id')::uuid and kind = 'wallet'
    returning id into v_id;
    if v_id is null then
        return op_refusal('account_not_found');
    end if;
    return jsonb_build_object('code', 'ok', 'data', jsonb_build_object(
        'account_id', v_id, 'merchant', (p->>'merchant')::boolean));
end
$$;

grant select, insert, update, delete on fee_rules to kordon_ledger;
grant select, insert, update, delete on limits to kordon_ledger;
revoke all on function fee_rule_put(jsonb), fee_rule_delete(jsonb),
    fee_rules_list(jsonb), limit_put(jsonb), limits_list(jsonb),
    merchant_put(jsonb) from public;
grant execute on function fee_rule_put(jsonb), fee_rule_delete(jsonb),
    fee_rules_list(jsonb), limit_put(jsonb), limits_list(jsonb),
    merchant_put(jsonb) to kordon_ledger;
