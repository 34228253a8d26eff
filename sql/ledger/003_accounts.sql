-- Accounts, TigerBeetle's way: an account holds no balance, only four
-- running totals of what was debited and credited, posted and pending.
-- Balances are derived (credits minus debits, for every account):
--
--   posted    = credits_posted - debits_posted
--   pending   = posted + credits_pending - debits_pending
--   available = credits_posted - debits_posted - debits_pending
--
-- The totals only ever grow, and only inside the transaction that inserts
-- the transfer moving them (post_transfers() in 005), so they can always
-- be recomputed from the transfers and compared.
--
-- A wallet belongs to one user (owner = the edge's X-Kordon-User), one
-- per currency, and may never be overdrawn: the CHECK below makes the
-- database refuse it even if the code were wrong.  System accounts have
-- no owner, one per kind and currency, and may go below zero: the
-- adjustments account pays for every manual credit, cashback expense
-- grows with every cashback, a clearing account mirrors a provider.
create table accounts (
    id                              uuid        primary key
                                                default gen_random_uuid(),
    owner                           text,
    currency                        text        not null
                                                references currencies,
    kind                            text        not null,
    debits_must_not_exceed_credits  boolean     not null,
    closed                          boolean     not null default false,
    debits_posted                   bigint      not null default 0,
    credits_posted                  bigint      not null default 0,
    debits_pending                  bigint      not null default 0,
    credits_pending                 bigint      not null default 0,
    created_at                      timestamptz not null default now(),
    constraint accounts_kind check (
        kind in ('wallet', 'fee_revenue', 'cashback_expense', 'adjustments')
        or kind ~ '^clearing:[a-z0-9_]{1,32}$'),
    constraint accounts_owner check ((kind = 'wallet') = (owner is not null)),
    constraint accounts_owner_length check (length(owner) between 1 and 255),
    constraint accounts_wallet_no_overdraft check (
        kind <> 'wallet' or debits_must_not_exceed_credits),
    constraint accounts_totals_non_negative check (
        debits_posted >= 0 and credits_posted >= 0
        and debits_pending >= 0 and credits_pending >= 0),
    constraint accounts_debits_within_credits check (
        not debits_must_not_exceed_credits
        or debits_posted + debits_pending <= credits_posted)
);

comment on table accounts is
    'wallets (one per owner and currency) and system accounts (one per '
    'kind and currency) with their running debit and credit totals';

create unique index accounts_wallet on accounts (owner, currency)
    where kind = 'wallet';
create unique index accounts_system on accounts (kind, currency)
    where kind <> 'wallet';

-- The service may change the totals and close an account, nothing else;
-- accounts are never deleted.
revoke update, delete, truncate on accounts from kordon_ledger;
grant update (debits_posted, credits_posted, debits_pending, credits_pending,
              closed)
    on accounts to kordon_ledger;

-- Every currency gets its system accounts when it is added.  Clearing
-- accounts (one per payment provider) come with the provider adapters.
create function currencies_open_system_accounts() returns trigger
language plpgsql
set search_path from current
as $$
begin
    insert into accounts (owner, currency, kind,
                          debits_must_not_exceed_credits)
    select null, new.code, k, false
      from unnest(array['fee_revenue', 'cashback_expense', 'adjustments']) k
    on conflict do nothing;
    return new;
end
$$;

create trigger currencies_open_system_accounts
    after insert on currencies
    for each row execute function currencies_open_system_accounts();

insert into accounts (owner, currency, kind, debits_must_not_exceed_credits)
select null, c.code, k, false
  from currencies c
 cross join unnest(array['fee_revenue', 'cashback_expense', 'adjustments']) k;

-- Timestamps in answers and events: RFC 3339 in UTC, microseconds.
create function ts_text(ts timestamptz) returns text
language sql immutable parallel safe
return to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
