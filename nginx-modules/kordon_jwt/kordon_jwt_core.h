
/*
 * Kordon edge: the JWT verification core, free of nginx.
 *
 * Loads a JWKS document once (kordon_jwt_keys_load) and verifies compact
 * JWS tokens against it (kordon_jwt_verify).  The nginx module calls it
 * from its access phase; the unit tests and the fuzzer call it directly.
 * See kordon_jwt_core.c for the design and the order of the checks.
 */


#ifndef _KORDON_JWT_CORE_H_INCLUDED_
#define _KORDON_JWT_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* limits: every input the core takes has a fixed upper bound */

#define KORDON_JWT_SIZE_DEFAULT      8192   /* token bytes */
#define KORDON_JWT_SIZE_MAX          16384  /* token bytes, hard cap */
#define KORDON_JWT_DEPTH_DEFAULT     8      /* JSON nesting */
#define KORDON_JWT_DEPTH_MAX         32
#define KORDON_JWT_LEEWAY_MAX_S      3600
#define KORDON_JWT_HEADER_MAX        2048   /* decoded header bytes */
#define KORDON_JWT_PAYLOAD_MAX       (KORDON_JWT_SIZE_MAX / 4 * 3)
#define KORDON_JWT_KEYS_MAX          64     /* keys in one JWKS */
#define KORDON_JWT_KID_MAX           128    /* bytes, without the NUL */
#define KORDON_JWT_ALG_MAX           8
#define KORDON_JWT_SUB_MAX           256
#define KORDON_JWT_ID_MAX            128    /* "sid", "jti" */
#define KORDON_JWT_SCOPE_MAX         1024
#define KORDON_JWT_ROLES_MAX         16     /* entries of "roles" */
#define KORDON_JWT_ROLE_MAX          64     /* bytes of one role */
#define KORDON_JWT_AMR_MAX           8      /* entries of "amr" */
#define KORDON_JWT_AMR_LEN_MAX       32     /* bytes of one "amr" entry */
#define KORDON_JWT_ERR_MAX           256    /* enough for any load error */
#define KORDON_JWT_KEY_FP_LEN        16     /* bytes of a key fingerprint */
#define KORDON_JWT_TOKEN_KEY_LEN     16     /* bytes of a token hasher's key */
#define KORDON_JWT_TOKEN_ID_LEN      16     /* bytes of a token's id */
#define KORDON_JWT_COMPACT_DATA      352    /* string bytes of the compact
                                               form: sub, sid, roles, scope */


/* results: 0 or one of these negative codes, see kordon_jwt_strerror() */

#define KORDON_JWT_OK                0
#define KORDON_JWT_ECONF            -1
#define KORDON_JWT_ENOMEM           -2
#define KORDON_JWT_EINTERNAL        -3
#define KORDON_JWT_ETOOLARGE        -4
#define KORDON_JWT_EMALFORMED       -5
#define KORDON_JWT_EDEPTH           -6
#define KORDON_JWT_ENONE            -7
#define KORDON_JWT_ENOKID           -8
#define KORDON_JWT_EUNKNOWNKEY      -9
#define KORDON_JWT_EALG             -10
#define KORDON_JWT_ECRIT            -11
#define KORDON_JWT_ESIG             -12
#define KORDON_JWT_ENOEXP           -13
#define KORDON_JWT_EBADEXP          -14
#define KORDON_JWT_ENOIAT           -15
#define KORDON_JWT_EBADIAT          -16
#define KORDON_JWT_EBADNBF          -17
#define KORDON_JWT_EEXPIRED         -18
#define KORDON_JWT_ENOTYET          -19
#define KORDON_JWT_EFUTURE          -20
#define KORDON_JWT_EISS             -21
#define KORDON_JWT_EAUD             -22
#define KORDON_JWT_ETYP             -23
#define KORDON_JWT_ENOSUB           -24
#define KORDON_JWT_EBADSUB          -25
#define KORDON_JWT_EBADSID          -26
#define KORDON_JWT_EBADJTI          -27
#define KORDON_JWT_EBADROLES        -28
#define KORDON_JWT_EBADSCOPE        -29
#define KORDON_JWT_EBADAMR          -30
#define KORDON_JWT_ENOENT           -31
#define KORDON_JWT_ENOSPC           -32
#define KORDON_JWT_ELAST            -32


/* kordon_jwt_conf_t's reader: how the header and payload JSON is read */

#define KORDON_JWT_READER_FAST       0      /* the fast reader, else jansson */
#define KORDON_JWT_READER_JANSSON    1      /* jansson alone, no header memo:
                                               the tests' reference */


typedef struct kordon_jwt_keys_s  kordon_jwt_keys_t;

/* the keyed hash that names a token in a cache of verified tokens */
typedef struct kordon_jwt_hasher_s  kordon_jwt_hasher_t;


/*
 * What a token must satisfy besides its signature.  Zero values are
 * replaced by the defaults; kordon_jwt_conf_init() fills them in.  The
 * strings are borrowed, not copied: they must outlive every verify.
 */

typedef struct {
    size_t        max_size;     /* token bytes, 0: 8192, capped at 16384 */
    int64_t       leeway_s;     /* clock skew for exp, nbf, iat, 0..3600 */
    unsigned      max_depth;    /* JSON nesting, 0: 8, capped at 32 */
    const char   *iss;          /* NULL: any issuer */
    const char   *aud;          /* required: a token names it in "aud" */
    const char   *typ;          /* NULL: header "typ" not checked */
    unsigned      reader;       /* KORDON_JWT_READER_FAST (0) or JANSSON */
} kordon_jwt_conf_t;


/*
 * The claims of a verified token, copied out: the caller holds no
 * library objects and frees nothing.  Strings are NUL-terminated and
 * free of control characters; roles hold no ",".  On any failure
 * payload_len is 0 and the rest must not be used.
 */

typedef struct {
    int64_t       exp;
    int64_t       iat;
    int64_t       nbf;                  /* 0 when has_nbf is 0 */
    size_t        nroles;
    size_t        namr;
    size_t        payload_len;

    unsigned      has_nbf:1;
    unsigned      has_sid:1;
    unsigned      has_jti:1;
    unsigned      has_scope:1;
    unsigned      fast_header:1;        /* read without jansson (tests) */
    unsigned      fast_payload:1;

    /* the verifying key: SHA-256 of its canonical JWK, truncated */
    unsigned char key_fp[KORDON_JWT_KEY_FP_LEN];

    char          kid[KORDON_JWT_KID_MAX + 1];
    char          alg[KORDON_JWT_ALG_MAX];
    char          sub[KORDON_JWT_SUB_MAX + 1];
    char          sid[KORDON_JWT_ID_MAX + 1];
    char          jti[KORDON_JWT_ID_MAX + 1];
    char          scope[KORDON_JWT_SCOPE_MAX + 1];
    char          roles[KORDON_JWT_ROLES_MAX][KORDON_JWT_ROLE_MAX + 1];
    char          amr[KORDON_JWT_AMR_MAX][KORDON_JWT_AMR_LEN_MAX + 1];

    /* the decoded payload, for kordon_jwt_claim_get(); keep it last */
    char          payload[KORDON_JWT_PAYLOAD_MAX];
} kordon_jwt_claims_t;


/*
 * The compact form of a verified token, for a cache of verified tokens:
 * fixed size, no pointers, so it can live in shared memory.  data holds
 * sub, sid, the roles joined by "," and scope, back to back, without
 * NULs; each *_len says how many bytes belong to each.
 */

typedef struct {
    int64_t        exp;
    int64_t        iat;
    int64_t        nbf;
    uint16_t       sub_len;
    uint16_t       sid_len;
    uint16_t       roles_len;
    uint16_t       scope_len;
    unsigned char  has_nbf;
    unsigned char  has_sid;
    unsigned char  has_scope;
    unsigned char  key_fp[KORDON_JWT_KEY_FP_LEN];
    char           data[KORDON_JWT_COMPACT_DATA];
} kordon_jwt_compact_t;


kordon_jwt_keys_t *kordon_jwt_keys_load(const char *json, size_t len,
    char *err, size_t errlen);
void kordon_jwt_keys_free(kordon_jwt_keys_t *keys);
size_t kordon_jwt_keys_count(const kordon_jwt_keys_t *keys);
int kordon_jwt_keys_has(const kordon_jwt_keys_t *keys,
    const unsigned char fp[KORDON_JWT_KEY_FP_LEN]);

void kordon_jwt_conf_init(kordon_jwt_conf_t *conf);
int kordon_jwt_verify(const kordon_jwt_keys_t *keys,
    const kordon_jwt_conf_t *conf, const char *token, size_t len,
    int64_t now, kordon_jwt_claims_t *out);
const char *kordon_jwt_strerror(int code);

int kordon_jwt_claim_get(const kordon_jwt_claims_t *c, const char *name,
    char *buf, size_t len);
int kordon_jwt_token_hash(const char *token, size_t len,
    unsigned char out[32]);

int kordon_jwt_hasher_key(unsigned char key[KORDON_JWT_TOKEN_KEY_LEN]);
kordon_jwt_hasher_t *kordon_jwt_hasher_new(
    const unsigned char key[KORDON_JWT_TOKEN_KEY_LEN]);
void kordon_jwt_hasher_free(kordon_jwt_hasher_t *h);
int kordon_jwt_hasher_sum(kordon_jwt_hasher_t *h, const char *token,
    size_t len, unsigned char out[KORDON_JWT_TOKEN_ID_LEN]);

int kordon_jwt_compact(const kordon_jwt_claims_t *c,
    kordon_jwt_compact_t *k);
int kordon_jwt_compact_times(const kordon_jwt_compact_t *k,
    const kordon_jwt_conf_t *conf, int64_t now);
int kordon_jwt_payload_load(const char *token, size_t len,
    kordon_jwt_claims_t *out);


#endif /* _KORDON_JWT_CORE_H_INCLUDED_ */
