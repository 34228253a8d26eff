/*
 * users -- people's accounts: credentials, sessions, the signing side of
 * tokens (JWKS), 2FA, social login, roles, blocking and the audit trail.
 *
 * For now a walking skeleton on the kit: schema "users" with its outbox,
 * and one probe behind the edge's signed identity, GET /v1/users/me,
 * answering from that identity alone so the edge path can be proven end
 * to end before the real handler reads the database.
 */

#include <string.h>

#include "kit.h"

/* The roles header is at most KIT_HEADER_VALUE_MAX bytes. */
#define USERS_ROLES_MAX  64


/* The comma-separated roles as a JSON array; NULL when out of memory. */
static json_t *
users_roles(const char *roles)
{
    json_t  *a;
    size_t   len;
    int      n;

    a = json_array();
    for (n = 0; a != NULL && *roles != '\0' && n < USERS_ROLES_MAX; n++) {
        roles += strspn(roles, " ,");
        len = strcspn(roles, ",");
        while (len > 0 && roles[len - 1] == ' ') {
            len--;
        }
        if (len > 0 && json_array_append_new(a, json_stringn(roles, len)))
        {
            json_decref(a);
            return NULL;
        }
        roles += strcspn(roles, ",");
    }
    return a;
}


static void
users_me(kit_req_t *req)
{
    const kit_identity_t  *id = kit_req_identity(req);
    json_t                *body;

    body = json_pack("{s:s, s:o*}", "id", id->user, "roles",
                     users_roles(id->roles));
    if (body == NULL || json_object_get(body, "roles") == NULL) {
        json_decref(body);
        kit_reply_problem(req, 500, NULL, "could not encode the answer");
        return;
    }
    kit_reply_json(req, 200, body);
}


static const kit_route_t users_routes[] = {
    { "GET", "/v1/users/me", users_me, 0 },
};


int
main(void)
{
    static const kit_service_t  svc = {
        .name = "users",
        .schema = "users",
        .outbox = 1,
        .routes = users_routes,
        .nroutes = sizeof(users_routes) / sizeof(users_routes[0]),
        .init = NULL,
    };

    return kit_main(&svc);
}
