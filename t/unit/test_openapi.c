/*
 * test_openapi.c -- unit tests of the edge's OpenAPI core
 * (nginx-modules/kordon_openapi/kordon_openapi_*_core.c): compiling a
 * document (and naming the place of a problem), matching paths,
 * parameters, and JSON bodies against the schemas.
 *
 * Documents are built from one schema by doc_with(), which puts it at
 * /components/schemas/S behind POST /s; body() validates a text against
 * it and returns the number of problems, leaving them in REPORT.
 * test_checks_use_the_arena() counts jansson's allocations around a
 * check.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../nginx-modules/kordon_openapi/kordon_openapi_core.h"


static kordon_oa_report_t  REPORT;
static kordon_oa_error_t   ERR;


static kordon_oa_doc_t *
doc_with(const char *schema)
{
    char  text[8192];

    snprintf(text, sizeof(text),
             "{\"openapi\":\"3.1.0\",\"paths\":{\"/s\":{\"post\":{"
             "\"requestBody\":{\"required\":true,\"content\":{"
             "\"application/json\":{\"schema\":"
             "{\"$ref\":\"#/components/schemas/S\"}}}}}}},"
             "\"components\":{\"schemas\":{\"S\":%s}}}", schema);

    return kordon_oa_load(text, strlen(text), &ERR);
}


static unsigned
body(kordon_oa_doc_t *doc, const char *text)
{
    kordon_oa_match_t        m;
    const kordon_oa_op_t    *op;
    const kordon_oa_path_t  *p;

    p = kordon_oa_match(doc, "/s", 2, &m);
    assert_non_null(p);
    op = kordon_oa_operation(p, "POST", 4);
    assert_non_null(op);

    kordon_oa_report_init(&REPORT);

    return kordon_oa_check_body(doc, op, text, strlen(text), &REPORT);
}


static void
assert_error(unsigned i, const char *pointer, const char *message)
{
    assert_true(i < REPORT.n);
    assert_string_equal(REPORT.errors[i].pointer, pointer);
    assert_string_equal(REPORT.errors[i].message, message);
}


static void
test_load_errors_name_the_place(void **state)
{
    assert_null(doc_with("{\"type\":\"object\",\"properties\":"
                         "{\"a~b/c\":{\"type\":\"strng\"}}}"));
    assert_string_equal(ERR.pointer,
                        "/components/schemas/S/properties/a~0b~1c/type");
    assert_string_equal(ERR.message, "unknown type \"strng\"");

    assert_null(doc_with("{\"pattern\":\"(\"}"));
    assert_string_equal(ERR.pointer, "/components/schemas/S/pattern");

    assert_null(doc_with("{\"allOf\":[{\"type\":\"string\"},"
                         "{\"$ref\":\"#/nope\"}]}"));
    assert_string_equal(ERR.pointer, "/components/schemas/S/allOf/1/$ref");

    assert_null(doc_with("{\"uniqueItems\":true}"));
    assert_string_equal(ERR.message,
                        "unsupported schema keyword \"uniqueItems\"");

    assert_null(kordon_oa_load("{\"openapi\":\"3.1.0\"}", 19, &ERR));
    assert_string_equal(ERR.pointer, "/paths");

    assert_null(kordon_oa_load("[", 1, &ERR));
    assert_string_equal(ERR.pointer, "");
}


static void
test_match_prefers_literals(void **state)
{
    char                     allow[64];
    const char              *text;
    kordon_oa_doc_t         *doc;
    kordon_oa_match_t        m;
    const kordon_oa_path_t  *p;

    text = "{\"openapi\":\"3.1.0\",\"paths\":{"
           "\"/a/{id}\":{\"parameters\":[{\"name\":\"id\",\"in\":\"path\","
           "\"required\":true,\"schema\":{\"type\":\"string\"}}],"
           "\"get\":{},\"delete\":{}},"
           "\"/a/b\":{\"post\":{}},\"/\":{\"get\":{}}}}";

    doc = kordon_oa_load(text, strlen(text), &ERR);
    assert_non_null(doc);
    assert_int_equal(kordon_oa_paths(doc), 3);
    assert_int_equal(kordon_oa_operations(doc), 4);

    p = kordon_oa_match(doc, "/a/b", 4, &m);
    assert_string_equal(kordon_oa_template(p), "/a/b");

    p = kordon_oa_match(doc, "/a/c", 4, &m);
    assert_string_equal(kordon_oa_template(p), "/a/{id}");
    assert_int_equal(m.len[1], 1);
    assert_memory_equal(m.value[1], "c", 1);

    assert_null(kordon_oa_operation(p, "POST", 4));
    assert_non_null(kordon_oa_operation(p, "HEAD", 4));
    kordon_oa_allow(p, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, DELETE");

    assert_non_null(kordon_oa_match(doc, "/", 1, &m));
    assert_null(kordon_oa_match(doc, "/a/", 3, &m));
    assert_null(kordon_oa_match(doc, "/a//", 4, &m));
    assert_null(kordon_oa_match(doc, "a/b", 3, &m));
    assert_null(kordon_oa_match(doc, "", 0, &m));

    kordon_oa_free(doc);
}


static void
test_types_and_bounds(void **state)
{
    kordon_oa_doc_t  *doc;

    doc = doc_with("{\"type\":\"integer\",\"maximum\":9223372036854775806}");
    assert_non_null(doc);

    /* long double bounds: exact at the top of int64 */
    assert_int_equal(body(doc, "9223372036854775806"), 0);
    assert_int_equal(body(doc, "9223372036854775807"), 1);
    assert_error(0, "", "must be <= 9223372036854775806");
    assert_int_equal(body(doc, "1.0"), 1);
    assert_error(0, "", "must be integer");
    assert_int_equal(body(doc, "99999999999999999999"), 1);
    assert_error(0, "", "is not valid JSON: a number out of range at byte 20");

    kordon_oa_free(doc);
}


static void
test_every_problem_with_its_pointer(void **state)
{
    kordon_oa_doc_t  *doc;

    doc = doc_with("{\"type\":\"object\",\"additionalProperties\":false,"
                   "\"required\":[\"a\",\"b\"],\"properties\":{"
                   "\"a\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
                   "\"maxLength\":2}},\"b\":{\"format\":\"uuid\"}}}");
    assert_non_null(doc);

    assert_int_equal(body(doc, "{\"a\":[\"ok\",\"\\u00e9\\u00e9\","
                               "\"long\",1],\"x/y\":0}"), 4);
    assert_error(0, "/b", "is required");
    assert_error(1, "/a/2", "must be at most 2 characters long");
    assert_error(2, "/a/3", "must be string");
    assert_error(3, "/x~1y", "is not an allowed property");

    assert_int_equal(body(doc, "{\"a\":[],\"b\":\"0b9e3c52-6f0e-4a53-9d0e-"
                               "2a1c6c0f9f11\"}"), 0);

    kordon_oa_free(doc);
}


static void
test_formats(void **state)
{
    size_t            i;
    kordon_oa_doc_t  *doc;
    static const struct { const char *v; unsigned bad; } cases[] = {
        { "\"2026-11-24T02:25:46Z\"", 0 },
        { "\"2024-02-29T23:59:60.123456+14:00\"", 0 },
        { "\"2023-02-29T00:00:00Z\"", 1 },
        { "\"2026-11-24 02:25:46Z\"", 1 },
        { "\"2026-11-24T24:00:00Z\"", 1 },
        { "\"2026-11-24T02:25:46\"", 1 },
        { "\"2026-11-24T02:25:46.Z\"", 1 },
    };

    doc = doc_with("{\"format\":\"date-time\"}");
    assert_non_null(doc);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(body(doc, cases[i].v), cases[i].bad);
    }

    /* a format only checks strings */
    assert_int_equal(body(doc, "5"), 0);

    kordon_oa_free(doc);

    doc = doc_with("{\"format\":\"email\"}");
    assert_non_null(doc);
    assert_int_equal(body(doc, "\"ann.lee+x@mail.kordon.example\""), 0);
    assert_int_equal(body(doc, "\"ann@kordon\""), 1);
    assert_int_equal(body(doc, "\"a..b@kordon.example\""), 1);
    assert_int_equal(body(doc, "\"a@b@kordon.example\""), 1);
    assert_int_equal(body(doc, "\"ann@-kordon.example\""), 1);
    assert_int_equal(body(doc, "\"ann @kordon.example\""), 1);
    kordon_oa_free(doc);
}


static void
test_recursion_is_bounded(void **state)
{
    kordon_oa_doc_t  *doc;

    /* a schema that is only a reference to itself: compiles, never loops */
    doc = doc_with("{\"$ref\":\"#/components/schemas/S\"}");
    assert_non_null(doc);
    assert_int_equal(body(doc, "1"), 1);
    assert_error(0, "", "is nested too deeply for the schema");
    kordon_oa_free(doc);

    doc = doc_with("{\"type\":\"array\",\"items\":"
                   "{\"$ref\":\"#/components/schemas/S\"}}");
    assert_non_null(doc);
    assert_int_equal(body(doc, "[[[[]]],[]]"), 0);
    kordon_oa_free(doc);
}


static void
test_work_is_bounded(void **state)
{
    char              text[256];
    clock_t           start;
    kordon_oa_doc_t  *doc;

    /* two branches that both recurse: 2^depth evaluations unbounded */
    doc = doc_with("{\"oneOf\":[{\"items\":{\"$ref\":\"#/components/"
                   "schemas/S\"}},{\"items\":{\"$ref\":\"#/components/"
                   "schemas/S\"},\"maxItems\":5}]}");
    assert_non_null(doc);

    memset(text, '[', 60);
    memset(text + 60, ']', 60);
    text[120] = '\0';

    start = clock();
    assert_true(body(doc, text) >= 1);
    assert_true(clock() - start < CLOCKS_PER_SEC);
    assert_string_equal(REPORT.errors[0].message,
                        "is too costly to validate");

    kordon_oa_free(doc);
}


static void
test_nesting_limit(void **state)
{
    char              text[512];
    kordon_oa_doc_t  *doc;

    doc = doc_with("true");
    assert_non_null(doc);

    memset(text, '[', KORDON_OA_DEPTH_MAX);
    memset(text + KORDON_OA_DEPTH_MAX, ']', KORDON_OA_DEPTH_MAX);
    text[2 * KORDON_OA_DEPTH_MAX] = '\0';
    assert_int_equal(body(doc, text), 0);

    memset(text, '[', KORDON_OA_DEPTH_MAX + 1);
    memset(text + KORDON_OA_DEPTH_MAX + 1, ']', KORDON_OA_DEPTH_MAX + 1);
    text[2 * KORDON_OA_DEPTH_MAX + 2] = '\0';
    assert_int_equal(body(doc, text), 1);
    assert_error(0, "", "nests deeper than 64 levels");

    kordon_oa_free(doc);
}


static void
test_report_is_bounded(void **state)
{
    char              text[4096];
    size_t            len, i;
    kordon_oa_doc_t  *doc;

    doc = doc_with("{\"items\":{\"type\":\"string\"}}");
    assert_non_null(doc);

    len = 0;
    text[len++] = '[';

    for (i = 0; i < 100; i++) {
        len += snprintf(text + len, sizeof(text) - len, "%s%zu",
                        i ? "," : "", i);
    }

    text[len++] = ']';
    text[len] = '\0';

    assert_int_equal(body(doc, text), 100);
    assert_int_equal(REPORT.n, KORDON_OA_ERRORS_MAX);
    assert_int_equal(REPORT.total, 100);
    assert_error(31, "/31", "must be string");

    kordon_oa_free(doc);
}


static void
test_pattern_backtracking_is_bounded(void **state)
{
    char              text[128];
    clock_t           start;
    kordon_oa_doc_t  *doc;

    doc = doc_with("{\"pattern\":\"^(a+)+$\"}");
    assert_non_null(doc);

    memset(text, 'a', 60);
    memcpy(text, "\"", 1);
    memcpy(text + 60, "b\"", 3);

    start = clock();
    assert_int_equal(body(doc, text), 1);
    assert_true(clock() - start < CLOCKS_PER_SEC);

    assert_int_equal(body(doc, "\"aaaa\""), 0);

    kordon_oa_free(doc);
}


static const char *
header(void *data, const char *name, size_t *len)
{
    if (strcmp(name, "X-Count") == 0) {
        *len = 2;
        return "12";
    }

    return NULL;
}


static void
test_params(void **state)
{
    const char              *text, *q;
    kordon_oa_doc_t         *doc;
    kordon_oa_match_t        m;
    const kordon_oa_op_t    *op;
    const kordon_oa_path_t  *p;

    text = "{\"openapi\":\"3.1.0\",\"paths\":{\"/p/{n}\":{\"get\":{"
           "\"parameters\":["
           "{\"name\":\"n\",\"in\":\"path\",\"required\":true,"
           "\"schema\":{\"type\":\"integer\",\"minimum\":1}},"
           "{\"name\":\"q\",\"in\":\"query\",\"required\":true,"
           "\"schema\":{\"type\":\"string\",\"maxLength\":3}},"
           "{\"name\":\"f\",\"in\":\"query\","
           "\"schema\":{\"type\":\"number\",\"exclusiveMaximum\":1}},"
           "{\"name\":\"X-Count\",\"in\":\"header\",\"required\":true,"
           "\"schema\":{\"type\":\"integer\",\"maximum\":10}}]}}}}";

    doc = kordon_oa_load(text, strlen(text), &ERR);
    assert_non_null(doc);

    p = kordon_oa_match(doc, "/p/0", 4, &m);
    op = kordon_oa_operation(p, "GET", 3);
    assert_non_null(op);

    q = "f=0.5&q=a%20b";
    kordon_oa_report_init(&REPORT);
    assert_int_equal(kordon_oa_check_params(doc, op, &m, q, strlen(q),
                                            header, NULL, &REPORT), 2);
    assert_int_equal(REPORT.errors[0].in, KORDON_OA_IN_PATH);
    assert_string_equal(REPORT.errors[0].name, "n");
    assert_string_equal(REPORT.errors[0].message, "must be >= 1");
    assert_int_equal(REPORT.errors[1].in, KORDON_OA_IN_HEADER);
    assert_string_equal(REPORT.errors[1].message, "must be <= 10");

    p = kordon_oa_match(doc, "/p/5", 4, &m);
    q = "q=abcd&f=2&q";
    kordon_oa_report_init(&REPORT);
    assert_int_equal(kordon_oa_check_params(doc, op, &m, q, strlen(q),
                                            NULL, NULL, &REPORT), 3);
    assert_string_equal(REPORT.errors[0].message, "must appear once");
    assert_string_equal(REPORT.errors[1].name, "f");
    assert_string_equal(REPORT.errors[1].message, "must be < 1");
    assert_string_equal(REPORT.errors[2].message, "is required");

    kordon_oa_free(doc);
}


static void
test_media_types(void **state)
{
    const char              *text;
    kordon_oa_doc_t         *doc;
    kordon_oa_match_t        m;
    const kordon_oa_op_t    *op;

    text = "{\"openapi\":\"3.1.0\",\"paths\":{\"/m\":{\"post\":{"
           "\"x-kordon-max-body-size\":100,\"requestBody\":{\"content\":{"
           "\"application/merge-patch+json\":{\"schema\":{\"type\":"
           "\"object\"}},\"image/*\":{}}}}}}}";

    doc = kordon_oa_load(text, strlen(text), &ERR);
    assert_non_null(doc);

    op = kordon_oa_operation(kordon_oa_match(doc, "/m", 2, &m), "POST", 4);
    assert_int_equal(kordon_oa_body_max(op), 100);
    assert_false(kordon_oa_body_required(op));

#define OK(t)  kordon_oa_media_type_ok(op, t, strlen(t))
    assert_true(OK("application/merge-patch+json"));
    assert_true(OK(" Application/Merge-Patch+JSON ; charset=utf-8"));
    assert_true(OK("image/png"));
    assert_false(OK("image/"));
    assert_false(OK("application/json"));
    assert_false(OK(""));
#undef OK

    kordon_oa_report_init(&REPORT);
    assert_int_equal(kordon_oa_check_body(doc, op, "[]", 2, &REPORT), 1);
    assert_int_equal(kordon_oa_check_body(doc, op, "", 0, &REPORT), 0);

    kordon_oa_free(doc);
}


static size_t  MALLOCS;


static void *
counting_malloc(size_t size)
{
    MALLOCS++;
    return malloc(size);
}


/*
 * A body's values take no memory from jansson's allocator (the arena),
 * which is the caller's again afterwards; a body past the arena goes on
 * in that allocator and validates the same.
 */
static void
test_checks_use_the_arena(void **state)
{
    char             *big, *p;
    size_t            i;
    json_free_t       f;
    json_malloc_t     m;
    kordon_oa_doc_t  *doc;

    doc = doc_with("{\"type\":\"object\",\"properties\":{\"a\":{"
                   "\"type\":\"array\",\"items\":{\"type\":\"string\","
                   "\"maxLength\":3}}}}");
    assert_non_null(doc);

    json_set_alloc_funcs(counting_malloc, free);
    MALLOCS = 0;

    assert_int_equal(body(doc, "{\"a\":[\"x\",\"yy\",\"toolong\"]}"), 1);
    assert_string_equal(REPORT.errors[0].pointer, "/a/2");
    assert_int_equal(MALLOCS, 0);

    json_get_alloc_funcs(&m, &f);
    assert_true(m == counting_malloc && f == free);

    /* 20000 strings: some 1.3 MB of values, twenty times the arena */

    big = malloc(20000 * 6 + 64);
    assert_non_null(big);
    p = big + sprintf(big, "{\"a\":[");
    for (i = 0; i < 20000; i++) {
        p += sprintf(p, "\"x\",");
    }
    sprintf(p, "\"toolong\"]}");

    assert_int_equal(body(doc, big), 1);
    assert_string_equal(REPORT.errors[0].pointer, "/a/20000");
    assert_true(MALLOCS > 0);

    json_set_alloc_funcs(malloc, free);
    free(big);
    kordon_oa_free(doc);
}


/* a random JSON-ish text: mostly valid, sometimes one byte off */
static size_t
gen(char *buf, size_t size, unsigned depth)
{
    size_t       n, i, k;
    static const char  *atoms[] = {
        "0", "-0", "7", "-42", "123456789012345678", "1234567890123456789",
        "01", "1.5", "2e3", "-", "true", "false", "null", "tru", "nul",
        "\"\"", "\"abc\"", "\"a b\"", "\"a\\nb\"", "\"\xc3\xa9\"",
        "\"\\u0041\"", "\"x\ty\""
    };

    if (size < 64) {
        return 0;
    }

    switch (depth > 4 ? 2 : rand() % 3) {
    case 0:
        n = 0;
        buf[n++] = '{';
        k = (size_t) (rand() % 4);
        for (i = 0; i < k && size - n > 64; i++) {
            n += (size_t) snprintf(buf + n, size - n, "%s\"%c\" %s: ",
                                   i ? " ," : "", 'a' + rand() % 3,
                                   rand() % 8 ? "" : " ");
            n += gen(buf + n, size - n - 2, depth + 1);
        }
        buf[n++] = '}';
        return n;

    case 1:
        n = 0;
        buf[n++] = '[';
        k = (size_t) (rand() % 4);
        for (i = 0; i < k && size - n > 64; i++) {
            if (i) {
                buf[n++] = ',';
            }
            n += gen(buf + n, size - n - 2, depth + 1);
        }
        if (rand() % 16 == 0) {
            buf[n++] = ',';
        }
        buf[n++] = ']';
        return n;

    default:
        return (size_t) snprintf(buf, size, "%s",
                                 atoms[rand() % (sizeof(atoms)
                                                 / sizeof(atoms[0]))]);
    }
}


/*
 * kordon_oa_parse_fast() against json_loadb(): over 50,000 random
 * texts, whatever it takes jansson takes too, to an equal value; it
 * takes the plain ones and leaves escapes, non-ASCII, reals, leading
 * zeros, long integers, duplicates, trailing commas and deep nesting.
 */
static void
test_fast_parse_is_jansson(void **state)
{
    int            i, taken;
    char           buf[4096], deep[200];
    json_t        *f, *j;
    size_t         n;
    json_error_t   err;
    static const char   PLAIN[] =
        "{\"amount\": 1250, \"to\":\"x\", \"ok\":[true,null]}";
    static const char  *left[] = {
        "01", "1.5", "1e2", "12345678901234567890", "\"a\\n\"", "\"\xc3\xa9\"",
        "{\"a\":1,\"a\":2}", "[1,]", "{\"a\":1,}", "tru", "[1] x", "\"a\x01\"",
        "", " "
    };

    srand(777);
    taken = 0;

    for (i = 0; i < 50000; i++) {
        n = gen(buf, sizeof(buf), 0);
        f = kordon_oa_parse_fast(buf, n);
        j = json_loadb(buf, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);

        if (f != NULL) {
            taken++;
            if (j == NULL || !json_equal(f, j)) {
                fail_msg("fast took what jansson did not: %.*s", (int) n, buf);
            }
            json_decref(f);
        }

        json_decref(j);
    }

    assert_true(taken > 5000);

    f = kordon_oa_parse_fast(PLAIN, sizeof(PLAIN) - 1);
    assert_non_null(f);
    assert_int_equal(json_integer_value(json_object_get(f, "amount")), 1250);
    json_decref(f);

    for (i = 0; i < (int) (sizeof(left) / sizeof(left[0])); i++) {
        assert_null(kordon_oa_parse_fast(left[i], strlen(left[i])));
    }

    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_null(kordon_oa_parse_fast(deep, 200));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_load_errors_name_the_place),
        cmocka_unit_test(test_match_prefers_literals),
        cmocka_unit_test(test_types_and_bounds),
        cmocka_unit_test(test_every_problem_with_its_pointer),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_recursion_is_bounded),
        cmocka_unit_test(test_work_is_bounded),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_report_is_bounded),
        cmocka_unit_test(test_pattern_backtracking_is_bounded),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_checks_use_the_arena),
        cmocka_unit_test(test_fast_parse_is_jansson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
