
/*
 * Kordon edge: the JWT verification core, free of nginx.
 *
 * kordon_jwt_keys_load() reads a JWKS document once, at configuration
 * time: every key must carry a "kid" and an "alg", and the alg is pinned
 * to the key.  RS256 goes with kty "RSA" (at least 2048 bits), ES256 with
 * kty "EC" on P-256 (point validated), HS256 with kty "oct" (at least 32
 * bytes) and nothing else.  Public keys become EVP_PKEYs right there and
 * are shared, read-only, by every later verify.
 *
 * kordon_jwt_verify() takes a compact JWS and refuses it at the first
 * failing check, in this order; everything up to the signature is cheap
 * and runs BEFORE any crypto, so junk never costs a public-key operation:
 *
 *     size <= max_size; exactly two dots; non-empty header and payload;
 *     base64url alphabet, no padding, canonical trailing bits; decoded
 *     lengths bounded; JSON nesting of header and payload bounded (counted
 *     on the raw bytes, jansson's own bound of 2048 is far too deep);
 *     header is a JSON object without duplicate names; "alg" is a string
 *     and not "none" in any case; "kid" names a loaded key; "alg" equals
 *     that key's pinned alg exactly; "crit" is refused (we understand no
 *     extension, so any listed name is unsupported; an empty or non-array
 *     "crit" is malformed); "jwk", "jku", "x5u", "x5c" are never read;
 *     signature length exact for the alg (RSA: modulus bytes; ES256: 64
 *     with 0 < r < n and 0 < s < n, CVE-2022-21449; HS256: 32)
 *
 * then the signature (OpenSSL 3 EVP: RSASSA-PKCS1-v1_5 with SHA-256, ECDSA
 * P-256 with r || s re-encoded as DER, HMAC-SHA256 compared with
 * CRYPTO_memcmp), and only then the payload: a JSON object with numeric
 * "exp" and "iat" (required) and "nbf" (optional), checked against "now"
 * with the leeway, then "iss", "aud" and the header "typ" per conf, then
 * the identity claims copied into fixed-size buffers.
 *
 * Why not libjwt's decoder: libjwt 1.10's jwt_decode() takes the algorithm
 * from the token's own header and one PEM key from the caller.  Given an
 * RSA public key and a token saying HS256 it computes an HMAC keyed with
 * the PEM text (the classic algorithm confusion), given no key it accepts
 * an unsigned token, and it cannot tie an alg to a kid.  It also parses
 * the PEM on every call and lets jansson nest 2048 levels deep.  So the
 * pinning and the format checks are done here, before any crypto, and the
 * signature is checked with OpenSSL 3 EVP directly, which is also faster.
 * The users service still signs with libjwt: the format is the same.
 *
 * For the module's shared cache of verified tokens: each key carries a
 * fingerprint (SHA-256 of its canonical JWK) that a verified token
 * reports, so a cached token can be tied to the key that verified it;
 * kordon_jwt_compact() packs a verified token's identity into a fixed
 * struct without pointers, kordon_jwt_compact_times() re-runs the time
 * checks on it, kordon_jwt_payload_load() decodes the payload of a
 * token known to be verified, for its claims, and a hasher
 * (kordon_jwt_hasher_new) names a token by its keyed SipHash-128, the
 * cache's key.
 *
 * A key set remembers the last few header segments that passed every
 * header check (the same bytes come with every token of a key), so a
 * token whose header is one of them skips the header's JSON parse.
 *
 * The header and the payload are read by the claims reader
 * (kordon_jwt_read_core.c) into a view of the members checked here; it
 * reads plain token JSON in one pass without allocating and leaves
 * anything else to jansson, whose verdict stands, so every check below
 * runs on the same view whoever read the text (KORDON_JWT_READER_JANSSON
 * in the conf reads with jansson alone: the tests' reference).
 *
 * Memory: a verify allocates one EVP_MD_CTX for the hash (plus an
 * ECDSA_SIG for ES256, and jansson's trees when the claims reader leaves
 * a text to it) and frees them on every path; each public key's verify
 * context is made once, at load; OpenSSL's error queue is cleared after
 * a failure, so nothing leaks into the TLS code of the process that
 * calls us.
 */


#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "kordon_jwt_core.h"
#include "kordon_jwt_read_core.h"


#define KORDON_JWT_RS256             1
#define KORDON_JWT_ES256             2
#define KORDON_JWT_HS256             3

#define KORDON_JWT_RSA_BITS_MIN      2048
#define KORDON_JWT_RSA_BITS_MAX      8192
#define KORDON_JWT_SIG_MAX           (KORDON_JWT_RSA_BITS_MAX / 8)
#define KORDON_JWT_EC_COORD          32      /* P-256 coordinate bytes */
#define KORDON_JWT_ES256_DER_MAX     80      /* SEQUENCE of 2 INTEGERs */
#define KORDON_JWT_HMAC_MIN          32
#define KORDON_JWT_HMAC_MAX          1024
#define KORDON_JWT_RSA_E_MAX         32
#define KORDON_JWT_DATE_MAX          1e15    /* |NumericDate| as a real */

#define KORDON_JWT_B64URL_BAD        77      /* not a base64url digit */

#define KORDON_JWT_TYP_MAX           64      /* "typ" bytes compared */
#define KORDON_JWT_HDR_SLOTS         4       /* headers remembered */
#define KORDON_JWT_HDR_B64_MAX       256     /* header segment bytes */

#define KORDON_JWT_TYP_NONE          0       /* absent or not a string */
#define KORDON_JWT_TYP_SET           1
#define KORDON_JWT_TYP_LONG          2       /* longer than TYP_MAX */

#define KORDON_JWT_STR_EMPTY_OK      0x1
#define KORDON_JWT_STR_NO_COMMA      0x2


typedef struct {
    const char      *name;
    const char      *kty;
    int              alg;
} kordon_jwt_alg_t;


typedef struct {
    size_t           kid_len;
    size_t           sig_len;         /* exact signature bytes */
    size_t           secret_len;
    int              alg;
    const char      *alg_name;
    EVP_PKEY        *pkey;            /* RS256, ES256 */
    EVP_PKEY_CTX    *vctx;            /* pkey's verify, set up at load */
    unsigned char   *secret;          /* HS256 */
    unsigned char    fp[KORDON_JWT_KEY_FP_LEN];
    char             kid[KORDON_JWT_KID_MAX + 1];
} kordon_jwt_key_t;


/*
 * A header segment that passed kordon_jwt_header(): the same bytes come
 * with every token of a key, so the next token with them skips the JSON
 * parse.  Keyed by the exact base64url text, so a hit is the same header.
 */

typedef struct {
    size_t                   len;             /* 0: a free slot */
    const kordon_jwt_key_t  *key;
    int                      typ_state;
    char                     typ[KORDON_JWT_TYP_MAX + 1];
    char                     b64[KORDON_JWT_HDR_B64_MAX];
} kordon_jwt_hdr_t;


struct kordon_jwt_keys_s {
    size_t             nkeys;
    EVP_MD            *sha256;
    kordon_jwt_key_t  *key;

    /* written by verifies: a key set is used by one thread at a time */
    unsigned           hdr_next;
    kordon_jwt_hdr_t   hdr[KORDON_JWT_HDR_SLOTS];
};


/* a token cut into its parts; header and signature decoded here */

typedef struct {
    size_t           signed_len;      /* "header.payload" */
    size_t           header_b64_len;  /* the header segment's text */
    int              typ_state;
    char             typ[KORDON_JWT_TYP_MAX + 1];
    size_t           header_len;
    size_t           payload_len;
    size_t           sig_len;
    unsigned char    header[KORDON_JWT_HEADER_MAX];
    unsigned char    sig[KORDON_JWT_SIG_MAX];
} kordon_jwt_tok_t;


static void kordon_jwt_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kordon_jwt_printable(char *dst, size_t cap, const char *src,
    size_t len);
static int kordon_jwt_b64url_decode(unsigned char *dst, size_t cap,
    const char *src, size_t len, size_t *n);
static int kordon_jwt_depth_ok(const unsigned char *p, size_t len,
    unsigned max);

static kordon_jwt_keys_t *kordon_jwt_keys_alloc(size_t n, char *err,
    size_t errlen);
static int kordon_jwt_key_load(kordon_jwt_key_t *key, const json_t *jwk,
    size_t index, char *err, size_t errlen);
static const kordon_jwt_alg_t *kordon_jwt_key_alg(const json_t *jwk,
    const char *who, char *err, size_t errlen);
static int kordon_jwt_key_member(const json_t *jwk, const char *name,
    unsigned char *buf, size_t cap, size_t *n, const char *who, char *err,
    size_t errlen);
static int kordon_jwt_key_rsa(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen);
static int kordon_jwt_key_ec(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen);
static int kordon_jwt_key_oct(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen);
static int kordon_jwt_key_verifier(kordon_jwt_key_t *key, char *err,
    size_t errlen, const char *who);
static int kordon_jwt_key_fingerprint(kordon_jwt_key_t *key,
    const json_t *jwk, const char *who, char *err, size_t errlen);
static EVP_PKEY *kordon_jwt_pkey_fromdata(const char *type,
    OSSL_PARAM_BLD *bld);
static const kordon_jwt_alg_t *kordon_jwt_alg_find(const char *name);
static const kordon_jwt_key_t *kordon_jwt_keys_find(
    const kordon_jwt_keys_t *keys, const char *kid, size_t len);

static int kordon_jwt_conf_resolve(const kordon_jwt_conf_t *conf,
    kordon_jwt_conf_t *cf);
static int kordon_jwt_split(const char *token, size_t len,
    const kordon_jwt_conf_t *cf, kordon_jwt_tok_t *tok,
    kordon_jwt_claims_t *out);
static int kordon_jwt_segment(unsigned char *dst, size_t cap,
    const char *src, size_t len, size_t *n);
static int kordon_jwt_doc_read(kordon_jwt_doc_t *doc,
    const kordon_jwt_name_t *names, size_t nnames, const void *text,
    size_t len, const kordon_jwt_conf_t *cf);
static int kordon_jwt_header(const kordon_jwt_keys_t *keys,
    const kordon_jwt_conf_t *cf, kordon_jwt_tok_t *tok,
    const kordon_jwt_key_t **key, kordon_jwt_claims_t *out);
static int kordon_jwt_crit(const kordon_jwt_val_t *crit);
static int kordon_jwt_signature(const kordon_jwt_keys_t *keys,
    const kordon_jwt_key_t *key, const char *token, kordon_jwt_tok_t *tok);
static int kordon_jwt_es256(const kordon_jwt_key_t *key, const EVP_MD *md,
    const unsigned char *msg, size_t msg_len, const unsigned char *sig,
    size_t sig_len);
static int kordon_jwt_es256_scalar_ok(const unsigned char *v);
static int kordon_jwt_hs256(const kordon_jwt_key_t *key, const EVP_MD *md,
    const unsigned char *msg, size_t msg_len, const unsigned char *sig,
    size_t sig_len);
static int kordon_jwt_digest_verify(const kordon_jwt_key_t *key,
    const EVP_MD *md, const unsigned char *msg, size_t msg_len,
    const unsigned char *sig, size_t sig_len);

static int kordon_jwt_header_cached(kordon_jwt_keys_t *keys,
    const char *token, kordon_jwt_tok_t *tok, const kordon_jwt_key_t **key,
    kordon_jwt_claims_t *out);
static void kordon_jwt_header_keep(kordon_jwt_keys_t *keys,
    const char *token, const kordon_jwt_tok_t *tok,
    const kordon_jwt_key_t *key);
static int kordon_jwt_payload(const kordon_jwt_conf_t *cf,
    const kordon_jwt_tok_t *tok, int64_t now, kordon_jwt_claims_t *out);
static int kordon_jwt_claims(const kordon_jwt_conf_t *cf,
    const kordon_jwt_tok_t *tok, const kordon_jwt_val_t *m, int64_t now,
    kordon_jwt_claims_t *out);
static int kordon_jwt_times(const kordon_jwt_conf_t *cf,
    const kordon_jwt_val_t *m, int64_t now, kordon_jwt_claims_t *out);
static int kordon_jwt_times_check(int64_t leeway_s, int64_t exp,
    int64_t iat, int has_nbf, int64_t nbf, int64_t now);
static int kordon_jwt_numeric_date(const kordon_jwt_val_t *v, int up,
    int64_t *t);
static int kordon_jwt_audience(const kordon_jwt_val_t *aud,
    const char *want);
static int kordon_jwt_typ_match(const char *want, const char *got);
static int kordon_jwt_identity(const kordon_jwt_val_t *m,
    kordon_jwt_claims_t *out);
static int kordon_jwt_copy_str(const kordon_jwt_val_t *v, char *dst,
    size_t cap, unsigned flags);
static int kordon_jwt_copy_list(const kordon_jwt_val_t *v, char *dst,
    size_t width, size_t max, size_t *n, unsigned flags);


static const kordon_jwt_alg_t  kordon_jwt_algs[] = {
    { "RS256", "RSA", KORDON_JWT_RS256 },
    { "ES256", "EC", KORDON_JWT_ES256 },
    { "HS256", "oct", KORDON_JWT_HS256 },
    { NULL, NULL, 0 }
};


/* the members of the header and of the payload that are read */

#define KORDON_JWT_H_ALG             0
#define KORDON_JWT_H_KID             1
#define KORDON_JWT_H_TYP             2
#define KORDON_JWT_H_CRIT            3
#define KORDON_JWT_H_N               4

static const kordon_jwt_name_t  kordon_jwt_header_names[] = {
    { "alg", 3 }, { "kid", 3 }, { "typ", 3 }, { "crit", 4 }
};

#define KORDON_JWT_P_EXP             0
#define KORDON_JWT_P_IAT             1
#define KORDON_JWT_P_NBF             2
#define KORDON_JWT_P_ISS             3
#define KORDON_JWT_P_AUD             4
#define KORDON_JWT_P_SUB             5
#define KORDON_JWT_P_SID             6
#define KORDON_JWT_P_JTI             7
#define KORDON_JWT_P_SCOPE           8
#define KORDON_JWT_P_ROLES           9
#define KORDON_JWT_P_AMR             10
#define KORDON_JWT_P_N               11

static const kordon_jwt_name_t  kordon_jwt_payload_names[] = {
    { "exp", 3 }, { "iat", 3 }, { "nbf", 3 }, { "iss", 3 }, { "aud", 3 },
    { "sub", 3 }, { "sid", 3 }, { "jti", 3 }, { "scope", 5 },
    { "roles", 5 }, { "amr", 3 }
};


/* the order n of the P-256 group, big-endian */

static const unsigned char  kordon_jwt_p256_order[KORDON_JWT_EC_COORD] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
};


/* base64url digit values, KORDON_JWT_B64URL_BAD (77) for other bytes */

static const unsigned char  kordon_jwt_b64url[256] = {
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 62, 77, 77,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 77, 77, 77, 77, 77, 77,
    77,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 77, 77, 77, 77, 63,
    77, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77
};


/*
 * Header parameters listed in "crit" that this core understands: none.
 * A later extension adds its name here and handles it in the header.
 */

static const char  *kordon_jwt_crit_known[] = {
    NULL
};


static const char  *kordon_jwt_errors[] = {
    "ok",                                   /* KORDON_JWT_OK */
    "bad verifier configuration",           /* ECONF */
    "out of memory",                        /* ENOMEM */
    "internal error",                       /* EINTERNAL */
    "token too large",                      /* ETOOLARGE */
    "malformed token",                      /* EMALFORMED */
    "token nested too deep",                /* EDEPTH */
    "algorithm \"none\" not allowed",       /* ENONE */
    "missing key id",                       /* ENOKID */
    "unknown key",                          /* EUNKNOWNKEY */
    "algorithm not allowed for key",        /* EALG */
    "unsupported critical header",          /* ECRIT */
    "bad signature",                        /* ESIG */
    "missing claim \"exp\"",                /* ENOEXP */
    "claim \"exp\" is not a number",        /* EBADEXP */
    "missing claim \"iat\"",                /* ENOIAT */
    "claim \"iat\" is not a number",        /* EBADIAT */
    "claim \"nbf\" is not a number",        /* EBADNBF */
    "token expired",                        /* EEXPIRED */
    "token not yet valid",                  /* ENOTYET */
    "token issued in the future",           /* EFUTURE */
    "wrong issuer",                         /* EISS */
    "wrong audience",                       /* EAUD */
    "bad token type",                       /* ETYP */
    "missing claim \"sub\"",                /* ENOSUB */
    "bad claim \"sub\"",                    /* EBADSUB */
    "bad claim \"sid\"",                    /* EBADSID */
    "bad claim \"jti\"",                    /* EBADJTI */
    "bad claim \"roles\"",                  /* EBADROLES */
    "bad claim \"scope\"",                  /* EBADSCOPE */
    "bad claim \"amr\"",                    /* EBADAMR */
    "no such claim",                        /* ENOENT */
    "claim too long for the buffer"         /* ENOSPC */
};


const char *
kordon_jwt_strerror(int code)
{
    if (code > 0 || code < KORDON_JWT_ELAST) {
        return "unknown error";
    }

    return kordon_jwt_errors[-code];
}


static void
kordon_jwt_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/*
 * Copies at most cap - 1 bytes of src into dst for an error message,
 * replacing anything but printable ASCII by "?".  The kid and alg of a
 * JWKS come from a file that an operator may not have written.
 */

static void
kordon_jwt_printable(char *dst, size_t cap, const char *src, size_t len)
{
    size_t  i;

    assert(cap > 0);

    for (i = 0; i < len && i < cap - 1; i++) {
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    }

    dst[i] = '\0';
}


/*
 * Strict base64url (RFC 7515, section 2): the url alphabet only, no "="
 * padding, no whitespace, and the unused low bits of the last character
 * must be zero, so that every byte string has exactly one encoding.
 * Returns 0 and the decoded length in *n, or -1 (dst is then garbage).
 */

static int
kordon_jwt_b64url_decode(unsigned char *dst, size_t cap, const char *src,
    size_t len, size_t *n)
{
    size_t                i, o;
    uint32_t              v;
    const unsigned char  *s, *t;

    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap) {
        return -1;
    }

    s = (const unsigned char *) src;
    t = kordon_jwt_b64url;
    o = 0;

    /*
     * Four digits make three bytes; a digit's value is under 64, the
     * table's KORDON_JWT_B64URL_BAD is not, so one test per quad finds a
     * byte out of the alphabet (a quarter of the branches of a digit at
     * a time: a 650-byte RS256 token decodes in a third of the time).
     */

    for (i = 0; i + 4 <= len; i += 4) {
        v = (uint32_t) t[s[i]] << 18 | (uint32_t) t[s[i + 1]] << 12
            | (uint32_t) t[s[i + 2]] << 6 | t[s[i + 3]];

        if ((t[s[i]] | t[s[i + 1]] | t[s[i + 2]] | t[s[i + 3]]) & ~0x3fu) {
            return -1;
        }

        dst[o] = (unsigned char) (v >> 16);
        dst[o + 1] = (unsigned char) (v >> 8);
        dst[o + 2] = (unsigned char) v;
        o += 3;
    }

    /* the tail: two digits make a byte, three two; spare bits zero */

    switch (len - i) {

    case 2:
        if ((t[s[i]] | t[s[i + 1]]) & ~0x3fu || (t[s[i + 1]] & 0x0f)) {
            return -1;
        }

        dst[o++] = (unsigned char) (t[s[i]] << 2 | t[s[i + 1]] >> 4);
        break;

    case 3:
        if ((t[s[i]] | t[s[i + 1]] | t[s[i + 2]]) & ~0x3fu
            || (t[s[i + 2]] & 0x03))
        {
            return -1;
        }

        v = (uint32_t) t[s[i]] << 12 | (uint32_t) t[s[i + 1]] << 6
            | t[s[i + 2]];
        dst[o++] = (unsigned char) (v >> 10);
        dst[o++] = (unsigned char) (v >> 2);
        break;

    default: /* 0: len % 4 == 1 was refused above */
        break;
    }

    *n = o;

    return 0;
}


/*
 * Says whether the JSON text p nests arrays and objects at most max
 * deep.  Only brackets outside strings count; the text need not be
 * valid, jansson rejects what is not, but it is never handed anything
 * deeper than max.
 */

static int
kordon_jwt_depth_ok(const unsigned char *p, size_t len, unsigned max)
{
    size_t    i;
    unsigned  depth, in_string;

    depth = 0;
    in_string = 0;

    for (i = 0; i < len; i++) {

        if (in_string) {
            if (p[i] == '\\') {
                i++;

            } else if (p[i] == '"') {
                in_string = 0;
            }

            continue;
        }

        switch (p[i]) {

        case '"':
            in_string = 1;
            break;

        case '[':
        case '{':
            if (++depth > max) {
                return 0;
            }
            break;

        case ']':
        case '}':
            if (depth > 0) {
                depth--;
            }
            break;
        }
    }

    return 1;
}


/*
 * Loads a JWKS document.  Returns the key set, or NULL with the reason in
 * err ("key \"k1\": missing \"alg\""); nothing is kept from a failed load.
 */

kordon_jwt_keys_t *
kordon_jwt_keys_load(const char *json, size_t len, char *err, size_t errlen)
{
    char                     name[KORDON_JWT_KID_MAX + 1];
    size_t                   i, n;
    json_t                  *root, *arr;
    json_error_t             jerr;
    kordon_jwt_key_t        *k;
    kordon_jwt_keys_t       *keys;
    const kordon_jwt_key_t  *dup;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        kordon_jwt_error(err, errlen,
                         "could not parse JWKS: %s at line %d, column %d",
                         jerr.text, jerr.line, jerr.column);
        return NULL;
    }

    keys = NULL;
    arr = json_object_get(root, "keys");
    n = json_array_size(arr);

    if (!json_is_object(root) || !json_is_array(arr)) {
        kordon_jwt_error(err, errlen, "JWKS has no \"keys\" array");
        goto failed;
    }

    if (n == 0 || n > KORDON_JWT_KEYS_MAX) {
        kordon_jwt_error(err, errlen, "JWKS has %zu keys, 1 to %d allowed",
                         n, KORDON_JWT_KEYS_MAX);
        goto failed;
    }

    keys = kordon_jwt_keys_alloc(n, err, errlen);
    if (keys == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        k = &keys->key[i];

        if (kordon_jwt_key_load(k, json_array_get(arr, i), i, err, errlen)
            != 0)
        {
            goto failed;
        }

        /* the first i keys are searched, then key i joins them */
        dup = kordon_jwt_keys_find(keys, k->kid, k->kid_len);
        keys->nkeys = i + 1;

        if (dup != NULL) {
            kordon_jwt_printable(name, sizeof(name), k->kid, k->kid_len);
            kordon_jwt_error(err, errlen, "duplicate kid \"%s\"", name);
            goto failed;
        }
    }

    json_decref(root);

    return keys;

failed:

    json_decref(root);
    kordon_jwt_keys_free(keys);
    ERR_clear_error();

    return NULL;
}


/* an empty key set with room for n keys, or NULL with err set */

static kordon_jwt_keys_t *
kordon_jwt_keys_alloc(size_t n, char *err, size_t errlen)
{
    kordon_jwt_keys_t  *keys;

    keys = calloc(1, sizeof(kordon_jwt_keys_t));
    if (keys == NULL) {
        goto nomem;
    }

    keys->key = calloc(n, sizeof(kordon_jwt_key_t));
    if (keys->key == NULL) {
        goto nomem;
    }

    keys->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (keys->sha256 == NULL) {
        kordon_jwt_error(err, errlen, "could not fetch SHA-256 from OpenSSL");
        kordon_jwt_keys_free(keys);
        return NULL;
    }

    return keys;

nomem:

    kordon_jwt_error(err, errlen, "out of memory loading JWKS");
    kordon_jwt_keys_free(keys);

    return NULL;
}


void
kordon_jwt_keys_free(kordon_jwt_keys_t *keys)
{
    size_t             i;
    kordon_jwt_key_t  *k;

    if (keys == NULL) {
        return;
    }

    for (i = 0; i < keys->nkeys; i++) {
        k = &keys->key[i];

        EVP_PKEY_CTX_free(k->vctx);
        EVP_PKEY_free(k->pkey);

        if (k->secret != NULL) {
            OPENSSL_cleanse(k->secret, k->secret_len);
            free(k->secret);
        }
    }

    free(keys->key);
    EVP_MD_free(keys->sha256);
    free(keys);
}


size_t
kordon_jwt_keys_count(const kordon_jwt_keys_t *keys)
{
    return keys == NULL ? 0 : keys->nkeys;
}


/*
 * Says whether keys holds the key with fingerprint fp (claims.key_fp of
 * a verified token): 1 or 0.  A linear scan over at most 64 keys.
 */

int
kordon_jwt_keys_has(const kordon_jwt_keys_t *keys,
    const unsigned char fp[KORDON_JWT_KEY_FP_LEN])
{
    size_t  i;

    if (keys == NULL) {
        return 0;
    }

    for (i = 0; i < keys->nkeys; i++) {
        if (memcmp(keys->key[i].fp, fp, KORDON_JWT_KEY_FP_LEN) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * Loads one JWK into key.  Returns 0, or -1 with err set; a failed key
 * holds nothing that needs freeing.
 */

static int
kordon_jwt_key_load(kordon_jwt_key_t *key, const json_t *jwk, size_t index,
    char *err, size_t errlen)
{
    int                      rc;
    char                     name[KORDON_JWT_KID_MAX + 1];
    char                     who[KORDON_JWT_KID_MAX + 32];
    size_t                   len;
    json_t                  *kid;
    const kordon_jwt_alg_t  *a;

    if (!json_is_object(jwk)) {
        kordon_jwt_error(err, errlen, "key at index %zu: not an object",
                         index);
        return -1;
    }

    kid = json_object_get(jwk, "kid");
    len = json_string_length(kid);

    if (!json_is_string(kid) || len == 0 || len > KORDON_JWT_KID_MAX) {
        kordon_jwt_error(err, errlen, "key at index %zu: %s", index,
                         kid == NULL ? "missing \"kid\""
                         : "\"kid\" is not a string of 1 to 128 bytes");
        return -1;
    }

    memcpy(key->kid, json_string_value(kid), len + 1);
    key->kid_len = len;

    kordon_jwt_printable(name, sizeof(name), key->kid, len);
    snprintf(who, sizeof(who), "key \"%s\"", name);

    a = kordon_jwt_key_alg(jwk, who, err, errlen);
    if (a == NULL) {
        return -1;
    }

    key->alg = a->alg;
    key->alg_name = a->name;

    switch (a->alg) {

    case KORDON_JWT_RS256:
        rc = kordon_jwt_key_rsa(key, jwk, who, err, errlen);
        break;

    case KORDON_JWT_ES256:
        rc = kordon_jwt_key_ec(key, jwk, who, err, errlen);
        break;

    default: /* KORDON_JWT_HS256 */
        rc = kordon_jwt_key_oct(key, jwk, who, err, errlen);
    }

    if (rc != 0) {
        return -1;
    }

    if (kordon_jwt_key_fingerprint(key, jwk, who, err, errlen) != 0
        || (key->pkey != NULL
            && kordon_jwt_key_verifier(key, err, errlen, who) != 0))
    {
        EVP_PKEY_CTX_free(key->vctx);
        key->vctx = NULL;
        EVP_PKEY_free(key->pkey);
        key->pkey = NULL;

        if (key->secret != NULL) {
            OPENSSL_cleanse(key->secret, key->secret_len);
            free(key->secret);
            key->secret = NULL;
        }

        return -1;
    }

    return 0;
}


/*
 * The verify context of a public key, made once here and used by every
 * later verify: EVP_DigestVerifyInit() on each token fetched the
 * algorithm, made a context and duplicated the key's provider data again
 * (about 27,000 instructions a token, a tenth of an RSA-2048 verify).
 * A verify now hashes the signing input and calls EVP_PKEY_verify() on
 * this context, which keeps no state between calls; a key set is used by
 * one thread at a time (an nginx worker), so no lock is needed.
 */

static int
kordon_jwt_key_verifier(kordon_jwt_key_t *key, char *err, size_t errlen,
    const char *who)
{
    EVP_PKEY_CTX  *ctx;

    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);

    if (ctx == NULL
        || EVP_PKEY_verify_init(ctx) != 1
        || (key->alg == KORDON_JWT_RS256
            && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
        || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
    {
        EVP_PKEY_CTX_free(ctx);
        ERR_clear_error();
        kordon_jwt_error(err, errlen, "%s: could not set up its verify",
                         who);
        return -1;
    }

    key->vctx = ctx;

    return 0;
}


/*
 * A key's fingerprint: SHA-256 of its JWK as canonical JSON (members
 * sorted, no spaces), truncated.  It names the kid, the alg and the key
 * material at once, so a cache of verified tokens can tell whether the
 * key that verified a token is still loaded, even under a reused kid.
 * For an HS256 key the JSON holds the secret: it is wiped after hashing,
 * and a truncated hash of a 32-byte random secret gives nothing away.
 */

static int
kordon_jwt_key_fingerprint(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen)
{
    int            rc;
    char          *text;
    unsigned int   n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        kordon_jwt_error(err, errlen, "%s: out of memory", who);
        return -1;
    }

    rc = EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);

    OPENSSL_cleanse(text, strlen(text));
    free(text);

    if (rc != 1 || n < KORDON_JWT_KEY_FP_LEN) {
        ERR_clear_error();
        kordon_jwt_error(err, errlen, "%s: could not hash the key", who);
        return -1;
    }

    memcpy(key->fp, md, KORDON_JWT_KEY_FP_LEN);

    return 0;
}


/*
 * The alg a JWK pins: "alg" and "kty" present and matching, "use" absent
 * or "sig", no private part.  Returns NULL with err set otherwise.
 */

static const kordon_jwt_alg_t *
kordon_jwt_key_alg(const json_t *jwk, const char *who, char *err,
    size_t errlen)
{
    char                     name[KORDON_JWT_KID_MAX + 1];
    json_t                  *alg, *kty, *use, *v;
    const kordon_jwt_alg_t  *a;

    alg = json_object_get(jwk, "alg");
    kty = json_object_get(jwk, "kty");
    use = json_object_get(jwk, "use");

    if (!json_is_string(alg) || !json_is_string(kty)) {
        v = json_is_string(alg) ? kty : alg;
        kordon_jwt_error(err, errlen, "%s: %s \"%s\"", who,
                         v == NULL ? "missing" : "not a string:",
                         v == alg ? "alg" : "kty");
        return NULL;
    }

    a = kordon_jwt_alg_find(json_string_value(alg));

    if (a == NULL) {
        kordon_jwt_printable(name, sizeof(name), json_string_value(alg),
                             json_string_length(alg));
        kordon_jwt_error(err, errlen, "%s: unsupported alg \"%s\"", who,
                         name);
        return NULL;
    }

    if (strcmp(json_string_value(kty), a->kty) != 0) {
        kordon_jwt_printable(name, sizeof(name), json_string_value(kty),
                             json_string_length(kty));
        kordon_jwt_error(err, errlen, "%s: alg \"%s\" needs kty \"%s\", "
                         "not \"%s\"", who, a->name, a->kty, name);
        return NULL;
    }

    if (use != NULL && (!json_is_string(use)
                        || strcmp(json_string_value(use), "sig") != 0))
    {
        kordon_jwt_error(err, errlen, "%s: \"use\" is not \"sig\"", who);
        return NULL;
    }

    if (a->alg != KORDON_JWT_HS256 && json_object_get(jwk, "d") != NULL) {
        kordon_jwt_error(err, errlen, "%s: private key material \"d\" "
                         "in a verification key set", who);
        return NULL;
    }

    return a;
}


/*
 * Decodes the base64url member "name" of a JWK into buf (cap bytes).
 * Returns 0, or -1 with err set.
 */

static int
kordon_jwt_key_member(const json_t *jwk, const char *name,
    unsigned char *buf, size_t cap, size_t *n, const char *who, char *err,
    size_t errlen)
{
    size_t   len;
    json_t  *v;

    v = json_object_get(jwk, name);

    if (!json_is_string(v)) {
        kordon_jwt_error(err, errlen, "%s: %s \"%s\"", who,
                         v == NULL ? "missing" : "not a string:", name);
        return -1;
    }

    len = json_string_length(v);

    if (len == 0 || len > (cap + 2) / 3 * 4) {
        kordon_jwt_error(err, errlen, "%s: \"%s\" is empty or longer than "
                         "%zu bytes", who, name, cap);
        return -1;
    }

    if (kordon_jwt_b64url_decode(buf, cap, json_string_value(v), len, n)
        != 0)
    {
        kordon_jwt_error(err, errlen, "%s: \"%s\" is not valid base64url",
                         who, name);
        return -1;
    }

    return 0;
}


static int
kordon_jwt_key_rsa(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen)
{
    int              bits;
    size_t           nlen, elen;
    BIGNUM          *n, *e;
    unsigned char    ebuf[KORDON_JWT_RSA_E_MAX];
    unsigned char    nbuf[KORDON_JWT_RSA_BITS_MAX / 8];
    OSSL_PARAM_BLD  *bld;

    if (kordon_jwt_key_member(jwk, "n", nbuf, sizeof(nbuf), &nlen, who,
                              err, errlen) != 0
        || kordon_jwt_key_member(jwk, "e", ebuf, sizeof(ebuf), &elen, who,
                                 err, errlen) != 0)
    {
        return -1;
    }

    n = BN_bin2bn(nbuf, (int) nlen, NULL);
    e = BN_bin2bn(ebuf, (int) elen, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL) {
        kordon_jwt_error(err, errlen, "%s: out of memory", who);
        goto done;
    }

    bits = BN_num_bits(n);

    if (bits < KORDON_JWT_RSA_BITS_MIN) {
        kordon_jwt_error(err, errlen, "%s: RSA modulus has %d bits, at "
                         "least %d required", who, bits,
                         KORDON_JWT_RSA_BITS_MIN);
        goto done;
    }

    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        kordon_jwt_error(err, errlen, "%s: out of memory", who);
        goto done;
    }

    key->pkey = kordon_jwt_pkey_fromdata("RSA", bld);

    if (key->pkey == NULL) {
        kordon_jwt_error(err, errlen, "%s: not a valid RSA public key", who);
        goto done;
    }

    /* RFC 7518, 3.3: the signature is exactly as long as the modulus */
    key->sig_len = (size_t) EVP_PKEY_get_size(key->pkey);

done:

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);

    return key->pkey == NULL ? -1 : 0;
}


static int
kordon_jwt_key_ec(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen)
{
    char             name[16];
    size_t           xlen, ylen;
    json_t          *crv;
    unsigned char    point[1 + 2 * KORDON_JWT_EC_COORD];
    OSSL_PARAM_BLD  *bld;

    crv = json_object_get(jwk, "crv");

    if (crv == NULL) {
        kordon_jwt_error(err, errlen, "%s: missing \"crv\"", who);
        return -1;
    }

    if (!json_is_string(crv)
        || strcmp(json_string_value(crv), "P-256") != 0)
    {
        kordon_jwt_printable(name, sizeof(name), json_string_value(crv),
                             json_string_length(crv));
        kordon_jwt_error(err, errlen, "%s: curve \"%s\" is not \"P-256\"",
                         who, name);
        return -1;
    }

    if (kordon_jwt_key_member(jwk, "x", point + 1, KORDON_JWT_EC_COORD,
                              &xlen, who, err, errlen) != 0
        || kordon_jwt_key_member(jwk, "y", point + 1 + KORDON_JWT_EC_COORD,
                                 KORDON_JWT_EC_COORD, &ylen, who, err,
                                 errlen) != 0)
    {
        return -1;
    }

    /* RFC 7518, 6.2.1.2: the coordinates are full length, not trimmed */
    if (xlen != KORDON_JWT_EC_COORD || ylen != KORDON_JWT_EC_COORD) {
        kordon_jwt_error(err, errlen, "%s: \"x\" and \"y\" must be %d bytes "
                         "each", who, KORDON_JWT_EC_COORD);
        return -1;
    }

    point[0] = POINT_CONVERSION_UNCOMPRESSED;

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           "prime256v1", 0) != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            point, sizeof(point)) != 1)
    {
        OSSL_PARAM_BLD_free(bld);
        kordon_jwt_error(err, errlen, "%s: out of memory", who);
        return -1;
    }

    key->pkey = kordon_jwt_pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);

    if (key->pkey == NULL) {
        kordon_jwt_error(err, errlen, "%s: point is not on curve \"P-256\"",
                         who);
        return -1;
    }

    key->sig_len = 2 * KORDON_JWT_EC_COORD;

    return 0;
}


static int
kordon_jwt_key_oct(kordon_jwt_key_t *key, const json_t *jwk,
    const char *who, char *err, size_t errlen)
{
    size_t          len;
    unsigned char   buf[KORDON_JWT_HMAC_MAX];

    if (kordon_jwt_key_member(jwk, "k", buf, sizeof(buf), &len, who, err,
                              errlen) != 0)
    {
        return -1;
    }

    if (len < KORDON_JWT_HMAC_MIN) {
        OPENSSL_cleanse(buf, sizeof(buf));
        kordon_jwt_error(err, errlen, "%s: HS256 key has %zu bytes, at "
                         "least %d required", who, len, KORDON_JWT_HMAC_MIN);
        return -1;
    }

    key->secret = malloc(len);
    if (key->secret == NULL) {
        OPENSSL_cleanse(buf, sizeof(buf));
        kordon_jwt_error(err, errlen, "%s: out of memory", who);
        return -1;
    }

    memcpy(key->secret, buf, len);
    OPENSSL_cleanse(buf, sizeof(buf));

    key->secret_len = len;
    key->sig_len = 32;

    return 0;
}


/*
 * Imports the public key in bld as an EVP_PKEY of the given type and
 * validates it (RSA: SP 800-56B public checks; EC: the point is on the
 * curve, not at infinity, and of the right order).  Returns NULL when the
 * key is unusable or memory ran out.
 */

static EVP_PKEY *
kordon_jwt_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx, *check;

    pkey = NULL;
    check = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        goto done;
    }

    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

done:

    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    ERR_clear_error();

    return pkey;
}


static const kordon_jwt_alg_t *
kordon_jwt_alg_find(const char *name)
{
    const kordon_jwt_alg_t  *a;

    for (a = kordon_jwt_algs; a->name != NULL; a++) {
        if (strcmp(a->name, name) == 0) {
            return a;
        }
    }

    return NULL;
}


/*
 * Finds a key by kid: a plain byte comparison over at most 64 keys, so a
 * kid like "../../etc/passwd" or "' OR 1=1 --" is just an unknown key.
 */

static const kordon_jwt_key_t *
kordon_jwt_keys_find(const kordon_jwt_keys_t *keys, const char *kid,
    size_t len)
{
    size_t  i;

    if (len == 0 || len > KORDON_JWT_KID_MAX) {
        return NULL;
    }

    for (i = 0; i < keys->nkeys; i++) {
        if (keys->key[i].kid_len == len
            && memcmp(keys->key[i].kid, kid, len) == 0)
        {
            return &keys->key[i];
        }
    }

    return NULL;
}


void
kordon_jwt_conf_init(kordon_jwt_conf_t *conf)
{
    memset(conf, 0, sizeof(kordon_jwt_conf_t));

    conf->max_size = KORDON_JWT_SIZE_DEFAULT;
    conf->max_depth = KORDON_JWT_DEPTH_DEFAULT;
}


/*
 * Copies conf into cf with the defaults and the caps applied.  An
 * audience is required: a token meant for another service must not pass.
 */

static int
kordon_jwt_conf_resolve(const kordon_jwt_conf_t *conf, kordon_jwt_conf_t *cf)
{
    if (conf == NULL || conf->aud == NULL || conf->aud[0] == '\0') {
        return KORDON_JWT_ECONF;
    }

    *cf = *conf;

    if (cf->max_size == 0) {
        cf->max_size = KORDON_JWT_SIZE_DEFAULT;
    }

    if (cf->max_size > KORDON_JWT_SIZE_MAX) {
        cf->max_size = KORDON_JWT_SIZE_MAX;
    }

    if (cf->max_depth == 0) {
        cf->max_depth = KORDON_JWT_DEPTH_DEFAULT;
    }

    if (cf->max_depth > KORDON_JWT_DEPTH_MAX) {
        cf->max_depth = KORDON_JWT_DEPTH_MAX;
    }

    if (cf->leeway_s < 0) {
        cf->leeway_s = 0;
    }

    if (cf->leeway_s > KORDON_JWT_LEEWAY_MAX_S) {
        cf->leeway_s = KORDON_JWT_LEEWAY_MAX_S;
    }

    return KORDON_JWT_OK;
}


/*
 * Verifies token against keys and conf at time now (seconds since the
 * epoch).  Returns KORDON_JWT_OK with the claims in out, or a negative
 * code with out->payload_len set to 0.  Nothing else is touched.
 */

int
kordon_jwt_verify(const kordon_jwt_keys_t *keys,
    const kordon_jwt_conf_t *conf, const char *token, size_t len,
    int64_t now, kordon_jwt_claims_t *out)
{
    int                      rc;
    kordon_jwt_tok_t         tok;
    kordon_jwt_conf_t        cf;
    const kordon_jwt_key_t  *key;

    assert(out != NULL);

    memset(out, 0, offsetof(kordon_jwt_claims_t, payload));

    key = NULL;
    tok.payload_len = 0;

    rc = kordon_jwt_conf_resolve(conf, &cf);

    if (rc == KORDON_JWT_OK && (keys == NULL || token == NULL)) {
        rc = KORDON_JWT_ECONF;
    }

    if (rc == KORDON_JWT_OK) {
        rc = kordon_jwt_split(token, len, &cf, &tok, out);
    }

    if (rc == KORDON_JWT_OK
        && (cf.reader == KORDON_JWT_READER_JANSSON
            || !kordon_jwt_header_cached((kordon_jwt_keys_t *) keys, token,
                                         &tok, &key, out)))
    {
        rc = kordon_jwt_header(keys, &cf, &tok, &key, out);

        if (rc == KORDON_JWT_OK && cf.reader != KORDON_JWT_READER_JANSSON) {
            kordon_jwt_header_keep((kordon_jwt_keys_t *) keys, token, &tok,
                                   key);
        }
    }

    if (rc == KORDON_JWT_OK) {
        rc = kordon_jwt_signature(keys, key, token, &tok);
    }

    if (rc == KORDON_JWT_OK) {
        rc = kordon_jwt_payload(&cf, &tok, now, out);
    }

    out->payload_len = (rc == KORDON_JWT_OK) ? tok.payload_len : 0;

    return rc;
}


/*
 * Checks the form of the token, decodes the header and the signature into
 * tok and the payload into out->payload.  No JSON is parsed here, but the
 * nesting depth of both JSON texts is bounded.
 */

static int
kordon_jwt_split(const char *token, size_t len, const kordon_jwt_conf_t *cf,
    kordon_jwt_tok_t *tok, kordon_jwt_claims_t *out)
{
    int          rc;
    const char  *dot1, *dot2, *end;

    if (len > cf->max_size) {
        return KORDON_JWT_ETOOLARGE;
    }

    end = token + len;

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        return KORDON_JWT_EMALFORMED;
    }

    dot2 = memchr(dot1 + 1, '.', (size_t) (end - dot1 - 1));
    if (dot2 == NULL) {
        return KORDON_JWT_EMALFORMED;
    }

    if (memchr(dot2 + 1, '.', (size_t) (end - dot2 - 1)) != NULL
        || dot1 == token || dot2 == dot1 + 1)
    {
        return KORDON_JWT_EMALFORMED;
    }

    tok->signed_len = (size_t) (dot2 - token);
    tok->header_b64_len = (size_t) (dot1 - token);

    rc = kordon_jwt_segment(tok->header, sizeof(tok->header), token,
                            (size_t) (dot1 - token), &tok->header_len);
    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    rc = kordon_jwt_segment((unsigned char *) out->payload,
                            sizeof(out->payload), dot1 + 1,
                            (size_t) (dot2 - dot1 - 1), &tok->payload_len);
    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    /* an empty signature is left to the alg's length check */
    rc = kordon_jwt_segment(tok->sig, sizeof(tok->sig), dot2 + 1,
                            (size_t) (end - dot2 - 1), &tok->sig_len);
    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    if (!kordon_jwt_depth_ok(tok->header, tok->header_len, cf->max_depth)
        || !kordon_jwt_depth_ok((unsigned char *) out->payload,
                                tok->payload_len, cf->max_depth))
    {
        return KORDON_JWT_EDEPTH;
    }

    return KORDON_JWT_OK;
}


static int
kordon_jwt_segment(unsigned char *dst, size_t cap, const char *src,
    size_t len, size_t *n)
{
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap) {
        return KORDON_JWT_ETOOLARGE;
    }

    if (kordon_jwt_b64url_decode(dst, cap, src, len, n) != 0) {
        return KORDON_JWT_EMALFORMED;
    }

    return KORDON_JWT_OK;
}


/*
 * Reads text (a header or a payload) into doc: the fast reader first,
 * jansson when it declines (or when conf asks for jansson alone).
 * Returns 1 when the fast reader read it, 0 when jansson did, or
 * KORDON_JWT_EMALFORMED when the text is not a JSON object; doc is to be
 * freed with kordon_jwt_doc_free() in every case.
 */

static int
kordon_jwt_doc_read(kordon_jwt_doc_t *doc, const kordon_jwt_name_t *names,
    size_t nnames, const void *text, size_t len, const kordon_jwt_conf_t *cf)
{
    if (cf->reader != KORDON_JWT_READER_JANSSON
        && kordon_jwt_doc_fast(doc, names, nnames, text, len, cf->max_depth)
           == 0)
    {
        return 1;
    }

    if (kordon_jwt_doc_jansson(doc, names, nnames, text, len) != 0) {
        return KORDON_JWT_EMALFORMED;
    }

    return 0;
}


/*
 * Reads the header and picks the key: "alg" not "none", "kid" known,
 * "alg" equal to the key's pinned alg, no "crit".
 */

static int
kordon_jwt_header(const kordon_jwt_keys_t *keys, const kordon_jwt_conf_t *cf,
    kordon_jwt_tok_t *tok, const kordon_jwt_key_t **key,
    kordon_jwt_claims_t *out)
{
    int                      rc;
    kordon_jwt_doc_t         doc;
    const kordon_jwt_val_t  *alg, *kid, *typ;

    rc = kordon_jwt_doc_read(&doc, kordon_jwt_header_names, KORDON_JWT_H_N,
                             tok->header, tok->header_len, cf);

    if (rc >= 0) {
        out->fast_header = rc;

        alg = &doc.m[KORDON_JWT_H_ALG];
        kid = &doc.m[KORDON_JWT_H_KID];
        typ = &doc.m[KORDON_JWT_H_TYP];

        if (alg->type != KORDON_JWT_V_STRING) {
            rc = KORDON_JWT_EMALFORMED;

        } else if (alg->len == 4 && strncasecmp(alg->s, "none", 4) == 0) {
            rc = KORDON_JWT_ENONE;

        } else if (kid->type == KORDON_JWT_V_ABSENT) {
            rc = KORDON_JWT_ENOKID;

        } else if (kid->type != KORDON_JWT_V_STRING) {
            rc = KORDON_JWT_EMALFORMED;

        } else {
            *key = kordon_jwt_keys_find(keys, kid->s, kid->len);

            rc = (*key == NULL) ? KORDON_JWT_EUNKNOWNKEY
                 : !kordon_jwt_val_is(alg, (*key)->alg_name) ? KORDON_JWT_EALG
                 : KORDON_JWT_OK;
        }
    }

    if (rc == KORDON_JWT_OK) {
        memcpy(out->kid, (*key)->kid, (*key)->kid_len + 1);
        memcpy(out->alg, (*key)->alg_name, strlen((*key)->alg_name) + 1);
        memcpy(out->key_fp, (*key)->fp, KORDON_JWT_KEY_FP_LEN);

        /* "typ" as a C string, as the check after the signature takes it */

        tok->typ_state = KORDON_JWT_TYP_NONE;

        if (typ->type == KORDON_JWT_V_STRING) {
            if (typ->len > KORDON_JWT_TYP_MAX) {
                tok->typ_state = KORDON_JWT_TYP_LONG;

            } else {
                memcpy(tok->typ, typ->s, typ->len);
                tok->typ[typ->len] = '\0';
                tok->typ_state = KORDON_JWT_TYP_SET;
            }
        }

        rc = kordon_jwt_crit(&doc.m[KORDON_JWT_H_CRIT]);
    }

    kordon_jwt_doc_free(&doc);

    return rc;
}


/*
 * A header segment seen before (the same bytes) is the same header: its
 * key and typ are taken from the slot, the JSON is not parsed again.
 * Returns 1 with *key, tok's typ and out's kid, alg and key_fp set, or 0.
 */

static int
kordon_jwt_header_cached(kordon_jwt_keys_t *keys, const char *token,
    kordon_jwt_tok_t *tok, const kordon_jwt_key_t **key,
    kordon_jwt_claims_t *out)
{
    size_t                   i;
    const kordon_jwt_key_t  *k;
    const kordon_jwt_hdr_t  *slot;

    if (keys == NULL) {
        return 0;
    }

    for (i = 0; i < KORDON_JWT_HDR_SLOTS; i++) {
        slot = &keys->hdr[i];

        if (slot->len == tok->header_b64_len
            && memcmp(slot->b64, token, slot->len) == 0)
        {
            k = slot->key;
            *key = k;

            tok->typ_state = slot->typ_state;
            memcpy(tok->typ, slot->typ, sizeof(tok->typ));

            memcpy(out->kid, k->kid, k->kid_len + 1);
            memcpy(out->alg, k->alg_name, strlen(k->alg_name) + 1);
            memcpy(out->key_fp, k->fp, KORDON_JWT_KEY_FP_LEN);

            return 1;
        }
    }

    return 0;
}


/* remembers a header that passed every check, in the next slot round */

static void
kordon_jwt_header_keep(kordon_jwt_keys_t *keys, const char *token,
    const kordon_jwt_tok_t *tok, const kordon_jwt_key_t *key)
{
    kordon_jwt_hdr_t  *slot;

    if (tok->header_b64_len == 0
        || tok->header_b64_len > KORDON_JWT_HDR_B64_MAX)
    {
        return;
    }

    slot = &keys->hdr[keys->hdr_next];
    keys->hdr_next = (keys->hdr_next + 1) % KORDON_JWT_HDR_SLOTS;

    slot->len = tok->header_b64_len;
    slot->key = key;
    slot->typ_state = tok->typ_state;
    memcpy(slot->typ, tok->typ, sizeof(slot->typ));
    memcpy(slot->b64, token, tok->header_b64_len);
}


/*
 * RFC 7515, 4.1.11: "crit" lists extensions the verifier must understand
 * or refuse the token; it must not be empty.
 */

static int
kordon_jwt_crit(const kordon_jwt_val_t *crit)
{
    size_t                   i, j;
    const char             **known;
    kordon_jwt_val_t         tmp;
    const kordon_jwt_val_t  *v;

    if (crit->type == KORDON_JWT_V_ABSENT) {
        return KORDON_JWT_OK;
    }

    if (crit->type != KORDON_JWT_V_ARRAY || crit->len == 0) {
        return KORDON_JWT_EMALFORMED;
    }

    for (i = 0; i < crit->len; i++) {
        v = kordon_jwt_val_item(crit, i, &tmp);

        if (v->type != KORDON_JWT_V_STRING) {
            return KORDON_JWT_EMALFORMED;
        }

        known = kordon_jwt_crit_known;

        for (j = 0; known[j] != NULL; j++) {
            if (kordon_jwt_val_is(v, known[j])) {
                break;
            }
        }

        if (known[j] == NULL) {
            return KORDON_JWT_ECRIT;
        }
    }

    return KORDON_JWT_OK;
}


static int
kordon_jwt_signature(const kordon_jwt_keys_t *keys,
    const kordon_jwt_key_t *key, const char *token, kordon_jwt_tok_t *tok)
{
    const unsigned char  *msg;

    msg = (const unsigned char *) token;

    switch (key->alg) {

    case KORDON_JWT_RS256:
        if (tok->sig_len != key->sig_len) {
            return KORDON_JWT_ESIG;
        }

        return kordon_jwt_digest_verify(key, keys->sha256, msg,
                                        tok->signed_len, tok->sig,
                                        tok->sig_len);

    case KORDON_JWT_ES256:
        return kordon_jwt_es256(key, keys->sha256, msg, tok->signed_len,
                                tok->sig, tok->sig_len);

    case KORDON_JWT_HS256:
        return kordon_jwt_hs256(key, keys->sha256, msg, tok->signed_len,
                                tok->sig, tok->sig_len);
    }

    return KORDON_JWT_EINTERNAL;
}


/*
 * ES256 (RFC 7518, 3.4): the signature is r || s, 32 bytes each.  A zero
 * or out-of-range scalar is refused before OpenSSL sees it (the Java bug
 * CVE-2022-21449 accepted r = s = 0); the rest becomes a DER ECDSA_SIG.
 */

static int
kordon_jwt_es256(const kordon_jwt_key_t *key, const EVP_MD *md,
    const unsigned char *msg, size_t msg_len, const unsigned char *sig,
    size_t sig_len)
{
    int             der_len;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    unsigned char  *p, der[KORDON_JWT_ES256_DER_MAX];

    if (sig_len != 2 * KORDON_JWT_EC_COORD
        || !kordon_jwt_es256_scalar_ok(sig)
        || !kordon_jwt_es256_scalar_ok(sig + KORDON_JWT_EC_COORD))
    {
        return KORDON_JWT_ESIG;
    }

    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, KORDON_JWT_EC_COORD, NULL);
    s = BN_bin2bn(sig + KORDON_JWT_EC_COORD, KORDON_JWT_EC_COORD, NULL);

    if (es == NULL || r == NULL || s == NULL) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return KORDON_JWT_ENOMEM;
    }

    /* cannot fail with r and s set; es owns them from here */
    (void) ECDSA_SIG_set0(es, r, s);

    der_len = i2d_ECDSA_SIG(es, NULL);

    if (der_len <= 0 || der_len > (int) sizeof(der)) {
        ECDSA_SIG_free(es);
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    p = der;
    der_len = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);

    if (der_len <= 0) {
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    return kordon_jwt_digest_verify(key, md, msg, msg_len, der,
                                    (size_t) der_len);
}


/* 0 < v < n, both big-endian 32-byte integers */

static int
kordon_jwt_es256_scalar_ok(const unsigned char *v)
{
    size_t  i;

    for (i = 0; i < KORDON_JWT_EC_COORD; i++) {
        if (v[i] != 0) {
            break;
        }
    }

    if (i == KORDON_JWT_EC_COORD) {
        return 0;
    }

    return memcmp(v, kordon_jwt_p256_order, KORDON_JWT_EC_COORD) < 0;
}


static int
kordon_jwt_hs256(const kordon_jwt_key_t *key, const EVP_MD *md,
    const unsigned char *msg, size_t msg_len, const unsigned char *sig,
    size_t sig_len)
{
    int            rc;
    unsigned int   mac_len;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    if (sig_len != key->sig_len) {
        return KORDON_JWT_ESIG;
    }

    if (HMAC(md, key->secret, (int) key->secret_len, msg, msg_len, mac,
             &mac_len) == NULL)
    {
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    rc = (mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0)
         ? KORDON_JWT_OK : KORDON_JWT_ESIG;

    OPENSSL_cleanse(mac, sizeof(mac));

    return rc;
}


/*
 * SHA-256 of msg, verified against sig on the key's prepared context
 * (RSASSA-PKCS1-v1_5 or ECDSA, see kordon_jwt_key_verifier()).  Returns
 * KORDON_JWT_OK, KORDON_JWT_ESIG, or EINTERNAL when OpenSSL could not
 * hash at all.
 */

static int
kordon_jwt_digest_verify(const kordon_jwt_key_t *key, const EVP_MD *md,
    const unsigned char *msg, size_t msg_len, const unsigned char *sig,
    size_t sig_len)
{
    int            rc;
    unsigned int   len;
    unsigned char  digest[EVP_MAX_MD_SIZE];

    if (EVP_Digest(msg, msg_len, digest, &len, md, NULL) != 1) {
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    rc = (EVP_PKEY_verify(key->vctx, sig, sig_len, digest, len) == 1)
         ? KORDON_JWT_OK : KORDON_JWT_ESIG;

    if (rc != KORDON_JWT_OK) {
        ERR_clear_error();
    }

    return rc;
}


/*
 * Reads the payload of a token whose signature holds (in out->payload)
 * and checks its claims; see kordon_jwt_claims().
 */

static int
kordon_jwt_payload(const kordon_jwt_conf_t *cf, const kordon_jwt_tok_t *tok,
    int64_t now, kordon_jwt_claims_t *out)
{
    int               rc;
    kordon_jwt_doc_t  doc;

    rc = kordon_jwt_doc_read(&doc, kordon_jwt_payload_names, KORDON_JWT_P_N,
                             out->payload, tok->payload_len, cf);

    if (rc >= 0) {
        out->fast_payload = rc;
        rc = kordon_jwt_claims(cf, tok, doc.m, now, out);
    }

    kordon_jwt_doc_free(&doc);

    return rc;
}


/*
 * The claims of a token whose signature holds, m being its payload's
 * members (kordon_jwt_payload_names): times, then iss, aud and typ, then
 * the identity claims copied into out.
 */

static int
kordon_jwt_claims(const kordon_jwt_conf_t *cf, const kordon_jwt_tok_t *tok,
    const kordon_jwt_val_t *m, int64_t now, kordon_jwt_claims_t *out)
{
    int  rc;

    rc = kordon_jwt_times(cf, m, now, out);
    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    if (cf->iss != NULL && !kordon_jwt_val_is(&m[KORDON_JWT_P_ISS], cf->iss))
    {
        return KORDON_JWT_EISS;
    }

    if (!kordon_jwt_audience(&m[KORDON_JWT_P_AUD], cf->aud)) {
        return KORDON_JWT_EAUD;
    }

    if (cf->typ != NULL
        && (tok->typ_state != KORDON_JWT_TYP_SET
            || !kordon_jwt_typ_match(cf->typ, tok->typ)))
    {
        return KORDON_JWT_ETYP;
    }

    return kordon_jwt_identity(m, out);
}


/*
 * exp and iat are required, nbf is optional; all must be numbers.  A
 * token is expired when now >= exp + leeway, not yet valid when now <
 * nbf - leeway, and issued in the future when now < iat - leeway.  Only
 * our side of each comparison does arithmetic, so no claim overflows.
 */

static int
kordon_jwt_times(const kordon_jwt_conf_t *cf, const kordon_jwt_val_t *m,
    int64_t now, kordon_jwt_claims_t *out)
{
    int  rc;

    rc = kordon_jwt_numeric_date(&m[KORDON_JWT_P_EXP], 0, &out->exp);
    if (rc != 0) {
        return rc > 0 ? KORDON_JWT_ENOEXP : KORDON_JWT_EBADEXP;
    }

    rc = kordon_jwt_numeric_date(&m[KORDON_JWT_P_IAT], 1, &out->iat);
    if (rc != 0) {
        return rc > 0 ? KORDON_JWT_ENOIAT : KORDON_JWT_EBADIAT;
    }

    rc = kordon_jwt_numeric_date(&m[KORDON_JWT_P_NBF], 1, &out->nbf);
    if (rc < 0) {
        return KORDON_JWT_EBADNBF;
    }

    out->has_nbf = (rc == 0);

    return kordon_jwt_times_check(cf->leeway_s, out->exp, out->iat,
                                  out->has_nbf, out->nbf, now);
}


/* the comparisons of kordon_jwt_times(), also run on a cached token */

static int
kordon_jwt_times_check(int64_t leeway_s, int64_t exp, int64_t iat,
    int has_nbf, int64_t nbf, int64_t now)
{
    if (now - leeway_s >= exp) {
        return KORDON_JWT_EEXPIRED;
    }

    if (has_nbf && nbf > now + leeway_s) {
        return KORDON_JWT_ENOTYET;
    }

    if (iat > now + leeway_s) {
        return KORDON_JWT_EFUTURE;
    }

    return KORDON_JWT_OK;
}


/*
 * Reads the NumericDate v into *t: an integer, or a finite real rounded
 * to the stricter side (down for exp, up for nbf and iat).  Returns 0, 1
 * when the claim is absent, -1 when it is not a number (strings,
 * booleans and null included) or out of range.
 */

static int
kordon_jwt_numeric_date(const kordon_jwt_val_t *v, int up, int64_t *t)
{
    double   d;
    int64_t  i;

    if (v->type == KORDON_JWT_V_ABSENT) {
        return 1;
    }

    if (v->type == KORDON_JWT_V_INTEGER) {
        *t = v->i;
        return 0;
    }

    if (v->type != KORDON_JWT_V_REAL) {
        return -1;
    }

    d = v->d;

    if (!isfinite(d) || d > KORDON_JWT_DATE_MAX || d < -KORDON_JWT_DATE_MAX)
    {
        return -1;
    }

    i = (int64_t) d;

    if (up && (double) i < d) {
        i++;

    } else if (!up && (double) i > d) {
        i--;
    }

    *t = i;

    return 0;
}


/* "aud" is a string or an array of strings (RFC 7519, 4.1.3) */

static int
kordon_jwt_audience(const kordon_jwt_val_t *aud, const char *want)
{
    size_t                   i;
    kordon_jwt_val_t         tmp;
    const kordon_jwt_val_t  *v;

    if (aud->type == KORDON_JWT_V_STRING) {
        return kordon_jwt_val_is(aud, want);
    }

    if (aud->type != KORDON_JWT_V_ARRAY) {
        return 0;
    }

    for (i = 0; i < aud->len; i++) {
        v = kordon_jwt_val_item(aud, i, &tmp);

        if (v->type != KORDON_JWT_V_STRING) {
            return 0;
        }

        if (kordon_jwt_val_is(v, want)) {
            return 1;
        }
    }

    return 0;
}


/*
 * RFC 7515, 4.1.9: "typ" compares case-insensitively, and a media type
 * may drop its "application/" prefix when it has no other "/".
 */

static int
kordon_jwt_typ_match(const char *want, const char *got)
{
    static const char  prefix[] = "application/";

    if (strncasecmp(want, prefix, sizeof(prefix) - 1) == 0
        && strchr(want + sizeof(prefix) - 1, '/') == NULL)
    {
        want += sizeof(prefix) - 1;
    }

    if (strncasecmp(got, prefix, sizeof(prefix) - 1) == 0
        && strchr(got + sizeof(prefix) - 1, '/') == NULL)
    {
        got += sizeof(prefix) - 1;
    }

    return strcasecmp(want, got) == 0;
}


static int
kordon_jwt_identity(const kordon_jwt_val_t *m, kordon_jwt_claims_t *out)
{
    const kordon_jwt_val_t  *v;

    v = &m[KORDON_JWT_P_SUB];
    if (v->type == KORDON_JWT_V_ABSENT) {
        return KORDON_JWT_ENOSUB;
    }

    if (kordon_jwt_copy_str(v, out->sub, sizeof(out->sub), 0) != 0) {
        return KORDON_JWT_EBADSUB;
    }

    v = &m[KORDON_JWT_P_SID];
    out->has_sid = (v->type != KORDON_JWT_V_ABSENT);

    if (out->has_sid && kordon_jwt_copy_str(v, out->sid, sizeof(out->sid), 0))
    {
        return KORDON_JWT_EBADSID;
    }

    v = &m[KORDON_JWT_P_JTI];
    out->has_jti = (v->type != KORDON_JWT_V_ABSENT);

    if (out->has_jti && kordon_jwt_copy_str(v, out->jti, sizeof(out->jti), 0))
    {
        return KORDON_JWT_EBADJTI;
    }

    v = &m[KORDON_JWT_P_SCOPE];
    out->has_scope = (v->type != KORDON_JWT_V_ABSENT);

    if (out->has_scope
        && kordon_jwt_copy_str(v, out->scope, sizeof(out->scope),
                               KORDON_JWT_STR_EMPTY_OK) != 0)
    {
        return KORDON_JWT_EBADSCOPE;
    }

    if (kordon_jwt_copy_list(&m[KORDON_JWT_P_ROLES], out->roles[0],
                             sizeof(out->roles[0]), KORDON_JWT_ROLES_MAX,
                             &out->nroles, KORDON_JWT_STR_NO_COMMA) != 0)
    {
        return KORDON_JWT_EBADROLES;
    }

    if (kordon_jwt_copy_list(&m[KORDON_JWT_P_AMR], out->amr[0],
                             sizeof(out->amr[0]), KORDON_JWT_AMR_MAX,
                             &out->namr, 0) != 0)
    {
        return KORDON_JWT_EBADAMR;
    }

    return KORDON_JWT_OK;
}


/*
 * Copies the string v into dst (cap bytes with the NUL).  Returns 0, or
 * -1 when v is not a string, is empty (unless allowed), does not fit, or
 * holds a control character or (with KORDON_JWT_STR_NO_COMMA) a ",":
 * these values end up in request headers and comma-joined lists.
 */

static int
kordon_jwt_copy_str(const kordon_jwt_val_t *v, char *dst, size_t cap,
    unsigned flags)
{
    size_t       i, len;
    const char  *s;

    if (v->type != KORDON_JWT_V_STRING) {
        return -1;
    }

    s = v->s;
    len = v->len;

    if (len >= cap || (len == 0 && !(flags & KORDON_JWT_STR_EMPTY_OK))) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f
            || (s[i] == ',' && (flags & KORDON_JWT_STR_NO_COMMA)))
        {
            return -1;
        }
    }

    memcpy(dst, s, len);
    dst[len] = '\0';

    return 0;
}


/*
 * Copies an array of at most max strings into the rows of dst, each
 * width bytes.  An absent claim is an empty list.
 */

static int
kordon_jwt_copy_list(const kordon_jwt_val_t *v, char *dst, size_t width,
    size_t max, size_t *n, unsigned flags)
{
    size_t            i;
    kordon_jwt_val_t  tmp;

    *n = 0;

    if (v->type == KORDON_JWT_V_ABSENT) {
        return 0;
    }

    if (v->type != KORDON_JWT_V_ARRAY || v->len > max) {
        return -1;
    }

    for (i = 0; i < v->len; i++) {
        if (kordon_jwt_copy_str(kordon_jwt_val_item(v, i, &tmp),
                                dst + i * width, width, flags) != 0)
        {
            return -1;
        }
    }

    *n = i;

    return 0;
}


/*
 * Writes the claim "name" of a verified token into buf as a string:
 * strings raw, anything else as compact JSON.  Returns its length, or
 * KORDON_JWT_ENOENT (no such claim, or no verified token), ENOSPC (buf
 * too small) or ENOMEM; buf then holds "".  The payload is parsed again
 * on each call: it is small, bounded in depth, and this runs only for
 * variables that a configuration actually uses.
 */

int
kordon_jwt_claim_get(const kordon_jwt_claims_t *c, const char *name,
    char *buf, size_t len)
{
    int      rc;
    size_t   n;
    json_t  *payload, *v;

    if (len == 0) {
        return KORDON_JWT_ENOSPC;
    }

    buf[0] = '\0';

    if (c->payload_len == 0 || c->payload_len > sizeof(c->payload)) {
        return KORDON_JWT_ENOENT;
    }

    payload = json_loadb(c->payload, c->payload_len, JSON_REJECT_DUPLICATES,
                         NULL);
    if (payload == NULL) {
        return KORDON_JWT_ENOMEM;
    }

    v = json_object_get(payload, name);

    if (v == NULL) {
        rc = KORDON_JWT_ENOENT;

    } else if (json_is_string(v)) {
        n = json_string_length(v);
        rc = (n < len) ? (int) n : KORDON_JWT_ENOSPC;

        if (n < len) {
            memcpy(buf, json_string_value(v), n + 1);
        }

    } else {
        n = json_dumpb(v, buf, len - 1, JSON_COMPACT | JSON_ENCODE_ANY);
        rc = (n == 0) ? KORDON_JWT_ENOMEM
             : (n < len) ? (int) n : KORDON_JWT_ENOSPC;

        buf[(n > 0 && n < len) ? n : 0] = '\0';
    }

    json_decref(payload);

    return rc;
}


/*
 * SHA-256 of a whole token (or any text).  Returns KORDON_JWT_OK, or
 * KORDON_JWT_EINTERNAL when OpenSSL failed; out is then zeroed.
 */

int
kordon_jwt_token_hash(const char *token, size_t len, unsigned char out[32])
{
    unsigned int  n;

    if (EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
    {
        memset(out, 0, 32);
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    return KORDON_JWT_OK;
}


/*
 * The key of the module's cache of verified tokens: SipHash-2-4 with a
 * 128-bit output, keyed by 16 random bytes the cache draws once, when
 * its zone is made, and never shows.  SipHash is a keyed pseudorandom
 * function, so without the key nobody can compute a token's id, let
 * alone make a second token with the id of a cached one: a forged token
 * hits with a chance of (cached tokens) / 2^128 per try.  On this path a
 * SHA-256 of the whole token (650 bytes for RS256) was most of the cost
 * of a cache hit; SipHash is about half of it with SHA-NI and far less
 * without.  One context per process, keyed on every use (the key
 * schedule is four XORs), so no allocation per token.
 */

struct kordon_jwt_hasher_s {
    EVP_MAC_CTX     *ctx;
    unsigned char    key[KORDON_JWT_TOKEN_KEY_LEN];
};


/* a fresh random key for a hasher: KORDON_JWT_OK or EINTERNAL */

int
kordon_jwt_hasher_key(unsigned char key[KORDON_JWT_TOKEN_KEY_LEN])
{
    if (RAND_bytes(key, KORDON_JWT_TOKEN_KEY_LEN) != 1) {
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    return KORDON_JWT_OK;
}


/* a hasher for key; NULL when OpenSSL failed (its errors are cleared) */

kordon_jwt_hasher_t *
kordon_jwt_hasher_new(const unsigned char key[KORDON_JWT_TOKEN_KEY_LEN])
{
    size_t                size;
    EVP_MAC              *mac;
    OSSL_PARAM            params[2];
    kordon_jwt_hasher_t  *h;

    h = calloc(1, sizeof(kordon_jwt_hasher_t));
    if (h == NULL) {
        return NULL;
    }

    mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);

    if (mac != NULL) {
        h->ctx = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);              /* the context holds a reference */
    }

    size = KORDON_JWT_TOKEN_ID_LEN;
    params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
    params[1] = OSSL_PARAM_construct_end();

    if (h->ctx == NULL || EVP_MAC_CTX_set_params(h->ctx, params) != 1) {
        ERR_clear_error();
        kordon_jwt_hasher_free(h);
        return NULL;
    }

    memcpy(h->key, key, KORDON_JWT_TOKEN_KEY_LEN);

    return h;
}


void
kordon_jwt_hasher_free(kordon_jwt_hasher_t *h)
{
    if (h == NULL) {
        return;
    }

    EVP_MAC_CTX_free(h->ctx);
    OPENSSL_cleanse(h->key, sizeof(h->key));
    free(h);
}


/*
 * The id of token (len bytes) into out.  Returns KORDON_JWT_OK, or
 * KORDON_JWT_EINTERNAL when OpenSSL failed; out is then zeroed and must
 * not be used as a cache key.
 */

int
kordon_jwt_hasher_sum(kordon_jwt_hasher_t *h, const char *token, size_t len,
    unsigned char out[KORDON_JWT_TOKEN_ID_LEN])
{
    size_t  n;

    if (EVP_MAC_init(h->ctx, h->key, KORDON_JWT_TOKEN_KEY_LEN, NULL) != 1
        || EVP_MAC_update(h->ctx, (const unsigned char *) token, len) != 1
        || EVP_MAC_final(h->ctx, out, &n, KORDON_JWT_TOKEN_ID_LEN) != 1
        || n != KORDON_JWT_TOKEN_ID_LEN)
    {
        memset(out, 0, KORDON_JWT_TOKEN_ID_LEN);
        ERR_clear_error();
        return KORDON_JWT_EINTERNAL;
    }

    return KORDON_JWT_OK;
}


/*
 * Packs the identity of a verified token into k: times, the key's
 * fingerprint, and sub, sid, roles (joined by ",") and scope back to back
 * in k->data.  Returns KORDON_JWT_OK, KORDON_JWT_ENOENT when c holds no
 * verified token, or KORDON_JWT_ENOSPC when the strings do not fit in
 * KORDON_JWT_COMPACT_DATA bytes (such a token is simply not cached); k
 * must not be used then.
 */

int
kordon_jwt_compact(const kordon_jwt_claims_t *c, kordon_jwt_compact_t *k)
{
    char    *p;
    size_t   i, n, sub, sid, roles, scope;

    if (c->payload_len == 0) {
        return KORDON_JWT_ENOENT;
    }

    sub = strlen(c->sub);
    sid = strlen(c->sid);
    scope = strlen(c->scope);

    roles = c->nroles ? c->nroles - 1 : 0;

    for (i = 0; i < c->nroles; i++) {
        roles += strlen(c->roles[i]);
    }

    if (sub + sid + roles + scope > KORDON_JWT_COMPACT_DATA) {
        return KORDON_JWT_ENOSPC;
    }

    memset(k, 0, offsetof(kordon_jwt_compact_t, data));

    k->exp = c->exp;
    k->iat = c->iat;
    k->nbf = c->nbf;
    k->has_nbf = c->has_nbf;
    k->has_sid = c->has_sid;
    k->has_scope = c->has_scope;
    k->sub_len = (uint16_t) sub;
    k->sid_len = (uint16_t) sid;
    k->roles_len = (uint16_t) roles;
    k->scope_len = (uint16_t) scope;
    memcpy(k->key_fp, c->key_fp, KORDON_JWT_KEY_FP_LEN);

    p = k->data;
    memcpy(p, c->sub, sub);
    p += sub;
    memcpy(p, c->sid, sid);
    p += sid;

    for (i = 0; i < c->nroles; i++) {
        if (i > 0) {
            *p++ = ',';
        }

        n = strlen(c->roles[i]);
        memcpy(p, c->roles[i], n);
        p += n;
    }

    memcpy(p, c->scope, scope);

    return KORDON_JWT_OK;
}


/*
 * The time checks of kordon_jwt_verify() (exp, nbf, iat with the leeway
 * of conf) on a compact token, as a cache hit needs them: the result
 * was right when the token was stored, not necessarily now.  Returns
 * KORDON_JWT_OK, EEXPIRED, ENOTYET or EFUTURE.
 */

int
kordon_jwt_compact_times(const kordon_jwt_compact_t *k,
    const kordon_jwt_conf_t *conf, int64_t now)
{
    int64_t  leeway;

    leeway = (conf == NULL) ? 0 : conf->leeway_s;

    if (leeway < 0) {
        leeway = 0;
    }

    if (leeway > KORDON_JWT_LEEWAY_MAX_S) {
        leeway = KORDON_JWT_LEEWAY_MAX_S;
    }

    return kordon_jwt_times_check(leeway, k->exp, k->iat, k->has_nbf,
                                  k->nbf, now);
}


/*
 * Decodes the payload of a token into out->payload (and payload_len) so
 * that kordon_jwt_claim_get() can read it, and checks NOTHING else: only
 * for a token that kordon_jwt_verify() accepted before, such as a cache
 * hit, whose SHA-256 proves it is byte for byte the verified token.
 * Returns KORDON_JWT_OK, or ETOOLARGE or EMALFORMED with payload_len 0.
 * The other members of out are left as they are.
 */

int
kordon_jwt_payload_load(const char *token, size_t len,
    kordon_jwt_claims_t *out)
{
    int          rc;
    size_t       n;
    const char  *dot1, *dot2;

    out->payload_len = 0;

    if (len > KORDON_JWT_SIZE_MAX) {
        return KORDON_JWT_ETOOLARGE;
    }

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        return KORDON_JWT_EMALFORMED;
    }

    dot2 = memchr(dot1 + 1, '.', (size_t) (token + len - dot1 - 1));
    if (dot2 == NULL || dot2 == dot1 + 1) {
        return KORDON_JWT_EMALFORMED;
    }

    rc = kordon_jwt_segment((unsigned char *) out->payload,
                            sizeof(out->payload), dot1 + 1,
                            (size_t) (dot2 - dot1 - 1), &n);
    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    out->payload_len = n;

    return KORDON_JWT_OK;
}
