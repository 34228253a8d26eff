/*
 * ops.c -- the ledger's operations that are one SQL function each (holds,
 * refunds, statements, rules): the handler builds the arguments as one
 * JSON object, ledger_op_reply() runs the function in a transaction and
 * answers from the jsonb document it returns.
 *
 * The one idea: the function decides and records everything (the
 * idempotency key included) and says what happened as a code; this file
 * only turns codes into HTTP answers through a table the handler gives.
 * So an operation's rules live in one place, next to the rows they
 * guard, and every refusal is a problem+json that names its field.
 *
 * The document: {"code": "ok", "replayed": bool, "data": {...}} or
 * {"code": "<refusal>", "replayed": bool}.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

typedef struct {
    const char  *name;
    const char  *sql;
    char        *args;
    char        *answer;                /* malloc()ed, on success */
    char         sqlstate[6];
} ledger_op_ctx_t;


static int
ledger_op_tx(kit_pg_t *pg, void *arg)
{
    ledger_op_ctx_t  *ctx = arg;
    const char       *params[1], *state, *msg;
    PGresult         *res;

    free(ctx->answer);
    ctx->answer = NULL;
    ctx->sqlstate[0] = '\0';
    params[0] = ctx->args;
    res = kit_pg_exec(pg, ctx->name, ctx->sql, 1, params);
    if (res == NULL) {
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1
        || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
    {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "%s",
                 state != NULL ? state : "");
        kit_log(strncmp(ctx->sqlstate, "55", 2) == 0
                || strncmp(ctx->sqlstate, "57", 2) == 0
                ? KIT_LOG_WARN : KIT_LOG_ERROR,
                "could not run \"%s\": %s (SQLSTATE %s)", ctx->name,
                msg != NULL ? msg : "no single answer", ctx->sqlstate);
        PQclear(res);
        return -1;
    }
    ctx->answer = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return ctx->answer != NULL ? 0 : -1;
}


/* The answer for a refusal code, from the handler's table. */
static void
ledger_op_refuse(kit_req_t *req, const char *code, const json_t *args,
    const ledger_code_t *codes)
{
    json_t  *errors;
    char     detail[LEDGER_DETAIL_MAX];

    if (strcmp(code, "idempotency_conflict") == 0) {
        snprintf(detail, sizeof(detail), "Idempotency-Key \"%s\" was "
                 "already used with a different request",
                 json_string_value(json_object_get(args, "idem_key")));
        kit_reply_problem(req, 409, NULL, detail);
        return;
    }
    for ( ; codes != NULL && codes->code != NULL; codes++) {
        if (strcmp(codes->code, code) != 0) {
            continue;
        }
        if (codes->status == 422) {
            errors = json_array();
            if (errors != NULL && codes->pointer != NULL) {
                ledger_error_add(errors, codes->pointer, codes->message);
            }
            kit_reply_invalid(req, codes->detail, errors);
        } else {
            kit_reply_problem(req, codes->status, NULL, codes->detail);
        }
        return;
    }
    kit_log(KIT_LOG_ERROR, "unknown outcome \"%s\"", code);
    kit_reply_problem(req, 500, NULL, "unknown outcome");
}


void
ledger_op_reply(kit_req_t *req, const char *name, const char *sql,
    json_t *args, int ok_status, const ledger_code_t *codes)
{
    ledger_op_ctx_t   ctx;
    json_t           *doc, *data;
    const char       *code;
    int               rc;

    memset(&ctx, 0, sizeof(ctx));
    ctx.name = name;
    ctx.sql = sql;
    ctx.args = args != NULL ? json_dumps(args, JSON_COMPACT) : NULL;
    if (ctx.args == NULL) {
        json_decref(args);
        kit_reply_problem(req, 503, NULL, "out of memory");
        return;
    }
    rc = kit_pg_tx("read committed", ledger_op_tx, &ctx);
    free(ctx.args);
    doc = rc == 0 ? json_loads(ctx.answer, 0, NULL) : NULL;
    free(ctx.answer);
    code = json_string_value(json_object_get(doc, "code"));
    if (rc == KIT_TX_UNAVAILABLE || rc == KIT_TX_CONFLICT
        || (rc != 0 && (strncmp(ctx.sqlstate, "55", 2) == 0
                        || strncmp(ctx.sqlstate, "57", 2) == 0)))
    {
        ledger_reply_unavailable(req, "database is not available");
    } else if (code == NULL) {
        kit_reply_problem(req, 500, NULL, "could not run the operation");
    } else {
        if (json_is_true(json_object_get(doc, "replayed"))) {
            kit_reply_header(req, "Idempotent-Replayed", "true");
        }
        if (strcmp(code, "ok") == 0) {
            data = json_object_get(doc, "data");
            kit_reply_json(req, ok_status, json_incref(data));
        } else {
            ledger_op_refuse(req, code, args, codes);
        }
    }
    json_decref(doc);
    json_decref(args);
}


json_t *
ledger_op_args(kit_req_t *req, const char *caller, int need_key)
{
    const char  *key;
    json_t      *args;

    key = kit_req_header(req, "Idempotency-Key");
    if (need_key && key == NULL) {
        kit_reply_problem(req, 400, NULL, "header \"Idempotency-Key\" is "
                          "required");
        return NULL;
    }
    if (key != NULL && !ledger_idem_key_valid(key)) {
        kit_reply_problem(req, 400, NULL, "header \"Idempotency-Key\" must "
                          "be 1 to 255 printable ASCII characters");
        return NULL;
    }
    args = json_pack("{s:s, s:s, s:b}", "actor", caller, "request_id",
                     kit_req_identity(req)->request_id, "admin",
                     kit_req_has_role(req, "admin"));
    if (args == NULL
        || (key != NULL && ledger_json_set_str(args, "idem_key", key) != 0))
    {
        json_decref(args);
        kit_reply_problem(req, 503, NULL, "out of memory");
        return NULL;
    }
    return args;
}
