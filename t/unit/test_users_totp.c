/*
 * test_users_totp.c -- backends/users/totp.c: TOTP codes checked against
 * RFC 6238's published vectors and against codes liboath computes for a
 * fresh secret; the +-1 step window and nothing wider; a code accepted
 * once (the matched step is returned and an older or equal step is
 * refused); malformed codes and secrets; the otpauth:// URI; recovery
 * codes (format, uniqueness, hashing, typing slack, single use).
 *
 * totp.c is compiled into the test itself, as the ledger's tests do.
 */

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/users/totp.c"

/* RFC 6238 appendix B: the SHA-1 seed "12345678901234567890", base32. */
#define RFC_SECRET      "12345678901234567890"
#define RFC_SECRET_B32  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

#define NOW  ((time_t) 1700000000)


/* The code liboath computes for b32 at time t, 6 or 8 digits. */
static const char *
oath_code(const char *b32, time_t t, unsigned digits)
{
    static char  otp[16];
    size_t       len;
    char        *raw;

    assert_int_equal(oath_base32_decode(b32, strlen(b32), &raw, &len),
                     OATH_OK);
    assert_int_equal(oath_totp_generate(raw, len, t, 30, 0, digits, otp),
                     OATH_OK);
    free(raw);
    return otp;
}


static void
test_rfc6238_vectors(void **state)
{
    static const struct {
        time_t       t;
        const char  *otp8;
        int64_t      step;
    } v[] = {
        { 59,          "94287082", 1 },
        { 1111111109,  "07081804", 37037036 },
        { 1111111111,  "14050471", 37037037 },
        { 1234567890,  "89005924", 41152263 },
        { 2000000000,  "69279037", 66666666 },
        { 20000000000, "65353130", 666666666 },
    };
    int64_t  step;
    size_t   i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        /* the seed and liboath agree with the RFC at 8 digits ... */
        assert_string_equal(oath_code(RFC_SECRET_B32, v[i].t, 8), v[i].otp8);
        /* ... and our 6-digit check takes the RFC code's last 6 digits */
        step = -1;
        assert_int_equal(users_totp_verify(RFC_SECRET_B32, v[i].otp8 + 2,
                                           v[i].t, -1, &step),
                         USERS_TOTP_OK);
        assert_int_equal(step, v[i].step);
    }
    assert_int_equal(users_totp_verify(RFC_SECRET_B32, "287083", 59, -1,
                                       &step), USERS_TOTP_BAD);
}


static void
test_fresh_secret(void **state)
{
    char     a[USERS_TOTP_SECRET_B32_SIZE], b[USERS_TOTP_SECRET_B32_SIZE];
    size_t   len;
    int64_t  step;
    char    *raw;

    assert_int_equal(users_totp_secret_new(a), USERS_TOTP_OK);
    assert_int_equal(users_totp_secret_new(b), USERS_TOTP_OK);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 32);
    assert_string_not_equal(a, b);
    assert_int_equal(oath_base32_decode(a, 32, &raw, &len), OATH_OK);
    assert_int_equal(len, 20);
    free(raw);

    assert_int_equal(users_totp_verify(a, oath_code(a, NOW, 6), NOW, -1,
                                       &step), USERS_TOTP_OK);
    assert_int_equal(step, NOW / 30);
}


static void
test_window(void **state)
{
    int64_t  step;
    char     s[USERS_TOTP_SECRET_B32_SIZE];

    assert_int_equal(users_totp_secret_new(s), USERS_TOTP_OK);

    /* the code of the step before and after now: accepted, that step */
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW - 30, 6), NOW,
                                       -1, &step), USERS_TOTP_OK);
    assert_int_equal(step, NOW / 30 - 1);
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW + 30, 6), NOW,
                                       -1, &step), USERS_TOTP_OK);
    assert_int_equal(step, NOW / 30 + 1);

    /* two steps away: refused, step untouched */
    step = 42;
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW - 60, 6), NOW,
                                       -1, &step), USERS_TOTP_BAD);
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW + 60, 6), NOW,
                                       -1, &step), USERS_TOTP_BAD);
    assert_int_equal(step, 42);
}


static void
test_code_accepted_once(void **state)
{
    const char  *code;
    int64_t      step, last;
    char         s[USERS_TOTP_SECRET_B32_SIZE];

    assert_int_equal(users_totp_secret_new(s), USERS_TOTP_OK);
    code = oath_code(s, NOW, 6);
    assert_int_equal(users_totp_verify(s, code, NOW, -1, &last),
                     USERS_TOTP_OK);

    /* the same code again, now or 20 s later: a replay */
    assert_int_equal(users_totp_verify(s, code, NOW, last, &step),
                     USERS_TOTP_REPLAY);
    assert_int_equal(step, last);
    assert_int_equal(users_totp_verify(s, code, NOW + 20, last, &step),
                     USERS_TOTP_REPLAY);

    /* the previous step's code, still in the window: older, refused */
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW - 30, 6), NOW,
                                       last, &step), USERS_TOTP_REPLAY);

    /* the next step's code: accepted, and it becomes the last */
    assert_int_equal(users_totp_verify(s, oath_code(s, NOW + 30, 6),
                                       NOW + 30, last, &step),
                     USERS_TOTP_OK);
    assert_int_equal(step, last + 1);
}


static void
test_malformed(void **state)
{
    static const char  *bad[] = {
        "", "12345", "1234567", "12a456", " 12345", "123 45", "-12345",
    };
    int64_t             step = 7;
    size_t              i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(users_totp_verify(RFC_SECRET_B32, bad[i], 59, -1,
                                           &step), USERS_TOTP_BAD);
    }
    assert_int_equal(users_totp_verify(RFC_SECRET_B32, NULL, 59, -1, &step),
                     USERS_TOTP_BAD);
    /* secrets: not base32, too short (80 bits), empty */
    assert_int_equal(users_totp_verify("!!!!", "287082", 59, -1, &step),
                     USERS_TOTP_ERROR);
    assert_int_equal(users_totp_verify("GEZDGNBVGY3TQOJQ", "287082", 59, -1,
                                       &step), USERS_TOTP_ERROR);
    assert_int_equal(users_totp_verify("", "287082", 59, -1, &step),
                     USERS_TOTP_ERROR);
    assert_int_equal(step, 7);
}


static void
test_uri(void **state)
{
    char  uri[USERS_TOTP_URI_SIZE], small[40];

    int   n;

    n = users_totp_uri(RFC_SECRET_B32, "a+b@example.com", uri, sizeof(uri));
    assert_int_equal(n, (int) strlen(uri));
    assert_string_equal(uri,
        "otpauth://totp/Kordon:a%2Bb%40example.com?secret="
        RFC_SECRET_B32 "&issuer=Kordon&algorithm=SHA1&digits=6&period=30");

    assert_int_equal(users_totp_uri(RFC_SECRET_B32, "", uri, sizeof(uri)),
                     -1);
    assert_string_equal(uri, "");
    assert_int_equal(users_totp_uri("not base32!", "a@b.c", uri,
                                    sizeof(uri)), -1);
    assert_int_equal(users_totp_uri(RFC_SECRET_B32, "a@b.c", small,
                                    sizeof(small)), -1);
    assert_string_equal(small, "");
}


static void
test_recovery_codes(void **state)
{
    users_recovery_code_t   codes[USERS_RECOVERY_CODES];
    users_recovery_hash_t   hashes[USERS_RECOVERY_CODES];
    users_recovery_hash_t   h;
    const char             *alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
    int                     i, j;

    assert_int_equal(users_recovery_new(codes, hashes), USERS_TOTP_OK);
    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        assert_int_equal(strlen(codes[i]), 19);
        for (j = 0; j < 19; j++) {
            if (j % 5 == 4) {
                assert_int_equal(codes[i][j], '-');
            } else {
                assert_non_null(strchr(alphabet, codes[i][j]));
            }
        }
        assert_int_equal(strlen(hashes[i]), 64);
        assert_int_equal(users_recovery_hash(codes[i], h), 0);
        assert_string_equal(h, hashes[i]);
        /* the code itself is not stored in the hash */
        assert_null(strstr(hashes[i], codes[i]));
        for (j = 0; j < i; j++) {
            assert_string_not_equal(codes[i], codes[j]);
        }
    }
}


static void
test_recovery_match(void **state)
{
    users_recovery_code_t   codes[USERS_RECOVERY_CODES];
    users_recovery_hash_t   hashes[USERS_RECOVERY_CODES];
    users_recovery_hash_t   h;
    const char             *stored[USERS_RECOVERY_CODES];
    char                    typed[64];
    int                     i, k;

    assert_int_equal(users_recovery_new(codes, hashes), USERS_TOTP_OK);
    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        stored[i] = hashes[i];
    }
    assert_int_equal(users_recovery_match(codes[3], stored, 10), 3);

    /* typed in capitals, without dashes, with spaces */
    for (i = 0, k = 0; codes[7][i] != '\0'; i++) {
        if (codes[7][i] != '-') {
            typed[k++] = (char) toupper((unsigned char) codes[7][i]);
        }
        if (i == 9) {
            typed[k++] = ' ';
        }
    }
    typed[k] = '\0';
    assert_int_equal(users_recovery_match(typed, stored, 10), 7);

    /* used (the caller leaves NULL in place): no longer matches */
    stored[3] = NULL;
    assert_int_equal(users_recovery_match(codes[3], stored, 10), -1);

    /* a wrong code, a short one, a long one, foreign characters */
    assert_int_equal(users_recovery_match("0000-0000-0000-0000", stored, 10),
                     -1);
    assert_int_equal(users_recovery_match("abcd-efgh", stored, 10), -1);
    assert_int_equal(users_recovery_match("0000-0000-0000-0000-0", stored,
                                          10), -1);
    assert_int_equal(users_recovery_match("uuuu-0000-0000-0000", stored, 10),
                     -1);
    assert_int_equal(users_recovery_match(NULL, stored, 10), -1);

    /* i and l read as 1, o as 0 */
    assert_int_equal(users_recovery_hash("1111-0000-1111-0000", h), 0);
    assert_int_equal(users_recovery_match("iIlL-oOoO-1111-0000",
                                          (const char *[]) { h }, 1), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc6238_vectors),
        cmocka_unit_test(test_fresh_secret),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_code_accepted_once),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_recovery_codes),
        cmocka_unit_test(test_recovery_match),
    };
    int                      rc;

    assert_int_equal(users_totp_init(), USERS_TOTP_OK);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    users_totp_done();
    return rc;
}
