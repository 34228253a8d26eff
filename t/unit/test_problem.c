/*
 * test_problem.c -- RFC 9457 rendering: every field present with the
 * right type, the reason phrase as the default title, the request_id
 * carried through, unknown statuses, and text that is not UTF-8.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kit.h"
#include "kit_internal.h"


static const char *
str(json_t *o, const char *k)
{
    json_t  *v = json_object_get(o, k);

    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}


static void
test_fields(void **state)
{
    json_t  *p;

    p = kit_problem_new(404, NULL, "no route for \"/x\"", "req-7");
    assert_non_null(p);
    assert_int_equal(json_object_size(p), 5);
    assert_string_equal(str(p, "type"), "about:blank");
    assert_string_equal(str(p, "title"), "Not Found");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 404);
    assert_string_equal(str(p, "detail"), "no route for \"/x\"");
    assert_string_equal(str(p, "request_id"), "req-7");
    json_decref(p);
}


static void
test_title_and_detail_defaults(void **state)
{
    json_t  *p;

    p = kit_problem_new(409, "duplicate transfer", NULL, "r");
    assert_string_equal(str(p, "title"), "duplicate transfer");
    assert_string_equal(str(p, "detail"), "duplicate transfer");
    json_decref(p);

    p = kit_problem_new(503, NULL, NULL, NULL);
    assert_string_equal(str(p, "title"), "Service Unavailable");
    assert_string_equal(str(p, "detail"), "Service Unavailable");
    assert_string_equal(str(p, "request_id"), "");
    json_decref(p);
}


static void
test_status_titles(void **state)
{
    assert_string_equal(kit_status_title(400), "Bad Request");
    assert_string_equal(kit_status_title(401), "Unauthorized");
    assert_string_equal(kit_status_title(405), "Method Not Allowed");
    assert_string_equal(kit_status_title(413), "Content Too Large");
    assert_string_equal(kit_status_title(414), "URI Too Long");
    assert_string_equal(kit_status_title(415), "Unsupported Media Type");
    assert_string_equal(kit_status_title(422), "Unprocessable Content");
    assert_string_equal(kit_status_title(500), "Internal Server Error");
    assert_string_equal(kit_status_title(599), "Unknown");
    assert_string_equal(kit_status_title(0), "Unknown");
    assert_string_equal(kit_status_title(-1), "Unknown");
}


static void
test_unknown_status(void **state)
{
    json_t  *p;

    p = kit_problem_new(599, NULL, "odd", "r");
    assert_string_equal(str(p, "title"), "Unknown");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 599);
    json_decref(p);
}


static void
test_not_utf8_and_rendering(void **state)
{
    json_t  *p;
    char    *text;

    /* A detail quoting client bytes that are not UTF-8 still renders. */
    p = kit_problem_new(400, NULL, "bad \xff\xfe path \"/\xc3\"", "r\"1");
    assert_non_null(p);
    assert_string_equal(str(p, "detail"), "bad ?? path \"/?\"");
    text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(text);
    assert_string_equal(text, "{\"type\":\"about:blank\",\"title\":"
                        "\"Bad Request\",\"status\":400,\"detail\":"
                        "\"bad ?? path \\\"/?\\\"\",\"request_id\":"
                        "\"r\\\"1\"}");
    free(text);
    json_decref(p);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_title_and_detail_defaults),
        cmocka_unit_test(test_status_titles),
        cmocka_unit_test(test_unknown_status),
        cmocka_unit_test(test_not_utf8_and_rendering),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
