/*
 * statements.c -- reading money over time: an account's statement with
 * the running balance after each entry (keyset pages), its balance as of
 * a time, and the admin's daily report per currency.
 *
 *   GET /v1/accounts/{id}/statement?from=&to=&cursor=&limit=
 *   GET /v1/accounts/{id}/balance?at=
 *   GET /v1/admin/reports/daily?from=&to=
 *
 * The SQL (sql/ledger/010) does the work and checks the times; here the
 * query is checked for what the database need not see: the cursor is a
 * transfer id, the limit an integer in 1..LEDGER_PAGE_MAX.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

#define LEDGER_PAGE_MAX  200

static const ledger_code_t  ledger_statement_codes[] = {
    { "account_not_found", 404, NULL, NULL, "no such account" },
    { "bad_from", 400, NULL, NULL, "query parameter \"from\" must be an "
      "RFC 3339 time or a date (YYYY-MM-DD)" },
    { "bad_to", 400, NULL, NULL, "query parameter \"to\" must be an "
      "RFC 3339 time or a date (YYYY-MM-DD)" },
    { "bad_at", 400, NULL, NULL, "query parameter \"at\" must be an "
      "RFC 3339 time or a date (YYYY-MM-DD)" },
    { "empty_range", 400, NULL, NULL, "query parameter \"from\" must be "
      "before \"to\"" },
    { "bad_range", 400, NULL, NULL, "the range must run forward and span "
      "at most 366 days" },
    { NULL, 0, NULL, NULL, NULL }
};


/* Copies query parameter name into args when present; 0, or -1. */
static int
ledger_query_str(kit_req_t *req, const char *name, json_t *args)
{
    const char  *v;

    v = kit_req_query(req, name);
    return v == NULL ? 0 : ledger_json_set_str(args, name, v);
}


/*
 * The args of an account read: who asks, the account, and (statement)
 * the page.  NULL after answering.
 */
static json_t *
ledger_account_read_args(kit_req_t *req, int page)
{
    const char  *caller, *v;
    json_t      *args;
    char        *end, id[LEDGER_UUID_LEN + 1];
    long         limit;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return NULL;
    }
    if (ledger_uuid_parse(kit_req_param(req, "id"), id) != 0) {
        kit_reply_problem(req, 404, NULL, "no such account");
        return NULL;
    }
    args = ledger_op_args(req, caller, 0);
    if (args == NULL) {
        return NULL;
    }
    ledger_json_set_str(args, "account_id", id);
    json_object_set_new(args, "staff", json_boolean(ledger_is_staff(req)));
    if (!page) {
        ledger_query_str(req, "at", args);
        return args;
    }
    ledger_query_str(req, "from", args);
    ledger_query_str(req, "to", args);
    v = kit_req_query(req, "cursor");
    if (v != NULL) {
        if (ledger_uuid_parse(v, id) != 0) {
            json_decref(args);
            kit_reply_problem(req, 400, NULL, "query parameter \"cursor\" "
                              "must be the next_cursor of a page");
            return NULL;
        }
        ledger_json_set_str(args, "cursor", id);
    }
    v = kit_req_query(req, "limit");
    if (v != NULL) {
        limit = strtol(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || limit < 1
            || limit > LEDGER_PAGE_MAX)
        {
            json_decref(args);
            kit_reply_problem(req, 400, NULL, "query parameter \"limit\" "
                              "must be an integer in 1.."
                              LEDGER_STR(LEDGER_PAGE_MAX));
            return NULL;
        }
        json_object_set_new(args, "limit", json_integer(limit));
    }
    return args;
}


void
ledger_accounts_statement(kit_req_t *req)
{
    json_t  *args;

    args = ledger_account_read_args(req, 1);
    if (args != NULL) {
        ledger_op_reply(req, "ledger_statement",
                        "select statement($1::jsonb)", args, 200,
                        ledger_statement_codes);
    }
}


void
ledger_accounts_balance(kit_req_t *req)
{
    json_t  *args;

    args = ledger_account_read_args(req, 0);
    if (args != NULL) {
        ledger_op_reply(req, "ledger_balance_at",
                        "select balance_at($1::jsonb)", args, 200,
                        ledger_statement_codes);
    }
}


void
ledger_reports_daily(kit_req_t *req)
{
    const char  *caller;
    json_t      *args;

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    if (!kit_req_has_role(req, "admin")) {
        kit_reply_problem(req, 403, NULL, "this route needs the admin role");
        return;
    }
    args = ledger_op_args(req, caller, 0);
    if (args == NULL) {
        return;
    }
    if (kit_req_query(req, "from") == NULL
        || kit_req_query(req, "to") == NULL)
    {
        json_decref(args);
        kit_reply_problem(req, 400, NULL, "query parameters \"from\" and "
                          "\"to\" (dates, YYYY-MM-DD) are required");
        return;
    }
    ledger_query_str(req, "from", args);
    ledger_query_str(req, "to", args);
    ledger_op_reply(req, "ledger_report_daily",
                    "select report_daily($1::jsonb)", args, 200,
                    ledger_statement_codes);
}
