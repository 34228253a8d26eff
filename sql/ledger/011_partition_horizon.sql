-- Partition maintenance: the months ahead are made by the service.
--
-- 004 made two years of monthly partitions and left keeping the horizon
-- to "a scheduled job".  The service role has no DDL rights, so this
-- function runs as its owner (the migrating superuser) and does one
-- thing only: make sure partitions exist from this month up to
-- p_months ahead (bounded to 1..36).  The ledger calls it at start and
-- once a day from its sweeper thread; any number of instances may (the
-- advisory lock serialises them, to_regclass skips what exists).
create function transfer_partitions_ahead(p_months int) returns int
language plpgsql
security definer
set search_path from current
as $$
begin
    if p_months not between 1 and 36 then
        raise exception 'months must be in 1..36, not %', p_months;
    end if;
    perform pg_advisory_xact_lock(hashtext('kordon.ledger.partitions'));
    return ensure_transfer_partitions(current_date, p_months);
end
$$;

revoke all on function transfer_partitions_ahead(int) from public;
grant execute on function transfer_partitions_ahead(int) to kordon_ledger;
