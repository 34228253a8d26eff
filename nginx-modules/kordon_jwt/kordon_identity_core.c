
/*
 * Kordon edge: the signed identity, free of nginx.
 *
 *     X-Kordon-Signature: t=<unix seconds>,v1=<64 lowercase hex>
 *
 *     v1 = HMAC-SHA256(key, "kordon-v1\n" method "\n" path "\n" user "\n"
 *                      roles "\n" session "\n" request_id "\n" t)
 *
 * The text is copied into one stack buffer and fed to OpenSSL's EVP_MAC
 * in one call when it fits in 1 KiB (a usual identity and path take 150
 * bytes), else field after field, so no field needs a length limit; a
 * field may hold any byte, NUL included, although the services compare
 * NUL-terminated strings and so never accept one.  A signer keeps one
 * HMAC context keyed at start-up and re-initializes it for each signature
 * (OpenSSL copies the key's inner and outer state), which makes a
 * signature about four times cheaper than setting HMAC up each time.
 *
 * Also here: the key file's text to key bytes, and the membership test of
 * the comma-joined roles and the space-separated scope.
 */


#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "kordon_identity_core.h"


#define KORDON_IDENTITY_MAC_LEN      32
#define KORDON_IDENTITY_PREFIX       "kordon-v1\n"
#define KORDON_IDENTITY_TEXT_MAX     1024   /* bytes signed in one update */


struct kordon_identity_signer_s {
    EVP_MAC_CTX  *ctx;                /* keyed once, re-initialized */
};


static int kordon_identity_mac(kordon_identity_signer_t *s,
    const kordon_identity_str_t *fields, const char *t, size_t tlen,
    unsigned char *mac);
static int kordon_identity_hex(int c);


/*
 * A signer for key (keylen bytes, not kept by the caller's buffer: the
 * HMAC state derived from it is).  Returns NULL when OpenSSL failed.
 */

kordon_identity_signer_t *
kordon_identity_signer_new(const unsigned char *key, size_t keylen)
{
    EVP_MAC                   *hmac;
    OSSL_PARAM                 params[2];
    kordon_identity_signer_t  *s;

    static char                digest[] = "SHA256";

    s = calloc(1, sizeof(kordon_identity_signer_t));
    if (s == NULL) {
        return NULL;
    }

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);

    if (hmac != NULL) {
        s->ctx = EVP_MAC_CTX_new(hmac);
        EVP_MAC_free(hmac);             /* the context holds a reference */
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    if (s->ctx == NULL || EVP_MAC_init(s->ctx, key, keylen, params) != 1) {
        ERR_clear_error();
        kordon_identity_signer_free(s);
        return NULL;
    }

    return s;
}


void
kordon_identity_signer_free(kordon_identity_signer_t *s)
{
    if (s == NULL) {
        return;
    }

    EVP_MAC_CTX_free(s->ctx);           /* wipes the key's state */
    free(s);
}


/*
 * Writes "t=<t>,v1=<hex>" into out (outlen bytes with the NUL; at least
 * KORDON_IDENTITY_SIG_MAX is always enough).  Returns the length without
 * the NUL, or -1 when out is too small or OpenSSL failed; out is then "".
 */

int
kordon_identity_signer_sign(kordon_identity_signer_t *s,
    const kordon_identity_str_t *fields, int64_t t, char *out,
    size_t outlen)
{
    int            i;
    char          *p, tbuf[24];
    size_t         tlen;
    uint64_t       u;
    unsigned char  mac[KORDON_IDENTITY_MAC_LEN];

    static const char  hex[] = "0123456789abcdef";

    if (outlen < KORDON_IDENTITY_SIG_MAX) {
        if (outlen > 0) {
            out[0] = '\0';
        }

        return -1;
    }

    out[0] = '\0';

    /* t in decimal, written backwards from the end of tbuf */

    p = tbuf + sizeof(tbuf);
    u = (t < 0) ? (uint64_t) 0 - (uint64_t) t : (uint64_t) t;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);

    if (t < 0) {
        *--p = '-';
    }

    tlen = (size_t) (tbuf + sizeof(tbuf) - p);

    if (kordon_identity_mac(s, fields, p, tlen, mac) != 0) {
        return -1;
    }

    memcpy(out, "t=", 2);
    memcpy(out + 2, p, tlen);
    memcpy(out + 2 + tlen, ",v1=", 4);

    p = out + 2 + tlen + 4;

    for (i = 0; i < KORDON_IDENTITY_MAC_LEN; i++) {
        *p++ = hex[mac[i] >> 4];
        *p++ = hex[mac[i] & 0x0f];
    }

    *p = '\0';

    OPENSSL_cleanse(mac, sizeof(mac));

    return (int) (p - out);
}


/* the same with a signer made for this one signature */

int
kordon_identity_sign(const unsigned char *key, size_t keylen,
    const kordon_identity_str_t *fields, int64_t t, char *out,
    size_t outlen)
{
    int                        n;
    kordon_identity_signer_t  *s;

    s = kordon_identity_signer_new(key, keylen);
    if (s == NULL) {
        if (outlen > 0) {
            out[0] = '\0';
        }

        return -1;
    }

    n = kordon_identity_signer_sign(s, fields, t, out, outlen);

    kordon_identity_signer_free(s);

    return n;
}


/*
 * The MAC itself: the context is re-initialized with the key it holds
 * (EVP_MAC_init without a key: OpenSSL copies the key's inner state),
 * then fed the whole text at once when it fits in KORDON_IDENTITY_TEXT_MAX
 * bytes (every EVP_MAC_update goes through the provider layer: one call
 * instead of fourteen is a fifth of a signature), else field by field.
 * Returns 0, or -1 when OpenSSL failed (its errors are cleared).
 */

static int
kordon_identity_mac(kordon_identity_signer_t *s,
    const kordon_identity_str_t *fields, const char *t, size_t tlen,
    unsigned char *mac)
{
    int            ok, i;
    size_t         maclen, len;
    unsigned char  text[KORDON_IDENTITY_TEXT_MAX], *p;

    len = sizeof(KORDON_IDENTITY_PREFIX) - 1 + tlen;

    for (i = 0; i < KORDON_IDENTITY_NFIELDS; i++) {
        len += fields[i].len + 1;
    }

    ok = EVP_MAC_init(s->ctx, NULL, 0, NULL) == 1;

    if (ok && len <= sizeof(text)) {
        p = text;
        memcpy(p, KORDON_IDENTITY_PREFIX, sizeof(KORDON_IDENTITY_PREFIX) - 1);
        p += sizeof(KORDON_IDENTITY_PREFIX) - 1;

        for (i = 0; i < KORDON_IDENTITY_NFIELDS; i++) {
            if (fields[i].len) {
                memcpy(p, fields[i].data, fields[i].len);
                p += fields[i].len;
            }

            *p++ = '\n';
        }

        memcpy(p, t, tlen);

        ok = EVP_MAC_update(s->ctx, text, len) == 1;

    } else {
        ok = ok
             && EVP_MAC_update(s->ctx,
                               (const unsigned char *) KORDON_IDENTITY_PREFIX,
                               sizeof(KORDON_IDENTITY_PREFIX) - 1) == 1;

        for (i = 0; ok && i < KORDON_IDENTITY_NFIELDS; i++) {
            ok = (fields[i].len == 0
                  || EVP_MAC_update(s->ctx,
                                    (const unsigned char *) fields[i].data,
                                    fields[i].len) == 1)
                 && EVP_MAC_update(s->ctx, (const unsigned char *) "\n", 1)
                    == 1;
        }

        ok = ok
             && EVP_MAC_update(s->ctx, (const unsigned char *) t, tlen) == 1;
    }

    ok = ok
         && EVP_MAC_final(s->ctx, mac, &maclen, KORDON_IDENTITY_MAC_LEN) == 1
         && maclen == KORDON_IDENTITY_MAC_LEN;

    if (!ok) {
        ERR_clear_error();
        return -1;
    }

    return 0;
}


/*
 * Decodes the key file's text: hex digits (either case) between optional
 * whitespace, into at most cap bytes of key.  Returns the key's length
 * (32 to 64), or KORDON_IDENTITY_EHEX, ESHORT or ELONG.  Never copies the
 * text anywhere but key.
 */

int
kordon_identity_key_decode(const char *text, size_t len, unsigned char *key,
    size_t cap)
{
    int          hi, lo;
    size_t       i, n;
    const char  *s, *e;

    s = text;
    e = text + len;

    while (s < e && isspace((unsigned char) *s)) {
        s++;
    }

    while (e > s && isspace((unsigned char) e[-1])) {
        e--;
    }

    n = (size_t) (e - s);

    if (n % 2 != 0) {
        return KORDON_IDENTITY_EHEX;
    }

    n /= 2;

    if (n > KORDON_IDENTITY_KEY_MAX || n > cap) {
        return KORDON_IDENTITY_ELONG;
    }

    for (i = 0; i < n; i++) {
        hi = kordon_identity_hex((unsigned char) s[2 * i]);
        lo = kordon_identity_hex((unsigned char) s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(key, i);
            return KORDON_IDENTITY_EHEX;
        }

        key[i] = (unsigned char) (hi << 4 | lo);
    }

    if (n < KORDON_IDENTITY_KEY_MIN) {
        OPENSSL_cleanse(key, n);
        return KORDON_IDENTITY_ESHORT;
    }

    return (int) n;
}


static int
kordon_identity_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * Says whether item is one of the sep-separated entries of list: 1 or 0.
 * Entries compare exactly (case and all); empty entries never match, so
 * "a,,b" and "read  write" hold what they appear to hold.
 */

int
kordon_identity_list_has(const char *list, size_t len, char sep,
    const char *item, size_t item_len)
{
    const char  *p, *e, *end;

    if (item_len == 0) {
        return 0;
    }

    p = list;
    end = list + len;

    while (p < end) {
        e = memchr(p, sep, (size_t) (end - p));

        if (e == NULL) {
            e = end;
        }

        if ((size_t) (e - p) == item_len && memcmp(p, item, item_len) == 0) {
            return 1;
        }

        p = e + 1;
    }

    return 0;
}
