-- Fee and cashback shards locked only when a fee rule can use them, and
-- found once per call.
--
-- post_transfers_decide() locked an item's fee revenue and cashback
-- expense shard for every p2p item, with or without a fee rule for its
-- currency: two more rows per batch locked FOR UPDATE, and in inline
-- mode, where every request is its own transaction, concurrent requests
-- of one shard queued on them (21-45% of their database time waiting,
-- docs/ledger.md).  It also found them with two joins per item (index
-- probes by (kind, currency, shard), 2,000 for a 1,000-transfer post).
-- Now the shards are found once per currency and shard of the call, and
-- only for a currency with a fee rule; an item of a currency without one
-- pays no fee and earns no cashback (as before: rule_fee() of no rule is
-- 0), so it needs neither account.  Whether a rule existed is decided
-- once, when the shards are found, and the fees are computed only for
-- those items, so a rule added meanwhile applies from the next batch on.
--
-- The body is 014's but for those lines (applied migrations are
-- immutable); it keeps 015's enable_seqscan = off.

create or replace function post_transfers_decide(p_items post_item[])
returns setof post_result
language plpgsql
set search_path from current
set lock_timeout = '5s'
set plan_cache_mode = force_generic_plan
set jit = off
set enable_seqscan = off
as $$
declare
    int8_max    constant bigint := 9223372036854775807;
    now_text    constant text := ts_text(now());
    today       constant date := (now() at time zone 'UTC')::date;
    it          post_item[];
    n           int;
    dbt         uuid[];
    cdt         uuid[];
    fac         uuid[];     -- per item: its fee revenue shard,
    bac         uuid[];     -- its cashback expense shard, when
    ruled       boolean[];  -- a fee rule of its currency exists
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
    bad         boolean;
begin
    it := p_items;      -- in order of i: post_transfers() sorted it
    n := coalesce(cardinality(it), 0);
    if n = 0 then
        return;
    end if;
    -- Full length from the start: the write below unnests them by position.
    fee_id := array_fill(null::uuid, array[n]);
    cb_id := fee_id;

    -- The fee and cashback shards, found once per currency and shard
    -- (not once per item), and only for a currency with a fee rule: an
    -- item no rule prices never locks them.
    with sh as (
        select c.currency, c.shard,
               (select a.id from accounts a
                 where a.kind = 'fee_revenue' and a.currency = c.currency
                   and a.shard = c.shard) as fee_acc,
               (select a.id from accounts a
                 where a.kind = 'cashback_expense' and a.currency = c.currency
                   and a.shard = c.shard) as cb_acc
          from (select distinct x.currency, coalesce(x.shard, 0) % 8 as shard
                  from unnest(it) x
                 where x.kind = 'p2p') c
         where exists (select from fee_rules r
                        where r.kind in ('p2p', 'merchant')
                          and r.currency = c.currency))
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
           array_agg(sh.fee_acc order by x.i),
           array_agg(sh.cb_acc order by x.i),
           array_agg(sh.currency is not null order by x.i),
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
      into dbt, cdt, fac, bac, ruled, amt, cur, own, kinds, outcome, tid,
           rep, lim_one, lim_day
      from unnest(it) x
      left join limits l on l.currency = x.currency and x.kind = 'p2p'
      left join sh
        on x.kind = 'p2p' and sh.currency = x.currency
       and sh.shard = coalesce(x.shard, 0) % 8
      left join lateral (
          select k.code, k.transfer_id,
                 k.request_hash = decode(x.idem_hash, 'hex') as same
            from idempotency k
           where k.owner = x.idem_owner and k.scope = x.idem_scope
             and k.key = x.idem_key
           limit 1) ik on true;

    -- Checked and gathered set-based: a loop that grew "need" one item
    -- at a time copied the array each time (quadratic; 110 ms of a
    -- batch of 1,000).
    select coalesce(bool_or(u.i is distinct from u.ord
                            or u.amount is null or u.amount <= 0), false),
           count(*) filter (where u.rep and u.outcome = 'ok')
      into bad, replayed
      from unnest(it) with ordinality u0
      cross join lateral (select u0.i, u0.ordinality as ord, u0.amount,
                                 rep[u0.ordinality] as rep,
                                 outcome[u0.ordinality] as outcome) u;
    if bad then
        raise exception 'post items are misnumbered or not all amounts are '
                        'positive';
    end if;
    select coalesce(array_agg(distinct a), '{}')
      into need
      from unnest(dbt, cdt, fac, bac, outcome) u(d, c, f, b, o)
      cross join lateral unnest(array[u.d, u.c, u.f, u.b]) a
     where u.o is null and a is not null;

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
      from unnest(kinds, cur, amt, cix, ruled) with ordinality
           u(kind, currency, amount, ci, ruled, ord)
      left join fee_rules r
        on u.kind = 'p2p' and u.ci is not null and u.ruled
       and r.currency = u.currency
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
        elsif ruled[k] and (fpos is null or bpos is null) then
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

    -- Every write in one statement, as in 005.  The decisions are read
    -- back as rows by one unnest of the arrays ("dec"): subscripting a
    -- text array inside an SQL statement walks it from the start, which
    -- made 005's outcome[x.i] quadratic in the batch size.
    with dec as (
        select x.*, d.*
          from unnest(it) with ordinality x
          join unnest(outcome, rep, tid, dbt, cdt, fee_id, cb_id, fac, bac,
                      fee, cb, dix, cix)
               with ordinality d(z_code, z_rep, t_id, d_id, c_id, f_id, b_id,
                                 f_acc, b_acc, f_amt, b_amt, z_di, z_ci,
                                 z_ord)
            on d.z_ord = x.ordinality),
    owners as (
        select o.*
          from unnest(a_owner) with ordinality o(z_owner, z_pos)),
    moved as (
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
        select x.*, od.z_owner as d_owner, oc.z_owner as c_owner
          from dec x
          left join owners od on od.z_pos = x.z_di
          left join owners oc on oc.z_pos = x.z_ci
         where x.z_code = 'ok' and not x.z_rep),
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
               decode(x.idem_hash, 'hex'), x.z_code, x.t_id
          from dec x
         where x.idem_key is not null and not x.z_rep
           and x.z_code <> 'idempotency_conflict')
    select count(*) into posted from fresh;
    if posted > 0 then
        perform pg_notify('kordon_outbox_' || current_schema(), '');
    end if;

    return query
    select x.i, x.z_code, x.z_rep, f.id, f.debit, f.credit, f.amount,
           f.currency, f.exponent, f.kind, f.status, f.reason, f.created_at,
           f.fee, f.cashback
      from (select x1.*, d.*
              from unnest(it) with ordinality x1
              join unnest(outcome, rep, tid, dbt, cdt, fee, cb)
                   with ordinality d(z_code, z_rep, t_id, d_id, c_id, f_amt,
                                     b_amt, z_ord)
                on d.z_ord = x1.ordinality) x
      left join lateral (
          select x.t_id as id, x.d_id as debit, x.c_id as credit,
                 x.amount, x.currency, c.exponent, x.kind,
                 'posted'::text as status, x.reason, now_text as created_at,
                 x.f_amt as fee, x.b_amt as cashback
            from currencies c
           where c.code = x.currency and x.z_code = 'ok'
             and not x.z_rep) f on true
     where not (x.z_rep and x.z_code = 'ok');
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

revoke all on function post_transfers_decide(post_item[]) from public;
grant execute on function post_transfers_decide(post_item[]) to kordon_ledger;
