/*
 * secret.c -- the random things users hands out and how it keeps them:
 * 6-digit codes (stored as an HMAC-SHA256 keyed by a server secret, so a
 * stolen table does not give codes away, even by brute force over the
 * million values) and 256-bit refresh tokens (stored as their SHA-256).
 * Randomness and digests come from OpenSSL; comparisons are constant
 * time (CRYPTO_memcmp).
 */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "users.h"

#define USERS_CODE_SPACE  1000000u


int
users_random(uint8_t *out, size_t len)
{
    return RAND_bytes(out, (int) len) == 1 ? 0 : -1;
}


int
users_code_new(char out[USERS_CODE_LEN + 1])
{
    uint32_t  r, limit;
    int       i;

    /* Rejection sampling: a plain modulo would favour low codes. */
    limit = UINT32_MAX - UINT32_MAX % USERS_CODE_SPACE;
    for (i = 0; i < 64; i++) {
        if (users_random((uint8_t *) &r, sizeof(r)) != 0) {
            return -1;
        }
        if (r < limit) {
            snprintf(out, USERS_CODE_LEN + 1, "%06u", r % USERS_CODE_SPACE);
            return 0;
        }
    }
    return -1;
}


void
users_code_hmac(const uint8_t *key, size_t keylen, const char *user_id,
    const char *purpose, const char *code, uint8_t out[32])
{
    char          msg[128];
    unsigned int  n = 32;
    int           len;

    len = snprintf(msg, sizeof(msg), "%s\n%s\n%s", user_id, purpose, code);
    if (len < 0 || (size_t) len >= sizeof(msg)) {
        len = sizeof(msg) - 1;
    }
    HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg,
         (size_t) len, out, &n);
}


int
users_token_new(char out[USERS_TOKEN_LEN + 1])
{
    uint8_t  raw[32];
    char     b64[48];
    int      i, n;

    if (users_random(raw, sizeof(raw)) != 0) {
        return -1;
    }
    n = EVP_EncodeBlock((unsigned char *) b64, raw, sizeof(raw));
    if (n != 44) {
        return -1;
    }
    for (i = 0; i < USERS_TOKEN_LEN; i++) {
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    }
    out[USERS_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}


int
users_token_valid(const char *s)
{
    size_t  n;

    n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
               "0123456789-_");
    return n == USERS_TOKEN_LEN && s[n] == '\0';
}


void
users_sha256(const void *data, size_t len, uint8_t out[32])
{
    SHA256(data, len, out);
}


void
users_hex(const uint8_t *in, size_t len, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}


int
users_equal32(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, 32) == 0;
}


/* ---- sealing small secrets at rest ------------------------------------ */

/* The AES key of a seal: HMAC-SHA256(key, label), so one server secret
 * keys several uses without one use's key opening another's data. */
static void
users_seal_key(const uint8_t *key, size_t keylen, const char *label,
    uint8_t out[32])
{
    unsigned int  len = 32;

    HMAC(EVP_sha256(), key, (int) keylen, (const uint8_t *) label,
         strlen(label), out, &len);
}


int
users_seal(const uint8_t *key, size_t keylen, const char *label,
    const char *ad, const char *text, char *hex, size_t hexlen)
{
    EVP_CIPHER_CTX  *c;
    uint8_t          k[32], out[USERS_SEAL_NONCE + USERS_SEAL_TEXT_MAX
                            + USERS_SEAL_TAG];
    size_t           n;
    int              len, fin, ok;

    n = strlen(text);
    if (n == 0 || n > USERS_SEAL_TEXT_MAX
        || hexlen < 2 * (USERS_SEAL_NONCE + n + USERS_SEAL_TAG) + 1
        || users_random(out, USERS_SEAL_NONCE) != 0)
    {
        return -1;
    }
    users_seal_key(key, keylen, label, k);
    c = EVP_CIPHER_CTX_new();
    ok = c != NULL
         && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, out) == 1
         && EVP_EncryptUpdate(c, NULL, &len, (const uint8_t *) ad,
                              (int) strlen(ad)) == 1
         && EVP_EncryptUpdate(c, out + USERS_SEAL_NONCE, &len,
                              (const uint8_t *) text, (int) n) == 1
         && EVP_EncryptFinal_ex(c, out + USERS_SEAL_NONCE + len, &fin) == 1
         && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, USERS_SEAL_TAG,
                                out + USERS_SEAL_NONCE + n) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(k, sizeof(k));
    if (!ok) {
        return -1;
    }
    users_hex(out, USERS_SEAL_NONCE + n + USERS_SEAL_TAG, hex);
    return 0;
}


int
users_unseal(const uint8_t *key, size_t keylen, const char *label,
    const char *ad, const char *hex, char *text, size_t textlen)
{
    EVP_CIPHER_CTX  *c;
    uint8_t          k[32], in[USERS_SEAL_NONCE + USERS_SEAL_TEXT_MAX
                           + USERS_SEAL_TAG];
    int              n, len, fin, ok;

    text[0] = '\0';
    if (strlen(hex) > 2 * sizeof(in)) {
        return -1;
    }
    n = kit_hex_decode(hex, in, sizeof(in)) - USERS_SEAL_NONCE
        - USERS_SEAL_TAG;
    if (n <= 0 || (size_t) n >= textlen) {
        return -1;
    }
    users_seal_key(key, keylen, label, k);
    c = EVP_CIPHER_CTX_new();
    ok = c != NULL
         && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, in) == 1
         && EVP_DecryptUpdate(c, NULL, &len, (const uint8_t *) ad,
                              (int) strlen(ad)) == 1
         && EVP_DecryptUpdate(c, (uint8_t *) text, &len,
                              in + USERS_SEAL_NONCE, n) == 1
         && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, USERS_SEAL_TAG,
                                in + USERS_SEAL_NONCE + n) == 1
         && EVP_DecryptFinal_ex(c, (uint8_t *) text + len, &fin) == 1;
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(k, sizeof(k));
    if (!ok) {
        OPENSSL_cleanse(text, textlen);
        text[0] = '\0';
        return -1;
    }
    text[n] = '\0';
    return 0;
}
