/*
 * roles.h -- the role matrix (roles.c): what user, support and admin may
 * do in the users service.  No dependencies, so the unit test compiles
 * it alone.
 */

#ifndef KORDON_USERS_ROLES_H
#define KORDON_USERS_ROLES_H

typedef enum {
    USERS_ACT_SELF = 0,
    USERS_ACT_USERS_LIST,
    USERS_ACT_USER_READ,
    USERS_ACT_AUDIT_READ,
    USERS_ACT_USER_UPDATE,
    USERS_ACT_ROLES_SET,
    USERS_ACT_BLOCK,
    USERS_ACT_UNBLOCK,
    USERS_ACT_CONFIRM,
    USERS_ACT_UNLOCK,
    USERS_ACT_N
} users_act_e;

/* 1 when one of roles (comma separated, as the edge signs them) may do
 * act; 0 otherwise, and for NULL or unknown roles. */
int users_role_may(const char *roles, users_act_e act);
const char *users_act_name(users_act_e act);

#endif /* KORDON_USERS_ROLES_H */
