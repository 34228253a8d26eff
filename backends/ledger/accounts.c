/*
 * accounts.c -- opening and reading accounts: POST /v1/accounts, GET
 * /v1/accounts, GET /v1/accounts/{id}.
 *
 * Opening is idempotent by nature: a user has at most one wallet per
 * currency (a unique index), so POST /v1/accounts answers 201 with the
 * new wallet, or 200 with the one the user already has -- a retry needs
 * no Idempotency-Key.  The INSERT ... ON CONFLICT DO NOTHING waits for a
 * concurrent opening of the same wallet; when it yields nothing, a second
 * statement (a fresh snapshot) reads the winner's row -- or finds none,
 * when the currency is not one the ledger holds.
 *
 * Reading: the owner, or support and admin staff.  An account someone
 * else owns is answered 404 like one that does not exist, so ids cannot
 * be probed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

#define LEDGER_ACCOUNT_COLUMNS \
    " a.id, a.owner, a.kind, a.currency, c.exponent, a.debits_posted," \
    " a.credits_posted, a.debits_pending, a.credits_pending, a.closed," \
    " ts_text(a.created_at)"
#define LEDGER_ACCOUNT_NCOLUMNS  11

static const char  ledger_account_open_sql[] =
    "with a as ("
    " insert into accounts (owner, currency, kind,"
    "  debits_must_not_exceed_credits)"
    " select $1, code, 'wallet', true from currencies where code = $2"
    " on conflict (owner, currency) where kind = 'wallet' do nothing"
    " returning *)"
    " select" LEDGER_ACCOUNT_COLUMNS
    " from a join currencies c on c.code = a.currency";

static const char  ledger_account_wallet_sql[] =
    "select" LEDGER_ACCOUNT_COLUMNS
    " from accounts a join currencies c on c.code = a.currency"
    " where a.owner = $1 and a.currency = $2 and a.kind = 'wallet'";

static const char  ledger_account_get_sql[] =
    "select" LEDGER_ACCOUNT_COLUMNS
    " from accounts a join currencies c on c.code = a.currency"
    " where a.id = $1";

static const char  ledger_account_list_sql[] =
    "select" LEDGER_ACCOUNT_COLUMNS
    " from accounts a join currencies c on c.code = a.currency"
    " where a.owner = $1 and a.kind = 'wallet'"
    " order by a.currency limit " LEDGER_STR(LEDGER_LIST_MAX);


static int64_t
ledger_int64(const PGresult *res, int r, int col)
{
    return strtoll(PQgetvalue(res, r, col), NULL, 10);
}


/* posted, pending and available; -1 if a sum leaves 64 bits. */
static int
ledger_balances(int64_t dp, int64_t cp, int64_t dpend, int64_t cpend,
    int64_t out[3])
{
    /* Each total is non-negative, so a difference of two always fits. */
    out[0] = cp - dp;
    out[2] = out[0] - dpend;
    return __builtin_add_overflow(out[0], cpend - dpend, &out[1]) ? -1 : 0;
}


/* The account in row r as the API shows it; NULL when out of memory. */
static json_t *
ledger_account_json(const PGresult *res, int r)
{
    static const char *const  names[] = { "posted", "pending", "available" };
    json_t                   *o, *f;
    int64_t                   dp, cp, dpend, cpend, bal[3];
    int                       exp, i, bad;

    dp = ledger_int64(res, r, 5);
    cp = ledger_int64(res, r, 6);
    dpend = ledger_int64(res, r, 7);
    cpend = ledger_int64(res, r, 8);
    exp = atoi(PQgetvalue(res, r, 4));
    if (ledger_balances(dp, cp, dpend, cpend, bal) != 0) {
        kit_log(KIT_LOG_ERROR, "balance of account \"%s\" is beyond 64 bits",
                PQgetvalue(res, r, 0));
        return NULL;
    }
    o = json_object();
    f = json_object();
    bad = o == NULL || f == NULL;
    bad = bad
        || ledger_json_set_str(o, "id", PQgetvalue(res, r, 0))
        || ledger_json_set_str(o, "owner", PQgetisnull(res, r, 1) ? NULL
                                           : PQgetvalue(res, r, 1))
        || ledger_json_set_str(o, "kind", PQgetvalue(res, r, 2))
        || ledger_json_set_str(o, "currency", PQgetvalue(res, r, 3))
        || json_object_set_new(o, "exponent", json_integer(exp));
    for (i = 0; i < 3 && !bad; i++) {
        bad = json_object_set_new(o, names[i], json_integer(bal[i]))
              || ledger_json_set_money(f, names[i], bal[i], exp);
    }
    bad = bad
        || json_object_set_new(o, "debits_posted", json_integer(dp))
        || json_object_set_new(o, "credits_posted", json_integer(cp))
        || json_object_set_new(o, "debits_pending", json_integer(dpend))
        || json_object_set_new(o, "credits_pending", json_integer(cpend))
        || json_object_set_new(o, "closed", json_boolean(
                                   PQgetvalue(res, r, 9)[0] == 't'))
        || ledger_json_set_str(o, "created_at", PQgetvalue(res, r, 10))
        || json_object_set_new(o, "formatted", json_incref(f));
    json_decref(f);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}


/*
 * Runs one account statement.  Returns its rows (maybe none), or NULL
 * after answering 503 (no database) or 500 (an SQL error, logged).
 */
static PGresult *
ledger_account_query(kit_req_t *req, const char *name, const char *sql,
    int nparams, const char *const *params)
{
    kit_pg_t  *pg;
    PGresult  *res;

    pg = kit_pg_acquire(LEDGER_DB_ACQUIRE_MS);
    if (pg == NULL) {
        ledger_reply_unavailable(req, "database is not available");
        return NULL;
    }
    res = kit_pg_exec(pg, name, sql, nparams, params);
    kit_pg_release(pg);
    if (res == NULL) {
        ledger_reply_unavailable(req, "database is not available");
        return NULL;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK
        && PQnfields(res) == LEDGER_ACCOUNT_NCOLUMNS)
    {
        return res;
    }
    kit_log(KIT_LOG_ERROR, "could not run \"%s\": %s", name,
            PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    PQclear(res);
    kit_reply_problem(req, 500, NULL, "could not read the accounts");
    return NULL;
}


/* Answers status with row 0 of res (taken), or 500. */
static void
ledger_reply_account(kit_req_t *req, int status, PGresult *res)
{
    json_t  *o;

    o = ledger_account_json(res, 0);
    PQclear(res);
    if (o == NULL) {
        kit_reply_problem(req, 500, NULL, "could not render the account");
        return;
    }
    kit_reply_json(req, status, o);
}


/* 422 for a currency the ledger does not hold. */
static void
ledger_reply_unknown_currency(kit_req_t *req)
{
    json_t  *errors;

    errors = json_array();
    if (errors != NULL) {
        ledger_error_add(errors, "/currency", "is not a currency the "
                         "ledger holds");
    }
    kit_reply_invalid(req, "unknown currency", errors);
}


void
ledger_accounts_create(kit_req_t *req)
{
    const char  *params[2], *caller;
    json_t      *body, *errors;
    PGresult    *res;
    char         currency[LEDGER_CURRENCY_LEN + 1];

    if ((caller = ledger_caller(req)) == NULL
        || (body = ledger_request_body(req)) == NULL)
    {
        return;
    }
    errors = json_array();
    if (errors == NULL || ledger_account_read(body, currency, errors) > 0) {
        json_decref(body);
        kit_reply_invalid(req, "request has invalid fields", errors);
        return;
    }
    json_decref(body);
    json_decref(errors);
    params[0] = caller;
    params[1] = currency;
    res = ledger_account_query(req, "ledger_account_open",
                               ledger_account_open_sql, 2, params);
    if (res == NULL) {
        return;
    }
    if (PQntuples(res) == 1) {
        ledger_reply_account(req, 201, res);
        return;
    }
    /* Nothing inserted: the wallet exists, or the currency does not. */
    PQclear(res);
    res = ledger_account_query(req, "ledger_account_wallet",
                               ledger_account_wallet_sql, 2, params);
    if (res == NULL) {
        return;
    }
    if (PQntuples(res) == 1) {
        ledger_reply_account(req, 200, res);
        return;
    }
    PQclear(res);
    ledger_reply_unknown_currency(req);
}


void
ledger_accounts_list(kit_req_t *req)
{
    const char  *caller, *owner;
    json_t      *items, *o;
    PGresult    *res;
    int          r;

    if ((caller = ledger_caller(req)) == NULL) {
        return;
    }
    owner = kit_req_query(req, "owner");
    owner = owner != NULL ? owner : caller;
    if (!ledger_owner_valid(owner)) {
        kit_reply_problem(req, 400, NULL, "query argument \"owner\" must be "
                          "a user id");
        return;
    }
    if (strcmp(owner, caller) != 0 && !ledger_is_staff(req)) {
        kit_reply_problem(req, 403, NULL, "only support and admin may list "
                          "another user's accounts");
        return;
    }
    res = ledger_account_query(req, "ledger_account_list",
                               ledger_account_list_sql, 1, &owner);
    if (res == NULL) {
        return;
    }
    items = json_array();
    for (r = 0; items != NULL && r < PQntuples(res); r++) {
        o = ledger_account_json(res, r);
        if (o == NULL || json_array_append_new(items, o) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    PQclear(res);
    o = items != NULL ? json_pack("{s:s, s:o}", "owner", owner,
                                  "items", items) : NULL;
    if (o == NULL) {
        kit_reply_problem(req, 500, NULL, "could not render the accounts");
        return;
    }
    kit_reply_json(req, 200, o);
}


void
ledger_accounts_get(kit_req_t *req)
{
    const char  *caller, *params[1];
    PGresult    *res;
    char         id[LEDGER_UUID_LEN + 1];

    if ((caller = ledger_caller(req)) == NULL) {
        return;
    }
    if (ledger_uuid_parse(kit_req_param(req, "id"), id) != 0) {
        kit_reply_problem(req, 404, NULL, "no such account");
        return;
    }
    params[0] = id;
    res = ledger_account_query(req, "ledger_account_get",
                               ledger_account_get_sql, 1, params);
    if (res == NULL) {
        return;
    }
    if (PQntuples(res) != 1
        || (!ledger_is_staff(req)
            && (PQgetisnull(res, 0, 1)
                || strcmp(PQgetvalue(res, 0, 1), caller) != 0)))
    {
        PQclear(res);
        kit_reply_problem(req, 404, NULL, "no such account");
        return;
    }
    ledger_reply_account(req, 200, res);
}
