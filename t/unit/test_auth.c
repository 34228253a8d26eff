/*
 * test_auth.c -- the pure parts of API keys and revocations
 * (nginx-modules/kordon_jwt/kordon_auth_core.c): the X-Api-Key format,
 * Redis stream ids, nbf, hex digests, the roles and scopes of a key
 * record.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../nginx-modules/kordon_jwt/kordon_auth_core.h"


#define GOOD_SECRET  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define GOOD_KEY     "kdk_0123456789abcdef_" GOOD_SECRET


static int
parse(const char *s)
{
    const char  *id, *secret;

    return kordon_apikey_parse(s, strlen(s), &id, &secret);
}


static void
test_apikey_well_formed(void **state)
{
    const char  *id, *secret;

    assert_int_equal(kordon_apikey_parse(GOOD_KEY, strlen(GOOD_KEY), &id,
                                         &secret), 0);
    assert_memory_equal(id, "0123456789abcdef", 16);
    assert_memory_equal(secret, GOOD_SECRET, 43);

    assert_int_equal(parse("kdk_ffffffffffffffff_"
                           "abcdefghijklmnopqrstuvwxyz-_ABCDEFGHIJKLMNw"), 0);
}


static void
test_apikey_malformed(void **state)
{
    /* wrong prefix, case, lengths, alphabet, separator, padding bits */
    assert_int_equal(parse(""), -1);
    assert_int_equal(parse("KDK_0123456789abcdef_" GOOD_SECRET), -1);
    assert_int_equal(parse("kdk_0123456789ABCDEF_" GOOD_SECRET), -1);
    assert_int_equal(parse("kdk_0123456789abcde_A" GOOD_SECRET), -1);
    assert_int_equal(parse("kdk_0123456789abcdef_" GOOD_SECRET "A"), -1);
    assert_int_equal(parse("kdk_0123456789abcdef-" GOOD_SECRET), -1);
    assert_int_equal(parse("kdk_0123456789abcdeg_" GOOD_SECRET), -1);
    assert_int_equal(parse("kdk_0123456789abcdef_"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+"), -1);
    assert_int_equal(parse("kdk_0123456789abcdef_"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), -1);
    assert_int_equal(parse("kdk_0123456789abcdef_"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"), -1);
    assert_int_equal(kordon_apikey_parse(GOOD_KEY, strlen(GOOD_KEY) - 1,
                                         NULL, NULL), -1);
}


static void
test_stream_ids(void **state)
{
    uint64_t  ms, seq;

    assert_int_equal(kordon_stream_id_parse("1700000000000-5", 15, &ms, &seq),
                     0);
    assert_true(ms == 1700000000000ULL && seq == 5);

    assert_int_equal(kordon_stream_id_parse("0", 1, &ms, &seq), 0);
    assert_true(ms == 0 && seq == 0);

    assert_int_equal(kordon_stream_id_parse("18446744073709551615-"
                                            "18446744073709551615", 41,
                                            &ms, &seq), 0);
    assert_true(ms == UINT64_MAX && seq == UINT64_MAX);

    assert_int_equal(kordon_stream_id_parse("18446744073709551616", 20,
                                            &ms, &seq), -1);
    assert_int_equal(kordon_stream_id_parse("", 0, &ms, &seq), -1);
    assert_int_equal(kordon_stream_id_parse("-1", 2, &ms, &seq), -1);
    assert_int_equal(kordon_stream_id_parse("1-", 2, &ms, &seq), -1);
    assert_int_equal(kordon_stream_id_parse("1-2-3", 5, &ms, &seq), -1);
    assert_int_equal(kordon_stream_id_parse(" 1", 2, &ms, &seq), -1);

    assert_int_equal(kordon_stream_id_cmp(1, 9, 2, 0), -1);
    assert_int_equal(kordon_stream_id_cmp(2, 1, 2, 0), 1);
    assert_int_equal(kordon_stream_id_cmp(2, 1, 2, 1), 0);
}


static void
test_nbf(void **state)
{
    int64_t  v;

    assert_int_equal(kordon_auth_parse_uint("1700000000", 10, &v), 0);
    assert_true(v == 1700000000);
    assert_int_equal(kordon_auth_parse_uint("999999999999999999", 18, &v),
                     0);
    assert_int_equal(kordon_auth_parse_uint("1000000000000000000", 19, &v),
                     -1);
    assert_int_equal(kordon_auth_parse_uint("-1", 2, &v), -1);
    assert_int_equal(kordon_auth_parse_uint("+1", 2, &v), -1);
    assert_int_equal(kordon_auth_parse_uint("1.5", 3, &v), -1);
    assert_int_equal(kordon_auth_parse_uint("", 0, &v), -1);
}


static void
test_hex32(void **state)
{
    unsigned char  out[32];
    const char    *hex = "00ff10AB000000000000000000000000"
                         "000000000000000000000000000000fe";

    assert_int_equal(kordon_auth_hex32(hex, 64, out), 0);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[3], 0xab);
    assert_int_equal(out[31], 0xfe);

    assert_int_equal(kordon_auth_hex32(hex, 63, out), -1);
    assert_int_equal(kordon_auth_hex32("g0000000000000000000000000000000"
                                       "00000000000000000000000000000000",
                                       64, out), -1);
}


static void
test_roles(void **state)
{
    char  out[KORDON_AUTH_ROLES_MAX];
    char  big[KORDON_AUTH_ROLE_MAX + 2];

    assert_int_equal(kordon_auth_roles_join("user support", 12, out,
                                            sizeof(out)), 12);
    assert_memory_equal(out, "user,support", 12);

    assert_int_equal(kordon_auth_roles_join(" admin,, user ", 14, out,
                                            sizeof(out)), 10);
    assert_memory_equal(out, "admin,user", 10);

    assert_int_equal(kordon_auth_roles_join("", 0, out, sizeof(out)), 0);
    assert_int_equal(kordon_auth_roles_join("a\"b", 3, out, sizeof(out)),
                     -1);
    assert_int_equal(kordon_auth_roles_join("a\r\nb", 4, out, sizeof(out)),
                     -1);
    assert_int_equal(kordon_auth_roles_join("abc def", 7, out, 5), -1);

    memset(big, 'r', sizeof(big));
    assert_int_equal(kordon_auth_roles_join(big, KORDON_AUTH_ROLE_MAX, out,
                                            sizeof(out)),
                     KORDON_AUTH_ROLE_MAX);
    assert_int_equal(kordon_auth_roles_join(big, KORDON_AUTH_ROLE_MAX + 1,
                                            out, sizeof(out)), -1);
}


static void
test_scopes_and_owner(void **state)
{
    assert_int_equal(kordon_auth_scopes_check("read write", 10), 0);
    assert_int_equal(kordon_auth_scopes_check("", 0), 0);
    assert_int_equal(kordon_auth_scopes_check(" read", 5), -1);
    assert_int_equal(kordon_auth_scopes_check("read ", 5), -1);
    assert_int_equal(kordon_auth_scopes_check("read  write", 11), -1);
    assert_int_equal(kordon_auth_scopes_check("re\"ad", 5), -1);
    assert_int_equal(kordon_auth_scopes_check("re\nad", 5), -1);

    assert_int_equal(kordon_auth_owner_check(
        "0b6f1a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b", 36), 0);
    assert_int_equal(kordon_auth_owner_check("", 0), -1);
    assert_int_equal(kordon_auth_owner_check("u 1", 3), -1);
    assert_int_equal(kordon_auth_owner_check("u\r\n1", 4), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_apikey_well_formed),
        cmocka_unit_test(test_apikey_malformed),
        cmocka_unit_test(test_stream_ids),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_hex32),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_scopes_and_owner),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
