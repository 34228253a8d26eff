
/*
 * Kordon edge: the signed identity the edge passes to the services, free
 * of nginx.  The same bytes as the service kit's kit_sig_sign()
 * (backends/common/kit_identity.c), which t/unit/test_edge_identity.c
 * checks against it; see docs/ARCHITECTURE.md, "Signed identity".
 */


#ifndef _KORDON_IDENTITY_CORE_H_INCLUDED_
#define _KORDON_IDENTITY_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define KORDON_IDENTITY_KEY_MIN      32     /* bytes of the shared key */
#define KORDON_IDENTITY_KEY_MAX      64
#define KORDON_IDENTITY_KEY_TEXT_MAX 4096   /* bytes of the key file */

/* "t=<up to 20 digits>,v1=<64 hex digits>" and a NUL */
#define KORDON_IDENTITY_SIG_MAX      (sizeof("t=,v1=") + 20 + 64)


/* the signed fields, in the order they are signed */

#define KORDON_IDENTITY_METHOD       0
#define KORDON_IDENTITY_PATH         1
#define KORDON_IDENTITY_USER         2
#define KORDON_IDENTITY_ROLES        3
#define KORDON_IDENTITY_SESSION      4
#define KORDON_IDENTITY_REQUEST_ID   5
#define KORDON_IDENTITY_NFIELDS      6


/* results of kordon_identity_key_decode() */

#define KORDON_IDENTITY_EHEX        -1      /* not an even run of hex */
#define KORDON_IDENTITY_ESHORT      -2      /* under 32 bytes */
#define KORDON_IDENTITY_ELONG       -3      /* over 64 bytes */


typedef struct {
    const char   *data;
    size_t        len;
} kordon_identity_str_t;


/*
 * A signer holds the key inside OpenSSL's HMAC state, set up once, so a
 * signature costs no fetch, no allocation and no key schedule.  It is
 * not thread-safe: one per thread (an nginx worker has one thread).
 */

typedef struct kordon_identity_signer_s  kordon_identity_signer_t;


kordon_identity_signer_t *kordon_identity_signer_new(const unsigned char *key,
    size_t keylen);
void kordon_identity_signer_free(kordon_identity_signer_t *s);
int kordon_identity_signer_sign(kordon_identity_signer_t *s,
    const kordon_identity_str_t *fields, int64_t t, char *out,
    size_t outlen);

int kordon_identity_sign(const unsigned char *key, size_t keylen,
    const kordon_identity_str_t *fields, int64_t t, char *out,
    size_t outlen);
int kordon_identity_key_decode(const char *text, size_t len,
    unsigned char *key, size_t cap);
int kordon_identity_list_has(const char *list, size_t len, char sep,
    const char *item, size_t item_len);


#endif /* _KORDON_IDENTITY_CORE_H_INCLUDED_ */
