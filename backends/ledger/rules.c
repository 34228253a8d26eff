/*
 * rules.c -- the admin routes that set what money movements cost and
 * how far they may go: fee and cashback rules per transfer kind and
 * currency, limits per currency, and the merchant flag of a wallet (a
 * payment to a merchant is priced by the "merchant" rule and may earn
 * cashback).
 *
 *   GET    /v1/admin/fee-rules
 *   PUT    /v1/admin/fee-rules/{kind}/{currency}
 *   DELETE /v1/admin/fee-rules/{kind}/{currency}
 *   GET    /v1/admin/limits
 *   PUT    /v1/admin/limits/{currency}
 *   PUT    /v1/admin/accounts/{id}/merchant
 *
 * The fields are checked here, every problem named at once; the tables
 * check them again (sql/ledger/008).  A change applies to the transfers
 * posted after it; what a posted transfer cost is in its fee transfer.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ledger.h"

static const ledger_code_t  ledger_rule_codes[] = {
    { "unknown_currency", 404, NULL, NULL, "no such currency" },
    { "cashback_p2p", 422, "/cashback_bps", "must be 0: cashback is for "
      "merchant payments", "rule refused: cashback on p2p" },
    { "fee_max_below_min", 422, "/fee_max", "must not be below fee_min",
      "rule refused: fee_max below fee_min" },
    { "rule_not_found", 404, NULL, NULL, "no such fee rule" },
    { "account_not_found", 404, NULL, NULL, "no such wallet" },
    { NULL, 0, NULL, NULL, NULL }
};


/* The caller, if an admin; NULL after answering 401 or 403. */
static const char *
ledger_admin(kit_req_t *req)
{
    const char  *caller;

    caller = ledger_caller(req);
    if (caller != NULL && !kit_req_has_role(req, "admin")) {
        kit_reply_problem(req, 403, NULL, "this route needs the admin role");
        return NULL;
    }
    return caller;
}


/*
 * Field name of body: absent is fine, null only when nullable, else an
 * integer in lo..hi, or (hi < 0) a boolean.  Copied into args; 1 after
 * reporting a problem.
 */
static int
ledger_rule_field(const json_t *body, const char *name, int nullable,
    json_int_t lo, json_int_t hi, json_t *args, json_t *errors)
{
    json_t  *v;
    char     ptr[64], msg[128];
    int      ok;

    v = json_object_get(body, name);
    if (v == NULL) {
        return 0;
    }
    if (hi < 0) {
        ok = json_is_boolean(v);
        snprintf(msg, sizeof(msg), "must be true or false");
    } else {
        ok = (nullable && json_is_null(v))
             || (json_is_integer(v) && json_integer_value(v) >= lo
                 && json_integer_value(v) <= hi);
        snprintf(msg, sizeof(msg), "must be an integer in %lld..%lld%s",
                 (long long) lo, (long long) hi, nullable ? ", or null" : "");
    }
    if (!ok) {
        snprintf(ptr, sizeof(ptr), "/%s", name);
        ledger_error_add(errors, ptr, msg);
        return 1;
    }
    json_object_set(args, name, v);
    return 0;
}


/* Reports body fields outside known; returns how many. */
static int
ledger_rule_unknown(const json_t *body, const char *const *known,
    json_t *errors)
{
    const char  *key;
    json_t      *v;
    int          n, i, found;

    n = 0;
    json_object_foreach((json_t *) body, key, v) {
        for (i = 0, found = 0; known[i] != NULL && !found; i++) {
            found = strcmp(known[i], key) == 0;
        }
        if (!found) {
            ledger_error_add(errors, "", "has a field that is not known");
            n++;
        }
    }
    return n;
}


/* {currency} of the path into args; 0, or -1 after a 404. */
static int
ledger_path_currency(kit_req_t *req, json_t *args)
{
    const char  *why;
    json_t      *v;
    char         cur[LEDGER_CURRENCY_LEN + 1];
    int          rc;

    v = json_string(kit_req_param(req, "currency"));
    rc = v != NULL ? ledger_currency_parse(v, cur, &why) : -1;
    json_decref(v);
    if (rc != 0 || ledger_json_set_str(args, "currency", cur) != 0) {
        kit_reply_problem(req, 404, NULL, "no such currency");
        return -1;
    }
    return 0;
}


/* {kind} of the path into args; 0, or -1 after a 404. */
static int
ledger_path_kind(kit_req_t *req, json_t *args)
{
    const char  *kind;

    kind = kit_req_param(req, "kind");
    if (kind == NULL
        || (strcmp(kind, "p2p") != 0 && strcmp(kind, "merchant") != 0)
        || ledger_json_set_str(args, "kind", kind) != 0)
    {
        kit_reply_problem(req, 404, NULL, "no such transfer kind: expected "
                          "\"p2p\" or \"merchant\"");
        return -1;
    }
    return 0;
}


/* Runs fn's statement for an admin with the path's parameters. */
static void
ledger_rule_run(kit_req_t *req, const char *name, const char *sql,
    int kind, int currency, int body_kind)
{
    static const char *const  rule_fields[] = {
        "fee_bps", "fee_fixed", "fee_min", "fee_max", "cashback_bps",
        "refund_fee", NULL
    };
    static const char *const  limit_fields[] = {
        "transfer_max", "daily_out_max", NULL
    };
    const char               *caller;
    json_t                   *args, *body, *errors;
    int                       bad;

    caller = ledger_admin(req);
    if (caller == NULL) {
        return;
    }
    args = ledger_op_args(req, caller, 0);
    if (args == NULL) {
        return;
    }
    if ((kind && ledger_path_kind(req, args) != 0)
        || (currency && ledger_path_currency(req, args) != 0))
    {
        json_decref(args);
        return;
    }
    if (body_kind == 0) {
        ledger_op_reply(req, name, sql, args, 200, ledger_rule_codes);
        return;
    }
    body = ledger_request_body(req);
    errors = json_array();
    if (body == NULL || errors == NULL) {
        json_decref(body);
        json_decref(errors);
        json_decref(args);
        return;
    }
    if (body_kind == 1) {
        bad = ledger_rule_unknown(body, rule_fields, errors)
            + ledger_rule_field(body, "fee_bps", 0, 0, 10000, args, errors)
            + ledger_rule_field(body, "fee_fixed", 0, 0, ledger_cf.transfer_max,
                                args, errors)
            + ledger_rule_field(body, "fee_min", 0, 0, ledger_cf.transfer_max,
                                args, errors)
            + ledger_rule_field(body, "fee_max", 1, 0, ledger_cf.transfer_max,
                                args, errors)
            + ledger_rule_field(body, "cashback_bps", 0, 0, 10000, args,
                                errors)
            + ledger_rule_field(body, "refund_fee", 0, 0, -1, args, errors);
    } else {
        bad = ledger_rule_unknown(body, limit_fields, errors)
            + ledger_rule_field(body, "transfer_max", 1, 1, INT64_MAX, args,
                                errors)
            + ledger_rule_field(body, "daily_out_max", 1, 1, INT64_MAX, args,
                                errors);
    }
    json_decref(body);
    if (bad > 0) {
        json_decref(args);
        kit_reply_invalid(req, "request has invalid fields", errors);
        return;
    }
    json_decref(errors);
    ledger_op_reply(req, name, sql, args, 200, ledger_rule_codes);
}


void
ledger_fee_rules_list(kit_req_t *req)
{
    ledger_rule_run(req, "ledger_fee_rules_list",
                    "select fee_rules_list($1::jsonb)", 0, 0, 0);
}


void
ledger_fee_rules_put(kit_req_t *req)
{
    ledger_rule_run(req, "ledger_fee_rule_put",
                    "select fee_rule_put($1::jsonb)", 1, 1, 1);
}


void
ledger_fee_rules_delete(kit_req_t *req)
{
    ledger_rule_run(req, "ledger_fee_rule_delete",
                    "select fee_rule_delete($1::jsonb)", 1, 1, 0);
}


void
ledger_limits_list(kit_req_t *req)
{
    ledger_rule_run(req, "ledger_limits_list",
                    "select limits_list($1::jsonb)", 0, 0, 0);
}


void
ledger_limits_put(kit_req_t *req)
{
    ledger_rule_run(req, "ledger_limit_put", "select limit_put($1::jsonb)",
                    0, 1, 2);
}


void
ledger_merchant_put(kit_req_t *req)
{
    const char  *caller;
    json_t      *args, *body, *errors;
    char         id[LEDGER_UUID_LEN + 1];

    caller = ledger_admin(req);
    if (caller == NULL) {
        return;
    }
    if (ledger_uuid_parse(kit_req_param(req, "id"), id) != 0) {
        kit_reply_problem(req, 404, NULL, "no such wallet");
        return;
    }
    args = ledger_op_args(req, caller, 0);
    if (args == NULL) {
        return;
    }
    body = ledger_request_body(req);
    errors = json_array();
    if (body == NULL || errors == NULL) {
        json_decref(body);
        json_decref(errors);
        json_decref(args);
        return;
    }
    if (!json_is_boolean(json_object_get(body, "merchant"))
        || json_object_size(body) != 1)
    {
        ledger_error_add(errors, "/merchant", "is required, alone: true or "
                         "false");
        json_decref(body);
        json_decref(args);
        kit_reply_invalid(req, "request has invalid fields", errors);
        return;
    }
    json_object_set(args, "merchant", json_object_get(body, "merchant"));
    ledger_json_set_str(args, "account_id", id);
    json_decref(body);
    json_decref(errors);
    ledger_op_reply(req, "ledger_merchant_put",
                    "select merchant_put($1::jsonb)", args, 200,
                    ledger_rule_codes);
}
