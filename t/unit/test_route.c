/*
 * test_route.c -- kit_route_match(): parameters, literal-over-parameter
 * precedence whatever the table order, 404 against 405, HEAD as GET,
 * trailing slashes and empty segments, the segment limit, and the Allow
 * list built for a 405.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kit.h"
#include "kit_internal.h"

static void h(kit_req_t *req) { (void) req; }

static const kit_route_t routes[] = {
    { "GET",    "/v1/users/{id}",                 h, 0 },     /* 0 */
    { "GET",    "/v1/users/me",                   h, 0 },     /* 1 */
    { "POST",   "/v1/users",                      h, 0 },     /* 2 */
    { "GET",    "/v1/accounts/{id}/statement",    h, 0 },     /* 3 */
    { "DELETE", "/v1/users/{id}",                 h, 0 },     /* 4 */
    { "GET",    "/v1/{kind}/{id}/x",              h, 0 },     /* 5 */
    { "GET",    "/v1/users/{id}/x",               h, 0 },     /* 6 */
    { "GET",    "/",                              h, 0 },     /* 7 */
    { "PUT",    "/v1/users/{id}",                 h, 0 },     /* 8 */
};
#define NROUTES  (sizeof(routes) / sizeof(routes[0]))


/* The value of parameter name as a string (static buffer). */
static const char *
param(const kit_params_t *p, const char *name)
{
    static char  buf[256];
    int          i;

    i = kit_params_find(p, name);
    if (i < 0) {
        return NULL;
    }
    snprintf(buf, sizeof(buf), "%.*s", (int) p->value_len[i], p->value[i]);
    return buf;
}


static void
test_literal_and_param(void **state)
{
    kit_params_t  p;

    assert_int_equal(kit_route_match(routes, NROUTES, "POST", "/v1/users",
                                     &p), 2);
    assert_int_equal(p.n, 0);

    assert_int_equal(kit_route_match(routes, NROUTES, "GET",
                                     "/v1/users/u-42", &p), 0);
    assert_int_equal(p.n, 1);
    assert_string_equal(param(&p, "id"), "u-42");
    assert_null(param(&p, "nope"));

    assert_int_equal(kit_route_match(routes, NROUTES, "GET",
                                     "/v1/accounts/a1/statement", &p), 3);
    assert_string_equal(param(&p, "id"), "a1");
}


static void
test_literal_beats_param(void **state)
{
    kit_params_t  p;

    /* The param route comes first in the table; the literal still wins. */
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v1/users/me",
                                     &p), 1);
    assert_int_equal(p.n, 0);

    /* The first differing segment decides: users (literal) beats {kind}. */
    assert_int_equal(kit_route_match(routes, NROUTES, "GET",
                                     "/v1/users/7/x", &p), 6);
    assert_string_equal(param(&p, "id"), "7");
    assert_int_equal(kit_route_match(routes, NROUTES, "GET",
                                     "/v1/things/7/x", &p), 5);
    assert_string_equal(param(&p, "kind"), "things");
    assert_string_equal(param(&p, "id"), "7");
}


static void
test_404_405(void **state)
{
    kit_params_t  p;

    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v2/users",
                                     &p), -1);
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v1", &p), -1);
    /* Path known, method not. */
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v1/users",
                                     &p), -2);
    assert_int_equal(kit_route_match(routes, NROUTES, "PATCH",
                                     "/v1/users/9", &p), -2);
    /* Methods are case-sensitive tokens. */
    assert_int_equal(kit_route_match(routes, NROUTES, "post", "/v1/users",
                                     &p), -2);
    /* Other methods on a param path pick their own route. */
    assert_int_equal(kit_route_match(routes, NROUTES, "DELETE",
                                     "/v1/users/me", &p), 4);
    assert_string_equal(param(&p, "id"), "me");
}


static void
test_head_is_get(void **state)
{
    assert_int_equal(kit_route_match(routes, NROUTES, "HEAD", "/v1/users/me",
                                     NULL), 1);
    assert_int_equal(kit_route_match(routes, NROUTES, "HEAD", "/v1/users",
                                     NULL), -2);
}


static void
test_slashes_and_empty_segments(void **state)
{
    kit_params_t  p;

    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/", &p), 7);
    /* A trailing slash is another path. */
    assert_int_equal(kit_route_match(routes, NROUTES, "POST", "/v1/users/",
                                     &p), -1);
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v1/users/me/",
                                     &p), -1);
    /* An empty segment never fills a parameter. */
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "/v1/users//x",
                                     &p), -1);
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "//users/me",
                                     &p), -1);
    /* Not a path at all. */
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "v1/users/me",
                                     &p), -1);
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", "", &p), -1);
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", NULL, &p), -1);
}


static void
test_segment_limit(void **state)
{
    static const kit_route_t  deep[] = {
        { "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/{p}", h, 0 },
    };
    kit_params_t              p;
    char                      path[256];
    int                       i;

    assert_int_equal(kit_route_match(deep, 1, "GET",
                                     "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/last",
                                     &p), 0);
    assert_string_equal(param(&p, "p"), "last");

    /* One segment more than KIT_ROUTE_SEGMENTS_MAX: no route. */
    path[0] = '\0';
    for (i = 0; i < KIT_ROUTE_SEGMENTS_MAX + 1; i++) {
        strcat(path, "/s");
    }
    assert_int_equal(kit_route_match(routes, NROUTES, "GET", path, &p), -1);
    assert_int_equal(kit_route_match(deep, 1, "GET",
                                     "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
                                     &p), -1);
}


static void
test_many_params(void **state)
{
    static const kit_route_t  r[] = {
        { "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", h, 0 },
    };
    kit_params_t              p;

    assert_int_equal(kit_route_match(r, 1, "GET", "/1/2/3/4/5/6/7/8", &p), 0);
    assert_int_equal(p.n, KIT_ROUTE_PARAMS_MAX);
    assert_string_equal(param(&p, "a"), "1");
    assert_string_equal(param(&p, "h"), "8");
}


static void
test_allow(void **state)
{
    char  allow[128];

    allow[0] = '\0';
    kit_route_allow(routes, NROUTES, "/v1/users/9", allow, sizeof(allow));
    assert_string_equal(allow, "GET, DELETE, PUT");

    allow[0] = '\0';
    kit_route_allow(routes, NROUTES, "/v1/users/me", allow, sizeof(allow));
    assert_string_equal(allow, "GET, DELETE, PUT");

    allow[0] = '\0';
    kit_route_allow(routes, NROUTES, "/nothing", allow, sizeof(allow));
    assert_string_equal(allow, "");

    /* Appends without repeating; stops when the buffer is full. */
    strcpy(allow, "POST");
    kit_route_allow(routes, NROUTES, "/v1/users", allow, sizeof(allow));
    assert_string_equal(allow, "POST");
    allow[0] = '\0';
    kit_route_allow(routes, NROUTES, "/v1/users/9", allow, 9);
    assert_string_equal(allow, "GET");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_literal_and_param),
        cmocka_unit_test(test_literal_beats_param),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_head_is_get),
        cmocka_unit_test(test_slashes_and_empty_segments),
        cmocka_unit_test(test_segment_limit),
        cmocka_unit_test(test_many_params),
        cmocka_unit_test(test_allow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
