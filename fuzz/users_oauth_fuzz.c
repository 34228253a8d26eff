/*
 * users_oauth_fuzz.c -- libFuzzer target for what the users service
 * parses from outside in backends/users/oauth.c and totp.c.  Build and
 * run: FUZZ_TARGETS=users_oauth fuzz/run.
 *
 * The first byte of an input picks what it feeds:
 *
 *     0x00  a JWKS document, each key through users_oauth_jwk() (JWK to
 *           PEM with OpenSSL), as a provider's /jwks answer;
 *     0x01  an id_token through users_oauth_verify(): the JOSE header,
 *           the key lookup in a preloaded cache, libjwt's parse and
 *           signature check, and the claims when it passes;
 *     0x02  id_token claims JSON through users_oauth_claims_check() and
 *           users_oauth_identity(), as if the signature had verified;
 *     0x03  a recovery code as typed, through users_recovery_match();
 *     else  a TOTP code as typed, through users_totp_verify().
 *
 * The provider is fixed ("fuzz", issuer https://issuer.example, client
 * kordon-fuzz, nonce FUZZ_NONCE) and its key cache is preloaded from
 * fuzz_jwks, the public halves of throwaway keys, so nothing reaches the
 * network: the cache is marked fresh before every input.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/users/oauth.c"
#include "../backends/users/totp.c"

#define FUZZ_NONCE   "n0nce-n0nce-n0nce-n0nce-n0nce-n0nce-n0nce-n"
#define FUZZ_SECRET  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

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
    "\"y\":\"3_jftVxVwgC_mZ_ZwAHfz-J9Oi91Znjz0nQlxSPZVq4\"}"
    "]}";

static users_oauth_provider_t  fuzz_p;
static users_oauth_pending_t   fuzz_pending;
static const char             *fuzz_hashes[USERS_RECOVERY_CODES];
static users_recovery_hash_t   fuzz_hash_buf[USERS_RECOVERY_CODES];


static void
fuzz_init(void)
{
    users_recovery_code_t   codes[USERS_RECOVERY_CODES];
    json_t                 *doc, *jwk;
    size_t                  i;

    snprintf(fuzz_p.name, sizeof(fuzz_p.name), "fuzz");
    snprintf(fuzz_p.issuer, sizeof(fuzz_p.issuer), "https://issuer.example");
    snprintf(fuzz_p.client_id, sizeof(fuzz_p.client_id), "kordon-fuzz");
    snprintf(fuzz_p.jwks_uri, sizeof(fuzz_p.jwks_uri), "http://127.0.0.1:1/");
    pthread_mutex_init(&fuzz_p.lock, NULL);
    doc = json_loads(fuzz_jwks, 0, NULL);
    json_array_foreach(json_object_get(doc, "keys"), i, jwk) {
        if (users_oauth_jwk(jwk, &fuzz_p.keys[fuzz_p.nkeys]) != 0) {
            abort();
        }
        fuzz_p.nkeys++;
    }
    json_decref(doc);
    snprintf(fuzz_pending.nonce, sizeof(fuzz_pending.nonce), FUZZ_NONCE);

    if (users_totp_init() != USERS_TOTP_OK
        || users_recovery_new(codes, fuzz_hash_buf) != USERS_TOTP_OK)
    {
        abort();
    }
    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        fuzz_hashes[i] = i % 3 ? fuzz_hash_buf[i] : NULL;
    }
}


static void
fuzz_jwks_doc(const char *s, size_t len)
{
    users_oauth_key_t   k;
    json_t             *doc, *jwk;
    size_t              i;

    doc = json_loadb(s, len, 0, NULL);
    json_array_foreach(json_object_get(doc, "keys"), i, jwk) {
        memset(&k, 0, sizeof(k));
        if (users_oauth_jwk(jwk, &k) == 0) {
            free(k.pem);
        }
    }
    json_decref(doc);
}


static void
fuzz_claims(const char *s, size_t len)
{
    users_oauth_identity_t   id;
    json_t                  *c;

    c = json_loadb(s, len, 0, NULL);
    if (c != NULL && users_oauth_claims_check(&fuzz_p, c, FUZZ_NONCE)
                     == NULL)
    {
        users_oauth_identity(&fuzz_p, c, &id);
    }
    json_decref(c);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int               ready;
    users_oauth_identity_t   id;
    int64_t                  step;
    char                    *s, err[256];

    if (!ready) {
        fuzz_init();
        ready = 1;
    }
    if (size == 0) {
        return 0;
    }
    /* a NUL-terminated copy: tokens and codes arrive as C strings */
    s = malloc(size);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    fuzz_p.jwks_fetched = time(NULL);

    switch (data[0]) {
    case 0x00:
        fuzz_jwks_doc(s, size - 1);
        break;
    case 0x01:
        (void) users_oauth_verify(&fuzz_p, s, &fuzz_pending, &id, err,
                                  sizeof(err));
        break;
    case 0x02:
        fuzz_claims(s, size - 1);
        break;
    case 0x03:
        (void) users_recovery_match(s, fuzz_hashes, USERS_RECOVERY_CODES);
        break;
    default:
        (void) users_totp_verify(FUZZ_SECRET, s, 59, -1, &step);
        break;
    }
    free(s);
    return 0;
}
