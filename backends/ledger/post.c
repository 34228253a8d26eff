/*
 * post.c -- the one door to ledger.post_transfers(): a batch of items in,
 * each one's outcome out, in one transaction of one statement.
 *
 * The batch travels as one JSON array (jansson does the quoting, the
 * server's json_populate_recordset the parsing), so a batch of 256 costs
 * what a batch of one does in round trips: BEGIN, the call, COMMIT.  The
 * outcomes are read before COMMIT and count only once it succeeded; on
 * any failure every item is left without a code and nothing was written.
 *
 * post_transfers() locks the batch's idempotency keys before it reads
 * them (sql/ledger/006), so a concurrent request with the same key waits
 * and then finds it.  Should a unique violation happen anyway (another
 * transaction committed one of the batch's keys first), it is logged and
 * the whole batch tried again, where the key is found and answered from;
 * bounded by LEDGER_POST_ATTEMPTS_MAX.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

#define LEDGER_POST_COLUMNS      15
#define LEDGER_TRANSFER_COLUMNS  10

static const char  ledger_post_sql[] =
    "select i, code, replayed, id, debit_account_id, credit_account_id,"
    " amount, currency, exponent, kind, status, reason, created_at,"
    " fee, cashback from post_transfers($1::json)";

/*
 * This thread's fee and cashback shard; -1 until set.  Threads that set
 * none (the handlers of inline mode and of the batch route) take the
 * next shard in turn for each call, one for all its items: a batch locks
 * every fee and cashback account its items name, so a shard per item
 * made each 1,000-transfer post lock all eight and concurrent posts wait
 * for each other (a third of their time, the bench's lock-wait column).
 */
static __thread int  ledger_shard = -1;
static unsigned      ledger_shard_next;

typedef struct {
    ledger_item_t *const  *items;
    int                    n;
    const char            *json;
    char                   sqlstate[6];
} ledger_post_ctx_t;


static json_t *
ledger_item_json(const ledger_item_t *it, int i, int shard)
{
    const char  *sys_debit, *sys_credit;
    json_t      *o;
    int          bad;

    sys_debit = it->debit[0] == '\0' ? it->system_kind : NULL;
    sys_credit = it->credit[0] == '\0' ? it->system_kind : NULL;
    o = json_object();
    if (o == NULL) {
        return NULL;
    }
    bad = json_object_set_new(o, "i", json_integer(i))
        | ledger_json_set_str(o, "debit", it->debit)
        | ledger_json_set_str(o, "debit_system", sys_debit)
        | ledger_json_set_str(o, "credit", it->credit)
        | ledger_json_set_str(o, "credit_system", sys_credit)
        | json_object_set_new(o, "amount", json_integer(it->amount))
        | ledger_json_set_str(o, "currency", it->currency)
        | ledger_json_set_str(o, "kind", it->op == LEDGER_OP_ADJUSTMENT
                                         ? "adjustment" : "p2p")
        | ledger_json_set_str(o, "must_own", it->must_own ? it->actor
                                                          : NULL)
        | ledger_json_set_str(o, "reason", it->reason)
        | ledger_json_set_str(o, "actor", it->actor)
        | ledger_json_set_str(o, "request_id", it->request_id)
        | ledger_json_set_str(o, "idem_owner", it->actor)
        | ledger_json_set_str(o, "idem_scope", ledger_item_scope(it))
        | ledger_json_set_str(o, "idem_key", it->idem_key)
        | ledger_json_set_str(o, "idem_hash", it->idem_hash)
        | json_object_set_new(o, "shard", json_integer(shard));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}


json_t *
ledger_items_json(ledger_item_t *const *items, int n)
{
    json_t  *a, *o;
    int      k, shard;

    shard = ledger_shard;
    if (shard < 0) {
        shard = (int) (__atomic_fetch_add(&ledger_shard_next, 1,
                                          __ATOMIC_RELAXED)
                       % (unsigned) ledger_cf.fee_shards);
    }
    a = json_array();
    for (k = 0; a != NULL && k < n; k++) {
        o = ledger_item_json(items[k], k + 1, shard);
        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}


/* Copies column col of row r into buf (len bytes); -1 when it is longer. */
static int
ledger_col(const PGresult *res, int r, int col, char *buf, size_t len)
{
    const char  *v;
    size_t       n;

    v = PQgetvalue(res, r, col);
    n = (size_t) PQgetlength(res, r, col);
    if (n >= len) {
        return -1;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}


int
ledger_transfer_from_row(const PGresult *res, int r, int col,
    ledger_transfer_t *t)
{
    char  num[24];

    free(t->reason);
    memset(t, 0, sizeof(*t));
    if (PQnfields(res) < col + LEDGER_TRANSFER_COLUMNS
        || ledger_col(res, r, col, t->id, sizeof(t->id))
        || ledger_col(res, r, col + 1, t->debit, sizeof(t->debit))
        || ledger_col(res, r, col + 2, t->credit, sizeof(t->credit))
        || ledger_col(res, r, col + 3, num, sizeof(num))
        || ledger_col(res, r, col + 4, t->currency, sizeof(t->currency))
        || ledger_col(res, r, col + 6, t->kind, sizeof(t->kind))
        || ledger_col(res, r, col + 7, t->status, sizeof(t->status))
        || ledger_col(res, r, col + 9, t->created_at, sizeof(t->created_at)))
    {
        return -1;
    }
    t->amount = strtoll(num, NULL, 10);
    t->exponent = atoi(PQgetvalue(res, r, col + 5));
    if (!PQgetisnull(res, r, col + 8)) {
        t->reason = strdup(PQgetvalue(res, r, col + 8));
        if (t->reason == NULL) {
            return -1;
        }
    }
    return 0;
}


/*
 * Reads every item's outcome, row by row in any order (column i names the
 * item).  -1 when the answer does not fit the batch: a row too many or
 * too few, an item answered twice, a success without its transfer.
 */
static int
ledger_post_read(const PGresult *res, ledger_item_t *const *items, int n)
{
    ledger_item_t  *it;
    int             r, i;

    if (PQntuples(res) != n || PQnfields(res) != LEDGER_POST_COLUMNS) {
        return -1;
    }
    for (r = 0; r < n; r++) {
        i = atoi(PQgetvalue(res, r, 0));
        if (i < 1 || i > n || items[i - 1]->code[0] != '\0') {
            return -1;
        }
        it = items[i - 1];
        if (ledger_col(res, r, 1, it->code, sizeof(it->code)) != 0
            || it->code[0] == '\0')
        {
            return -1;
        }
        it->replayed = PQgetvalue(res, r, 2)[0] == 't';
        if (!PQgetisnull(res, r, 3)
            && ledger_transfer_from_row(res, r, 3, &it->t) != 0)
        {
            return -1;
        }
        if (strcmp(it->code, "ok") == 0 && PQgetisnull(res, r, 3)) {
            return -1;
        }
        it->t.fee = strtoll(PQgetvalue(res, r, 13), NULL, 10);
        it->t.cashback = strtoll(PQgetvalue(res, r, 14), NULL, 10);
    }
    return 0;
}


/* PostgreSQL's message on one line, for the log. */
static void
ledger_pg_message(const PGresult *res, char *buf, size_t len)
{
    const char  *m;
    size_t       i;

    m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(buf, len, "%s", m != NULL ? m : PQresStatus(PQresultStatus(res)));
    for (i = 0; buf[i] != '\0'; i++) {
        buf[i] = buf[i] == '\n' ? ' ' : buf[i];
    }
}


/*
 * 1 for failures a retry may cure: the same key committed meanwhile
 * (23505, retried here first), a lock wait over lock_timeout (55P03), a
 * cancelled statement (57014), the server shutting down (57P01..57P03).
 */
static int
ledger_post_transient(const char *sqlstate)
{
    return strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "55P03") == 0
           || strncmp(sqlstate, "57", 2) == 0;
}


static void
ledger_post_forget(ledger_item_t *const *items, int n)
{
    int  k;

    for (k = 0; k < n; k++) {
        items[k]->code[0] = '\0';
        items[k]->replayed = 0;
    }
}


static int
ledger_post_tx(kit_pg_t *pg, void *arg)
{
    ledger_post_ctx_t  *ctx = arg;
    const char         *params[1], *state;
    PGresult           *res;
    char                msg[LEDGER_DETAIL_MAX];

    ctx->sqlstate[0] = '\0';
    ledger_post_forget(ctx->items, ctx->n);
    params[0] = ctx->json;
    res = kit_pg_exec(pg, "ledger_post_transfers", ledger_post_sql, 1,
                      params);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "%s",
                 state != NULL ? state : "");
        ledger_pg_message(res, msg, sizeof(msg));
        kit_log(ledger_post_transient(ctx->sqlstate) ? KIT_LOG_WARN
                                                     : KIT_LOG_ERROR,
                "could not post %d transfers: %s (SQLSTATE %s)", ctx->n,
                msg, ctx->sqlstate);
        PQclear(res);
        return -1;
    }
    if (ledger_post_read(res, ctx->items, ctx->n) != 0) {
        kit_log(KIT_LOG_ERROR, "could not read the outcome of %d transfers",
                ctx->n);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}


void
ledger_post_set_shard(int shard)
{
    ledger_shard = shard % ledger_cf.fee_shards;
}


int
ledger_post(ledger_item_t *const *items, int n)
{
    ledger_post_ctx_t  ctx;
    json_t            *batch;
    char              *json;
    int                attempt, rc;

    LEDGER_ASSERT(n > 0 && n <= LEDGER_BATCH_SIZE_MAX);
    batch = ledger_items_json(items, n);
    json = batch != NULL ? json_dumps(batch, JSON_COMPACT) : NULL;
    json_decref(batch);
    if (json == NULL) {
        kit_log(KIT_LOG_ERROR, "out of memory encoding %d transfers", n);
        return LEDGER_POST_FAILED;
    }
    ctx = (ledger_post_ctx_t) { items, n, json, "" };
    rc = -1;
    for (attempt = 0; attempt < LEDGER_POST_ATTEMPTS_MAX; attempt++) {
        rc = kit_pg_tx("read committed", ledger_post_tx, &ctx);
        if (rc == 0) {
            break;
        }
        ledger_post_forget(items, n);
        if (strcmp(ctx.sqlstate, "23505") != 0) {
            break;
        }
    }
    free(json);
    if (rc == 0) {
        return LEDGER_POST_OK;
    }
    return rc == KIT_TX_UNAVAILABLE || rc == KIT_TX_CONFLICT
           || ledger_post_transient(ctx.sqlstate)
           ? LEDGER_POST_UNAVAILABLE : LEDGER_POST_FAILED;
}
