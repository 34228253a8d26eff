-- People and their credentials, sessions and audit trail.
--
-- Ids are UUIDv7 (48-bit millisecond time first), so they sort by
-- creation.  An email is stored lower-cased and a phone in E.164; each is
-- unique among the accounts that hold one (a deleted account is
-- anonymized: both set to null, so the address can register again).
-- Secrets are never stored: the password as an argon2id encoded hash,
-- verification codes as an HMAC keyed by a server secret, refresh tokens
-- as their SHA-256.  The audit table is append-only: a trigger refuses
-- UPDATE and DELETE, even for the superuser.

-- A version 7 UUID for ts: its 48-bit Unix time in ms, then random bits.
create function uuid7(ts timestamptz default clock_timestamp()) returns uuid
language sql volatile parallel safe
return encode(
    set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch from ts)
                                                 * 1000)::bigint) from 3)
                from 1 for 6),
        52, 1), 53, 1),
    'hex')::uuid;

-- Timestamps in answers and events: RFC 3339 in UTC, microseconds.
create function ts_text(ts timestamptz) returns text
language sql immutable parallel safe
return to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

create table users (
    id               uuid        primary key default uuid7(),
    email            text,
    phone            text,
    name             text,
    status           text        not null default 'unverified',
    roles            text[]      not null default '{user}',
    password_hash    text,
    failed_logins    integer     not null default 0,
    locked_until     timestamptz,
    -- TOTP (issue 4's 2FA step fills these): the secret sealed by the
    -- service, when it was enabled, and the last time step accepted, so
    -- a code is accepted once.
    totp_secret      bytea,
    totp_enabled_at  timestamptz,
    totp_last_step   bigint,
    blocked_reason   text,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    verified_at      timestamptz,
    deleted_at       timestamptz,
    constraint users_status check (
        status in ('unverified', 'active', 'blocked', 'deleted')),
    constraint users_email_form check (
        email = lower(email) and length(email) between 3 and 254
        and email ~ '^[^@\s]+@[^@\s]+$'),
    constraint users_phone_e164 check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    constraint users_contact check (
        status = 'deleted' or email is not null or phone is not null),
    constraint users_roles check (
        roles <@ array['user', 'support', 'admin']
        and cardinality(roles) between 1 and 3),
    constraint users_name_length check (length(name) <= 200),
    constraint users_failed_logins check (failed_logins >= 0)
);

comment on table users is
    'people: contact, status, roles, password hash, lockout, 2FA';

create unique index users_email on users (email) where email is not null;
create unique index users_phone on users (phone) where phone is not null;
create index users_created on users (created_at, id);

-- Failed logins for addresses that have no account.  They lock exactly
-- like an account's own counters (users.failed_logins, locked_until):
-- otherwise the lockout itself would tell which addresses exist.
create table login_throttle (
    address       text        primary key,
    failures      integer     not null default 0,
    locked_until  timestamptz,
    updated_at    timestamptz not null default now(),
    constraint login_throttle_failures check (failures >= 0)
);

-- One-time codes for verifying an address or resetting a password:
-- 10 minutes, 5 tries, single use.  A new code of the same purpose
-- replaces the previous one (the row is marked used).
create table codes (
    id          uuid        primary key default uuid7(),
    user_id     uuid        not null references users,
    purpose     text        not null,
    code_hmac   bytea       not null,
    tries       integer     not null default 0,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    constraint codes_purpose check (purpose in ('verify', 'reset')),
    constraint codes_hmac_length check (length(code_hmac) = 32),
    constraint codes_tries check (tries between 0 and 5)
);

create index codes_user on codes (user_id, purpose, created_at);

-- A session is one login on one device; its refresh tokens form one
-- family.  Ending a session (logout, refresh reuse, password change)
-- ends the family.
create table sessions (
    id            uuid        primary key default uuid7(),
    user_id       uuid        not null references users,
    device        text,
    ip            text,
    user_agent    text,
    amr           text[]      not null default '{pwd}',
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz not null default now(),
    ended_at      timestamptz,
    end_reason    text,
    constraint sessions_device_length check (length(device) <= 200),
    constraint sessions_ua_length check (length(user_agent) <= 512)
);

create index sessions_user on sessions (user_id) where ended_at is null;

create table refresh_tokens (
    id           uuid        primary key default uuid7(),
    session_id   uuid        not null references sessions,
    token_sha256 bytea       not null unique,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    rotated_at   timestamptz,
    constraint refresh_tokens_hash_length check (length(token_sha256) = 32)
);

create index refresh_tokens_session on refresh_tokens (session_id);

-- Cuts the edge must learn (BLUEPRINT "Tokens", revocation contract):
-- written in the transaction that ends the sessions, pushed to the Redis
-- stream kordon:revocations after the commit, deleted once Redis took
-- them.  A Redis outage only delays them.
create table pending_revocations (
    id          bigint      generated always as identity primary key,
    kind        text        not null,
    value       uuid        not null,
    nbf         bigint      not null,
    created_at  timestamptz not null default now(),
    attempts    integer     not null default 0,
    constraint pending_revocations_kind check (kind in ('sub', 'sid'))
);

-- Every security action, with who did it to whom, from where.
create table audit (
    id          bigint      generated always as identity primary key,
    at          timestamptz not null default now(),
    action      text        not null,
    actor       uuid,
    subject     uuid,
    ip          text,
    user_agent  text,
    request_id  text        not null default '',
    data        jsonb       not null default '{}'
);

comment on table audit is 'security actions, append-only';

create index audit_subject on audit (subject, id);
create index audit_action on audit (action, id);

create function audit_guard() returns trigger
language plpgsql as $$
begin
    raise exception 'audit rows are never updated or deleted'
        using errcode = 'insufficient_privilege';
end $$;

create trigger audit_guard before update or delete on audit
    for each row execute function audit_guard();
create trigger audit_guard_truncate before truncate on audit
    for each statement execute function audit_guard();

-- The service appends audit rows and never changes them.
revoke update, delete, truncate on audit from kordon_users;
-- Users are anonymized, never deleted: ledger rows name their ids.
revoke delete, truncate on users from kordon_users;
