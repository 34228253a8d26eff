/*
 * test_config.c -- kit_config_load() and kit_env_*(): defaults, missing
 * and malformed variables, ranges, IPv4-only listen addresses, and the
 * edge secret file (missing, too short, not hex, too long, trimmed).
 * Each failure must name the variable or file, and no message may show
 * the secret.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kit.h"
#include "kit_internal.h"

/* 32 bytes, hex */
#define SECRET_HEX \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static char  dir[] = "/tmp/kit-test-config-XXXXXX";
static char  secret_path[256];
static char  err[512];


static void
write_file(const char *path, const char *text)
{
    FILE  *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


static int
setup(void **state)
{
    static const char *const  vars[] = {
        "KORDON_DATABASE_URL", "KAFKA_BOOTSTRAP", "KORDON_THREADS",
        "KORDON_DB_POOL_SIZE", "KORDON_BODY_MAX", "KORDON_REQUEST_TIMEOUT_S",
        "KORDON_SIGNATURE_SKEW_S", "KORDON_LOG_LEVEL", "KIT_TEST_VAR",
    };
    size_t                    i;

    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    setenv("KORDON_LISTEN", "127.0.0.1:18001", 1);
    write_file(secret_path, SECRET_HEX "\n");
    setenv("KORDON_EDGE_SECRET_FILE", secret_path, 1);
    err[0] = '\0';
    return 0;
}


static int
group_setup(void **state)
{
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    return 0;
}


static int
group_teardown(void **state)
{
    unlink(secret_path);
    rmdir(dir);
    return 0;
}


/* Loads and expects failure with a message containing want. */
static void
load_fails(int need_db, int need_kafka, const char *want)
{
    kit_config_t  cf;

    if (kit_config_load(&cf, need_db, need_kafka, err, sizeof(err)) == 0) {
        kit_config_free(&cf);
        fail_msg("loaded, expected \"%s\"", want);
    }
    if (strstr(err, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    }
    assert_null(strstr(err, SECRET_HEX));
}


static void
test_defaults(void **state)
{
    kit_config_t  cf;

    assert_int_equal(kit_config_load(&cf, 0, 0, err, sizeof(err)), 0);
    assert_string_equal(cf.listen_host, "127.0.0.1");
    assert_int_equal(cf.listen_port, 18001);
    assert_null(cf.database_url);
    assert_null(cf.kafka_bootstrap);
    assert_int_equal(cf.edge_secret_len, 32);
    assert_int_equal(cf.edge_secret[0], 0x00);
    assert_int_equal(cf.edge_secret[31], 0x1f);
    assert_int_equal(cf.threads, 4);
    assert_int_equal(cf.db_pool_size, 4);
    assert_int_equal(cf.body_max, 65536);
    assert_int_equal(cf.request_timeout_s, 30);
    assert_int_equal(cf.signature_skew_s, 60);
    assert_int_equal(cf.log_level, KIT_LOG_INFO);
    kit_config_free(&cf);
    assert_int_equal(cf.edge_secret_len, 0);
    assert_int_equal(cf.edge_secret[31], 0);
}


static void
test_all_set(void **state)
{
    kit_config_t  cf;

    setenv("KORDON_LISTEN", "0.0.0.0:65535", 1);
    setenv("KORDON_DATABASE_URL", "postgresql:///kordon", 1);
    setenv("KAFKA_BOOTSTRAP", "127.0.0.1:9092,127.0.0.1:9093", 1);
    setenv("KORDON_THREADS", "64", 1);
    setenv("KORDON_DB_POOL_SIZE", "1", 1);
    setenv("KORDON_BODY_MAX", "16777216", 1);
    setenv("KORDON_REQUEST_TIMEOUT_S", "300", 1);
    setenv("KORDON_SIGNATURE_SKEW_S", "1", 1);
    setenv("KORDON_LOG_LEVEL", "debug", 1);
    assert_int_equal(kit_config_load(&cf, 1, 1, err, sizeof(err)), 0);
    assert_string_equal(cf.listen_host, "0.0.0.0");
    assert_int_equal(cf.listen_port, 65535);
    assert_string_equal(cf.database_url, "postgresql:///kordon");
    assert_string_equal(cf.kafka_bootstrap, "127.0.0.1:9092,127.0.0.1:9093");
    assert_int_equal(cf.threads, 64);
    assert_int_equal(cf.db_pool_size, 1);
    assert_int_equal(cf.body_max, 16777216);
    assert_int_equal(cf.request_timeout_s, 300);
    assert_int_equal(cf.signature_skew_s, 1);
    assert_int_equal(cf.log_level, KIT_LOG_DEBUG);
    kit_config_free(&cf);
}


static void
test_missing(void **state)
{
    load_fails(1, 0, "environment variable \"KORDON_DATABASE_URL\" is not "
               "set");
    load_fails(0, 1, "environment variable \"KAFKA_BOOTSTRAP\" is not set");
    setenv("KORDON_DATABASE_URL", "", 1);
    load_fails(1, 0, "\"KORDON_DATABASE_URL\" is not set");
    unsetenv("KORDON_LISTEN");
    load_fails(0, 0, "environment variable \"KORDON_LISTEN\" is not set");
    setenv("KORDON_LISTEN", "127.0.0.1:1", 1);
    unsetenv("KORDON_EDGE_SECRET_FILE");
    load_fails(0, 0, "\"KORDON_EDGE_SECRET_FILE\" is not set");
}


static void
test_listen(void **state)
{
    static const char *const  bad[] = {
        "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:80x", "127.0.0.1: 80",
        "127.0.0.1:-1",
    };
    size_t                    i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("KORDON_LISTEN", bad[i], 1);
        load_fails(0, 0, "environment variable \"KORDON_LISTEN\" is "
                   "malformed: expected host:port");
    }
    setenv("KORDON_LISTEN", "localhost:8080", 1);
    load_fails(0, 0, "host \"localhost\" is not an IPv4 address");
    setenv("KORDON_LISTEN", "[::1]:8080", 1);
    load_fails(0, 0, "is not an IPv4 address");
    setenv("KORDON_LISTEN", "256.0.0.1:8080", 1);
    load_fails(0, 0, "is not an IPv4 address");
}


static void
test_ranges(void **state)
{
    setenv("KORDON_THREADS", "0", 1);
    load_fails(0, 0, "environment variable \"KORDON_THREADS\" is out of "
               "range: expected 1..64");
    setenv("KORDON_THREADS", "65", 1);
    load_fails(0, 0, "\"KORDON_THREADS\" is out of range");
    setenv("KORDON_THREADS", "4x", 1);
    load_fails(0, 0, "environment variable \"KORDON_THREADS\" is malformed: "
               "expected an integer");
    setenv("KORDON_THREADS", " 4", 1);
    load_fails(0, 0, "\"KORDON_THREADS\" is malformed");
    setenv("KORDON_THREADS", "99999999999999999999999", 1);
    load_fails(0, 0, "\"KORDON_THREADS\" is malformed");
    unsetenv("KORDON_THREADS");

    setenv("KORDON_DB_POOL_SIZE", "65", 1);
    load_fails(0, 0, "\"KORDON_DB_POOL_SIZE\" is out of range");
    unsetenv("KORDON_DB_POOL_SIZE");
    setenv("KORDON_BODY_MAX", "16777217", 1);
    load_fails(0, 0, "\"KORDON_BODY_MAX\" is out of range: expected "
               "1..16777216");
    unsetenv("KORDON_BODY_MAX");
    setenv("KORDON_REQUEST_TIMEOUT_S", "0", 1);
    load_fails(0, 0, "\"KORDON_REQUEST_TIMEOUT_S\" is out of range");
    unsetenv("KORDON_REQUEST_TIMEOUT_S");
    setenv("KORDON_SIGNATURE_SKEW_S", "601", 1);
    load_fails(0, 0, "\"KORDON_SIGNATURE_SKEW_S\" is out of range");
    unsetenv("KORDON_SIGNATURE_SKEW_S");
    setenv("KORDON_LOG_LEVEL", "verbose", 1);
    load_fails(0, 0, "environment variable \"KORDON_LOG_LEVEL\" is "
               "malformed");
}


static void
test_secret_file(void **state)
{
    char  text[300];

    setenv("KORDON_EDGE_SECRET_FILE", "/nonexistent/kordon-secret", 1);
    load_fails(0, 0, "could not read edge secret file "
               "\"/nonexistent/kordon-secret\": No such file");
    setenv("KORDON_EDGE_SECRET_FILE", secret_path, 1);

    write_file(secret_path, "00010203040506070809000102030405\n");
    load_fails(0, 0, "is too short: 16 bytes, expected at least 32");
    write_file(secret_path, "");
    load_fails(0, 0, "is too short: 0 bytes");
    write_file(secret_path, "zz" SECRET_HEX "\n");
    load_fails(0, 0, "is malformed: expected hex digits");
    write_file(secret_path, SECRET_HEX "0\n");
    load_fails(0, 0, "is malformed");
    write_file(secret_path, "00 " SECRET_HEX);
    load_fails(0, 0, "is malformed");
    snprintf(text, sizeof(text), "%s%s00", SECRET_HEX SECRET_HEX,
             SECRET_HEX SECRET_HEX);
    write_file(secret_path, text);
    load_fails(0, 0, "is too long");
}


static void
test_secret_trimmed(void **state)
{
    kit_config_t  cf;

    write_file(secret_path, "  \n\t" SECRET_HEX SECRET_HEX "\r\n\n");
    assert_int_equal(kit_config_load(&cf, 0, 0, err, sizeof(err)), 0);
    assert_int_equal(cf.edge_secret_len, 64);
    assert_int_equal(cf.edge_secret[32], 0x00);
    assert_int_equal(cf.edge_secret[63], 0x1f);
    kit_config_free(&cf);
}


static void
test_env_helpers(void **state)
{
    const char  *s;
    long         v;

    assert_int_equal(kit_env_str("KIT_TEST_VAR", "dflt", &s, err,
                                 sizeof(err)), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(kit_env_str("KIT_TEST_VAR", NULL, &s, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "environment variable \"KIT_TEST_VAR\" is not "
                        "set");

    setenv("KIT_TEST_VAR", "-5", 1);
    assert_int_equal(kit_env_int("KIT_TEST_VAR", NULL, -10, 10, &v, err,
                                 sizeof(err)), 0);
    assert_int_equal(v, -5);
    assert_int_equal(kit_env_int("KIT_TEST_VAR", NULL, 0, 10, &v, err,
                                 sizeof(err)), -1);
    assert_string_equal(err, "environment variable \"KIT_TEST_VAR\" is out "
                        "of range: expected 0..10");
    unsetenv("KIT_TEST_VAR");
    assert_int_equal(kit_env_int("KIT_TEST_VAR", "7", 0, 10, &v, err,
                                 sizeof(err)), 0);
    assert_int_equal(v, 7);

    /* A message that does not fit is cut, never overflows. */
    assert_int_equal(kit_env_str("KIT_TEST_VAR", NULL, &s, err, 10), -1);
    assert_int_equal(strlen(err), 9);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_all_set, setup),
        cmocka_unit_test_setup(test_missing, setup),
        cmocka_unit_test_setup(test_listen, setup),
        cmocka_unit_test_setup(test_ranges, setup),
        cmocka_unit_test_setup(test_secret_file, setup),
        cmocka_unit_test_setup(test_secret_trimmed, setup),
        cmocka_unit_test_setup(test_env_helpers, setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
