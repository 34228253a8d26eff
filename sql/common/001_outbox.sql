-- The transactional outbox (BLUEPRINT "Events"), one per service schema.
-- sql/common/ is applied to every service's schema (search_path set to it)
-- before the service's own migrations, because the kit's relay, shared by
-- every backend, defines this shape.  A row is written in the same
-- transaction as the change it announces; the relay publishes unsent rows
-- to Kafka in id order and stamps sent_at.
create table outbox (
    id          bigint generated always as identity primary key,
    event_id    uuid        not null default gen_random_uuid(),
    topic       text        not null,
    key         text        not null,
    type        text        not null,
    request_id  text        not null default '',
    actor       text        not null default '',
    subject     text        not null default '',
    data        jsonb       not null,
    created_at  timestamptz not null default now(),
    sent_at     timestamptz
);

create index outbox_unsent on outbox (id) where sent_at is null;
