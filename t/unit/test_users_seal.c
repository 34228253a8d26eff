/*
 * test_users_seal.c -- backends/users/secret.c's users_seal/users_unseal,
 * which keep TOTP secrets sealed at rest: a round trip; a random nonce
 * (the same text seals differently each time); the text nowhere in the
 * output; and refusal when anything differs -- the key, the label, the
 * associated data (the row's id), any bit of the sealed value, its
 * length -- or when the text does not fit.
 *
 * secret.c is compiled into the test itself, as the ledger's tests do.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/users/secret.c"

users_config_t  users_cf;

static const uint8_t  key[32] = "0123456789abcdef0123456789abcde";
static const uint8_t  other[32] = "0123456789abcdef0123456789abcdX";
static const char     label[] = "kordon users totp seal v1";
static const char     id[] = "01890000-0000-7000-8000-000000000001";
static const char     b32[] = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";


static void
test_round_trip(void **state)
{
    char  hex[USERS_SEAL_HEX_MAX], out[64];

    (void) state;
    assert_int_equal(users_seal(key, sizeof(key), label, id, b32, hex,
                                sizeof(hex)), 0);
    assert_int_equal(strlen(hex), 2 * (12 + strlen(b32) + 16));
    assert_int_equal(users_unseal(key, sizeof(key), label, id, hex, out,
                                  sizeof(out)), 0);
    assert_string_equal(out, b32);
}


static void
test_nonce_is_random(void **state)
{
    char  a[USERS_SEAL_HEX_MAX], b[USERS_SEAL_HEX_MAX], hex[80];

    (void) state;
    assert_int_equal(users_seal(key, sizeof(key), label, id, b32, a,
                                sizeof(a)), 0);
    assert_int_equal(users_seal(key, sizeof(key), label, id, b32, b,
                                sizeof(b)), 0);
    assert_string_not_equal(a, b);
    users_hex((const uint8_t *) b32, 16, hex);
    assert_null(strstr(a, hex));
    assert_null(strstr(a, "JBSWY3DP"));
}


static void
test_anything_else_refused(void **state)
{
    char    hex[USERS_SEAL_HEX_MAX], bad[USERS_SEAL_HEX_MAX], out[64];
    size_t  i, n;

    (void) state;
    assert_int_equal(users_seal(key, sizeof(key), label, id, b32, hex,
                                sizeof(hex)), 0);
    assert_int_equal(users_unseal(other, sizeof(other), label, id, hex, out,
                                  sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(users_unseal(key, sizeof(key), "another use", id, hex,
                                  out, sizeof(out)), -1);
    assert_int_equal(users_unseal(key, sizeof(key), label,
                                  "01890000-0000-7000-8000-000000000002",
                                  hex, out, sizeof(out)), -1);
    /* Every hex digit flipped in turn: nonce, ciphertext and tag. */
    n = strlen(hex);
    for (i = 0; i < n; i++) {
        strcpy(bad, hex);
        bad[i] = bad[i] == '0' ? '1' : '0';
        assert_int_equal(users_unseal(key, sizeof(key), label, id, bad, out,
                                      sizeof(out)), -1);
    }
    strcpy(bad, hex);
    bad[n - 2] = '\0';
    assert_int_equal(users_unseal(key, sizeof(key), label, id, bad, out,
                                  sizeof(out)), -1);
    assert_int_equal(users_unseal(key, sizeof(key), label, id, "", out,
                                  sizeof(out)), -1);
    assert_int_equal(users_unseal(key, sizeof(key), label, id, "zz", out,
                                  sizeof(out)), -1);
    /* The text must fit the caller's buffer. */
    assert_int_equal(users_unseal(key, sizeof(key), label, id, hex, out,
                                  strlen(b32)), -1);
}


static void
test_limits(void **state)
{
    char  hex[USERS_SEAL_HEX_MAX], big[USERS_SEAL_TEXT_MAX + 2];

    (void) state;
    assert_int_equal(users_seal(key, sizeof(key), label, id, "", hex,
                                sizeof(hex)), -1);
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(users_seal(key, sizeof(key), label, id, big, hex,
                                sizeof(hex)), -1);
    big[USERS_SEAL_TEXT_MAX] = '\0';
    assert_int_equal(users_seal(key, sizeof(key), label, id, big, hex,
                                sizeof(hex)), 0);
    assert_int_equal(users_seal(key, sizeof(key), label, id, b32, hex, 40),
                     -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nonce_is_random),
        cmocka_unit_test(test_anything_else_refused),
        cmocka_unit_test(test_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
