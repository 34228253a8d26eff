/*
 * test_edge_events.c -- the request event's JSON encoder
 * (nginx-modules/kordon_events/kordon_events_core.c): every member with
 * its type, null for what a request lacks, escaping of quotes, controls
 * and invalid UTF-8 (the text always parses, checked with jansson, also
 * for random bytes), and the size bound that the nginx side allocates
 * from.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "../../nginx-modules/kordon_events/kordon_events_core.h"

#define STR(s)  ((kordon_events_str_t) { (const unsigned char *) (s), \
                                         sizeof(s) - 1 })


/* encodes e, checks the bound and returns the parsed object */
static json_t *
encode(const kordon_event_t *e)
{
    size_t          bound, n;
    json_t         *j;
    unsigned char  *buf;
    json_error_t    err;

    bound = kordon_events_json_len(e);
    buf = malloc(bound);
    assert_non_null(buf);
    memset(buf, 0xaa, bound);

    n = kordon_events_json(buf, e);
    assert_true(n < bound);
    assert_int_equal(buf[n - 1], '}');

    /* \u0000 is valid JSON; jansson wants to be told */
    j = json_loadb((const char *) buf, n, JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        fail_msg("not JSON: %s: %.*s", err.text, (int) n, buf);
    }

    free(buf);
    return j;
}


static kordon_event_t
full_event(void)
{
    kordon_event_t  e;

    memset(&e, 0, sizeof(e));
    e.time_ms = 1763951400123LL;     /* 2025-11-24T02:30:00.123Z */
    e.request_id = STR("0123456789abcdef0123456789abcdef");
    e.method = STR("POST");
    e.route = STR("/v1/transfers");
    e.status = 201;
    e.duration_ms = 12;
    e.upstream_ms = 9;
    e.bytes_sent = 512;
    e.bytes_received = 2048;
    e.user = STR("6f0c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b");
    e.api_key_id = STR("00112233aabbccdd");
    e.client_ip = STR("203.0.113.7");
    e.limit = STR("ok");
    e.cache = STR("BYPASS");

    return e;
}


static void
test_every_member(void **state)
{
    json_t          *j;
    kordon_event_t   e;

    e = full_event();
    j = encode(&e);

    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "edge.request");
    assert_string_equal(json_string_value(json_object_get(j, "time")),
                        "2025-11-24T02:30:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")),
                        "0123456789abcdef0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(j, "method")),
                        "POST");
    assert_string_equal(json_string_value(json_object_get(j, "route")),
                        "/v1/transfers");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 201);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")),
                     12);
    assert_int_equal(json_integer_value(json_object_get(j, "upstream_ms")),
                     9);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes_sent")),
                     512);
    assert_int_equal(json_integer_value(json_object_get(j,
                                                        "bytes_received")),
                     2048);
    assert_string_equal(json_string_value(json_object_get(j, "user")),
                        "6f0c1a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_string_equal(json_string_value(json_object_get(j, "api_key_id")),
                        "00112233aabbccdd");
    assert_string_equal(json_string_value(json_object_get(j, "client_ip")),
                        "203.0.113.7");
    assert_string_equal(json_string_value(json_object_get(j, "limit")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "cache")),
                        "BYPASS");
    assert_int_equal(json_object_size(j), 15);

    json_decref(j);
}


static void
test_missing_parts_are_null(void **state)
{
    json_t          *j;
    kordon_event_t   e;

    e = full_event();
    e.user.len = 0;
    e.api_key_id.len = 0;
    e.limit.len = 0;
    e.cache.len = 0;
    e.route.len = 0;
    e.upstream_ms = -1;

    j = encode(&e);

    assert_true(json_is_null(json_object_get(j, "user")));
    assert_true(json_is_null(json_object_get(j, "api_key_id")));
    assert_true(json_is_null(json_object_get(j, "limit")));
    assert_true(json_is_null(json_object_get(j, "cache")));
    assert_true(json_is_null(json_object_get(j, "route")));
    assert_true(json_is_null(json_object_get(j, "upstream_ms")));

    json_decref(j);
}


static void
test_hostile_strings_stay_json(void **state)
{
    json_t          *j;
    kordon_event_t   e;

    static const unsigned char  method[] = "G\"E\\T\n\r\t\x01\x7f";
    static const unsigned char  bad_utf8[] = "a\xff" "b\xc3" "c\xed\xa0\x80"
                                             "d\xf4\x90\x80\x80" "e\xc0\xaf";
    static const unsigned char  good_utf8[] = "\xc3\xa9\xe2\x82\xac"
                                              "\xf0\x9f\x92\xb8";

    e = full_event();
    e.method = (kordon_events_str_t) { method, sizeof(method) - 1 };
    e.user = (kordon_events_str_t) { bad_utf8, sizeof(bad_utf8) - 1 };
    e.route = (kordon_events_str_t) { good_utf8, sizeof(good_utf8) - 1 };

    j = encode(&e);

    assert_string_equal(json_string_value(json_object_get(j, "method")),
                        "G\"E\\T\n\r\t\x01\x7f");
    assert_string_equal(json_string_value(json_object_get(j, "user")),
                        "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd"
                        "\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "e\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(j, "route")),
                        (const char *) good_utf8);

    json_decref(j);
}


static void
test_escape_len_matches(void **state)
{
    size_t          i, n;
    unsigned char   src[256], dst[256 * 6];

    for (i = 0; i < sizeof(src); i++) {
        src[i] = (unsigned char) i;
    }

    n = kordon_events_escape(dst, src, sizeof(src)) - dst;
    assert_int_equal(n, kordon_events_escape_len(src, sizeof(src)));
}


static void
test_extremes_fit_the_bound(void **state)
{
    json_t          *j;
    kordon_event_t   e;

    e = full_event();
    e.status = 999;
    e.duration_ms = INT64_MAX;
    e.upstream_ms = INT64_MAX;
    e.bytes_sent = INT64_MAX;
    e.bytes_received = INT64_MAX;
    e.time_ms = 253402300799999LL;   /* 9999-12-31T23:59:59.999Z */

    j = encode(&e);
    assert_string_equal(json_string_value(json_object_get(j, "time")),
                        "9999-12-31T23:59:59.999Z");
    assert_int_equal(json_integer_value(json_object_get(j, "duration_ms")),
                     INT64_MAX);
    json_decref(j);
}


/*
 * The hand-written UTC time agrees with gmtime() over 20000 random
 * instants from 1970 to 9999 and the calendar's corners (leap days,
 * century years), and integers with printf's "%lld".
 */
static void
test_time_and_numbers_as_libc(void **state)
{
    int             i;
    char            want[64];
    time_t          sec;
    json_t         *j;
    int64_t         ms;
    struct tm       tm;
    kordon_event_t  e;
    static const int64_t  corners[] = {
        0, 951782400000LL, 951868799999LL, 4107542400000LL,
        4107456000000LL, 1709164800123LL, 253402300799999LL
    };

    srand(4242);

    for (i = 0; i < 20000 + (int) (sizeof(corners) / sizeof(corners[0]));
         i++)
    {
        if (i < 20000) {
            ms = (((int64_t) rand() << 31) ^ rand()) % 253402300800000LL;
        } else {
            ms = corners[i - 20000];
        }

        sec = (time_t) (ms / 1000);
        gmtime_r(&sec, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int) (ms % 1000));

        e = full_event();
        e.time_ms = ms;
        e.duration_ms = ms * (i % 2 ? -1 : 1);
        e.status = (unsigned) i;

        j = encode(&e);
        assert_string_equal(json_string_value(json_object_get(j, "time")),
                            want);
        assert_int_equal(json_integer_value(json_object_get(j,
                                                            "duration_ms")),
                         e.duration_ms);
        assert_int_equal(json_integer_value(json_object_get(j, "status")),
                         i);
        json_decref(j);
    }
}


/* runs of plain bytes and the bytes around them, escaped exactly */
static void
test_escape_runs(void **state)
{
    size_t          n;
    unsigned char   dst[256];
    static const unsigned char  src[] =
        "plain \"q\" back\\slash\ttab\x01" "ctl\x7f\xc3\xa9t\xc3\xa9\xff"
        "end";
    static const char  want[] =
        "plain \\\"q\\\" back\\\\slash\\ttab\\u0001ctl\\u007f\xc3\xa9t\xc3\xa9"
        "\xef\xbf\xbd" "end";

    n = kordon_events_escape(dst, src, sizeof(src) - 1) - dst;
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(dst, want, n);
    assert_int_equal(n, kordon_events_escape_len(src, sizeof(src) - 1));
}


/*
 * Random bytes in every string member, 20000 times (a fixed seed, so a
 * failure repeats): the text stays within the bound and always parses.
 */
static void
test_random_bytes_always_json(void **state)
{
    int             i, k;
    size_t          len[5];
    unsigned char   buf[5][64];
    json_t         *j;
    kordon_event_t  e;

    srand(20261124);

    for (i = 0; i < 20000; i++) {
        for (k = 0; k < 5; k++) {
            len[k] = (size_t) (rand() % 64);
            for (size_t n = 0; n < len[k]; n++) {
                /* half the time plain ASCII, else any byte */
                buf[k][n] = (unsigned char) (rand() % 2 ? rand() % 128
                                                         : rand() % 256);
            }
        }

        e = full_event();
        e.method = (kordon_events_str_t) { buf[0], len[0] };
        e.route = (kordon_events_str_t) { buf[1], len[1] };
        e.user = (kordon_events_str_t) { buf[2], len[2] };
        e.limit = (kordon_events_str_t) { buf[3], len[3] };
        e.cache = (kordon_events_str_t) { buf[4], len[4] };

        j = encode(&e);
        assert_int_equal(json_object_size(j), 15);
        json_decref(j);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_every_member),
        cmocka_unit_test(test_missing_parts_are_null),
        cmocka_unit_test(test_hostile_strings_stay_json),
        cmocka_unit_test(test_escape_len_matches),
        cmocka_unit_test(test_time_and_numbers_as_libc),
        cmocka_unit_test(test_escape_runs),
        cmocka_unit_test(test_extremes_fit_the_bound),
        cmocka_unit_test(test_random_bytes_always_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
