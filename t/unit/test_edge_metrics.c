/*
 * test_edge_metrics.c -- the nginx-free part of the edge's request
 * metrics (nginx-modules/kordon/kordon_metrics_core.c): histogram
 * buckets at and around each bound, cumulative reads that end at the
 * count, route slots by name and their limit, the fixed label sets, the
 * lock-free table of limit names, label escaping.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../nginx-modules/kordon/kordon_metrics_core.h"

#define S(s)  (const unsigned char *) (s), strlen(s)


static void
test_bucket_bounds_are_inclusive(void **state)
{
    assert_int_equal(kordon_histogram_bucket(0), 0);
    assert_int_equal(kordon_histogram_bucket(5), 0);
    assert_int_equal(kordon_histogram_bucket(6), 1);
    assert_int_equal(kordon_histogram_bucket(10), 1);
    assert_int_equal(kordon_histogram_bucket(250), 5);
    assert_int_equal(kordon_histogram_bucket(251), 6);
    assert_int_equal(kordon_histogram_bucket(10000), 10);
    assert_int_equal(kordon_histogram_bucket(10001), 11);
    assert_int_equal(kordon_histogram_bucket(UINT64_MAX), 11);
    assert_string_equal(kordon_histogram_le[11], "+Inf");
    assert_string_equal(kordon_histogram_le[0], "0.005");
}


static void
test_histogram_read_is_cumulative(void **state)
{
    uint64_t            c[KORDON_HISTOGRAM_BUCKETS], sum;
    unsigned            i;
    kordon_histogram_t  h;

    memset(&h, 0, sizeof(h));

    kordon_histogram_observe(&h, 1);
    kordon_histogram_observe(&h, 7);
    kordon_histogram_observe(&h, 7);
    kordon_histogram_observe(&h, 300);
    kordon_histogram_observe(&h, 60000);

    kordon_histogram_read(&h, c, &sum);

    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 3);
    assert_int_equal(c[5], 3);
    assert_int_equal(c[6], 4);
    assert_int_equal(c[10], 4);
    assert_int_equal(c[11], 5);
    assert_int_equal(sum, 1 + 7 + 7 + 300 + 60000);

    for (i = 1; i < KORDON_HISTOGRAM_BUCKETS; i++) {
        assert_true(c[i] >= c[i - 1]);
    }
}


static void
test_seconds_text(void **state)
{
    char  buf[32];

    assert_int_equal(kordon_metrics_seconds(buf, 0), 5);
    assert_string_equal(buf, "0.000");
    kordon_metrics_seconds(buf, 1234);
    assert_string_equal(buf, "1.234");
    kordon_metrics_seconds(buf, 5);
    assert_string_equal(buf, "0.005");
}


static void
test_route_slots_by_name_and_full_table(void **state)
{
    char                  long_name[400];
    kordon_metrics_shm_t  *sh;

    sh = calloc(1, kordon_metrics_shm_size(4));
    assert_non_null(sh);
    kordon_metrics_shm_init(sh, 4);

    assert_int_equal(sh->routes[0].name_len, 5);
    assert_memory_equal(sh->routes[0].name, "other", 5);

    assert_int_equal(kordon_metrics_route_slot(sh, S("/a")), 1);
    assert_int_equal(kordon_metrics_route_slot(sh, S("/b")), 2);
    assert_int_equal(kordon_metrics_route_slot(sh, S("/a")), 1);

    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(kordon_metrics_route_slot(sh, S(long_name)), 3);
    assert_int_equal(sh->routes[3].name_len, KORDON_METRICS_ROUTE_LEN_MAX);

    /* four slots: "other" and three names; the next name is "other" */
    assert_int_equal(kordon_metrics_route_slot(sh, S("/c")), 0);
    assert_int_equal(kordon_metrics_route_slot(sh, S("/b")), 2);

    free(sh);
}


static void
test_fixed_label_sets(void **state)
{
    assert_int_equal(kordon_metrics_method_index(S("GET")), 0);
    assert_int_equal(kordon_metrics_method_index(S("PATCH")), 4);
    assert_int_equal(kordon_metrics_method_index(S("get")), 7);
    assert_int_equal(kordon_metrics_method_index(S("PROPFIND")), 7);

    assert_int_equal(kordon_metrics_class_index(101), 0);
    assert_int_equal(kordon_metrics_class_index(204), 1);
    assert_int_equal(kordon_metrics_class_index(499), 3);
    assert_int_equal(kordon_metrics_class_index(599), 4);
    assert_int_equal(kordon_metrics_class_index(0), 5);
    assert_int_equal(kordon_metrics_class_index(600), 5);

    assert_int_equal(kordon_metrics_auth_index(S("")), -1);
    assert_int_equal(kordon_metrics_auth_index(S("expired")), 2);
    assert_int_equal(kordon_metrics_auth_index(S("bad_api_key")), 10);
    assert_int_equal(kordon_metrics_auth_index(S("user-42")), 11);

    assert_int_equal(kordon_metrics_cache_index(S("HIT")), 0);
    assert_int_equal(kordon_metrics_cache_index(S("miss")), 1);
    assert_int_equal(kordon_metrics_cache_index(S("BYPASS")), 2);
    assert_int_equal(kordon_metrics_cache_index(S("STALE")), -1);
    assert_int_equal(kordon_metrics_cache_index(S("")), -1);
}


static void
test_limit_names_bounded(void **state)
{
    char                   name[32];
    unsigned               i;
    kordon_metrics_shm_t  *sh;

    sh = calloc(1, kordon_metrics_shm_size(1));
    assert_non_null(sh);
    kordon_metrics_shm_init(sh, 1);

    kordon_metrics_limit_count(sh, S("limited:per_ip"));
    kordon_metrics_limit_count(sh, S("limited:per_ip"));
    kordon_metrics_limit_count(sh, S("error:per_ip"));
    kordon_metrics_limit_count(sh, S("ok"));
    kordon_metrics_limit_count(sh, S(""));
    kordon_metrics_limit_count(sh, S("limited:"));

    assert_int_equal(sh->limits[0].state, KORDON_METRICS_SLOT_READY);
    assert_memory_equal(sh->limits[0].name, "per_ip", 6);
    assert_int_equal(sh->limits[0].limited, 2);
    assert_int_equal(sh->limits[0].errors, 1);
    assert_int_equal(sh->limits[1].state, KORDON_METRICS_SLOT_FREE);

    /* a client that controls the name cannot grow the table */
    for (i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "limited:n%u", i);
        kordon_metrics_limit_count(sh, S(name));
    }

    assert_int_equal(sh->limits[KORDON_METRICS_LIMITS_MAX - 1].state,
                     KORDON_METRICS_SLOT_READY);
    assert_int_equal(sh->limits[KORDON_METRICS_LIMITS_MAX].limited,
                     500 - (KORDON_METRICS_LIMITS_MAX - 1));

    free(sh);
}


static void
test_label_escape(void **state)
{
    unsigned char  out[64];
    size_t         n;

    n = kordon_metrics_label_escape(out, S("~ ^/a\"b\\c\nd$"));
    assert_int_equal(n, 15);
    assert_memory_equal(out, "~ ^/a\\\"b\\\\c\\nd$", n);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_bucket_bounds_are_inclusive),
        cmocka_unit_test(test_histogram_read_is_cumulative),
        cmocka_unit_test(test_seconds_text),
        cmocka_unit_test(test_route_slots_by_name_and_full_table),
        cmocka_unit_test(test_fixed_label_sets),
        cmocka_unit_test(test_limit_names_bounded),
        cmocka_unit_test(test_label_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
