/*
 * http.c -- what every ledger handler does the same way: who is calling
 * (the edge's signed X-Kordon-User, and whether the roles let them read
 * other people's accounts), the request body, the answers when the
 * database is away, and money in JSON.
 *
 * Bodies are parsed here rather than by the kit (the routes are not
 * KIT_ROUTE_JSON) for one reason: an amount beyond 64 bits must be a 422
 * naming "/amount", while jansson reports it as a syntax error.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ledger.h"


const char *
ledger_caller(kit_req_t *req)
{
    const char  *user;

    user = kit_req_identity(req)->user;
    if (!ledger_owner_valid(user)) {
        kit_reply_problem(req, 401, NULL, user[0] == '\0'
                          ? "the signed identity names no user"
                          : "the signed identity's user id is malformed");
        return NULL;
    }
    return user;
}


int
ledger_is_staff(kit_req_t *req)
{
    return kit_req_has_role(req, "support") || kit_req_has_role(req, "admin");
}


json_t *
ledger_request_body(kit_req_t *req)
{
    const char  *ct, *body;
    json_t      *doc, *errors;
    size_t       len;
    char         detail[LEDGER_DETAIL_MAX];
    int          status;

    ct = kit_req_header(req, "Content-Type");
    if (!kit_is_json_type(ct)) {
        snprintf(detail, sizeof(detail), "content type \"%.64s\" is not "
                 "\"application/json\"", ct != NULL ? ct : "");
        kit_reply_problem(req, 415, NULL, detail);
        return NULL;
    }
    body = kit_req_body(req, &len);
    doc = ledger_body_parse(body, len, &status, detail, sizeof(detail),
                            &errors);
    if (doc != NULL) {
        return doc;
    }
    if (errors != NULL) {
        kit_reply_invalid(req, detail, errors);
    } else {
        kit_reply_problem(req, status, NULL, detail);
    }
    return NULL;
}


void
ledger_reply_unavailable(kit_req_t *req, const char *detail)
{
    kit_reply_header(req, "Retry-After", LEDGER_RETRY_AFTER_S);
    kit_reply_problem(req, 503, NULL, detail);
}


int
ledger_json_set_str(json_t *o, const char *key, const char *s)
{
    json_t  *v;

    v = s != NULL && s[0] != '\0' ? json_string(s) : json_null();
    return v == NULL ? -1 : json_object_set_new(o, key, v);
}


int
ledger_json_set_money(json_t *o, const char *key, int64_t minor,
    int exponent)
{
    char  buf[LEDGER_MONEY_TEXT_MAX];

    if (ledger_money_format(minor, exponent, buf, sizeof(buf)) < 0) {
        return -1;
    }
    return ledger_json_set_str(o, key, buf);
}
