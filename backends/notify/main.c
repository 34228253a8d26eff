/*
 * notify -- email, SMS, push and webhooks, per-user preferences and the
 * delivery log.
 *
 * For now a walking skeleton on the kit: schema "notify" with its outbox,
 * and one probe behind the edge's signed identity, GET /v1/notifications,
 * answering an empty list.
 */

#include "kit.h"


static void
notify_list(kit_req_t *req)
{
    kit_reply_json(req, 200, json_pack("{s:[]}", "items"));
}


static const kit_route_t notify_routes[] = {
    { "GET", "/v1/notifications", notify_list, 0 },
};


int
main(void)
{
    static const kit_service_t  svc = {
        .name = "notify",
        .schema = "notify",
        .outbox = 1,
        .routes = notify_routes,
        .nroutes = sizeof(notify_routes) / sizeof(notify_routes[0]),
        .init = NULL,
    };

    return kit_main(&svc);
}
