/*
 * test_cache.c -- the pure parts of the edge's Redis response cache
 * (nginx-modules/kordon_cache/kordon_cache_core.c): path and query
 * normalization, the key, Cache-Control parsing and the TTL rule, tags,
 * and the stored entry's format round trip and its malformed forms.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../nginx-modules/kordon_cache/kordon_cache_core.h"


static void
path_is(const char *in, const char *want)
{
    char    out[256];
    size_t  n;

    memset(out, '#', sizeof(out));
    n = kordon_cache_path_normalize(in, strlen(in), out);
    assert_true(n <= strlen(in) + 1 || (strlen(in) == 0 && n == 1));
    assert_int_equal(out[strlen(in) + 1], '#');   /* nothing written past */
    out[n] = '\0';
    assert_string_equal(out, want);
}


static void
query_is(const char *in, const char *want)
{
    char  out[256];
    long  n;

    n = kordon_cache_query_normalize(in, strlen(in), out);
    assert_true(n >= 0);
    out[n] = '\0';
    assert_string_equal(out, want);
}


static void
key_of(const char *method, const char *path, const char *query,
    const char *user, char *out)
{
    char  p[256], q[256];
    long  qn;
    size_t pn;

    pn = kordon_cache_path_normalize(path, strlen(path), p);
    qn = kordon_cache_query_normalize(query, strlen(query), q);
    assert_true(qn >= 0);
    assert_int_equal(kordon_cache_key(method, strlen(method), p, pn, q,
                                      (size_t) qn, user, strlen(user), out),
                     0);
    out[KORDON_CACHE_KEY_LEN] = '\0';
}


static kordon_cache_cc_t
cc_of(const char *a, const char *b)
{
    kordon_cache_cc_t  cc;

    kordon_cache_cc_init(&cc);
    kordon_cache_cc_parse(&cc, a, strlen(a));
    if (b) {
        kordon_cache_cc_parse(&cc, b, strlen(b));
    }

    return cc;
}


static void
test_path_collapses_slashes_and_dots(void **state)
{
    path_is("/a//b///c", "/a/b/c");
    path_is("/a/./b/../c", "/a/c");
    path_is("/../../x", "/x");
    path_is("/a/b/..", "/a");
    path_is("/a/b/", "/a/b/");
    path_is("//", "/");
    path_is("", "/");
    path_is("a/b", "/a/b");
    path_is("/a/..b/.c", "/a/..b/.c");       /* not dot segments */
    path_is("a/", "/a/");                      /* len + 1 bytes at most */
    path_is("\xb1" "a/c", "/\xb1" "a/c");         /* found by cache_fuzz */
}


static void
test_query_sorted_by_name_stable(void **state)
{
    query_is("b=2&a=1", "a=1&b=2");
    query_is("a=2&a=1", "a=2&a=1");           /* repeated names keep order */
    query_is("&&c&b=&a=1&", "a=1&b=&c");
    query_is("ab=1&a=2", "a=2&ab=1");         /* "a" sorts before "ab" */
    query_is("", "");
}


static void
test_query_bound(void **state)
{
    char    in[1024], out[1024];
    size_t  n, i;

    n = 0;
    for (i = 0; i < KORDON_CACHE_QUERY_PARAMS_MAX + 1; i++) {
        n += (size_t) snprintf(in + n, sizeof(in) - n, "p%zu=1&", i);
    }

    assert_int_equal(kordon_cache_query_normalize(in, n, out), -1);
}


static void
test_key_same_for_equivalent_requests(void **state)
{
    char  a[128], b[128], c[128], d[128], e[128];

    key_of("GET", "/v1//x/./y", "b=2&a=1", "", a);
    key_of("GET", "/v1/x/y", "a=1&b=2", "", b);
    assert_string_equal(a, b);
    assert_memory_equal(a, KORDON_CACHE_KEY_PREFIX,
                        sizeof(KORDON_CACHE_KEY_PREFIX) - 1);
    assert_int_equal(strlen(a), KORDON_CACHE_KEY_LEN);

    key_of("GET", "/v1/x/y", "a=1&b=2", "user-1", c);
    key_of("GET", "/v1/x/y", "a=1&b=2", "user-2", d);
    assert_string_not_equal(b, c);
    assert_string_not_equal(c, d);

    /* lengths are part of the form: moving a byte between parts counts */
    key_of("GET", "/v1/x/y", "a=1&b=2u", "ser-1", e);
    assert_string_not_equal(c, e);
}


static void
test_cache_control(void **state)
{
    kordon_cache_cc_t  cc;

    cc = cc_of("public, max-age=60", NULL);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, -1);
    assert_false(cc.no_store || cc.private_ || cc.no_cache);

    cc = cc_of("Max-Age=30 , S-MaxAge=\"10\"", NULL);
    assert_int_equal(cc.max_age, 30);
    assert_int_equal(cc.s_maxage, 10);

    cc = cc_of("max-age=5", "no-store");
    assert_true(cc.no_store);

    cc = cc_of("private=\"Set-Cookie, X-A\", max-age=9", NULL);
    assert_true(cc.private_);
    assert_int_equal(cc.max_age, 9);

    cc = cc_of("max-age=abc", NULL);
    assert_int_equal(cc.max_age, 0);

    cc = cc_of("max-age=99999999999999999999", NULL);
    assert_int_equal(cc.max_age, 31536000);

    cc = cc_of("no-storex, xprivate, max-ages=3", NULL);
    assert_false(cc.no_store || cc.private_);
    assert_int_equal(cc.max_age, -1);
}


static void
test_ttl_rule(void **state)
{
    kordon_cache_cc_t  cc;

    cc = cc_of("", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 60000);

    cc = cc_of("max-age=5", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 5000);

    cc = cc_of("max-age=500", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 60000);

    cc = cc_of("max-age=50, s-maxage=2", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 2000);

    cc = cc_of("max-age=0", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 0);

    cc = cc_of("no-cache", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 1), 0);

    cc = cc_of("private, max-age=7", NULL);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 0), 0);
    assert_int_equal(kordon_cache_ttl_ms(&cc, 60000, 1), 7000);
}


static void
test_tags(void **state)
{
    char  long_tag[KORDON_CACHE_TAG_LEN_MAX + 2];

    assert_true(kordon_cache_tag_valid("user:42.orders-v1_x", 19));
    assert_false(kordon_cache_tag_valid("", 0));
    assert_false(kordon_cache_tag_valid("a b", 3));
    assert_false(kordon_cache_tag_valid("a*", 2));

    memset(long_tag, 'a', sizeof(long_tag));
    assert_true(kordon_cache_tag_valid(long_tag, KORDON_CACHE_TAG_LEN_MAX));
    assert_false(kordon_cache_tag_valid(long_tag,
                                        KORDON_CACHE_TAG_LEN_MAX + 1));
}


static void
vary_is(const char *in, const char *want)
{
    char    out[256];
    size_t  n;

    n = kordon_cache_vary_value(in, strlen(in), out);
    assert_true(n <= strlen(in));
    out[n] = '\0';
    assert_string_equal(out, want);
}


static void
test_vary_value_and_key(void **state)
{
    char  a[KORDON_CACHE_KEY_LEN + 1], b[KORDON_CACHE_KEY_LEN + 1];

    vary_is("en", "en");
    vary_is("  en  ", "en");
    vary_is("en ,  fr", "en,fr");
    vary_is("en-US;q=0.8,\t fr", "en-US;q=0.8,fr");
    vary_is("a   b\t\tc", "a b c");
    vary_is("   ", "");
    vary_is("FR", "FR");

    /* no vary part is the four-part key; an empty one is not */
    assert_int_equal(kordon_cache_key("GET", 3, "/a", 2, "", 0, "", 0, a),
                     0);
    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "", 0,
                                           NULL, 0, b), 0);
    assert_memory_equal(a, b, KORDON_CACHE_KEY_LEN);

    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "", 0,
                                           "", 0, b), 0);
    assert_memory_not_equal(a, b, KORDON_CACHE_KEY_LEN);

    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "", 0,
                                           "l\0=en\0", 6, a), 0);
    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "", 0,
                                           "l\0=fr\0", 6, b), 0);
    assert_memory_not_equal(a, b, KORDON_CACHE_KEY_LEN);

    /* the user and the vary part never run into each other */
    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "u", 1,
                                           "x", 1, a), 0);
    assert_int_equal(kordon_cache_key_vary("GET", 3, "/a", 2, "", 0, "ux", 2,
                                           "", 0, b), 0);
    assert_memory_not_equal(a, b, KORDON_CACHE_KEY_LEN);
}


static void
test_tags_parse(void **state)
{
    long                 n;
    char                 many[KORDON_CACHE_TAGS_MAX * 3 + 8];
    size_t               i, len;
    kordon_cache_str_t   tags[KORDON_CACHE_TAGS_MAX];

    n = kordon_cache_tags_parse("orders", 6, tags, KORDON_CACHE_TAGS_MAX);
    assert_int_equal(n, 1);
    assert_int_equal(tags[0].len, 6);

    n = kordon_cache_tags_parse(" user:42, orders\tx ", 19, tags,
                                KORDON_CACHE_TAGS_MAX);
    assert_int_equal(n, 3);
    assert_memory_equal(tags[0].data, "user:42", 7);
    assert_memory_equal(tags[1].data, "orders", 6);
    assert_memory_equal(tags[2].data, "x", 1);

    /* the whole message or nothing */
    assert_int_equal(kordon_cache_tags_parse("", 0, tags, 16), -1);
    assert_int_equal(kordon_cache_tags_parse(" , ", 3, tags, 16), -1);
    assert_int_equal(kordon_cache_tags_parse("ok b*d", 6, tags, 16), -1);
    assert_int_equal(kordon_cache_tags_parse("ok\nx", 4, tags, 16), -1);

    len = 0;
    for (i = 0; i <= KORDON_CACHE_TAGS_MAX; i++) {
        len += (size_t) sprintf(many + len, "t%zu ", i % 10);
    }

    assert_int_equal(kordon_cache_tags_parse(many, len - 3, tags,
                                             KORDON_CACHE_TAGS_MAX),
                     KORDON_CACHE_TAGS_MAX);
    assert_int_equal(kordon_cache_tags_parse(many, len, tags,
                                             KORDON_CACHE_TAGS_MAX), -1);
}


static void
test_entry_round_trip(void **state)
{
    char                   buf[512], *end;
    kordon_cache_entry_t   e, got;

    memset(&e, 0, sizeof(e));
    e.status = 203;
    e.stored = 1795000000;
    e.nheaders = 2;
    e.headers[0] = (kordon_cache_header_t) { "Content-Type", 12,
                                             "application/json", 16 };
    e.headers[1] = (kordon_cache_header_t) { "ETag", 4, "\"x:y\"", 5 };
    e.body = "{\"a\":\"b\nc\"}";
    e.body_len = strlen(e.body);

    end = kordon_cache_entry_write(buf, &e);
    assert_true((size_t) (end - buf) <= kordon_cache_entry_size(&e));

    assert_int_equal(kordon_cache_entry_parse(buf, (size_t) (end - buf),
                                              &got), 0);
    assert_int_equal(got.status, 203);
    assert_int_equal(got.stored, 1795000000);
    assert_int_equal(got.nheaders, 2);
    assert_memory_equal(got.headers[1].value, "\"x:y\"", 5);
    assert_int_equal(got.body_len, e.body_len);
    assert_memory_equal(got.body, e.body, e.body_len);

    /* cut anywhere: never a valid entry */
    for (size_t n = 0; n < (size_t) (end - buf); n++) {
        assert_int_equal(kordon_cache_entry_parse(buf, n, &got), -1);
    }
}


static void
test_entry_malformed(void **state)
{
    kordon_cache_entry_t  got;
    const char           *bad[] = {
        "",
        "KC2 200 1 0 0\n",
        "KC1 200 0 0\n",                 /* three numbers */
        "KC1 200 1 0 1\n",               /* body shorter than said */
        "KC1 200 1 0 0\nx",              /* longer */
        "KC1 99 1 0 0\n",
        "KC1 200 1 33 0\n",
        "KC1 200 1 1 0\nNoColon\n",
        "KC1 200 1 1 0\n: v\n",
        "KC1 200 1 x 0\n",
        "KC1 200 1 0 99999999999999999999999\n",
        "KC1 200  1 0 0\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kordon_cache_entry_parse(bad[i], strlen(bad[i]),
                                                  &got), -1);
    }

    assert_int_equal(kordon_cache_entry_parse("KC1 204 7 0 0\n", 14, &got),
                     0);
    assert_int_equal(got.status, 204);
    assert_int_equal(got.stored, 7);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_path_collapses_slashes_and_dots),
        cmocka_unit_test(test_query_sorted_by_name_stable),
        cmocka_unit_test(test_query_bound),
        cmocka_unit_test(test_key_same_for_equivalent_requests),
        cmocka_unit_test(test_cache_control),
        cmocka_unit_test(test_ttl_rule),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_vary_value_and_key),
        cmocka_unit_test(test_tags_parse),
        cmocka_unit_test(test_entry_round_trip),
        cmocka_unit_test(test_entry_malformed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
