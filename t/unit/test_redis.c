/*
 * test_redis.c -- the pure parts of the edge's Redis client
 * (nginx-modules/kordon_redis/kordon_redis_core.c): the reconnect
 * backoff and when it resets, the stall rule across a wrapping clock,
 * the commands a shared connection refuses, server names and password
 * files, and the command formatter against hiredis's own (the same bytes
 * for 20,000 random commands).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "../../nginx-modules/kordon_redis/kordon_redis_core.h"


static int
refused(const char *a0, const char *a1)
{
    const char  *argv[2] = { a0, a1 };

    return kordon_redis_command_refused(a1 ? 2 : 1, argv, NULL);
}


static void
test_backoff_doubles_to_the_cap(void **state)
{
    size_t     i;
    uintptr_t  backoff = KORDON_REDIS_BACKOFF_MIN_MS;
    uintptr_t  want[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000 };

    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(kordon_redis_retry_delay(0, 0, &backoff), want[i]);
    }

    assert_int_equal(backoff, KORDON_REDIS_BACKOFF_MAX_MS);
}


static void
test_backoff_out_of_range_is_clamped(void **state)
{
    uintptr_t  backoff = 0;

    assert_int_equal(kordon_redis_retry_delay(0, 0, &backoff), 100);
    assert_int_equal(backoff, 200);

    backoff = 1000000;
    assert_int_equal(kordon_redis_retry_delay(0, 0, &backoff), 5000);
    assert_int_equal(backoff, 5000);
}


static void
test_a_stable_connection_is_retried_at_once(void **state)
{
    uintptr_t  backoff = KORDON_REDIS_BACKOFF_MIN_MS;

    /* ready long enough: no delay, backoff untouched */
    assert_int_equal(kordon_redis_retry_delay(1, 1000, &backoff), 0);
    assert_int_equal(kordon_redis_retry_delay(1, 86400000, &backoff), 0);
    assert_int_equal(backoff, KORDON_REDIS_BACKOFF_MIN_MS);

    /* ready, but only briefly: a server that accepts and hangs up must
     * not be reconnected in a loop */
    assert_int_equal(kordon_redis_retry_delay(1, 999, &backoff), 100);
    assert_int_equal(kordon_redis_retry_delay(1, 10, &backoff), 200);

    /* never ready: the time says nothing */
    assert_int_equal(kordon_redis_retry_delay(0, 5000, &backoff), 400);
}


static void
test_stalled(void **state)
{
    /* nothing read since the send, or read just before it */
    assert_true(kordon_redis_stalled(1000, 1000));
    assert_true(kordon_redis_stalled(999, 1000));

    /* a read after the send: Redis is alive, the command is slow */
    assert_false(kordon_redis_stalled(1001, 1000));

    /* the millisecond clock wraps between send and read */
    assert_false(kordon_redis_stalled(5, UINTPTR_MAX - 5));
    assert_true(kordon_redis_stalled(UINTPTR_MAX - 10, 5));
}


static void
test_refused_commands(void **state)
{
    const char  *argv[2] = { "SUBSCRIBEx", "reply" };
    size_t       argvlen[2] = { 9, 5 };

    assert_true(refused("SUBSCRIBE", NULL));
    assert_true(refused("psubscribe", NULL));
    assert_true(refused("Monitor", NULL));
    assert_true(refused("MULTI", NULL));
    assert_true(refused("exec", NULL));
    assert_true(refused("SELECT", "2"));
    assert_true(refused("AUTH", "x"));
    assert_true(refused("HELLO", "3"));
    assert_true(refused("QUIT", NULL));
    assert_true(refused("BLPOP", "q"));
    assert_true(refused("wait", "1"));
    assert_true(refused("CLIENT", "REPLY"));

    assert_false(refused("GET", "k"));
    assert_false(refused("EVALSHA", "abc"));
    assert_false(refused("PING", NULL));
    assert_false(refused("CLIENT", "LIST"));
    assert_false(refused("SUBSCRIBER", NULL));
    assert_false(refused("LPOP", "q"));
    assert_false(kordon_redis_command_refused(0, NULL, NULL));

    /* lengths, not NUL bytes, end the arguments */
    assert_true(kordon_redis_command_refused(1, argv, argvlen));
    argvlen[0] = 10;
    assert_false(kordon_redis_command_refused(1, argv, argvlen));
    argv[0] = "client";
    argvlen[0] = 6;
    assert_true(kordon_redis_command_refused(2, argv, argvlen));
}


static void
test_names(void **state)
{
    char  name[KORDON_REDIS_NAME_MAX + 1];

    assert_int_equal(kordon_redis_name_check((const unsigned char *) "main",
                                             4), KORDON_REDIS_OK);
    assert_int_equal(kordon_redis_name_check(
                         (const unsigned char *) "rate-limits_2.eu", 16),
                     KORDON_REDIS_OK);
    assert_int_equal(kordon_redis_name_check((const unsigned char *) "", 0),
                     KORDON_REDIS_EEMPTY);
    assert_int_equal(kordon_redis_name_check((const unsigned char *) "a b",
                                             3), KORDON_REDIS_EBADCHAR);
    assert_int_equal(kordon_redis_name_check((const unsigned char *) "a\"b",
                                             3), KORDON_REDIS_EBADCHAR);

    memset(name, 'n', sizeof(name));
    assert_int_equal(kordon_redis_name_check((const unsigned char *) name,
                                             KORDON_REDIS_NAME_MAX),
                     KORDON_REDIS_OK);
    assert_int_equal(kordon_redis_name_check((const unsigned char *) name,
                                             KORDON_REDIS_NAME_MAX + 1),
                     KORDON_REDIS_ETOOLONG);
}


static int
password(const char *text, size_t size, size_t *len)
{
    return kordon_redis_password((const unsigned char *) text, size, len);
}


static void
test_password_files(void **state)
{
    char    big[KORDON_REDIS_PASSWORD_MAX + 2];
    size_t  len = 7;

    assert_int_equal(password("s3cret\n", 7, &len), KORDON_REDIS_OK);
    assert_int_equal(len, 6);
    assert_int_equal(password("s3cret\r\n", 8, &len), KORDON_REDIS_OK);
    assert_int_equal(len, 6);
    assert_int_equal(password("s3cret", 6, &len), KORDON_REDIS_OK);
    assert_int_equal(len, 6);
    assert_int_equal(password("with space\n", 11, &len), KORDON_REDIS_OK);
    assert_int_equal(len, 10);

    len = 99;
    assert_int_equal(password("", 0, &len), KORDON_REDIS_EEMPTY);
    assert_int_equal(password("\n", 1, &len), KORDON_REDIS_EEMPTY);
    assert_int_equal(password("\r\n", 2, &len), KORDON_REDIS_EEMPTY);
    assert_int_equal(password("a\n\n", 3, &len), KORDON_REDIS_EBADCHAR);
    assert_int_equal(password("a\nb\n", 4, &len), KORDON_REDIS_EBADCHAR);
    assert_int_equal(password("a\0b", 3, &len), KORDON_REDIS_EBADCHAR);
    assert_int_equal(len, 99);

    memset(big, 'p', sizeof(big));
    big[KORDON_REDIS_PASSWORD_MAX] = '\n';
    assert_int_equal(password(big, KORDON_REDIS_PASSWORD_MAX + 1, &len),
                     KORDON_REDIS_OK);
    assert_int_equal(len, KORDON_REDIS_PASSWORD_MAX);
    memset(big, 'p', sizeof(big));
    assert_int_equal(password(big, sizeof(big), &len),
                     KORDON_REDIS_ETOOLONG);
}


static void
test_strerror(void **state)
{
    int  rc;

    for (rc = KORDON_REDIS_OK; rc >= KORDON_REDIS_ELAST; rc--) {
        assert_non_null(kordon_redis_strerror(rc));
    }

    assert_string_equal(kordon_redis_strerror(1), "unknown error");
    assert_string_equal(kordon_redis_strerror(KORDON_REDIS_ELAST - 1),
                        "unknown error");
}


/* the bytes of kordon_redis_format() and of redisFormatCommandArgv() */
static void
same_as_hiredis(size_t argc, const char **argv, const size_t *argvlen)
{
    int             len;
    char           *want;
    size_t          n;
    unsigned char  *buf, *end;

    len = redisFormatCommandArgv(&want, (int) argc, argv, argvlen);
    assert_true(len > 0);

    n = kordon_redis_format_len(argc, argv, argvlen);
    assert_int_equal(n, (size_t) len);

    buf = malloc(n + 1);
    assert_non_null(buf);
    buf[n] = 0x5a;

    end = kordon_redis_format(buf, argc, argv, argvlen);
    assert_ptr_equal(end, buf + n);
    assert_memory_equal(buf, want, n);
    assert_int_equal(buf[n], 0x5a);

    free(buf);
    redisFreeCommand(want);
}


static void
test_format_known(void **state)
{
    unsigned char  buf[64];
    const char    *get[] = { "GET", "k" };
    const char    *bin[] = { "SET", "a\r\n\0b", "" };
    size_t         binlen[] = { 3, 5, 0 };

    assert_int_equal(kordon_redis_format_len(2, get, NULL), 20);
    assert_memory_equal(buf, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
                        kordon_redis_format(buf, 2, get, NULL) - buf);

    same_as_hiredis(2, get, NULL);
    same_as_hiredis(3, bin, binlen);
}


static void
test_format_random_against_hiredis(void **state)
{
    char         *arg;
    size_t        i, k, argc, len[16];
    const char   *argv[16];
    static char   bytes[20000];

    srandom(6);

    for (i = 0; i < sizeof(bytes); i++) {
        bytes[i] = (char) random();
    }

    for (i = 0; i < 20000; i++) {
        argc = 1 + random() % 16;

        for (k = 0; k < argc; k++) {
            /* lengths across the digit boundaries: 0-9, 10-99, 100-... */
            len[k] = random() % (i % 3 == 0 ? 10 : i % 3 == 1 ? 100 : 12000);
            arg = bytes + random() % (sizeof(bytes) - len[k]);
            argv[k] = arg;
        }

        same_as_hiredis(argc, argv, len);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_backoff_out_of_range_is_clamped),
        cmocka_unit_test(test_a_stable_connection_is_retried_at_once),
        cmocka_unit_test(test_stalled),
        cmocka_unit_test(test_refused_commands),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_password_files),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_format_random_against_hiredis),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
