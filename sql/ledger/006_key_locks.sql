-- Idempotency keys are taken before they are looked up.
--
-- post_transfers() of 005 looked a batch's keys up first and recorded
-- the new ones last; when another transaction recorded one of them in
-- between, the INSERT failed with a unique violation and the whole batch
-- was retried.  Under load, with a key's twin requests spread over
-- concurrent batches, the retry met the next twin, and after a bounded
-- number of attempts a request that deserved a 201 or a 409 got a 503.
-- Two batches holding each other's twins could also deadlock on the
-- keys' index entries for a second (deadlock_timeout).
--
-- Now every key of a batch is locked first, in one order (a transaction
-- advisory lock on a 32-bit hash of owner, scope and key, sorted), then
-- the accounts (in id order, as before): a second request with a key in
-- flight waits for the first to commit and then finds its record.  The
-- lookup that follows is a later statement of the same READ COMMITTED
-- transaction, so it sees what was committed while it waited.  Hash
-- collisions only make two unrelated keys wait for each other.  Every
-- writer of ledger.idempotency goes through here, so the unique
-- violation can no longer happen between them; post.c still retries it,
-- logged, as a safety net.

alter function post_transfers(json) rename to post_transfers_decide;
-- Called by post_transfers() only, which takes the keys first.

-- The advisory lock space of idempotency keys: (this, hash of the key).
create function idem_lock_space() returns int
language sql immutable parallel safe
return hashtext('kordon.ledger.idempotency');

create function idem_lock_key(p_owner text, p_scope text, p_key text)
returns int
language sql immutable parallel safe
return hashtext(p_owner || chr(31) || p_scope || chr(31) || p_key);

create function post_transfers(p_items json) returns setof post_result
language plpgsql
set search_path from current
set lock_timeout = '5s'
as $$
begin
    perform pg_advisory_xact_lock(idem_lock_space(), k.h)
       from (select distinct idem_lock_key(x.idem_owner, x.idem_scope,
                                           x.idem_key) as h
               from json_populate_recordset(null::post_item, p_items) x
              where x.idem_key is not null
              order by 1) k;
    return query select * from post_transfers_decide(p_items);
end
$$;

revoke all on function post_transfers(json) from public;
grant execute on function post_transfers(json) to kordon_ledger;
