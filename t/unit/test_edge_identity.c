/*
 * test_edge_identity.c -- the edge's side of the signed identity
 * (nginx-modules/kordon_jwt/kordon_identity_core.c): the same bytes as
 * the kit's kit_sig_sign() for the known vector and for varied fields,
 * a signature the kit's kit_sig_verify() accepts, the key file's text,
 * and the role and scope lists.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kit.h"
#include "../../nginx-modules/kordon_jwt/kordon_identity_core.h"

#define T0    1700000000

static unsigned char  key[32];


static int
setup(void **state)
{
    int  i;

    for (i = 0; i < 32; i++) {
        key[i] = (unsigned char) i;
    }
    return 0;
}


/* the edge's signature of an identity given as the kit's struct */
static int
edge_sign(const char *method, const char *path, const kit_identity_t *id,
    int64_t t, char *out, size_t outlen)
{
    kordon_identity_str_t  f[KORDON_IDENTITY_NFIELDS];

    f[KORDON_IDENTITY_METHOD] = (kordon_identity_str_t) { method,
                                                          strlen(method) };
    f[KORDON_IDENTITY_PATH] = (kordon_identity_str_t) { path, strlen(path) };
    f[KORDON_IDENTITY_USER] = (kordon_identity_str_t) { id->user,
                                                        strlen(id->user) };
    f[KORDON_IDENTITY_ROLES] = (kordon_identity_str_t) { id->roles,
                                                         strlen(id->roles) };
    f[KORDON_IDENTITY_SESSION] = (kordon_identity_str_t) {
        id->session, strlen(id->session) };
    f[KORDON_IDENTITY_REQUEST_ID] = (kordon_identity_str_t) {
        id->request_id, strlen(id->request_id) };

    return kordon_identity_sign(key, sizeof(key), f, t, out, outlen);
}


static void
test_known_vector(void **state)
{
    static const kit_identity_t  id = { "u-1", "user,admin", "s-1", "req-1",
                                        0 };
    char                         sig[KORDON_IDENTITY_SIG_MAX];

    /* the kit's test_identity.c vector, computed by Python's hmac */
    assert_int_equal(edge_sign("GET", "/v1/users/me", &id, T0, sig,
                               sizeof(sig)), 16 + 64);
    assert_string_equal(sig, "t=1700000000,v1=f9be74fe2dfd6f4281c1942674f1"
                        "eafd26292b98039a0259060914c7fe73553a");
}


static void
test_same_as_kit(void **state)
{
    static const kit_identity_t  ids[] = {
        { "", "", "", "", 0 },
        { "user-42", "user,support", "sess-7", "0123456789abcdef0123", 0 },
        { "\xc3\xa9l\xc3\xa8ve", "admin", "", "r", 0 },
        { "u", "", "s", "", 0 },
    };
    static const char           *paths[] = {
        "/", "/v1/users/me", "/v1/a b/%41", "/x\n",
    };
    char                         edge[KORDON_IDENTITY_SIG_MAX], kit[128];
    size_t                       i, j;

    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        for (j = 0; j < sizeof(paths) / sizeof(paths[0]); j++) {
            assert_true(edge_sign("POST", paths[j], &ids[i], T0 + i, edge,
                                  sizeof(edge)) > 0);
            assert_int_equal(kit_sig_sign(key, sizeof(key), "POST",
                                          paths[j], &ids[i], T0 + i, kit,
                                          sizeof(kit)), 0);
            assert_string_equal(edge, kit);
            assert_int_equal(kit_sig_verify(key, sizeof(key), edge, "POST",
                                            paths[j], &ids[i], T0 + i + 5,
                                            60), KIT_SIG_OK);
        }
    }
}


/* one signer, many signatures: each the kit's, as the module uses it */
static void
test_signer_reused(void **state)
{
    static const kit_identity_t  id = { "user-42", "user", "s", "rid", 0 };
    char                         edge[KORDON_IDENTITY_SIG_MAX], kit[128];
    char                         path[32];
    int                          i;
    kordon_identity_str_t        f[KORDON_IDENTITY_NFIELDS];
    kordon_identity_signer_t    *s;

    s = kordon_identity_signer_new(key, sizeof(key));
    assert_non_null(s);

    for (i = 0; i < 100; i++) {
        snprintf(path, sizeof(path), "/v1/things/%d", i);

        f[KORDON_IDENTITY_METHOD] = (kordon_identity_str_t) { "GET", 3 };
        f[KORDON_IDENTITY_PATH] = (kordon_identity_str_t) { path,
                                                            strlen(path) };
        f[KORDON_IDENTITY_USER] = (kordon_identity_str_t) { id.user, 7 };
        f[KORDON_IDENTITY_ROLES] = (kordon_identity_str_t) { id.roles, 4 };
        f[KORDON_IDENTITY_SESSION] = (kordon_identity_str_t) { id.session,
                                                               1 };
        f[KORDON_IDENTITY_REQUEST_ID] = (kordon_identity_str_t) {
            id.request_id, 3 };

        assert_true(kordon_identity_signer_sign(s, f, T0 + i, edge,
                                                sizeof(edge)) > 0);
        assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", path, &id,
                                      T0 + i, kit, sizeof(kit)), 0);
        assert_string_equal(edge, kit);
    }

    kordon_identity_signer_free(s);
    kordon_identity_signer_free(NULL);
}


static void
test_sign_limits(void **state)
{
    static const kit_identity_t  id = { "u", "r", "s", "q", 0 };
    char                         sig[KORDON_IDENTITY_SIG_MAX];

    /* a buffer under KORDON_IDENTITY_SIG_MAX is refused, not cut */
    assert_int_equal(edge_sign("GET", "/", &id, T0, sig, sizeof(sig) - 1),
                     -1);
    assert_string_equal(sig, "");

    /* the longest time still fits */
    assert_true(edge_sign("GET", "/", &id, INT64_MIN, sig, sizeof(sig))
                > 0);
    assert_int_equal(strlen(sig), sizeof("t=-9223372036854775808,v1=") - 1
                                  + 64);
}


static void
test_key_decode(void **state)
{
    char           text[200];
    unsigned char  k[KORDON_IDENTITY_KEY_MAX];

    memset(text, 'a', 64);
    text[64] = '\0';
    assert_int_equal(kordon_identity_key_decode(text, 64, k, sizeof(k)), 32);
    assert_int_equal(k[0], 0xaa);

    /* whitespace around, upper case */
    snprintf(text, sizeof(text), " \n%s%s\r\n\t",
             "000102030405060708090A0B0C0D0E0F",
             "101112131415161718191A1B1C1D1E1F");
    assert_int_equal(kordon_identity_key_decode(text, strlen(text), k,
                                                sizeof(k)), 32);
    assert_memory_equal(k, key, 32);

    /* 64 bytes is the most, 32 the least (every byte read is set) */
    memset(text, '0', 130);
    assert_int_equal(kordon_identity_key_decode(text, 128, k, sizeof(k)),
                     64);
    assert_int_equal(kordon_identity_key_decode(text, 130, k, sizeof(k)),
                     KORDON_IDENTITY_ELONG);
    assert_int_equal(kordon_identity_key_decode(text, 62, k, sizeof(k)),
                     KORDON_IDENTITY_ESHORT);
    assert_int_equal(kordon_identity_key_decode(text, 0, k, sizeof(k)),
                     KORDON_IDENTITY_ESHORT);
    assert_int_equal(kordon_identity_key_decode(text, 64, k, 16),
                     KORDON_IDENTITY_ELONG);

    /* odd length, a non-hex digit, inner space */
    assert_int_equal(kordon_identity_key_decode(text, 65, k, sizeof(k)),
                     KORDON_IDENTITY_EHEX);
    text[10] = 'g';
    assert_int_equal(kordon_identity_key_decode(text, 64, k, sizeof(k)),
                     KORDON_IDENTITY_EHEX);
    text[10] = ' ';
    assert_int_equal(kordon_identity_key_decode(text, 64, k, sizeof(k)),
                     KORDON_IDENTITY_EHEX);
}


static void
test_list_has(void **state)
{
#define HAS(list, sep, item)                                               \
    kordon_identity_list_has(list, strlen(list), sep, item, strlen(item))

    assert_true(HAS("user,support", ',', "user"));
    assert_true(HAS("user,support", ',', "support"));
    assert_false(HAS("user,support", ',', "supp"));
    assert_false(HAS("user,support", ',', "user,support"));
    assert_false(HAS("user,support", ',', "User"));
    assert_false(HAS("", ',', "user"));
    assert_false(HAS("a,,b", ',', ""));
    assert_true(HAS("a,,b", ',', "b"));
    assert_true(HAS("read  write", ' ', "write"));
    assert_false(HAS("read write", ' ', "read write"));
    assert_false(HAS("readwrite", ' ', "read"));

#undef HAS
}


/* a path over the 1 KiB the signer copies into one buffer: the text is
   then fed field by field, and the bytes are still the kit's */
static void
test_long_path(void **state)
{
    static const kit_identity_t  id = { "user-42", "user", "s", "rid", 0 };
    char                         edge[KORDON_IDENTITY_SIG_MAX], kit[128];
    char                         path[3000];
    size_t                       n;

    for (n = 1000; n < sizeof(path); n += 500) {
        memset(path, 'a', n);
        path[0] = '/';
        path[n] = '\0';

        assert_true(edge_sign("GET", path, &id, T0, edge, sizeof(edge)) > 0);
        assert_int_equal(kit_sig_sign(key, sizeof(key), "GET", path, &id,
                                      T0, kit, sizeof(kit)), 0);
        assert_string_equal(edge, kit);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_same_as_kit),
        cmocka_unit_test(test_signer_reused),
        cmocka_unit_test(test_long_path),
        cmocka_unit_test(test_sign_limits),
        cmocka_unit_test(test_key_decode),
        cmocka_unit_test(test_list_has),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
