/*
 * test_users_roles.c -- backends/users/roles.c: the role matrix of the
 * users service, cell by cell as docs/ARCHITECTURE.md documents it
 * ("Users: roles"), and how the roles the edge signs are read (comma
 * separated, spaces, unknown names, prefixes that are not roles).
 *
 * roles.c is compiled into the test itself, as the ledger's tests do.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../backends/users/roles.c"

/* The documented matrix: 1 where the role may do the action. */
static const struct {
    users_act_e  act;
    int          user, support, admin;
} matrix[] = {
    { USERS_ACT_SELF,         1, 1, 1 },
    { USERS_ACT_USERS_LIST,   0, 1, 1 },
    { USERS_ACT_USER_READ,    0, 1, 1 },
    { USERS_ACT_AUDIT_READ,   0, 1, 1 },
    { USERS_ACT_USER_UPDATE,  0, 0, 1 },
    { USERS_ACT_ROLES_SET,    0, 0, 1 },
    { USERS_ACT_BLOCK,        0, 0, 1 },
    { USERS_ACT_UNBLOCK,      0, 0, 1 },
    { USERS_ACT_CONFIRM,      0, 0, 1 },
    { USERS_ACT_UNLOCK,       0, 0, 1 },
};


static void
test_every_cell(void **state)
{
    size_t  i;

    (void) state;
    assert_int_equal(sizeof(matrix) / sizeof(matrix[0]), USERS_ACT_N);
    for (i = 0; i < USERS_ACT_N; i++) {
        assert_int_equal(users_role_may("user", matrix[i].act),
                         matrix[i].user);
        assert_int_equal(users_role_may("support", matrix[i].act),
                         matrix[i].support);
        assert_int_equal(users_role_may("admin", matrix[i].act),
                         matrix[i].admin);
        assert_true(users_act_name(matrix[i].act)[0] != '\0');
    }
}


static void
test_roles_combine(void **state)
{
    (void) state;
    /* A person holds several roles: any one that may, may. */
    assert_true(users_role_may("user,admin", USERS_ACT_BLOCK));
    assert_true(users_role_may("user, support", USERS_ACT_USER_READ));
    assert_false(users_role_may("user, support", USERS_ACT_BLOCK));
    assert_true(users_role_may(" admin ", USERS_ACT_UNLOCK));
}


static void
test_nothing_grants_by_accident(void **state)
{
    (void) state;
    assert_false(users_role_may(NULL, USERS_ACT_SELF));
    assert_false(users_role_may("", USERS_ACT_SELF));
    assert_false(users_role_may("root", USERS_ACT_BLOCK));
    assert_false(users_role_may("administrator", USERS_ACT_BLOCK));
    assert_false(users_role_may("admi", USERS_ACT_BLOCK));
    assert_false(users_role_may("Admin", USERS_ACT_BLOCK));
    assert_false(users_role_may("supportadmin", USERS_ACT_BLOCK));
    assert_false(users_role_may("admin", USERS_ACT_N));
    assert_false(users_role_may("admin", (users_act_e) -1));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_roles_combine),
        cmocka_unit_test(test_nothing_grants_by_accident),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
