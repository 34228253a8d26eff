-- Plans that stay by key, and an end to tables that only grow.
--
-- 1. Accounts by key, whatever their number when a session planned.
--    post_transfers_decide() forces generic plans (014), and a generic
--    plan is made once per session, from the statistics of that moment.
--    With a few hundred accounts (a fresh stack, the bench's start: 655
--    rows, 11 pages) the planner finds a seq scan of accounts cheaper
--    than the primary key for "id = any(acc)" (auto_explain: the totals'
--    UPDATE) and keeps it for the life of the ledger's connections,
--    however many accounts there are later: every batch would read the
--    whole table.  (On the bench that showed as accounts grown to 1,756
--    pages read per batch -- grown because the bench's lock sampler held
--    a snapshot for the whole run, fixed in scripts/bench-ledger; with
--    the table's statistics caught up the two plans measure the same.)
--    Every table this function reads is reached by a key (accounts by id
--    or (kind, currency, shard); idempotency, limits, fee_rules,
--    daily_outgoing and currencies by their primary keys; transfers by
--    id or group), so it plans without seq scans.
--
-- 2. Pruning.  Sent outbox rows and idempotency records were kept for
--    good.  prune_old() deletes, within one call, at most p_max of each
--    that are older than p_keep_s seconds: outbox rows only once sent
--    (an unsent row is never touched, however old), idempotency records
--    whatever their outcome -- a key older than the retention is
--    forgotten, and the same key then posts anew, as with any payment
--    API's idempotency window.  The ledger's sweeper thread calls it
--    (KORDON_LEDGER_PRUNE_MS, KORDON_LEDGER_RETENTION_S).
--
--    Both deletes start from an index, so a call that finds nothing old
--    costs a probe or two, not a scan: outbox ids rise with time (an
--    identity column, created_at = the inserting transaction's start),
--    so the rows before the first recent one by id are the old ones;
--    idempotency gets an index on created_at (a b-tree insert per key,
--    appended at its right edge).  The service role keeps no DELETE on
--    idempotency: this function, running as its owner, is the only way.

alter function post_transfers_decide(post_item[]) set enable_seqscan = off;

create index idempotency_created on idempotency (created_at);

create function prune_old(p_keep_s bigint, p_max int,
    out events bigint, out keys bigint)
language plpgsql
security definer
set search_path from current
set jit = off
as $$
declare
    cut    constant timestamptz := now() - make_interval(secs => p_keep_s);
    bound  bigint;
begin
    if p_keep_s < 1 or p_max not between 1 and 100000 then
        raise exception 'retention must be positive and the bound in '
                        '1..100000, not % s and %', p_keep_s, p_max;
    end if;
    -- The first row by id that is recent enough to keep; every sent row
    -- before it (and old enough itself) goes.
    select o.id into bound
      from outbox o
     where o.created_at >= cut
     order by o.id
     limit 1;
    with gone as (
        delete from outbox o
         where o.id in (select x.id from outbox x
                         where x.id < coalesce(bound, 9223372036854775807)
                           and x.sent_at is not null
                           and x.created_at < cut
                         order by x.id
                         limit p_max)
        returning 1)
    select count(*) into events from gone;

    with gone as (
        delete from idempotency k
         where k.ctid = any(array(select x.ctid from idempotency x
                                   where x.created_at < cut
                                   order by x.created_at
                                   limit p_max))
        returning 1)
    select count(*) into keys from gone;
end
$$;

revoke all on function prune_old(bigint, int) from public;
grant execute on function prune_old(bigint, int) to kordon_ledger;
