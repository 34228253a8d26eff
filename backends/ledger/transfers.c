/*
 * transfers.c -- the routes that move money (POST /v1/transfers, POST
 * /v1/admin/adjustments), the one that shows a transfer (GET
 * /v1/transfers/{id}), and the answer to every posting item.
 *
 * A money-moving request is checked whole before it goes anywhere:
 * identity, Idempotency-Key, body, fields.  What can be decided from the
 * request alone is answered at once and never recorded (the same request
 * gets the same answer anyway).  What needs the accounts is decided by
 * post_transfers() and recorded under the key, refusals too, so a retry
 * gets the first answer again ("Idempotent-Replayed: true") and can never
 * turn into a different outcome.
 *
 * The answer is rendered from the outcome code and the request, never
 * from text stored in the database, so the first answer and its replays
 * are the same bytes (request_id aside, which is each request's own).
 *
 * POST /v1/transfers/batch checks its (up to 1,000) items the same way
 * and refuses a key used twice in the batch by sorting the keys, then
 * posts them all in one call of post_transfers().
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

/*
 * Which field a refusal is about: an account side of the transfer, the
 * amount, or the currency (the request's differs from the paying
 * account's: for an adjustment, from the one account it names).
 */
#define LEDGER_SIDE_DEBIT     1
#define LEDGER_SIDE_CREDIT    2
#define LEDGER_SIDE_AMOUNT    3
#define LEDGER_SIDE_CURRENCY  4

typedef struct {
    const char  *code;
    const char  *detail;
    int          side;
    const char  *message;
} ledger_refusal_t;

static const ledger_refusal_t  ledger_refusals[] = {
    { "debit_account_not_found", "transfer refused: unknown account",
      LEDGER_SIDE_DEBIT, "no such account" },
    { "credit_account_not_found", "transfer refused: unknown account",
      LEDGER_SIDE_CREDIT, "no such account" },
    { "same_account", "transfer refused: both sides are one account",
      LEDGER_SIDE_CREDIT, "must differ from the paying account" },
    { "debit_currency_mismatch", "transfer refused: currency mismatch",
      LEDGER_SIDE_CURRENCY, "differs from the currency of the account" },
    { "credit_currency_mismatch", "transfer refused: currency mismatch",
      LEDGER_SIDE_CREDIT, "holds another currency; cross-currency "
      "transfers are not supported" },
    { "debit_account_closed", "transfer refused: account closed",
      LEDGER_SIDE_DEBIT, "is closed" },
    { "credit_account_closed", "transfer refused: account closed",
      LEDGER_SIDE_CREDIT, "is closed" },
    { "insufficient_funds", "transfer refused: insufficient funds",
      LEDGER_SIDE_AMOUNT, "exceeds the available balance of the paying "
      "account" },
    { "overflow", "transfer refused: amount too large",
      LEDGER_SIDE_AMOUNT, "would overflow an account's running totals" },
    { "transfer_limit_exceeded", "transfer refused: above the limit",
      LEDGER_SIDE_AMOUNT, "exceeds the largest transfer allowed in this "
      "currency" },
    { "daily_limit_exceeded", "transfer refused: daily limit reached",
      LEDGER_SIDE_AMOUNT, "exceeds what the paying account may still send "
      "today in this currency" },
};

static const char  ledger_transfer_sql[] =
    "select t.id, t.debit_account_id, t.credit_account_id, t.amount,"
    " t.currency, c.exponent, t.kind, t.status, t.reason,"
    " ts_text(t.created_at),"
    " coalesce((select g.amount from transfers g where g.group_id = t.id"
    "  and g.kind = 'fee'), 0),"
    " coalesce((select g.amount from transfers g where g.group_id = t.id"
    "  and g.kind = 'cashback'), 0)"
    " from transfers t join currencies c on c.code = t.currency"
    " where t.id = $1 and ($2::boolean or exists ("
    "  select from accounts a"
    "  where a.id in (t.debit_account_id, t.credit_account_id)"
    "  and a.owner = $3))";


json_t *
ledger_transfer_json(const ledger_transfer_t *t)
{
    json_t  *o, *f;

    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:i}",
                  "id", t->id, "status", t->status, "kind", t->kind,
                  "from_account_id", t->debit, "to_account_id", t->credit,
                  "amount", (json_int_t) t->amount,
                  "currency", t->currency, "exponent", t->exponent);
    f = json_object();
    if (o == NULL || f == NULL
        || ledger_json_set_money(f, "amount", t->amount, t->exponent) != 0
        || json_object_set_new(o, "formatted", f) != 0
        || (t->reason != NULL
            && ledger_json_set_str(o, "reason", t->reason) != 0)
        || ledger_json_set_str(o, "created_at", t->created_at) != 0
        || (strcmp(t->kind, "p2p") == 0
            && (json_object_set_new(o, "fee", json_integer(t->fee)) != 0
                || json_object_set_new(o, "cashback",
                                       json_integer(t->cashback)) != 0)))
    {
        json_decref(o);
        return NULL;
    }
    return o;
}


/*
 * The JSON Pointer and message of a refusal in the item's request.  An
 * adjustment names one account (account_id); its other side is the
 * system account of the currency, which only a currency the ledger does
 * not hold can miss.
 */
static void
ledger_refusal_field(const ledger_item_t *it, const ledger_refusal_t *r,
    const char **ptr, const char **msg)
{
    const char  *mine;

    *msg = r->message;
    if (r->side == LEDGER_SIDE_AMOUNT || r->side == LEDGER_SIDE_CURRENCY) {
        *ptr = r->side == LEDGER_SIDE_AMOUNT ? "/amount" : "/currency";
        return;
    }
    if (it->op == LEDGER_OP_P2P) {
        *ptr = r->side == LEDGER_SIDE_DEBIT ? "/from_account_id"
                                            : "/to_account_id";
        return;
    }
    mine = r->side == LEDGER_SIDE_DEBIT ? it->debit : it->credit;
    if (mine[0] == '\0') {
        *ptr = "/currency";
        *msg = "is not a currency the ledger holds";
    } else if (strstr(r->code, "currency") != NULL) {
        *ptr = "/currency";
        *msg = "differs from the currency of the account";
    } else {
        *ptr = "/account_id";
    }
}


static void
ledger_reply_refusal(ledger_item_t *it, const ledger_refusal_t *r)
{
    const char  *ptr, *msg, *detail;
    json_t      *errors;

    ledger_refusal_field(it, r, &ptr, &msg);
    detail = r->detail;
    if (strcmp(ptr, "/currency") == 0 && strstr(r->code, "not_found")) {
        detail = "transfer refused: unknown currency";
    }
    errors = json_array();
    if (errors != NULL) {
        ledger_error_add(errors, ptr, msg);
    }
    kit_reply_invalid(it->req, detail, errors);
}


/* Answers it->req from a code post_transfers() gave. */
static void
ledger_reply_outcome(ledger_item_t *it)
{
    char    detail[LEDGER_DETAIL_MAX];
    size_t  i;

    if (it->replayed) {
        kit_reply_header(it->req, "Idempotent-Replayed", "true");
    }
    if (strcmp(it->code, "ok") == 0) {
        kit_reply_json(it->req, 201, ledger_transfer_json(&it->t));
        return;
    }
    if (strcmp(it->code, "idempotency_conflict") == 0) {
        snprintf(detail, sizeof(detail), "Idempotency-Key \"%s\" was "
                 "already used with a different request", it->idem_key);
        kit_reply_problem(it->req, 409, NULL, detail);
        return;
    }
    for (i = 0; i < sizeof(ledger_refusals) / sizeof(ledger_refusals[0]);
         i++)
    {
        if (strcmp(it->code, ledger_refusals[i].code) == 0) {
            ledger_reply_refusal(it, &ledger_refusals[i]);
            return;
        }
    }
    kit_log(KIT_LOG_ERROR, "unknown transfer outcome \"%s\" for request "
            "\"%s\"", it->code, it->request_id);
    kit_reply_problem(it->req, 500, NULL, "unknown transfer outcome");
}


void
ledger_item_reply(ledger_item_t *it, int rc)
{
    if (rc == LEDGER_POST_UNAVAILABLE) {
        ledger_reply_unavailable(it->req, "database is not available");
    } else if (rc != LEDGER_POST_OK) {
        kit_reply_problem(it->req, 500, NULL, "could not post the transfer");
    } else {
        ledger_reply_outcome(it);
    }
    ledger_item_free(it);
}


/* The Idempotency-Key into it; 0, or -1 after answering 400. */
static int
ledger_idem_key(kit_req_t *req, ledger_item_t *it)
{
    const char  *key;

    key = kit_req_header(req, "Idempotency-Key");
    if (key == NULL) {
        kit_reply_problem(req, 400, NULL, "header \"Idempotency-Key\" is "
                          "required");
        return -1;
    }
    if (!ledger_idem_key_valid(key)) {
        kit_reply_problem(req, 400, NULL, "header \"Idempotency-Key\" must "
                          "be 1 to 255 printable ASCII characters");
        return -1;
    }
    snprintf(it->idem_key, sizeof(it->idem_key), "%s", key);
    return 0;
}


/* The body's fields into it; 0, or -1 after answering. */
static int
ledger_money_fields(kit_req_t *req, ledger_item_t *it)
{
    json_t  *body, *errors;
    int      bad;

    body = ledger_request_body(req);
    if (body == NULL) {
        return -1;
    }
    errors = json_array();
    if (errors == NULL) {
        json_decref(body);
        kit_reply_problem(req, 503, NULL, "out of memory");
        return -1;
    }
    bad = it->op == LEDGER_OP_P2P
          ? ledger_transfer_read(body, ledger_cf.transfer_max, it, errors)
          : ledger_adjustment_read(body, ledger_cf.transfer_max, it,
                                   errors);
    json_decref(body);
    if (bad > 0) {
        kit_reply_invalid(req, "request has invalid fields", errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}


/* Checks a money-moving request and posts it, now or in a batch. */
static void
ledger_money_request(kit_req_t *req, ledger_op_t op)
{
    ledger_item_t  *it;
    const char     *caller;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    it = ledger_item_new(req, op);
    if (it == NULL) {
        kit_reply_problem(req, 503, NULL, "out of memory");
        return;
    }
    snprintf(it->actor, sizeof(it->actor), "%s", caller);
    snprintf(it->request_id, sizeof(it->request_id), "%s",
             kit_req_identity(req)->request_id);
    if (ledger_idem_key(req, it) != 0 || ledger_money_fields(req, it) != 0) {
        ledger_item_free(it);
        return;
    }
    if (ledger_request_hash(it) != 0) {
        kit_reply_problem(req, 500, NULL, "could not hash the request");
        ledger_item_free(it);
        return;
    }
    if (!ledger_cf.batch) {
        ledger_item_reply(it, ledger_post(&it, 1));
        return;
    }
    kit_suspend(req);
    if (ledger_batch_submit(it) != 0) {
        ledger_reply_unavailable(req, "too many transfers waiting, try "
                                 "again");
        ledger_item_free(it);
    }
    /* Otherwise it belongs to the batcher now, and so does req. */
}


void
ledger_transfers_create(kit_req_t *req)
{
    ledger_money_request(req, LEDGER_OP_P2P);
}


void
ledger_adjustments_create(kit_req_t *req)
{
    if (ledger_caller(req) == NULL) {
        return;
    }
    if (!kit_req_has_role(req, "admin")) {
        kit_reply_problem(req, 403, NULL, "adjustments need the admin role");
        return;
    }
    ledger_money_request(req, LEDGER_OP_ADJUSTMENT);
}


/*
 * Runs the lookup: 1 found (into t), 0 not found or not visible to the
 * caller, -1 no database, -2 an SQL error (logged).
 */
static int
ledger_transfer_find(const char *id, const char *caller, int staff,
    ledger_transfer_t *t)
{
    const char  *params[3];
    kit_pg_t    *pg;
    PGresult    *res;
    int          rc;

    pg = kit_pg_acquire(LEDGER_DB_ACQUIRE_MS);
    if (pg == NULL) {
        return -1;
    }
    params[0] = id;
    params[1] = staff ? "true" : "false";
    params[2] = caller;
    res = kit_pg_exec(pg, "ledger_transfer_get", ledger_transfer_sql, 3,
                      params);
    kit_pg_release(pg);
    rc = res == NULL ? -1 : -2;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        rc = PQntuples(res) == 1
             ? (ledger_transfer_from_row(res, 0, 0, t) == 0 ? 1 : -2) : 0;
        if (rc == 1) {
            t->fee = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
            t->cashback = strtoll(PQgetvalue(res, 0, 11), NULL, 10);
        }
    } else if (res != NULL) {
        kit_log(KIT_LOG_ERROR, "could not read transfer \"%s\": %s", id,
                PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    }
    PQclear(res);
    return rc;
}


void
ledger_transfers_get(kit_req_t *req)
{
    ledger_transfer_t  t;
    const char        *caller;
    char               id[LEDGER_UUID_LEN + 1];
    int                rc;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    memset(&t, 0, sizeof(t));
    rc = ledger_uuid_parse(kit_req_param(req, "id"), id) == 0
         ? ledger_transfer_find(id, caller, ledger_is_staff(req), &t) : 0;
    if (rc == -1) {
        ledger_reply_unavailable(req, "database is not available");
    } else if (rc < 0) {
        kit_reply_problem(req, 500, NULL, "could not read the transfer");
    } else if (rc == 0) {
        kit_reply_problem(req, 404, NULL, "no such transfer");
    } else {
        kit_reply_json(req, 200, ledger_transfer_json(&t));
    }
    free(t.reason);
}


/* ---- POST /v1/transfers/batch --------------------------------------- */

/* One item's outcome in a batch answer; NULL when out of memory. */
static json_t *
ledger_item_result(const ledger_item_t *it)
{
    size_t  i;

    if (strcmp(it->code, "ok") == 0) {
        return json_pack("{s:i, s:b, s:o}", "status", 201, "replayed",
                         it->replayed, "transfer",
                         ledger_transfer_json(&it->t));
    }
    if (strcmp(it->code, "idempotency_conflict") == 0) {
        return json_pack("{s:i, s:s, s:s}", "status", 409, "code", it->code,
                         "detail", "idempotency_key was already used with a "
                         "different request");
    }
    for (i = 0; i < sizeof(ledger_refusals) / sizeof(ledger_refusals[0]);
         i++)
    {
        if (strcmp(it->code, ledger_refusals[i].code) == 0) {
            return json_pack("{s:i, s:s, s:s, s:b}", "status", 422, "code",
                             it->code, "detail", ledger_refusals[i].detail,
                             "replayed", it->replayed);
        }
    }
    return json_pack("{s:i, s:s}", "status", 500, "code", it->code);
}


/*
 * Reads element k of the batch into a new item; NULL after adding its
 * problems (pointers under /transfers/k) to errors.
 */
static ledger_item_t *
ledger_batch_item(kit_req_t *req, const char *caller, json_t *el, size_t k,
    json_t *errors)
{
    ledger_item_t  *it;
    const char     *key;
    json_t         *body, *own, *e;
    char            ptr[64];
    size_t          i;

    it = ledger_item_new(req, LEDGER_OP_P2P);
    body = json_is_object(el) ? json_copy(el) : NULL;
    own = json_array();
    if (it == NULL || body == NULL || own == NULL) {
        snprintf(ptr, sizeof(ptr), "/transfers/%zu", k);
        ledger_error_add(errors, ptr, "must be a transfer object");
        goto failed;
    }
    key = json_string_value(json_object_get(body, "idempotency_key"));
    if (key == NULL || !ledger_idem_key_valid(key)) {
        ledger_error_add(own, "/idempotency_key", "is required: 1 to 255 "
                         "printable ASCII characters");
    } else {
        snprintf(it->idem_key, sizeof(it->idem_key), "%s", key);
    }
    json_object_del(body, "idempotency_key");
    ledger_transfer_read(body, ledger_cf.transfer_max, it, own);
    json_array_foreach(own, i, e) {
        snprintf(ptr, sizeof(ptr), "/transfers/%zu%s", k,
                 json_string_value(json_object_get(e, "pointer")));
        ledger_error_add(errors, ptr,
                         json_string_value(json_object_get(e, "message")));
    }
    if (json_array_size(own) > 0 || ledger_request_hash(it) != 0) {
        goto failed;
    }
    json_decref(own);
    json_decref(body);
    snprintf(it->actor, sizeof(it->actor), "%s", caller);
    snprintf(it->request_id, sizeof(it->request_id), "%s",
             kit_req_identity(req)->request_id);
    return it;

failed:
    json_decref(own);
    json_decref(body);
    ledger_item_free(it);
    return NULL;
}


typedef struct {
    const char  *key;
    size_t       k;                 /* the item's place in the batch */
} ledger_batch_key_t;


static int
ledger_batch_key_cmp(const void *a, const void *b)
{
    const ledger_batch_key_t  *x = a, *y = b;
    int                        c;

    c = strcmp(x->key, y->key);
    if (c != 0) {
        return c;
    }
    return x->k < y->k ? -1 : x->k > y->k;
}


/*
 * Adds a problem for every item whose key an earlier item of the batch
 * has: sorted (key, place) pairs make it n log n, not the n^2
 * comparisons of 1,000 keys that share a long prefix.  NULL items are
 * skipped.  -1 when out of memory (nothing added).
 */
static int
ledger_batch_twice(ledger_item_t **items, size_t n, json_t *errors)
{
    ledger_batch_key_t  *s;
    size_t               k, m;
    char                 ptr[64];

    s = malloc((n + 1) * sizeof(*s));
    if (s == NULL) {
        return -1;
    }
    for (k = 0, m = 0; k < n; k++) {
        if (items[k] != NULL) {
            s[m++] = (ledger_batch_key_t) { items[k]->idem_key, k };
        }
    }
    qsort(s, m, sizeof(*s), ledger_batch_key_cmp);
    for (k = 1; k < m; k++) {
        if (strcmp(s[k - 1].key, s[k].key) == 0) {
            snprintf(ptr, sizeof(ptr), "/transfers/%zu/idempotency_key",
                     s[k].k);
            ledger_error_add(errors, ptr, "is used twice in this batch");
        }
    }
    free(s);
    return 0;
}


/* The items of the body's "transfers" into items; n, or -1 after answering. */
static int
ledger_batch_items(kit_req_t *req, const char *caller, json_t *body,
    ledger_item_t **items)
{
    json_t  *list, *el, *errors;
    size_t   k, n;
    int      bad;

    list = json_object_get(body, "transfers");
    n = json_array_size(list);
    errors = json_array();
    if (!json_is_array(list) || n == 0 || n > LEDGER_BATCH_ROUTE_MAX
        || json_object_size(body) != 1)
    {
        ledger_error_add(errors, "/transfers", "is required, alone: an array "
                         "of 1 to " LEDGER_STR(LEDGER_BATCH_ROUTE_MAX)
                         " transfers");
        kit_reply_invalid(req, "request has invalid fields", errors);
        return -1;
    }
    json_array_foreach(list, k, el) {
        items[k] = ledger_batch_item(req, caller, el, k, errors);
    }
    bad = ledger_batch_twice(items, n, errors);
    if (bad != 0 || json_array_size(errors) > 0) {
        for (k = 0; k < n; k++) {
            ledger_item_free(items[k]);
        }
        if (bad != 0) {
            json_decref(errors);
            kit_reply_problem(req, 503, NULL, "out of memory");
        } else {
            kit_reply_invalid(req, "request has invalid fields", errors);
        }
        return -1;
    }
    json_decref(errors);
    return (int) n;
}


void
ledger_transfers_batch(kit_req_t *req)
{
    ledger_item_t  **items;
    const char      *caller;
    json_t          *body, *results, *r;
    int              n, k, rc;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    body = ledger_request_body(req);
    if (body == NULL) {
        return;
    }
    items = calloc(LEDGER_BATCH_ROUTE_MAX, sizeof(*items));
    n = items != NULL ? ledger_batch_items(req, caller, body, items) : -1;
    json_decref(body);
    if (items == NULL) {
        kit_reply_problem(req, 503, NULL, "out of memory");
    }
    if (n < 0) {
        free(items);
        return;
    }
    rc = ledger_post(items, n);
    results = rc == LEDGER_POST_OK ? json_array() : NULL;
    for (k = 0; k < n; k++) {
        r = results != NULL ? ledger_item_result(items[k]) : NULL;
        if (r == NULL || json_array_append_new(results, r) != 0) {
            json_decref(results);
            results = NULL;
        }
        ledger_item_free(items[k]);
    }
    free(items);
    if (rc == LEDGER_POST_UNAVAILABLE) {
        ledger_reply_unavailable(req, "database is not available");
    } else if (results == NULL) {
        kit_reply_problem(req, 500, NULL, "could not post the transfers");
    } else {
        kit_reply_json(req, 200, json_pack("{s:o}", "results", results));
    }
}
