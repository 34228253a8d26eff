-- post_transfers(items): the one way money moves.  It applies a batch of
-- transfers -- one for a request served alone, up to a few hundred when
-- the service gathers concurrent requests -- in one statement, so a whole
-- batch costs one round trip and, with the caller's COMMIT, one durable
-- write.
--
-- The idea that makes it both safe and fast: lock every account the batch
-- touches at once, in id order (so two batches can never deadlock), read
-- their totals into arrays, decide each transfer in order in memory
-- exactly as if they came one by one (a later transfer sees the money an
-- earlier one moved), then write the outcome set-based: one UPDATE of the
-- touched accounts, one INSERT each into transfers, outbox and
-- idempotency.  A refused transfer refuses only itself.
--
-- Rows come back one per item, in no particular order: i says which.
--
-- Idempotency: an item with a key that is already recorded for the same
-- owner and scope is not applied again; it is answered from the record
-- when the request hash matches ("replayed"), and refused with
-- "idempotency_conflict" when it does not.  Two concurrent transactions
-- with the same new key: the second one's INSERT into idempotency waits
-- for the first and then fails with a unique violation; the caller
-- retries, and the retry finds the record.  The caller must not put one
-- key twice into one batch.
--
-- Outcome codes: ok, debit_account_not_found (also: the debit account is
-- not must_own's), credit_account_not_found (also: a p2p transfer to
-- anything but a wallet), same_account,
-- debit_currency_mismatch, credit_currency_mismatch,
-- debit_account_closed, credit_account_closed, insufficient_funds,
-- overflow, idempotency_conflict.  Items the caller got wrong (no amount,
-- a non-positive one, numbering) raise an error: that is a bug, and the
-- whole batch rolls back.  So does waiting more than lock_timeout for an
-- account or a key another transaction holds: the caller answers 503, and
-- the client's retry with its key is safe.

create type post_item as (
    i              int,       -- 1..n: the order of application
    debit          uuid,      -- the debit account, or null and:
    debit_system   text,      -- the system account of that kind
    credit         uuid,
    credit_system  text,
    amount         bigint,
    currency       text,
    kind           text,      -- transfers.kind
    must_own       text,      -- when set: the debit account's owner
    reason         text,
    actor          text,
    request_id     text,
    idem_owner     text,      -- the key's scope: who and what for
    idem_scope     text,
    idem_key       text,      -- null: no key
    idem_hash      text       -- SHA-256 of the request, hex
);

create type post_result as (
    i                  int,
    code               text,
    replayed           boolean,
    id                 uuid,      -- the transfer, for ok (fresh or replayed)
    debit_account_id   uuid,
    credit_account_id  uuid,
    amount             bigint,
    currency           text,
    exponent           smallint,
    kind               text,
    status             text,
    reason             text,
    created_at         text
);

create function post_transfers(p_items json) returns setof post_result
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
declare
    int8_max    constant bigint := 9223372036854775807;
    now_text    constant text := ts_text(now());
    it          post_item[];
    n           int;
    dbt         uuid[];     -- per item: debit account, system ones resolved
    cdt         uuid[];     -- per item: credit account
    amt         bigint[];
    cur         text[];
    own         text[];
    kinds       text[];
    outcome     text[];     -- per item: its code, null while undecided
    tid         uuid[];     -- per item: its transfer
    rep         boolean[];  -- per item: answered from an earlier request
    need        uuid[] := '{}';
    acc         uuid[];     -- the locked accounts, in id order, and theirs:
    a_owner     text[];
    a_kind      text[];
    a_cur       text[];
    a_flag      boolean[];
    a_closed    boolean[];
    a_dp        bigint[];
    a_cp        bigint[];
    a_dpend     bigint[];
    a_touched   boolean[];
    dix         int[];      -- per item: its debit account's index in acc
    cix         int[];
    dpos        int;
    cpos        int;
    posted      int := 0;
    replayed    int := 0;
begin
    select array_agg(x order by x.i) into it
      from json_populate_recordset(null::post_item, p_items) x;
    n := coalesce(cardinality(it), 0);
    if n = 0 then
        return;
    end if;

    -- System accounts by kind and currency, and what earlier requests
    -- with the same keys decided.  Each lookup is an index probe per item
    -- (the subqueries run only when needed), whatever the tables' size.
    select array_agg(coalesce(x.debit,
                         (select s.id from accounts s
                           where s.kind = x.debit_system
                             and s.kind <> 'wallet'
                             and s.currency = x.currency)) order by x.i),
           array_agg(coalesce(x.credit,
                         (select s.id from accounts s
                           where s.kind = x.credit_system
                             and s.kind <> 'wallet'
                             and s.currency = x.currency)) order by x.i),
           array_agg(x.amount order by x.i),
           array_agg(x.currency order by x.i),
           array_agg(x.must_own order by x.i),
           array_agg(x.kind order by x.i),
           array_agg(case when not ik.same then 'idempotency_conflict'
                          else ik.code end order by x.i),
           array_agg(case when ik.same then ik.transfer_id end order by x.i),
           array_agg(coalesce(ik.same, false) order by x.i)
      into dbt, cdt, amt, cur, own, kinds, outcome, tid, rep
      from unnest(it) x
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
           array_agg(l.debits_posted order by l.id),
           array_agg(l.credits_posted order by l.id),
           array_agg(l.debits_pending order by l.id)
      into acc, a_owner, a_kind, a_cur, a_flag, a_closed, a_dp, a_cp,
           a_dpend
      from (select a.id, a.owner, a.kind, a.currency,
                   a.debits_must_not_exceed_credits, a.closed,
                   a.debits_posted, a.credits_posted, a.debits_pending
              from accounts a
             where a.id = any(need)
             order by a.id
               for update) l;
    a_touched := array_fill(false, array[coalesce(cardinality(acc), 0)]);

    select array_agg(dl.ord::int order by u.ord),
           array_agg(cl.ord::int order by u.ord)
      into dix, cix
      from unnest(dbt, cdt) with ordinality u(debit, credit, ord)
      left join unnest(acc) with ordinality dl(id, ord) on dl.id = u.debit
      left join unnest(acc) with ordinality cl(id, ord) on cl.id = u.credit;

    -- Decide each transfer in order, as if alone.
    for k in 1 .. n loop
        continue when outcome[k] is not null;
        dpos := dix[k];
        cpos := cix[k];
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
        elsif a_flag[dpos]
              and a_cp[dpos] - a_dp[dpos] - a_dpend[dpos] < amt[k]
        then
            outcome[k] := 'insufficient_funds';
        elsif a_dp[dpos] > int8_max - amt[k]
              or a_cp[cpos] > int8_max - amt[k]
        then
            outcome[k] := 'overflow';
        else
            a_dp[dpos] := a_dp[dpos] + amt[k];
            a_cp[cpos] := a_cp[cpos] + amt[k];
            a_touched[dpos] := true;
            a_touched[cpos] := true;
            outcome[k] := 'ok';
            tid[k] := uuid7();
            posted := posted + 1;
        end if;
    end loop;

    -- Every write in one statement: the new totals, the transfers, their
    -- events (the kit's outbox, sql/common, keyed by the paying account)
    -- and the outcome of every key not seen before, refusals included.
    with moved as (
        update accounts a
           set debits_posted = u.dp, credits_posted = u.cp
          from unnest(acc, a_dp, a_cp, a_touched) u(id, dp, cp, touched)
         where u.touched and a.id = u.id and a.id = any(acc)),
    fresh as (
        select x.*, tid[x.i] as t_id, dbt[x.i] as d_id, cdt[x.i] as c_id,
               a_owner[dix[x.i]] as d_owner, a_owner[cix[x.i]] as c_owner
          from unnest(it) x
         where outcome[x.i] = 'ok' and not rep[x.i]),
    made as (
        insert into transfers (id, debit_account_id, credit_account_id,
                               amount, currency, kind, status, reason, actor,
                               request_id, idempotency_key, created_at)
        select t_id, d_id, c_id, amount, currency, kind, 'posted', reason,
               coalesce(actor, ''), coalesce(request_id, ''), idem_key, now()
          from fresh),
    told as (
        insert into outbox (topic, key, type, request_id, actor, subject,
                            data)
        select 'ledger.events', d_id::text, 'ledger.transfer.posted',
               coalesce(request_id, ''), coalesce(actor, ''), t_id::text,
               jsonb_strip_nulls(jsonb_build_object(
                   'id', t_id, 'kind', kind, 'status', 'posted',
                   'from_account_id', d_id, 'from_owner', d_owner,
                   'to_account_id', c_id, 'to_owner', c_owner,
                   'amount', amount, 'currency', currency,
                   'reason', reason, 'created_at', now_text))
          from fresh),
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

    -- The answers: fresh transfers from what was just decided, refusals
    -- bare, and only replayed transfers read back from the table.
    return query
    select x.i, outcome[x.i], rep[x.i], f.id, f.debit, f.credit, f.amount,
           f.currency, f.exponent, f.kind, f.status, f.reason, f.created_at
      from unnest(it) x
      left join lateral (
          select tid[x.i] as id, dbt[x.i] as debit, cdt[x.i] as credit,
                 x.amount, x.currency, c.exponent, x.kind,
                 'posted'::text as status, x.reason, now_text as created_at
            from currencies c
           where c.code = x.currency and outcome[x.i] = 'ok'
             and not rep[x.i]) f on true
     where not (rep[x.i] and outcome[x.i] = 'ok');
    if replayed > 0 then
        return query
        select x.i, outcome[x.i], true, t.id, t.debit_account_id,
               t.credit_account_id, t.amount, t.currency, c.exponent, t.kind,
               t.status, t.reason, ts_text(t.created_at)
          from unnest(it) x
          join transfers t on t.id = tid[x.i]
          join currencies c on c.code = t.currency
         where rep[x.i] and outcome[x.i] = 'ok';
    end if;
end
$$;

revoke all on function post_transfers(json) from public;
grant execute on function post_transfers(json) to kordon_ledger;
