
/*
 * jwt_fuzz.c -- libFuzzer target for the edge's JWT verification core
 * (nginx-modules/kordon_jwt/kordon_jwt_core.c).  Build and run: fuzz/run.
 *
 * The first byte of an input picks what it feeds:
 *
 *     0x00  header JSON, 0x00, payload JSON: the harness base64url-encodes
 *           both and signs them HS256 with the fuzz key, so that mutations
 *           reach the code behind the signature (payload parsing, time
 *           claims, iss/aud/typ, identity claims, kordon_jwt_claim_get);
 *     0x01  a JWKS document for kordon_jwt_keys_load();
 *     0x02  a compact token for kordon_jwt_payload_load() and then
 *           kordon_jwt_claim_get(): the payload/claims parser that the
 *           module runs on a cached token, signature unchecked;
 *     else  a compact token exactly as it comes off the wire (a verified
 *           one is also packed by kordon_jwt_compact() and its times
 *           checked again by kordon_jwt_compact_times()).
 *
 * Every token is verified twice, with the claims reader
 * (kordon_jwt_read_core.c) and with jansson alone
 * (KORDON_JWT_READER_JANSSON): the verdicts and the claims must be the
 * same, whatever the fast reader takes or leaves.
 *
 * The key set is fixed: the public halves of an RSA-2048 and a P-256 key
 * made for this target alone (their private halves signed the seeds in
 * fuzz/seeds/jwt/ and were thrown away) and an HMAC key that is a fake
 * by design.  Nothing here is a secret of any deployment.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kordon_jwt_core.h"


#define FUZZ_NOW       1700000000
#define FUZZ_HMAC_KEY  "kordon-fuzz-throwaway-hmac-key!!"


static const char  fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa-fuzz\",\"alg\":\"RS256\",\"use\":\"sig\","
    "\"n\":\"0ZfZT1U1AplQiTAkOcAP7VR3BwE9SMxH7PgzwMC1f92ySw16wigmknhtUVxWxzO"
    "HcNe-vuSVNrDFm1GI9d6cC4opVPGu2TGqy02JXJq6FDw9DJrXz7w6KHy6ztN97zFNJI2R6E"
    "cPgPvBEcLaf8RbAEEtVPR8UKNpbKQKd151-WfWxl1d4YG-QyT0r7DHtUvACnpeLHdzt00HW"
    "740boy0yjP2r8gUWUXAMZ2mt7KzX60zQu0ZoGit1NSVZk30loM3eTogjBUHidagpSj9pCZW"
    "wwtGK-RIJ8XrxrLIFX-d9D3tf2o75ANvIfiLf56uUqN_oNGIg7NEIw391tuGmOut8w\","
    "\"e\":\"AQAB\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec-fuzz\",\"alg\":\"ES256\",\"crv\":\"P-256\","
    "\"x\":\"f784CHxLJOwvuFtlGfQnPZrkJWTBgkPJRmHu8FTdMS8\","
    "\"y\":\"3_jftVxVwgC_mZ_ZwAHfz-J9Oi91Znjz0nQlxSPZVq4\"},"
    "{\"kty\":\"oct\",\"kid\":\"hs-fuzz\",\"alg\":\"HS256\","
    "\"k\":\"a29yZG9uLWZ1enotdGhyb3dhd2F5LWhtYWMta2V5ISE\"}"
    "]}";

static const char  *fuzz_claims[] = {
    "sub", "roles", "exp", "aud", "amr", "x", "", NULL
};

static kordon_jwt_keys_t    *fuzz_keys;
static kordon_jwt_conf_t     fuzz_conf;
static kordon_jwt_claims_t   fuzz_out;
static kordon_jwt_claims_t   fuzz_ref;
static kordon_jwt_hasher_t  *fuzz_hasher;


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_token(const char *token, size_t len);
static void fuzz_payload(const char *token, size_t len);
static void fuzz_claims_get(void);
static void fuzz_signed(const uint8_t *data, size_t size);
static size_t fuzz_b64url(char *out, const uint8_t *in, size_t len);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char           err[KORDON_JWT_ERR_MAX];
    unsigned char  key[KORDON_JWT_TOKEN_KEY_LEN];

    (void) argc;
    (void) argv;

    memset(key, 0x5a, sizeof(key));

    fuzz_hasher = kordon_jwt_hasher_new(key);
    if (fuzz_hasher == NULL) {
        abort();
    }

    fuzz_keys = kordon_jwt_keys_load(fuzz_jwks, sizeof(fuzz_jwks) - 1, err,
                                     sizeof(err));
    if (fuzz_keys == NULL) {
        abort();
    }

    kordon_jwt_conf_init(&fuzz_conf);
    fuzz_conf.iss = "https://users.kordon.test";
    fuzz_conf.aud = "kordon-edge";
    fuzz_conf.leeway_s = 30;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kordon_jwt_keys_t  *keys;

    if (size > 0 && data[0] == 0x00) {
        fuzz_signed(data + 1, size - 1);

    } else if (size > 0 && data[0] == 0x01) {
        keys = kordon_jwt_keys_load((const char *) data + 1, size - 1, NULL,
                                    0);
        kordon_jwt_keys_free(keys);

    } else if (size > 0 && data[0] == 0x02) {
        fuzz_payload((const char *) data + 1, size - 1);

    } else {
        fuzz_token((const char *) data, size);
    }

    return 0;
}


static void
fuzz_token(const char *token, size_t len)
{
    int                    rc;
    unsigned char          hash[32], id[KORDON_JWT_TOKEN_ID_LEN];
    kordon_jwt_compact_t   k;

    /* with and without a required typ, so both branches are reached */
    fuzz_conf.typ = (len % 2) ? "at+jwt" : NULL;

    fuzz_conf.reader = KORDON_JWT_READER_JANSSON;
    rc = kordon_jwt_verify(fuzz_keys, &fuzz_conf, token, len, FUZZ_NOW,
                           &fuzz_ref);

    fuzz_conf.reader = KORDON_JWT_READER_FAST;

    if (kordon_jwt_verify(fuzz_keys, &fuzz_conf, token, len, FUZZ_NOW,
                          &fuzz_out) != rc)
    {
        abort();    /* the claims reader and jansson disagree */
    }

    if (rc == KORDON_JWT_OK) {
        fuzz_out.fast_header = 0;
        fuzz_out.fast_payload = 0;
        fuzz_ref.fast_header = 0;
        fuzz_ref.fast_payload = 0;

        if (memcmp(&fuzz_out, &fuzz_ref,
                   offsetof(kordon_jwt_claims_t, payload)) != 0)
        {
            abort();
        }
    }

    if (kordon_jwt_strerror(rc) == NULL) {
        abort();
    }

    (void) kordon_jwt_token_hash(token, len, hash);

    if (kordon_jwt_hasher_sum(fuzz_hasher, token, len, id) != KORDON_JWT_OK) {
        abort();
    }

    if (rc != KORDON_JWT_OK) {
        if (fuzz_out.payload_len != 0) {
            abort();
        }

        return;
    }

    /* what the shared cache stores and checks again on a hit */

    if (kordon_jwt_compact(&fuzz_out, &k) == KORDON_JWT_OK
        && (k.sub_len + k.sid_len + k.roles_len + k.scope_len
            > KORDON_JWT_COMPACT_DATA
            || kordon_jwt_compact_times(&k, &fuzz_conf, FUZZ_NOW)
               != KORDON_JWT_OK))
    {
        abort();    /* packed past its buffer, or no longer valid */
    }

    fuzz_claims_get();
}


/* the payload of a token whose signature is not checked here */

static void
fuzz_payload(const char *token, size_t len)
{
    int  rc;

    rc = kordon_jwt_payload_load(token, len, &fuzz_out);

    if (kordon_jwt_strerror(rc) == NULL
        || (rc != KORDON_JWT_OK && fuzz_out.payload_len != 0)
        || fuzz_out.payload_len > sizeof(fuzz_out.payload))
    {
        abort();
    }

    if (rc == KORDON_JWT_OK) {
        fuzz_claims_get();
    }
}


static void
fuzz_claims_get(void)
{
    int   i;
    char  small[8], big[512];

    for (i = 0; fuzz_claims[i] != NULL; i++) {
        (void) kordon_jwt_claim_get(&fuzz_out, fuzz_claims[i], small,
                                    sizeof(small));
        (void) kordon_jwt_claim_get(&fuzz_out, fuzz_claims[i], big,
                                    sizeof(big));
    }
}


/* header JSON, 0x00, payload JSON -> a token signed with the HMAC key */

static void
fuzz_signed(const uint8_t *data, size_t size)
{
    char           *t;
    size_t          hlen, plen, n;
    unsigned int    mac_len;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    const uint8_t  *sep;

    if (size > KORDON_JWT_SIZE_MAX) {
        return;
    }

    sep = memchr(data, 0x00, size);
    hlen = sep ? (size_t) (sep - data) : size;
    plen = sep ? size - hlen - 1 : 0;

    t = malloc(size / 3 * 4 + 128);
    if (t == NULL) {
        return;
    }

    n = fuzz_b64url(t, data, hlen);
    t[n++] = '.';
    n += fuzz_b64url(t + n, sep ? sep + 1 : data, plen);

    if (HMAC(EVP_sha256(), FUZZ_HMAC_KEY, 32, (unsigned char *) t, n, mac,
             &mac_len) == NULL)
    {
        abort();
    }

    t[n++] = '.';
    n += fuzz_b64url(t + n, mac, mac_len);

    fuzz_token(t, n);
    free(t);
}


static size_t
fuzz_b64url(char *out, const uint8_t *in, size_t len)
{
    static const char  abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789-_";
    char              *p;
    size_t             i;
    uint32_t           v;

    p = out;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
        *p++ = abc[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) in[i] << 16;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
    }

    return (size_t) (p - out);
}
