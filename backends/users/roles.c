/*
 * roles.c -- the role matrix of the users service: which of the roles
 * user, support and admin may do what.  The edge enforces the same rules
 * first (conf/routes.conf, kordon_require_roles); the service checks
 * again, so a route added to one and not the other fails closed.  The
 * matrix is data, one row per action (docs/ARCHITECTURE.md shows it as a
 * table; t/unit/test_users_roles.c holds the two together).
 */

#include <string.h>

#include "roles.h"

#define R_USER     0x01
#define R_SUPPORT  0x02
#define R_ADMIN    0x04
#define R_ANY      (R_USER | R_SUPPORT | R_ADMIN)
#define R_STAFF    (R_SUPPORT | R_ADMIN)

static const struct {
    users_act_e  act;
    const char  *name;
    unsigned     roles;
} users_matrix[USERS_ACT_N] = {
    { USERS_ACT_SELF,         "own account, sessions, 2FA",  R_ANY },
    { USERS_ACT_USERS_LIST,   "list and search users",      R_STAFF },
    { USERS_ACT_USER_READ,    "read one user",              R_STAFF },
    { USERS_ACT_AUDIT_READ,   "read the audit trail",       R_STAFF },
    { USERS_ACT_USER_UPDATE,  "correct a user's data",      R_ADMIN },
    { USERS_ACT_ROLES_SET,    "set a user's roles",         R_ADMIN },
    { USERS_ACT_BLOCK,        "block a user",               R_ADMIN },
    { USERS_ACT_UNBLOCK,      "unblock a user",             R_ADMIN },
    { USERS_ACT_CONFIRM,      "verify an address by hand",  R_ADMIN },
    { USERS_ACT_UNLOCK,       "lift a login lockout",       R_ADMIN },
};


/* The bit of one role name (len bytes), 0 for anything else. */
static unsigned
users_role_bit(const char *s, size_t len)
{
    static const char *const  names[] = { "user", "support", "admin" };
    size_t                    i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return 1u << i;
        }
    }
    return 0;
}


int
users_role_may(const char *roles, users_act_e act)
{
    unsigned  have;
    size_t    n;

    if (roles == NULL || (unsigned) act >= USERS_ACT_N) {
        return 0;
    }
    have = 0;
    while (*roles != '\0') {
        roles += strspn(roles, " ,");
        n = strcspn(roles, " ,");
        have |= users_role_bit(roles, n);
        roles += n;
    }
    return (users_matrix[act].roles & have) != 0;
}


const char *
users_act_name(users_act_e act)
{
    return (unsigned) act < USERS_ACT_N ? users_matrix[act].name : "";
}
