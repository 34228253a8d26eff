-- Second factor (TOTP, recovery codes, MFA tickets) and social login
-- (OpenID Connect identities and the logins between start and callback).
--
-- TOTP: /totp/setup writes totp_pending; /enable moves it to totp_secret
-- once a code verifies and stores the matched time step.  Both hold the
-- base32 secret sealed by the service (AES-256-GCM under a key derived
-- from the code key, bound to the user id), so a dump alone does not
-- carry anyone's second factor.  A later code is accepted only for a
-- newer step, atomically:
--
--   update users set totp_last_step = $step
--    where id = $id and coalesce(totp_last_step, -1) < $step
--
-- A wrong second factor counts as a failed login (failed_logins,
-- locked_until): the same doubling lockout bounds guesses at TOTP codes.
alter table users
    add column totp_pending bytea,
    add constraint users_totp_enabled check (
        (totp_enabled_at is null) = (totp_secret is null));

-- Recovery codes: only their SHA-256 (80 random bits each: nothing
-- guessable to stretch).  /enable replaces the whole set.
create table recovery_codes (
    user_id     uuid        not null references users,
    code_hash   text        not null,
    used_at     timestamptz,
    created_at  timestamptz not null default now(),
    primary key (user_id, code_hash),
    constraint recovery_codes_hash check (code_hash ~ '^[0-9a-f]{64}$')
);

-- A login whose password checked out and that waits for its second
-- factor: the ticket's SHA-256, 5 minutes, 5 tries, single use.
create table mfa_tickets (
    ticket_sha256  bytea       primary key,
    user_id        uuid        not null references users,
    device         text,
    tries          integer     not null default 0,
    created_at     timestamptz not null default now(),
    expires_at     timestamptz not null,
    used_at        timestamptz,
    constraint mfa_tickets_hash_length check (length(ticket_sha256) = 32),
    constraint mfa_tickets_tries check (tries between 0 and 5),
    constraint mfa_tickets_device_length check (length(device) <= 200)
);

create index mfa_tickets_user on mfa_tickets (user_id);

-- Social login: one row per (provider, sub), sub being the provider's
-- stable id of the person.  A callback finds the row; without one it
-- links to the account whose email equals the provider's only when the
-- provider says the email is verified, else it creates an account.
create table oauth_identities (
    provider        text        not null,
    sub             text        not null,
    user_id         uuid        not null references users,
    email           text,
    email_verified  boolean     not null default false,
    created_at      timestamptz not null default now(),
    last_login_at   timestamptz not null default now(),
    primary key (provider, sub),
    constraint oauth_identities_provider check (
        provider ~ '^[a-z0-9_]{1,31}$'),
    constraint oauth_identities_sub check (length(sub) between 1 and 255)
);

create index oauth_identities_user on oauth_identities (user_id);

-- A login between start and callback (users_oauth_store_t): single use
-- (taken with DELETE ... RETURNING), 10 minutes.
create table oauth_pending (
    state       text        primary key,
    provider    text        not null,
    nonce       text        not null,
    verifier    text        not null,
    created_at  timestamptz not null default now(),
    constraint oauth_pending_random check (
        state ~ '^[A-Za-z0-9_-]{43}$' and nonce ~ '^[A-Za-z0-9_-]{43}$'
        and verifier ~ '^[A-Za-z0-9_-]{43}$')
);

create index oauth_pending_created on oauth_pending (created_at);

-- Accounts made by social login have no password.
comment on column users.password_hash is
    'argon2id encoded; null for accounts made by social login';
