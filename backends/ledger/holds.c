/*
 * holds.c -- two-phase transfers: POST /v1/holds reserves money (a
 * pending transfer), POST /v1/holds/{id}/capture posts all or part of it,
 * POST /v1/holds/{id}/void releases it, GET /v1/holds/{id} shows it, and
 * a sweeper thread releases the holds whose expiry passed.
 *
 * Each route is one SQL function (sql/ledger/007_holds.sql) run through
 * ops.c; the functions lock the hold's row before acting on it, so a
 * hold resolves exactly once whichever of capture, void and expiry comes
 * first -- the others find it resolved and get a 409.
 *
 * The sweeper needs no leader: holds_expire() skips rows another
 * transaction holds, so several ledger processes may sweep at once.  It
 * takes at most LEDGER_SWEEP_BATCH_MAX holds per transaction and goes
 * again at once while it finds that many.  The same thread keeps the
 * monthly partitions of transfers LEDGER_PARTITION_MONTHS ahead, daily,
 * and every KORDON_LEDGER_PRUNE_MS prunes sent outbox events and
 * idempotency keys older than KORDON_LEDGER_RETENTION_S (prune_old(),
 * sql/ledger/015), so neither table grows for good; several ledger
 * processes may prune at once (a row is deleted once, by one of them).
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger.h"

static const char  ledger_hold_create_sql[] = "select hold_create($1::jsonb)";
static const char  ledger_hold_resolve_sql[] =
    "select hold_resolve($1::jsonb)";
static const char  ledger_hold_get_sql[] = "select hold_get($1::jsonb)";
static const char  ledger_holds_expire_sql[] =
    "select holds_expire(" LEDGER_STR(LEDGER_SWEEP_BATCH_MAX) ")";
static const char  ledger_prune_sql[] =
    "select events, keys from prune_old($1::bigint, "
    LEDGER_STR(LEDGER_PRUNE_BATCH_MAX) ")";
static const char  ledger_partitions_sql[] =
    "select transfer_partitions_ahead("
    LEDGER_STR(LEDGER_PARTITION_MONTHS) ")";

static const ledger_code_t  ledger_hold_codes[] = {
    { "debit_account_not_found", 422, "/from_account_id", "no such account",
      "hold refused: unknown account" },
    { "credit_account_not_found", 422, "/to_account_id", "no such account",
      "hold refused: unknown account" },
    { "same_account", 422, "/to_account_id", "must differ from the paying "
      "account", "hold refused: both sides are one account" },
    { "debit_currency_mismatch", 422, "/currency", "differs from the "
      "currency of the account", "hold refused: currency mismatch" },
    { "credit_currency_mismatch", 422, "/to_account_id", "holds another "
      "currency; cross-currency transfers are not supported",
      "hold refused: currency mismatch" },
    { "debit_account_closed", 422, "/from_account_id", "is closed",
      "hold refused: account closed" },
    { "credit_account_closed", 422, "/to_account_id", "is closed",
      "hold refused: account closed" },
    { "insufficient_funds", 422, "/amount", "exceeds the available balance "
      "of the paying account", "hold refused: insufficient funds" },
    { "overflow", 422, "/amount", "would overflow an account's running "
      "totals", "hold refused: amount too large" },
    { "transfer_limit_exceeded", 422, "/amount", "exceeds the largest "
      "transfer allowed in this currency", "hold refused: above the limit" },
    { "daily_limit_exceeded", 422, "/amount", "exceeds what the paying "
      "account may still send today in this currency",
      "hold refused: daily limit reached" },
    { "hold_not_found", 404, NULL, NULL, "no such hold" },
    { "hold_capture_forbidden", 403, NULL, NULL, "only the payee or an "
      "admin may capture a hold" },
    { "hold_captured", 409, NULL, NULL, "hold is already captured" },
    { "hold_voided", 409, NULL, NULL, "hold is already voided" },
    { "hold_expired", 409, NULL, NULL, "hold has expired" },
    { "capture_exceeds_hold", 422, "/amount", "exceeds the amount of the "
      "hold", "capture refused: above the hold" },
    { NULL, 0, NULL, NULL, NULL }
};


void
ledger_holds_create(kit_req_t *req)
{
    const char  *caller;
    json_t      *args, *body, *errors;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    args = ledger_op_args(req, caller, 1);
    if (args == NULL) {
        return;
    }
    body = ledger_request_body(req);
    if (body == NULL) {
        json_decref(args);
        return;
    }
    errors = json_array();
    if (errors == NULL
        || ledger_hold_read(body, ledger_cf.transfer_max, args, errors) > 0)
    {
        json_decref(body);
        json_decref(args);
        kit_reply_invalid(req, "request has invalid fields", errors);
        return;
    }
    json_decref(body);
    json_decref(errors);
    ledger_op_reply(req, "ledger_hold_create", ledger_hold_create_sql, args,
                    201, ledger_hold_codes);
}


/* The {id} of the route into args as hold_id; 0, or -1 after a 404. */
static int
ledger_hold_id(kit_req_t *req, json_t *args)
{
    char  id[LEDGER_UUID_LEN + 1];

    if (ledger_uuid_parse(kit_req_param(req, "id"), id) != 0
        || ledger_json_set_str(args, "hold_id", id) != 0)
    {
        kit_reply_problem(req, 404, NULL, "no such hold");
        return -1;
    }
    return 0;
}


void
ledger_holds_get(kit_req_t *req)
{
    const char  *caller;
    json_t      *args;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    args = ledger_op_args(req, caller, 0);
    if (args == NULL) {
        return;
    }
    if (ledger_hold_id(req, args) != 0) {
        json_decref(args);
        return;
    }
    json_object_set_new(args, "admin", json_boolean(ledger_is_staff(req)));
    ledger_op_reply(req, "ledger_hold_get", ledger_hold_get_sql, args, 200,
                    ledger_hold_codes);
}


int
ledger_amount_body(kit_req_t *req, int capture, json_t *args)
{
    const char  *key, *why;
    json_t      *body, *v, *errors;
    int64_t      amount;
    size_t       len;

    kit_req_body(req, &len);
    if (len == 0) {
        return 0;
    }
    body = ledger_request_body(req);
    if (body == NULL) {
        return -1;
    }
    errors = json_array();
    json_object_foreach(body, key, v) {
        if (capture && strcmp(key, "amount") == 0) {
            if (ledger_amount_parse(v, ledger_cf.transfer_max, &amount,
                                    &why) != 0)
            {
                ledger_error_add(errors, "/amount", why);
            } else {
                json_object_set_new(args, "amount", json_integer(amount));
            }
        } else {
            ledger_error_add(errors, "", "has a field that is not known");
        }
    }
    json_decref(body);
    if (errors == NULL || json_array_size(errors) > 0) {
        kit_reply_invalid(req, "request has invalid fields", errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}


static void
ledger_holds_resolve(kit_req_t *req, int capture)
{
    const char  *caller;
    json_t      *args;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    args = ledger_op_args(req, caller, 1);
    if (args == NULL) {
        return;
    }
    if (ledger_hold_id(req, args) != 0
        || ledger_amount_body(req, capture, args) != 0)
    {
        json_decref(args);
        return;
    }
    ledger_json_set_str(args, "op", capture ? "capture" : "void");
    ledger_op_reply(req, "ledger_hold_resolve", ledger_hold_resolve_sql,
                    args, 200, ledger_hold_codes);
}


void
ledger_holds_capture(kit_req_t *req)
{
    ledger_holds_resolve(req, 1);
}


void
ledger_holds_void(kit_req_t *req)
{
    ledger_holds_resolve(req, 0);
}


/* ---- the sweeper ---------------------------------------------------- */

static int
ledger_sweep_tx(kit_pg_t *pg, void *arg)
{
    PGresult  *res;
    int       *n = arg;

    res = kit_pg_exec(pg, "ledger_holds_expire", ledger_holds_expire_sql, 0,
                      NULL);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        kit_log(KIT_LOG_ERROR, "could not expire holds: %s",
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(res);
        return -1;
    }
    *n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}


/*
 * Keeps LEDGER_PARTITION_MONTHS monthly partitions of transfers ahead
 * (sql/ledger/011): at start and once a day.  A failure is logged and
 * tried again on the next round.
 */
static void
ledger_partitions_ahead(void)
{
    static time_t  next;
    kit_pg_t      *pg;
    PGresult      *res;
    time_t         now;

    now = time(NULL);
    if (now < next) {
        return;
    }
    pg = kit_pg_acquire(LEDGER_DB_ACQUIRE_MS);
    if (pg == NULL) {
        return;
    }
    res = kit_pg_exec(pg, "ledger_partitions_ahead", ledger_partitions_sql,
                      0, NULL);
    kit_pg_release(pg);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (atoi(PQgetvalue(res, 0, 0)) > 0) {
            kit_log(KIT_LOG_INFO, "made %s monthly partitions of transfers",
                    PQgetvalue(res, 0, 0));
        }
        next = now + LEDGER_PARTITION_CHECK_S;
    } else if (res != NULL) {
        kit_log(KIT_LOG_ERROR, "could not make partitions ahead: %s",
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    }
    PQclear(res);
}


typedef struct {
    long long  events;
    long long  keys;
} ledger_pruned_t;


/* One call of prune_old(): what it deleted into *arg; 0, or -1. */
static int
ledger_prune_tx(kit_pg_t *pg, void *arg)
{
    ledger_pruned_t  *n = arg;
    const char       *params[1];
    PGresult         *res;
    char              keep[24];

    snprintf(keep, sizeof(keep), "%ld", ledger_cf.retention_s);
    params[0] = keep;
    res = kit_pg_exec(pg, "ledger_prune_old", ledger_prune_sql, 1, params);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        kit_log(KIT_LOG_ERROR, "could not prune old events and keys: %s",
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(res);
        return -1;
    }
    n->events = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    n->keys = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}


/*
 * Every KORDON_LEDGER_PRUNE_MS (checked on each sweep), deletes sent
 * outbox events and idempotency keys older than the retention:
 * LEDGER_PRUNE_BATCH_MAX of each per transaction, again while a call
 * deletes that many, at most LEDGER_PRUNE_CALLS_MAX calls a round (a
 * backlog goes over several rounds, never blocking the holds' sweep for
 * long).  A failure is logged; the next round tries again.
 */
static void
ledger_prune(void)
{
    static uint64_t   next_ms;
    ledger_pruned_t   n, sum;
    uint64_t          now;
    int               calls;

    now = (uint64_t) kit_now_ms();
    if (now < next_ms) {
        return;
    }
    next_ms = now + (uint64_t) ledger_cf.prune_ms;

    sum = (ledger_pruned_t) { 0, 0 };
    for (calls = 0; calls < LEDGER_PRUNE_CALLS_MAX; calls++) {
        n = (ledger_pruned_t) { 0, 0 };
        if (kit_pg_tx("read committed", ledger_prune_tx, &n) != 0) {
            break;
        }
        sum.events += n.events;
        sum.keys += n.keys;
        if (n.events < LEDGER_PRUNE_BATCH_MAX
            && n.keys < LEDGER_PRUNE_BATCH_MAX)
        {
            break;
        }
    }
    if (sum.events > 0 || sum.keys > 0) {
        kit_log(KIT_LOG_INFO, "pruned %lld sent events and %lld idempotency "
                "keys older than %ld s", sum.events, sum.keys,
                ledger_cf.retention_s);
    }
}


static void *
ledger_sweeper(void *arg)
{
    struct timespec  ts;
    int              n;

    ts.tv_sec = ledger_cf.hold_sweep_ms / 1000;
    ts.tv_nsec = (ledger_cf.hold_sweep_ms % 1000) * 1000000L;
    for ( ;; ) {
        ledger_partitions_ahead();
        nanosleep(&ts, NULL);
        do {
            n = 0;
            if (kit_pg_tx("read committed", ledger_sweep_tx, &n) != 0) {
                break;
            }
            if (n > 0) {
                kit_log(KIT_LOG_INFO, "released %d expired holds", n);
            }
        } while (n == LEDGER_SWEEP_BATCH_MAX);
        ledger_prune();
    }
    return NULL;
}


int
ledger_holds_start(void)
{
    pthread_attr_t  attr;
    pthread_t       t;
    int             rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, ledger_sweeper, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        kit_log(KIT_LOG_ERROR, "could not start the hold sweeper");
        return -1;
    }
    return 0;
}
