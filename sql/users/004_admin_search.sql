-- What the admin search (backends/users/admin.c) needs to stay fast at a
-- million people: prefix searches on email and phone (LIKE 'abc%') use
-- text_pattern_ops indexes, whatever the database's collation; an id
-- prefix is a range on the primary key, and pages are keyset pages in id
-- order, so neither needs more.
create index users_email_prefix on users (email text_pattern_ops)
    where email is not null;
create index users_phone_prefix on users (phone text_pattern_ops)
    where phone is not null;
