/*
 * worker -- background jobs and schedules: reports, archiving, metric
 * roll-ups, fraud rules and log aggregation.
 *
 * For now a walking skeleton on the kit: schema "worker" with its outbox,
 * and one probe behind the edge's signed identity, GET /v1/admin/jobs,
 * which also needs the admin role (403 otherwise).
 */

#include "kit.h"


static void
worker_jobs(kit_req_t *req)
{
    if (!kit_req_has_role(req, "admin")) {
        kit_reply_problem(req, 403, NULL, "role \"admin\" is required");
        return;
    }
    kit_reply_json(req, 200, json_pack("{s:[]}", "items"));
}


static const kit_route_t worker_routes[] = {
    { "GET", "/v1/admin/jobs", worker_jobs, 0 },
};


int
main(void)
{
    static const kit_service_t  svc = {
        .name = "worker",
        .schema = "worker",
        .outbox = 1,
        .routes = worker_routes,
        .nroutes = sizeof(worker_routes) / sizeof(worker_routes[0]),
        .init = NULL,
    };

    return kit_main(&svc);
}
