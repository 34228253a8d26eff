/*
 * totp.c -- TOTP (RFC 6238) with liboath and recovery codes; the API and
 * how the core calls it are in totp.h.
 *
 * The one idea: liboath's window search takes a comparison callback, and
 * ours is CRYPTO_memcmp over the whole code, so liboath computes the
 * candidate codes and we decide, in constant time, whether one matches;
 * liboath then tells which step matched, which makes "a code is accepted
 * once" a single stored integer.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "totp.h"

#define USERS_TOTP_SECRET_MIN  16    /* 128 bits, RFC 4226's minimum */
#define USERS_TOTP_SECRET_MAX  64
#define USERS_RECOVERY_CHARS   (USERS_RECOVERY_GROUPS \
                                * USERS_RECOVERY_GROUP_LEN)

/* Crockford's base32, lowercase: 32 symbols, no i l o u. */
static const char  users_crockford[] = "0123456789abcdefghjkmnpqrstvwxyz";


int
users_totp_init(void)
{
    return oath_init() == OATH_OK ? USERS_TOTP_OK : USERS_TOTP_ERROR;
}


void
users_totp_done(void)
{
    oath_done();
}


int
users_totp_secret_new(char b32[USERS_TOTP_SECRET_B32_SIZE])
{
    unsigned char  raw[USERS_TOTP_SECRET_BYTES];
    size_t         len;
    char          *out;
    int            rc;

    b32[0] = '\0';
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return USERS_TOTP_ERROR;
    }
    out = NULL;
    rc = oath_base32_encode((const char *) raw, sizeof(raw), &out, &len);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (rc != OATH_OK || len + 1 > USERS_TOTP_SECRET_B32_SIZE) {
        free(out);
        return USERS_TOTP_ERROR;
    }
    memcpy(b32, out, len + 1);
    OPENSSL_cleanse(out, len);
    free(out);
    return USERS_TOTP_OK;
}


/*
 * The base32 secret decoded into raw (USERS_TOTP_SECRET_MAX bytes); its
 * length, or -1 when it is not base32 or not 16..64 bytes long.
 */
static int
users_totp_secret_decode(const char *b32, char *raw)
{
    size_t   len;
    char    *out;
    int      rc;

    if (b32 == NULL || b32[0] == '\0' || strlen(b32) > 128) {
        return -1;
    }
    out = NULL;
    rc = oath_base32_decode(b32, strlen(b32), &out, &len);
    if (rc != OATH_OK || len < USERS_TOTP_SECRET_MIN
        || len > USERS_TOTP_SECRET_MAX)
    {
        if (out != NULL) {
            OPENSSL_cleanse(out, len);
        }
        free(out);
        return -1;
    }
    memcpy(raw, out, len);
    OPENSSL_cleanse(out, len);
    free(out);
    return (int) len;
}


/* Appends s to out[*n..], percent-encoding all but RFC 3986 unreserved. */
static int
users_totp_pct(const char *s, char *out, size_t outlen, size_t *n)
{
    static const char  hex[] = "0123456789ABCDEF";
    unsigned char      c;

    for (; *s != '\0'; s++) {
        c = (unsigned char) *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || strchr("-._~", c) != NULL)
        {
            if (*n + 1 >= outlen) {
                return -1;
            }
            out[(*n)++] = (char) c;
            continue;
        }
        if (*n + 3 >= outlen) {
            return -1;
        }
        out[(*n)++] = '%';
        out[(*n)++] = hex[c >> 4];
        out[(*n)++] = hex[c & 0x0f];
    }
    out[*n] = '\0';
    return 0;
}


int
users_totp_uri(const char *b32, const char *account, char *out,
    size_t outlen)
{
    char    raw[USERS_TOTP_SECRET_MAX];
    size_t  n;
    int     len, rc;

    if (outlen == 0) {
        return -1;
    }
    out[0] = '\0';
    if (account == NULL || account[0] == '\0'
        || strlen(account) > USERS_TOTP_ACCOUNT_MAX)
    {
        return -1;
    }
    if (users_totp_secret_decode(b32, raw) < 0) {
        return -1;
    }
    OPENSSL_cleanse(raw, sizeof(raw));

    n = (size_t) snprintf(out, outlen, "otpauth://totp/%s:",
                          USERS_TOTP_ISSUER);
    if (n >= outlen || users_totp_pct(account, out, outlen, &n) != 0) {
        out[0] = '\0';
        return -1;
    }
    rc = snprintf(out + n, outlen - n,
                  "?secret=%s&issuer=%s&algorithm=SHA1&digits=%d&period=%d",
                  b32, USERS_TOTP_ISSUER, USERS_TOTP_DIGITS,
                  USERS_TOTP_STEP_S);
    if (rc < 0 || (size_t) rc >= outlen - n) {
        out[0] = '\0';
        return -1;
    }
    len = (int) n + rc;
    return len;
}


/* liboath's comparison callback: 0 on a match, 1 otherwise. */
static int
users_totp_cmp(void *handle, const char *test_otp)
{
    return CRYPTO_memcmp(handle, test_otp, USERS_TOTP_DIGITS) == 0 ? 0 : 1;
}


int
users_totp_verify(const char *b32, const char *code, time_t now,
    int64_t last_step, int64_t *step)
{
    uint64_t  counter;
    char      raw[USERS_TOTP_SECRET_MAX];
    char      otp[USERS_TOTP_DIGITS + 1];
    int       i, len, rc, pos;

    if (code == NULL || strlen(code) != USERS_TOTP_DIGITS) {
        return USERS_TOTP_BAD;
    }
    for (i = 0; i < USERS_TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return USERS_TOTP_BAD;
        }
        otp[i] = code[i];
    }
    otp[i] = '\0';

    len = users_totp_secret_decode(b32, raw);
    if (len < 0) {
        return USERS_TOTP_ERROR;
    }
    counter = 0;
    rc = oath_totp_validate3_callback(raw, (size_t) len, now,
                                      USERS_TOTP_STEP_S, 0,
                                      USERS_TOTP_DIGITS, USERS_TOTP_WINDOW,
                                      &pos, &counter, users_totp_cmp, otp);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (rc == OATH_INVALID_OTP) {
        return USERS_TOTP_BAD;
    }
    if (rc < 0) {
        return USERS_TOTP_ERROR;
    }
    *step = (int64_t) counter;
    if (last_step >= 0 && (int64_t) counter <= last_step) {
        return USERS_TOTP_REPLAY;
    }
    return USERS_TOTP_OK;
}


int
users_recovery_new(users_recovery_code_t codes[USERS_RECOVERY_CODES],
    users_recovery_hash_t hashes[USERS_RECOVERY_CODES])
{
    unsigned char  rnd[USERS_RECOVERY_CHARS];
    char          *p;
    int            i, j;

    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        /* 256 is a multiple of 32: the low five bits are uniform */
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            goto failed;
        }
        p = codes[i];
        for (j = 0; j < USERS_RECOVERY_CHARS; j++) {
            if (j > 0 && j % USERS_RECOVERY_GROUP_LEN == 0) {
                *p++ = '-';
            }
            *p++ = users_crockford[rnd[j] & 0x1f];
        }
        *p = '\0';
        if (users_recovery_hash(codes[i], hashes[i]) != 0) {
            goto failed;
        }
    }
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return USERS_TOTP_OK;

failed:

    OPENSSL_cleanse(rnd, sizeof(rnd));
    OPENSSL_cleanse(codes, sizeof(users_recovery_code_t)
                           * USERS_RECOVERY_CODES);
    memset(hashes, 0, sizeof(users_recovery_hash_t) * USERS_RECOVERY_CODES);
    return USERS_TOTP_ERROR;
}


/* One typed character as a code symbol; '\0' to skip it, -1 if foreign. */
static int
users_recovery_symbol(char c)
{
    if (c == '-' || c == ' ') {
        return '\0';
    }
    if (c >= 'A' && c <= 'Z') {
        c = (char) (c - 'A' + 'a');
    }
    if (c == 'i' || c == 'l') {
        return '1';
    }
    if (c == 'o') {
        return '0';
    }
    if (c == '\0' || strchr(users_crockford, c) == NULL) {
        return -1;
    }
    return c;
}


int
users_recovery_hash(const char *input, users_recovery_hash_t hash)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      md[32];
    unsigned int       mdlen;
    size_t             i, n;
    char               norm[USERS_RECOVERY_CHARS];
    int                c;

    hash[0] = '\0';
    if (input == NULL || strlen(input) > USERS_RECOVERY_INPUT_MAX) {
        return -1;
    }
    for (i = 0, n = 0; input[i] != '\0'; i++) {
        c = users_recovery_symbol(input[i]);
        if (c < 0 || (c != '\0' && n == USERS_RECOVERY_CHARS)) {
            return -1;
        }
        if (c != '\0') {
            norm[n++] = (char) c;
        }
    }
    if (n != USERS_RECOVERY_CHARS) {
        return -1;
    }
    if (EVP_Digest(norm, n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        OPENSSL_cleanse(norm, sizeof(norm));
        return -1;
    }
    OPENSSL_cleanse(norm, sizeof(norm));
    for (i = 0; i < 32; i++) {
        hash[2 * i] = hex[md[i] >> 4];
        hash[2 * i + 1] = hex[md[i] & 0x0f];
    }
    hash[64] = '\0';
    return 0;
}


int
users_recovery_match(const char *input, const char *const *hashes, int n)
{
    users_recovery_hash_t  h;
    int                    i, eq, found;

    if (users_recovery_hash(input, h) != 0) {
        return -1;
    }
    found = -1;
    for (i = 0; i < n; i++) {
        if (hashes[i] == NULL
            || strlen(hashes[i]) != USERS_RECOVERY_HASH_SIZE - 1)
        {
            continue;
        }
        eq = CRYPTO_memcmp(h, hashes[i], USERS_RECOVERY_HASH_SIZE - 1) == 0;
        /* no early exit: every entry costs the same */
        found = eq ? i : found;
    }
    return found;
}
