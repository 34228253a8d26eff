/*
 * jwt.c -- the signing side of access tokens (JWS compact, ES256 or
 * RS256) with OpenSSL 3's EVP.
 *
 * Why not libjwt: Debian's libjwt 1.10 always writes the header "typ" as
 * "JWT" (jwt_encode_str() replaces any value set before) and its
 * decoder refuses any other typ, and the contract wants "at+jwt" (RFC
 * 9068).  The unit tests (t/unit/test_users_token.c) check every token
 * with the edge's own verifier instead.  Signing here also parses the
 * key once per rotation, not once per token.
 *
 * Keys live in KORDON_USERS_KEYS_DIR (scripts/stack's `keys` component
 * makes them, scripts/rotate-jwt-key rotates them):
 *
 *   jwks.json    the public keys, every one the edge may see (kid, alg,
 *                use "sig"); served as GET /.well-known/jwks.json
 *   <kid>.pem    each private key (0600)
 *   current      the kid to sign with
 *
 * Rotation needs no restart: before signing, at most once a second, the
 * service looks at current's mtime and loads the key it names when it
 * changed.  The edge already trusts the new key by then (the rotation
 * adds it to jwks.json and reloads nginx first).
 *
 * Claims (the lead's contract): iss "kordon-users", aud "kordon", sub,
 * roles, sid, jti, iat, exp = iat + 900, amr; header kid and typ
 * "at+jwt"; ES256 (or RS256 for an RSA key).
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "users.h"

#define USERS_KID_MAX      64
#define USERS_PEM_MAX      8192
#define USERS_JWKS_MAX     (1024 * 1024)

static struct {
    pthread_mutex_t  mu;
    char             dir[1024];
    char             kid[USERS_KID_MAX + 1];      /* under mu */
    EVP_PKEY        *pkey;                        /* under mu */
    int              es256;                       /* under mu */
    struct timespec  mtime;                       /* of current, under mu */
    time_t           checked;                     /* under mu */
} users_key = { .mu = PTHREAD_MUTEX_INITIALIZER };


/* Reads at most max - 1 bytes of path into buf; length or -1. */
static ssize_t
users_read_file(const char *path, char *buf, size_t max)
{
    FILE    *f;
    size_t   n;

    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, max, f);
    fclose(f);
    if (n == max) {
        return -1;
    }
    buf[n] = '\0';
    return (ssize_t) n;
}


static int
users_kid_valid(const char *kid)
{
    size_t  n;

    n = strspn(kid, "abcdefghijklmnopqrstuvwxyz"
               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");
    return n > 0 && n <= USERS_KID_MAX && kid[n] == '\0' && kid[0] != '.';
}


/* The private key in pem (EC P-256 or RSA >= 2048), or NULL. */
static EVP_PKEY *
users_key_parse(const char *pem, size_t len, int *es256)
{
    EVP_PKEY  *k;
    BIO       *b;
    int        id;

    b = BIO_new_mem_buf(pem, (int) len);
    k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k == NULL) {
        return NULL;
    }
    id = EVP_PKEY_get_base_id(k);
    *es256 = id == EVP_PKEY_EC;
    if ((id == EVP_PKEY_EC && EVP_PKEY_get_bits(k) == 256)
        || (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) >= 2048))
    {
        return k;
    }
    EVP_PKEY_free(k);
    return NULL;
}


/* Loads the key current names; caller holds mu.  0, or -1 with err. */
static int
users_key_reload(char *err, size_t errlen)
{
    char         path[1200], kid[USERS_KID_MAX + 2], pem[USERS_PEM_MAX];
    struct stat  st;
    EVP_PKEY    *k;
    ssize_t      n;
    int          es256;

    snprintf(path, sizeof(path), "%s/current", users_key.dir);
    if (stat(path, &st) != 0
        || users_read_file(path, kid, sizeof(kid)) < 0)
    {
        snprintf(err, errlen, "could not read signing key name \"%s\"",
                 path);
        return -1;
    }
    kid[strcspn(kid, " \t\r\n")] = '\0';
    if (!users_kid_valid(kid)) {
        snprintf(err, errlen, "signing key name in \"%s\" is malformed",
                 path);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s.pem", users_key.dir, kid);
    n = users_read_file(path, pem, sizeof(pem));
    if (n <= 0) {
        snprintf(err, errlen, "could not read signing key \"%s\"", path);
        return -1;
    }
    k = users_key_parse(pem, (size_t) n, &es256);
    explicit_bzero(pem, sizeof(pem));
    if (k == NULL) {
        snprintf(err, errlen, "signing key \"%s\" is neither EC P-256 nor "
                 "RSA of 2048 bits or more", path);
        return -1;
    }
    EVP_PKEY_free(users_key.pkey);
    users_key.pkey = k;
    users_key.es256 = es256;
    strcpy(users_key.kid, kid);
    users_key.mtime = st.st_mtim;
    return 0;
}


int
users_keys_load(const char *dir, char *err, size_t errlen)
{
    int  rc;

    if (strlen(dir) >= sizeof(users_key.dir)) {
        snprintf(err, errlen, "keys directory name is too long");
        return -1;
    }
    pthread_mutex_lock(&users_key.mu);
    strcpy(users_key.dir, dir);
    rc = users_key_reload(err, errlen);
    users_key.checked = time(NULL);
    pthread_mutex_unlock(&users_key.mu);
    return rc;
}


/* A reference to the signing key (EVP_PKEY_free() it), reloading it
 * when current changed; NULL when there is none. */
static EVP_PKEY *
users_key_get(char *kid, int *es256)
{
    char         path[1200], err[USERS_ERR_MAX];
    struct stat  st;
    EVP_PKEY    *k;
    time_t       now;

    now = time(NULL);
    pthread_mutex_lock(&users_key.mu);
    if (now != users_key.checked) {
        users_key.checked = now;
        snprintf(path, sizeof(path), "%s/current", users_key.dir);
        if (stat(path, &st) == 0
            && (st.st_mtim.tv_sec != users_key.mtime.tv_sec
                || st.st_mtim.tv_nsec != users_key.mtime.tv_nsec))
        {
            if (users_key_reload(err, sizeof(err)) != 0) {
                kit_log(KIT_LOG_ERROR, "%s; still signing with \"%s\"", err,
                        users_key.kid);
            } else {
                kit_log(KIT_LOG_INFO, "signing with key \"%s\"",
                        users_key.kid);
            }
        }
    }
    k = users_key.pkey;
    if (k != NULL && EVP_PKEY_up_ref(k) == 1) {
        strcpy(kid, users_key.kid);
        *es256 = users_key.es256;
    } else {
        k = NULL;
    }
    pthread_mutex_unlock(&users_key.mu);
    return k;
}


/* Compact JSON of o (stolen) and its length; NULL when out of memory. */
static char *
users_jws_json(json_t *o, size_t *len)
{
    char  *s;

    s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *len = s != NULL ? strlen(s) : 0;
    return s;
}


/* base64url without padding of len bytes into out (4/3 len + 4 room). */
static size_t
users_b64url(const uint8_t *in, size_t len, char *out)
{
    int  i, n;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);
    while (n > 0 && out[n - 1] == '=') {
        n--;
    }
    for (i = 0; i < n; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[n] = '\0';
    return (size_t) n;
}


/*
 * Signs in[0..len) with k into sig: raw r || s (64 bytes) for ES256, as
 * JWS wants, not OpenSSL's DER.  Returns the signature's length or -1.
 */
static int
users_sign(EVP_PKEY *k, int es256, const char *in, size_t len,
    uint8_t *sig, size_t siglen)
{
    const unsigned char  *p;
    const BIGNUM         *r, *s;
    EVP_MD_CTX           *ctx;
    ECDSA_SIG            *es;
    uint8_t               der[512];
    size_t                n;
    int                   ok;

    ctx = EVP_MD_CTX_new();
    n = sizeof(der);
    ok = ctx != NULL
         && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1
         && EVP_DigestSign(ctx, der, &n, (const unsigned char *) in, len)
            == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1;
    }
    if (!es256) {
        if (n > siglen) {
            return -1;
        }
        memcpy(sig, der, n);
        return (int) n;
    }
    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) n);
    if (es == NULL || siglen < 64) {
        ECDSA_SIG_free(es);
        return -1;
    }
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
    ECDSA_SIG_free(es);
    return ok ? 64 : -1;
}


char *
users_access_token(const char *sub, json_t *roles, const char *sid,
    json_t *amr, int64_t iat)
{
    char        kid[USERS_KID_MAX + 1], jti[37], *head, *claims, *out;
    uint8_t     r[16], sig[512];
    EVP_PKEY   *k;
    size_t      hl, cl, n;
    int         es256, sl;

    k = users_key_get(kid, &es256);
    if (k == NULL || users_random(r, sizeof(r)) != 0) {
        EVP_PKEY_free(k);
        return NULL;
    }
    r[6] = (r[6] & 0x0f) | 0x40;                /* a version 4 UUID */
    r[8] = (r[8] & 0x3f) | 0x80;
    snprintf(jti, sizeof(jti), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
             r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    head = users_jws_json(json_pack("{s:s, s:s, s:s}", "alg",
                          es256 ? "ES256" : "RS256", "kid", kid,
                          "typ", "at+jwt"), &hl);
    claims = users_jws_json(json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:I,"
                            " s:I, s:O}", "iss", USERS_ISSUER, "aud",
                            USERS_AUDIENCE, "sub", sub, "roles", roles,
                            "sid", sid, "jti", jti, "iat", (json_int_t) iat,
                            "exp", (json_int_t) (iat + USERS_ACCESS_TTL_S),
                            "amr", amr), &cl);
    out = head != NULL && claims != NULL ? malloc(2 * (hl + cl) + 1024)
          : NULL;
    if (out != NULL) {
        n = users_b64url((uint8_t *) head, hl, out);
        out[n++] = '.';
        n += users_b64url((uint8_t *) claims, cl, out + n);
        sl = users_sign(k, es256, out, n, sig, sizeof(sig));
        if (sl > 0) {
            out[n++] = '.';
            users_b64url(sig, (size_t) sl, out + n);
        } else {
            free(out);
            out = NULL;
        }
    }
    free(head);
    free(claims);
    EVP_PKEY_free(k);
    return out;
}


char *
users_jwks(size_t *len)
{
    char     path[1200], *buf;
    ssize_t  n;

    pthread_mutex_lock(&users_key.mu);
    snprintf(path, sizeof(path), "%s/jwks.json", users_key.dir);
    pthread_mutex_unlock(&users_key.mu);
    buf = malloc(USERS_JWKS_MAX);
    if (buf == NULL) {
        return NULL;
    }
    n = users_read_file(path, buf, USERS_JWKS_MAX);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t) n;
    return buf;
}


void
users_jwks_get(kit_req_t *req)
{
    json_error_t  e;
    json_t       *doc;
    size_t        len;
    char         *s;

    s = users_jwks(&len);
    doc = s != NULL ? json_loadb(s, len, 0, &e) : NULL;
    free(s);
    if (doc == NULL) {
        kit_log(KIT_LOG_ERROR, "could not read \"%s/jwks.json\"",
                users_key.dir);
        kit_reply_problem(req, 503, NULL, "the key set is not available");
        return;
    }
    kit_reply_header(req, "Cache-Control", "public, max-age=300");
    /* the edge caches it; scripts/rotate-jwt-key purges the tag */
    kit_reply_header(req, "X-Kordon-Cache-Tags", "jwks");
    kit_reply_json(req, 200, doc);
}
