/*
 * ledger -- money: accounts, double-entry transfers, holds, fees,
 * cashback, refunds, chargebacks, payments in and out through provider
 * adapters, statements and reports.
 *
 * For now a walking skeleton on the kit: schema "ledger" with its outbox,
 * and one probe behind the edge's signed identity, GET /v1/accounts,
 * answering an empty list for the signed user.
 */

#include "kit.h"


static void
ledger_accounts(kit_req_t *req)
{
    json_t  *body;

    body = json_pack("{s:[], s:s}", "items", "owner",
                     kit_req_identity(req)->user);
    if (body == NULL) {
        kit_reply_problem(req, 500, NULL, "could not encode the answer");
        return;
    }
    kit_reply_json(req, 200, body);
}


static const kit_route_t ledger_routes[] = {
    { "GET", "/v1/accounts", ledger_accounts, 0 },
};


int
main(void)
{
    static const kit_service_t  svc = {
        .name = "ledger",
        .schema = "ledger",
        .outbox = 1,
        .routes = ledger_routes,
        .nroutes = sizeof(ledger_routes) / sizeof(ledger_routes[0]),
        .init = NULL,
    };

    return kit_main(&svc);
}
