/*
 * test_limit.c -- the pure parts of the rate limits
 * (nginx-modules/kordon_limit/kordon_limit_core.c): GCRA's decisions,
 * remaining and retry times at the edges of a burst, the undo of a
 * request, exactness over a long run, "rate=" parsing, the sizing of a
 * local zone (1,000,000 keys within 128 MiB), Redis keys and the
 * guard's growing lockout.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../nginx-modules/kordon_limit/kordon_limit_core.h"


#define NS  1000000000ULL
#define MS  1000000ULL


static void
test_a_burst_then_refused_with_retry_after(void **state)
{
    int                   i;
    uint64_t              tat, now;
    kordon_gcra_t         g = { 10 * NS, 3 };      /* 6/m, burst 3 */
    kordon_gcra_result_t  r;

    tat = 0;
    now = 1000 * NS;

    for (i = 0; i < 3; i++) {
        kordon_gcra(&g, tat, now, &r);
        assert_true(r.allowed);
        assert_int_equal(r.remaining, 2 - i);
        assert_int_equal(r.reset_after, (uint64_t) (i + 1) * 10 * NS);
        assert_int_equal(r.retry_after, 0);
        tat = r.tat;
    }

    kordon_gcra(&g, tat, now, &r);
    assert_false(r.allowed);
    assert_int_equal(r.tat, tat);                  /* nothing taken */
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after, 10 * NS);
    assert_int_equal(r.reset_after, 30 * NS);

    /* one nanosecond early: still refused; on time: admitted */

    kordon_gcra(&g, tat, now + 10 * NS - 1, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after, 1);

    kordon_gcra(&g, tat, now + 10 * NS, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 0);
}


static void
test_an_idle_key_is_a_full_bucket(void **state)
{
    kordon_gcra_t         g = { 100 * MS, 5 };
    kordon_gcra_result_t  r;

    /* a TAT long past counts as now: the full burst again */

    kordon_gcra(&g, 5 * NS, 60 * NS, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 4);
    assert_int_equal(r.tat, 60 * NS + 100 * MS);
}


static void
test_the_long_run_admits_exactly_the_rate(void **state)
{
    uint64_t              tat, now, admitted;
    kordon_gcra_t         g = { 100 * MS, 20 };    /* 10/s, burst 20 */
    kordon_gcra_result_t  r;

    /* a request every millisecond for 60 s: burst + rate * 60 s */

    tat = 0;
    admitted = 0;

    for (now = NS; now <= 61 * NS; now += MS) {
        kordon_gcra(&g, tat, now, &r);
        if (r.allowed) {
            admitted++;
            tat = r.tat;
        }
    }

    assert_int_equal(admitted, 20 + 600);
}


static void
test_undo_gives_back_one_request(void **state)
{
    uint64_t              tat;
    kordon_gcra_t         g = { 10 * NS, 1 };
    kordon_gcra_result_t  r;

    kordon_gcra(&g, 0, 100 * NS, &r);
    assert_true(r.allowed);

    tat = kordon_gcra_undo(&g, r.tat);
    kordon_gcra(&g, tat, 100 * NS, &r);
    assert_true(r.allowed);

    assert_int_equal(kordon_gcra_undo(&g, 5), 0);
}


static int
rate(const char *text, uint64_t *n, uint64_t *period)
{
    return kordon_limit_parse_rate((const unsigned char *) text,
                                   strlen(text), n, period);
}


static void
test_rates(void **state)
{
    uint64_t  n = 0, period = 0;

    assert_int_equal(rate("10/s", &n, &period), 0);
    assert_int_equal(n, 10);
    assert_int_equal(period, 1);

    assert_int_equal(rate("600r/m", &n, &period), 0);
    assert_int_equal(n, 600);
    assert_int_equal(period, 60);

    assert_int_equal(rate("1000000/s", &n, &period), 0);

    n = 7;
    assert_int_equal(rate("0/s", &n, &period), -1);
    assert_int_equal(rate("1000001/s", &n, &period), -1);
    assert_int_equal(rate("10/h", &n, &period), -1);
    assert_int_equal(rate("10", &n, &period), -1);
    assert_int_equal(rate("/s", &n, &period), -1);
    assert_int_equal(rate("10/ss", &n, &period), -1);
    assert_int_equal(rate("-1/s", &n, &period), -1);
    assert_int_equal(n, 7);
}


static void
test_intervals(void **state)
{
    assert_int_equal(kordon_limit_interval(10, 1, NS), 100 * MS);
    assert_int_equal(kordon_limit_interval(6, 60, NS), 10 * NS);
    assert_int_equal(kordon_limit_interval(3, 1, 1000000), 333333);
    assert_int_equal(kordon_limit_interval(1000000, 1, 1000000), 1);
    assert_int_equal(kordon_limit_interval(3, 1, 1), 1);   /* never 0 */
}


static void
test_a_million_keys_fit_in_128_mib(void **state)
{
    uint64_t  size;

    size = kordon_limit_zone_size(1000000);

    assert_true(size <= 128ULL * 1024 * 1024);
    assert_true(size < 65ULL * 1024 * 1024);            /* 64.4 MiB */
    assert_true(kordon_limit_zone_keys(size) >= 1000000);
    assert_true(kordon_limit_zone_keys(128ULL * 1024 * 1024) >= 2000000);

    /* the two agree, to a page of keys */

    assert_true(kordon_limit_zone_keys(kordon_limit_zone_size(5000))
                >= 5000);
    assert_true(kordon_limit_zone_keys(kordon_limit_zone_size(5000))
                < 5000 + 2 * 64);
    assert_int_equal(kordon_limit_zone_keys(4096), 0);
}


static void
test_redis_keys(void **state)
{
    unsigned char  buf[512], key[300], sha1[20];
    size_t         n;

    n = kordon_limit_redis_key(buf, "kordon:limit:",
                               (const unsigned char *) "api", 3,
                               (const unsigned char *) "10.0.0.1", 8, NULL);
    assert_int_equal(n, kordon_limit_redis_key_len("kordon:limit:", 3, 8));
    assert_memory_equal(buf, "kordon:limit:api:10.0.0.1", n);

    memset(key, 'k', sizeof(key));
    memset(sha1, 0xab, sizeof(sha1));

    assert_false(kordon_limit_redis_key_hashed(KORDON_LIMIT_REDIS_KEY_RAW));
    assert_true(kordon_limit_redis_key_hashed(KORDON_LIMIT_REDIS_KEY_RAW
                                              + 1));

    n = kordon_limit_redis_key(buf, "kordon:limit:",
                               (const unsigned char *) "api", 3, key,
                               sizeof(key), sha1);
    assert_int_equal(n, kordon_limit_redis_key_len("kordon:limit:", 3,
                                                   sizeof(key)));
    assert_int_equal(n, 17 + 1 + 40);
    assert_memory_equal(buf, "kordon:limit:api:#abababab", 26);
}


static void
test_header_seconds(void **state)
{
    kordon_gcra_t  g = { 100 * MS, 20 };
    kordon_gcra_t  one = { 10 * MS, 1 };

    assert_int_equal(kordon_limit_seconds(0, NS), 0);
    assert_int_equal(kordon_limit_seconds(1, NS), 1);
    assert_int_equal(kordon_limit_seconds(NS, NS), 1);
    assert_int_equal(kordon_limit_seconds(NS + 1, NS), 2);
    assert_int_equal(kordon_limit_window(&g, NS), 2);
    assert_int_equal(kordon_limit_window(&one, NS), 1);
}


static void
test_lockout_grows_to_the_cap(void **state)
{
    assert_int_equal(kordon_limit_lockout(4, 5, 30, 3600), 0);
    assert_int_equal(kordon_limit_lockout(5, 5, 30, 3600), 30);
    assert_int_equal(kordon_limit_lockout(6, 5, 30, 3600), 60);
    assert_int_equal(kordon_limit_lockout(7, 5, 30, 3600), 120);
    assert_int_equal(kordon_limit_lockout(12, 5, 30, 3600), 3600);
    assert_int_equal(kordon_limit_lockout(1000000, 5, 30, 3600), 3600);
}


static void
test_names(void **state)
{
    assert_true(kordon_limit_name_ok((const unsigned char *) "api-v1_x", 8));
    assert_false(kordon_limit_name_ok((const unsigned char *) "a\"b", 3));
    assert_false(kordon_limit_name_ok((const unsigned char *) "a:b", 3));
    assert_false(kordon_limit_name_ok((const unsigned char *) "", 0));
    assert_false(kordon_limit_name_ok((const unsigned char *)
                                      "0123456789012345678901234567890123",
                                      33));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_then_refused_with_retry_after),
        cmocka_unit_test(test_an_idle_key_is_a_full_bucket),
        cmocka_unit_test(test_the_long_run_admits_exactly_the_rate),
        cmocka_unit_test(test_undo_gives_back_one_request),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_a_million_keys_fit_in_128_mib),
        cmocka_unit_test(test_redis_keys),
        cmocka_unit_test(test_header_seconds),
        cmocka_unit_test(test_lockout_grows_to_the_cap),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, 0, 0);
}
