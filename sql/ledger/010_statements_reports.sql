-- Statements, balances as of a time, and the admin's daily report.
--
-- A statement lists an account's posted transfers in id order (UUIDv7:
-- time order), each with the posted balance right after it.  Pages are
-- keyset pages: the cursor is the last id shown, the next page starts
-- after it, and the balance before a page is one indexed sum over the
-- account's earlier entries (posted rows never change, so it is the same
-- every time it is asked).  Time bounds become id bounds (uuid7_floor),
-- which also prunes the monthly partitions.
--
-- The report sums posted transfers per UTC day and currency over a date
-- range: turnover (payments: p2p and captures), refunds, fees taken and
-- given back, cashback paid -- straight from the partitioned table.

-- text as a timestamptz, or null when it is not one (RFC 3339 or an ISO
-- date; PostgreSQL's other spellings, like 'now' or 'epoch', refused).
create function ts_parse(p text) returns timestamptz
language plpgsql stable
as $$
begin
    if p is null or p !~ ('^\d{4}-\d{2}-\d{2}'
                          '([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?'
                          '(Z|[+-]\d{2}(:?\d{2})?)?$') then
        return null;
    end if;
    return p::timestamptz;
exception when others then
    return null;
end
$$;

-- The posted balance of account p_id from its transfers with ids below
-- p_before (all when null).
create function balance_before(p_id uuid, p_before uuid) returns bigint
language sql stable
set search_path from current
return coalesce((select sum(amount) from transfers
                  where credit_account_id = p_id and status = 'posted'
                    and (p_before is null or id < p_before)), 0)
     - coalesce((select sum(amount) from transfers
                  where debit_account_id = p_id and status = 'posted'
                    and (p_before is null or id < p_before)), 0);

-- The account of a statement or balance, if p's actor may read it.
create function account_readable(p jsonb) returns accounts
language sql stable
set search_path from current
return (select a from accounts a
         where a.id = (p->>'account_id')::uuid
           and (coalesce((p->>'staff')::boolean, false)
                or a.owner = p->>'actor'));

-- GET /v1/accounts/{id}/statement: {actor, staff, account_id, from, to,
-- cursor, limit}.
create function statement(p jsonb) returns jsonb
language plpgsql stable
set search_path from current
as $$
declare
    a        accounts := account_readable(p);
    v_from   timestamptz := ts_parse(p->>'from');
    v_to     timestamptz := ts_parse(p->>'to');
    v_lo     uuid;
    v_hi     uuid;
    v_limit  int := coalesce((p->>'limit')::int, 50);
    v_open   bigint;
    v_rows   jsonb;
    v_n      int;
    v_last   uuid;
    v_exp    int;
begin
    if a.id is null then
        return op_refusal('account_not_found');
    elsif p->>'from' is not null and v_from is null then
        return op_refusal('bad_from');
    elsif p->>'to' is not null and v_to is null then
        return op_refusal('bad_to');
    elsif v_from >= v_to then
        return op_refusal('empty_range');
    end if;
    v_lo := greatest(uuid7_floor(v_from), (p->>'cursor')::uuid);
    v_hi := uuid7_floor(v_to);
    -- The balance before the page: everything up to and with the cursor
    -- (or before from).
    v_open := case when v_lo is null then 0
                   else balance_before(a.id, v_lo) end
              + case when (p->>'cursor')::uuid = v_lo
                     then coalesce((select case when t.credit_account_id
                                                     = a.id
                                                then t.amount
                                                else -t.amount end
                                      from transfers t
                                     where t.id = v_lo
                                       and t.status = 'posted'), 0)
                     else 0 end;
    select exponent into v_exp from currencies where code = a.currency;
    with page as (
        select t.*, case when t.credit_account_id = a.id then t.amount
                         else -t.amount end as delta
          from (select * from transfers
                 where debit_account_id = a.id and status = 'posted'
                   and (v_lo is null or id > v_lo
                        or (id = v_lo and p->>'cursor' is null))
                   and (v_hi is null or id < v_hi)
                 order by id limit v_limit + 1) t
        union all
        select t.*, t.amount
          from (select * from transfers
                 where credit_account_id = a.id and status = 'posted'
                   and (v_lo is null or id > v_lo
                        or (id = v_lo and p->>'cursor' is null))
                   and (v_hi is null or id < v_hi)
                 order by id limit v_limit + 1) t
         order by id limit v_limit + 1),
    numbered as (
        select page.*, row_number() over (order by id) as n,
               v_open + sum(delta) over (order by id) as balance
          from page)
    select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'id', id, 'kind', kind,
               'direction', case when delta > 0 then 'credit'
                                 else 'debit' end,
               'amount', delta, 'balance', balance,
               'counterparty_account_id',
                   case when delta > 0 then debit_account_id
                        else credit_account_id end,
               'parent_id', parent_id, 'group_id', group_id,
               'reason', reason, 'created_at', ts_text(created_at)))
               order by id) filter (where n <= v_limit),
           count(*),
           (array_agg(id order by id desc) filter (where n <= v_limit))[1]
      into v_rows, v_n, v_last
      from numbered;
    return jsonb_build_object('code', 'ok', 'data', jsonb_build_object(
        'account_id', a.id, 'currency', a.currency, 'exponent', v_exp,
        'from', ts_text(v_from), 'to', ts_text(v_to),
        'opening_balance', v_open,
        'entries', coalesce(v_rows, '[]'::jsonb),
        'next_cursor', case when v_n > v_limit then v_last end));
end
$$;

-- GET /v1/accounts/{id}/balance?at=: {actor, staff, account_id, at}.
create function balance_at(p jsonb) returns jsonb
language plpgsql stable
set search_path from current
as $$
declare
    a     accounts := account_readable(p);
    v_at  timestamptz := ts_parse(p->>'at');
begin
    if a.id is null then
        return op_refusal('account_not_found');
    elsif p->>'at' is not null and v_at is null then
        return op_refusal('bad_at');
    end if;
    return jsonb_build_object('code', 'ok', 'data', jsonb_build_object(
        'account_id', a.id, 'currency', a.currency,
        'exponent', (select exponent from currencies
                      where code = a.currency),
        'at', ts_text(coalesce(v_at, now())),
        'posted', balance_before(a.id, uuid7_floor(v_at))));
end
$$;

-- GET /v1/admin/reports/daily?from=&to= (dates, to inclusive, at most
-- 366 days): per UTC day and currency.
create function report_daily(p jsonb) returns jsonb
language plpgsql stable
set search_path from current
as $$
declare
    v_from  timestamptz := ts_parse(p->>'from');
    v_to    timestamptz := ts_parse(p->>'to');
    v_rows  jsonb;
begin
    if v_from is null or p->>'from' !~ '^\d{4}-\d{2}-\d{2}$' then
        return op_refusal('bad_from');
    elsif v_to is null or p->>'to' !~ '^\d{4}-\d{2}-\d{2}$' then
        return op_refusal('bad_to');
    elsif v_from > v_to or v_to - v_from > interval '366 days' then
        return op_refusal('bad_range');
    end if;
    with t as (
        select x.*, (x.created_at at time zone 'UTC')::date as day,
               o.kind as parent_kind
          from transfers x
          left join transfers o on o.id = x.parent_id and x.kind = 'refund'
         where x.status = 'posted'
           and x.id >= uuid7_floor((p->>'from')::date
                                   ::timestamp at time zone 'UTC')
           and x.id < uuid7_floor(((p->>'to')::date + 1)
                                  ::timestamp at time zone 'UTC'))
    select jsonb_agg(jsonb_build_object(
               'day', day, 'currency', currency,
               'payments', payments, 'turnover', turnover,
               'refunds', refunds, 'fees', fees,
               'fees_refunded', fees_refunded,
               'fee_revenue', fees - fees_refunded,
               'cashback', cashback - cashback_back)
               order by day, currency)
      into v_rows
      from (select day, currency,
                   count(*) filter (where kind in ('p2p', 'capture'))
                       as payments,
                   coalesce(sum(amount) filter (
                       where kind in ('p2p', 'capture')), 0) as turnover,
                   coalesce(sum(amount) filter (
                       where kind = 'refund'
                         and parent_kind in ('p2p', 'capture')), 0)
                       as refunds,
                   coalesce(sum(amount) filter (where kind = 'fee'), 0)
                       as fees,
                   coalesce(sum(amount) filter (
                       where kind = 'refund' and parent_kind = 'fee'), 0)
                       as fees_refunded,
                   coalesce(sum(amount) filter (where kind = 'cashback'), 0)
                       as cashback,
                   coalesce(sum(amount) filter (
                       where kind = 'refund' and parent_kind = 'cashback'),
                            0) as cashback_back
              from t group by day, currency) d;
    return jsonb_build_object('code', 'ok', 'data', jsonb_build_object(
        'from', p->>'from', 'to', p->>'to',
        'days', coalesce(v_rows, '[]'::jsonb)));
end
$$;

revoke all on function statement(jsonb), balance_at(jsonb),
    report_daily(jsonb) from public;
grant execute on function statement(jsonb), balance_at(jsonb),
    report_daily(jsonb) to kordon_ledger;
