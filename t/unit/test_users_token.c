/*
 * test_users_token.c -- backends/users/jwt.c and secret.c: an access
 * token carries the contract's header and claims and passes the edge's
 * own verifier (kordon_jwt_core.c, given only the public JWKS, with the
 * issuer, audience and typ the contract fixes), for ES256 and RS256; the
 * key is re-read when `current` changes; codes are
 * 6 digits and their HMAC binds user, purpose and key; refresh tokens
 * are 43 base64url characters.
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
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../../nginx-modules/kordon_jwt/kordon_jwt_core.h"

#include "../../backends/users/jwt.c"
#include "../../backends/users/secret.c"

users_config_t  users_cf;

static char  dir[] = "/tmp/kordon-keys-XXXXXX";

#define SUB  "01a20b67-2d10-756b-a9a4-c79bc669887b"
#define SID  "01a20b67-48e2-7196-adf7-e72bf80cb375"


/* base64url of a big number's big-endian bytes, padded to pad bytes. */
static void
b64_bn(EVP_PKEY *k, const char *param, int pad, char *out)
{
    unsigned char  bin[512];
    BIGNUM        *bn = NULL;
    int            n;

    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    n = pad > 0 ? BN_bn2binpad(bn, bin, pad) : BN_bn2bin(bn, bin);
    users_b64url(bin, (size_t) n, out);
    BN_free(bn);
}


/* Writes a new key as <dir>/<kid>.pem and its public JWKS into jwks. */
static void
make_key(const char *kid, int rsa, char *jwks, size_t len)
{
    char       path[512], a[700], b[700];
    EVP_PKEY  *k;
    FILE      *f;

    k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    assert_non_null(k);
    snprintf(path, sizeof(path), "%s/%s.pem", dir, kid);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
    if (rsa) {
        b64_bn(k, OSSL_PKEY_PARAM_RSA_N, 0, a);
        b64_bn(k, OSSL_PKEY_PARAM_RSA_E, 0, b);
        snprintf(jwks, len, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"%s\","
                 "\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"%s\","
                 "\"e\":\"%s\"}]}", kid, a, b);
    } else {
        b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, 32, a);
        b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b);
        snprintf(jwks, len, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                 "\"kid\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\","
                 "\"x\":\"%s\",\"y\":\"%s\"}]}", kid, a, b);
    }
    EVP_PKEY_free(k);
}


/* Verifies t as the edge does; the kordon_jwt_verify() code. */
static int
edge_verify(const char *jwks, const char *t, kordon_jwt_claims_t *c)
{
    kordon_jwt_keys_t  *keys;
    kordon_jwt_conf_t   conf;
    char                err[256];
    int                 rc;

    keys = kordon_jwt_keys_load(jwks, strlen(jwks), err, sizeof(err));
    assert_non_null(keys);
    memset(&conf, 0, sizeof(conf));
    kordon_jwt_conf_init(&conf);
    conf.iss = "kordon-users";
    conf.aud = "kordon";
    conf.typ = "at+jwt";
    rc = kordon_jwt_verify(keys, &conf, t, strlen(t), 1795487647 + 10, c);
    kordon_jwt_keys_free(keys);
    return rc;
}


static void
set_current(const char *kid)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/current", dir);
    f = fopen(path, "w");
    fprintf(f, "%s\n", kid);
    fclose(f);
}


static char *
token(void)
{
    json_t  *roles, *amr;
    char    *t;

    roles = json_pack("[s, s]", "user", "admin");
    amr = json_pack("[s]", "pwd");
    t = users_access_token(SUB, roles, SID, amr, 1795487647);
    json_decref(roles);
    json_decref(amr);
    return t;
}


static void
test_es256_claims(void **state)
{
    static kordon_jwt_claims_t  c;
    char                        jwks[4096], err[256], *t;

    make_key("k1", 0, jwks, sizeof(jwks));
    set_current("k1");
    assert_int_equal(users_keys_load(dir, err, sizeof(err)), 0);
    t = token();
    assert_non_null(t);
    assert_non_null(strstr(t, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlw"
                              "IjoiYXQrand0In0."));
    /* {"alg":"ES256","kid":"k1","typ":"at+jwt"} */

    assert_int_equal(edge_verify(jwks, t, &c), 0);
    assert_string_equal(c.alg, "ES256");
    assert_string_equal(c.kid, "k1");
    assert_string_equal(c.sub, SUB);
    assert_string_equal(c.sid, SID);
    assert_true(c.has_jti);
    assert_int_equal(strlen(c.jti), 36);
    assert_int_equal(c.iat, 1795487647);
    assert_int_equal(c.exp, 1795487647 + 900);
    assert_int_equal(c.nroles, 2);
    assert_string_equal(c.roles[0], "user");
    assert_string_equal(c.roles[1], "admin");
    assert_int_equal(c.namr, 1);
    assert_string_equal(c.amr[0], "pwd");

    /* One flipped byte of the payload and the signature no longer holds. */
    t[strchr(t, '.') - t + 5] ^= 1;
    assert_int_not_equal(edge_verify(jwks, t, &c), 0);
    free(t);
}


static void
test_rotation_and_rs256(void **state)
{
    static kordon_jwt_claims_t  c;
    char                        jwks1[4096], jwks2[4096], err[256], *t;

    make_key("k1", 0, jwks1, sizeof(jwks1));
    set_current("k1");
    assert_int_equal(users_keys_load(dir, err, sizeof(err)), 0);
    make_key("k2", 1, jwks2, sizeof(jwks2));
    sleep(1);                       /* the key is looked at once a second */
    set_current("k2");
    t = token();
    assert_non_null(t);
    assert_int_equal(edge_verify(jwks2, t, &c), 0);
    assert_string_equal(c.alg, "RS256");
    assert_string_equal(c.kid, "k2");
    assert_int_not_equal(edge_verify(jwks1, t, &c), 0);
    free(t);

    /* A broken rotation keeps the last good key. */
    sleep(1);
    set_current("../etc/passwd");
    t = token();
    assert_non_null(t);
    assert_int_equal(edge_verify(jwks2, t, &c), 0);
    free(t);
    set_current("missing");
    assert_int_equal(users_keys_load(dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.pem"));
}


static void
test_codes(void **state)
{
    static const uint8_t  key[32] = { 1, 2, 3 }, key2[32] = { 9 };
    uint8_t               a[32], b[32];
    char                  code[7], first[7];
    int                   i, differ;

    differ = 0;
    for (i = 0; i < 20; i++) {
        assert_int_equal(users_code_new(code), 0);
        assert_int_equal(strlen(code), 6);
        assert_int_equal(strspn(code, "0123456789"), 6);
        if (i == 0) {
            strcpy(first, code);
        }
        differ |= strcmp(code, first) != 0;
    }
    assert_true(differ);

    users_code_hmac(key, 32, SUB, "verify", "123456", a);
    users_code_hmac(key, 32, SUB, "verify", "123456", b);
    assert_true(users_equal32(a, b));
    users_code_hmac(key, 32, SUB, "reset", "123456", b);
    assert_false(users_equal32(a, b));              /* purpose bound */
    users_code_hmac(key, 32, SID, "verify", "123456", b);
    assert_false(users_equal32(a, b));              /* user bound */
    users_code_hmac(key, 32, SUB, "verify", "123457", b);
    assert_false(users_equal32(a, b));
    users_code_hmac(key2, 32, SUB, "verify", "123456", b);
    assert_false(users_equal32(a, b));              /* keyed */
}


static void
test_refresh_tokens(void **state)
{
    char     t1[USERS_TOKEN_LEN + 1], t2[USERS_TOKEN_LEN + 1], hex[65];
    uint8_t  h[32];

    assert_int_equal(users_token_new(t1), 0);
    assert_int_equal(users_token_new(t2), 0);
    assert_int_equal(strlen(t1), 43);
    assert_true(users_token_valid(t1));
    assert_string_not_equal(t1, t2);
    assert_false(users_token_valid("short"));
    /* 42 characters and a pad, 44 characters: neither is ours. */
    assert_false(users_token_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                   "AAAA="));
    assert_false(users_token_valid("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                                   "AAAAAA"));
    users_sha256("abc", 3, h);
    users_hex(h, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
}


static int
setup(void **state)
{
    assert_non_null(mkdtemp(dir));
    return 0;
}


static int
teardown(void **state)
{
    char  cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_es256_claims),
        cmocka_unit_test(test_rotation_and_rs256),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_refresh_tokens),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
