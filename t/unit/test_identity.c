/*
 * test_identity.c -- the edge signature: a known vector (the same bytes
 * the edge and t/lib/Kordon/E2E.pm compute), sign/verify round trips,
 * each failure code, the freshness edges, every signed field tampered
 * with, malformed headers, hex decoding of keys, and the keyed context
 * each thread keeps: signing with one key, another, a key too long to
 * keep, and the first again, on two threads, always gives OpenSSL's
 * one-shot HMAC.
 */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kit.h"
#include "kit_internal.h"

#define T0    1700000000
#define SKEW  60

static uint8_t         key[32];
static kit_identity_t  id = { "u-1", "user,admin", "s-1", "req-1", 0 };


static int
setup(void **state)
{
    int  i;

    for (i = 0; i < 32; i++) {
        key[i] = (uint8_t) i;
    }
    return 0;
}


static int
verify(const char *header, const char *method, const char *path,
    const kit_identity_t *who, int64_t now)
{
    return kit_sig_verify(key, sizeof(key), header, method, path, who, now,
                          SKEW);
}


static void
test_known_vector(void **state)
{
    static const kit_identity_t  empty = { "", "", "", "", 0 };
    char                         sig[128];

    /* HMAC-SHA256(00..1f, "kordon-v1\nGET\n/v1/users/me\nu-1\n..."), by
     * Python's hmac module. */
    assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", "/v1/users/me",
                                  &id, T0, sig, sizeof(sig)), 0);
    assert_string_equal(sig, "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1"
                        "eafd26292b98039a0259060914c7fe73553a");

    /* Absent fields sign as "". */
    assert_int_equal(kit_sig_sign(key, sizeof(key), "POST", "/x", &empty, 0,
                                  sig, sizeof(sig)), 0);
    assert_string_equal(sig, "t=0,v1=4d0f663e2c7fd956a828931d82ba375b731a5e"
                        "040b3484418ad3d927495cda8f");
}


static void
test_roundtrip(void **state)
{
    char  sig[128];

    assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", "/v1/users/me",
                                  &id, T0, sig, sizeof(sig)), 0);
    assert_int_equal(verify(sig, "GET", "/v1/users/me", &id, T0), KIT_SIG_OK);

    /* Too small an output buffer is an error, not a truncated header. */
    assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", "/", &id, T0,
                                  sig, 20), -1);
}


static void
test_freshness(void **state)
{
    char  sig[128];

    assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", "/a", &id, T0,
                                  sig, sizeof(sig)), 0);
    assert_int_equal(verify(sig, "GET", "/a", &id, T0 + SKEW), KIT_SIG_OK);
    assert_int_equal(verify(sig, "GET", "/a", &id, T0 - SKEW), KIT_SIG_OK);
    assert_int_equal(verify(sig, "GET", "/a", &id, T0 + SKEW + 1),
                     KIT_SIG_STALE);
    assert_int_equal(verify(sig, "GET", "/a", &id, T0 - SKEW - 1),
                     KIT_SIG_STALE);
    assert_int_equal(verify(sig, "GET", "/a", &id, T0 + 3600),
                     KIT_SIG_STALE);
}


static void
test_tampered(void **state)
{
    kit_identity_t  other;
    char            sig[128];

    assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", "/v1/accounts",
                                  &id, T0, sig, sizeof(sig)), 0);

    assert_int_equal(verify(sig, "POST", "/v1/accounts", &id, T0),
                     KIT_SIG_BAD);
    assert_int_equal(verify(sig, "GET", "/v1/accounts/", &id, T0),
                     KIT_SIG_BAD);
    assert_int_equal(verify(sig, "GET", "/v1/Accounts", &id, T0),
                     KIT_SIG_BAD);

    other = id;
    other.user = "u-2";
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &other, T0),
                     KIT_SIG_BAD);
    other = id;
    other.roles = "user,admin,root";
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &other, T0),
                     KIT_SIG_BAD);
    other = id;
    other.session = "";
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &other, T0),
                     KIT_SIG_BAD);
    other = id;
    other.request_id = "req-2";
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &other, T0),
                     KIT_SIG_BAD);

    /* A LF inside a field cannot move text from one field to another. */
    other = id;
    other.user = "u-1\nuser,admin";
    other.roles = "";
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &other, T0),
                     KIT_SIG_BAD);

    /* Another key. */
    key[0] ^= 1;
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &id, T0),
                     KIT_SIG_BAD);
    key[0] ^= 1;

    /* Another t with the same MAC. */
    sig[strlen("t=170000000")] = '1';
    assert_int_equal(verify(sig, "GET", "/v1/accounts", &id, T0 + 1),
                     KIT_SIG_BAD);
}


static void
test_missing(void **state)
{
    assert_int_equal(verify(NULL, "GET", "/", &id, T0), KIT_SIG_MISSING);
    assert_int_equal(verify("", "GET", "/", &id, T0), KIT_SIG_MISSING);
}


static void
test_malformed(void **state)
{
    static const char *const  bad[] = {
        "garbage",
        "t=",
        "t=1700000000",
        "t=1700000000,v1=",
        "t=,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914c7fe73553a",
        "t=-1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a025906091"
            "4c7fe73553a",
        "t=+1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a025906091"
            "4c7fe73553a",
        "t=1700000000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a025906"
            "0914c7fe73553a",
        "t=17e8,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914c7fe7"
            "3553a",
        "v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914c7fe73553a,"
            "t=1700000000",
        "t=1700000000, v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553a",
        "t=1700000000,v2=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553a",
        /* 63 and 65 hex digits */
        "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553",
        "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553aa",
        /* upper case, a non-hex digit, trailing junk */
        "t=1700000000,v1=F9BE74FE2DFD6F4281C1942674F1EAFD26292B98039A0259060914"
            "C7FE73553A",
        "t=1700000000,v1=g9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553a",
        "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553a,v1=00",
        "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd26292b98039a0259060914"
            "c7fe73553a ",
    };
    size_t                    i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (verify(bad[i], "GET", "/v1/users/me", &id, T0)
            != KIT_SIG_MALFORMED)
        {
            fail_msg("not malformed: \"%s\"", bad[i]);
        }
    }
    /* The well-formed original still verifies. */
    assert_int_equal(verify("t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1eafd"
                            "26292b98039a0259060914c7fe73553a", "GET",
                            "/v1/users/me", &id, T0), KIT_SIG_OK);
}


static void
test_hex_decode(void **state)
{
    uint8_t  out[4];

    assert_int_equal(kit_hex_decode("", out, sizeof(out)), 0);
    assert_int_equal(kit_hex_decode("00ff7F", out, sizeof(out)), 3);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(out[2], 0x7f);
    assert_int_equal(kit_hex_decode("abc", out, sizeof(out)), -1);
    assert_int_equal(kit_hex_decode("zz", out, sizeof(out)), -1);
    assert_int_equal(kit_hex_decode("0 ", out, sizeof(out)), -1);
    assert_int_equal(kit_hex_decode("0011223344", out, sizeof(out)), -1);
}


/* "t=T0,v1=<hex>" from OpenSSL's one-shot HMAC over the same fields. */
static void
reference(const uint8_t *k, size_t klen, char *out, size_t outlen)
{
    static const char  msg[] = "kordon-v1\nGET\n/p\nu-1\nuser,admin\ns-1\n"
                               "req-1\n1700000000";
    unsigned char      mac[32];
    unsigned int       maclen, i;
    int                n;

    assert_non_null(HMAC(EVP_sha256(), k, (int) klen,
                         (const unsigned char *) msg, sizeof(msg) - 1, mac,
                         &maclen));
    assert_int_equal(maclen, 32);
    n = snprintf(out, outlen, "t=%d,v1=", T0);
    for (i = 0; i < maclen; i++) {
        n += snprintf(out + n, outlen - (size_t) n, "%02x", mac[i]);
    }
}


static void *
sign_with_keys(void *arg)
{
    uint8_t  k[3][100];
    size_t   len[3] = { 32, 64, 100 };
    int      order[] = { 0, 1, 0, 2, 1, 0, 0 };
    char     got[128], want[128];
    size_t   j;
    int      i;

    for (i = 0; i < 3; i++) {
        for (j = 0; j < sizeof(k[i]); j++) {
            k[i][j] = (uint8_t) (j * 7 + (size_t) i * 31 + (uintptr_t) arg);
        }
    }
    for (j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
        i = order[j];
        assert_int_equal(kit_sig_sign(k[i], len[i], "GET", "/p", &id, T0,
                                      got, sizeof(got)), 0);
        reference(k[i], len[i], want, sizeof(want));
        assert_string_equal(got, want);
        /* The other short key never verifies what this one signed. */
        assert_int_equal(kit_sig_verify(k[i == 0 ? 1 : 0], len[i == 0],
                                        got, "GET", "/p", &id, T0, SKEW),
                         KIT_SIG_BAD);
    }
    return NULL;
}


static void
test_keys_switch(void **state)
{
    pthread_t  t;

    sign_with_keys((void *) 0);
    assert_int_equal(pthread_create(&t, NULL, sign_with_keys, (void *) 1), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    sign_with_keys((void *) 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_freshness),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_keys_switch),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
