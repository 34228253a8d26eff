/*
 * refunds.c -- POST /v1/transfers/{id}/refund: the payee gives all or
 * part of a payment back, never more than it was, with the fee returned
 * or kept by the currency's p2p rule and the cashback taken back, all in
 * one linked group.  The rules are refund_transfer() in
 * sql/ledger/009_refunds.sql; this file checks the request and maps the
 * outcome (ops.c).
 */

#include <string.h>

#include "ledger.h"

static const ledger_code_t  ledger_refund_codes[] = {
    { "transfer_not_found", 404, NULL, NULL, "no such transfer" },
    { "refund_forbidden", 403, NULL, NULL, "only the payee or an admin may "
      "refund a transfer" },
    { "not_refundable", 422, "/transfer_id", "is not a posted payment",
      "refund refused: not a payment" },
    { "already_refunded", 409, NULL, NULL, "transfer is already refunded in "
      "full" },
    { "refund_exceeds_original", 422, "/amount", "exceeds what is left to "
      "refund of the transfer", "refund refused: above the original" },
    { "credit_account_closed", 422, "/transfer_id", "the payee's account "
      "is closed", "refund refused: account closed" },
    { "insufficient_funds", 422, "/amount", "exceeds the available balance "
      "of the payee", "refund refused: insufficient funds" },
    { NULL, 0, NULL, NULL, NULL }
};


void
ledger_transfers_refund(kit_req_t *req)
{
    const char  *caller;
    json_t      *args;
    char         id[LEDGER_UUID_LEN + 1];

    caller = ledger_caller(req);
    if (caller == NULL) {
        return;
    }
    if (ledger_uuid_parse(kit_req_param(req, "id"), id) != 0) {
        kit_reply_problem(req, 404, NULL, "no such transfer");
        return;
    }
    args = ledger_op_args(req, caller, 1);
    if (args == NULL) {
        return;
    }
    if (ledger_amount_body(req, 1, args) != 0) {
        json_decref(args);
        return;
    }
    ledger_json_set_str(args, "transfer_id", id);
    ledger_op_reply(req, "ledger_refund", "select refund_transfer($1::jsonb)",
                    args, 201, ledger_refund_codes);
}
