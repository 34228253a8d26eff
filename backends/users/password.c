/*
 * password.c -- passwords: the rules a new one must pass, and argon2id
 * (libargon2) to hash and verify.
 *
 * Rules: 8 to 128 characters (UTF-8 characters, not bytes), anything
 * allowed, and not in a list of common passwords shipped by a Debian
 * package (john-data's password.lst by default; KORDON_USERS_COMMON_
 * PASSWORDS names another).  The list is compared case-insensitively
 * (ASCII): "Password1" is as weak as "password1".  It is held sorted in
 * memory and searched with bsearch(3).
 *
 * Hashes are PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$salt$hash"),
 * so each records its own cost: a login re-hashes a password whose
 * stored cost is below the configured one.  An unknown account still
 * pays one verification against a dummy hash made at start-up, so login
 * takes the same time whether or not the account exists.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>

#include "users.h"

#define USERS_SALT_LEN        16
#define USERS_HASH_LEN        32
#define USERS_COMMON_MAX      1000000
#define USERS_COMMON_LINE_MAX 256

static char    **users_common;        /* sorted, lower-cased */
static size_t    users_ncommon;
static char      users_dummy_hash[USERS_HASH_MAX];


size_t
users_utf8_chars(const char *s, size_t len)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        /* Count every byte that does not continue a sequence. */
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}


static int
users_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


int
users_password_common_load(const char *path, char *err, size_t errlen)
{
    char     line[USERS_COMMON_LINE_MAX], **v;
    size_t   n, cap, len, i;
    FILE    *f;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "could not open common password list \"%s\"",
                 path);
        return -1;
    }
    v = NULL;
    n = cap = 0;
    while (fgets(line, sizeof(line), f) != NULL && n < USERS_COMMON_MAX) {
        len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0 || strncmp(line, "#!comment", 9) == 0
            || users_utf8_chars(line, len) < USERS_PASSWORD_MIN)
        {
            continue;               /* shorter ones fail the length rule */
        }
        for (i = 0; i < len; i++) {
            line[i] = (char) tolower((unsigned char) line[i]);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            v = realloc(v, cap * sizeof(*v));
        }
        if (v == NULL || (v[n] = strdup(line)) == NULL) {
            fclose(f);
            snprintf(err, errlen, "out of memory reading \"%s\"", path);
            return -1;
        }
        n++;
    }
    fclose(f);
    if (n == 0) {
        snprintf(err, errlen, "common password list \"%s\" is empty", path);
        free(v);
        return -1;
    }
    qsort(v, n, sizeof(*v), users_strcmp);
    users_common = v;
    users_ncommon = n;
    return 0;
}


int
users_password_is_common(const char *pw, size_t len)
{
    char   buf[USERS_COMMON_LINE_MAX];
    char  *key = buf;
    size_t i;

    if (len >= sizeof(buf) || users_ncommon == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        buf[i] = (char) tolower((unsigned char) pw[i]);
    }
    buf[len] = '\0';
    return bsearch(&key, users_common, users_ncommon, sizeof(char *),
                   users_strcmp) != NULL;
}


const char *
users_password_rule(const char *pw, size_t len)
{
    size_t  n;

    n = users_utf8_chars(pw, len);
    if (n < USERS_PASSWORD_MIN) {
        return "must be at least 8 characters";
    }
    if (n > USERS_PASSWORD_MAX) {
        return "must be at most 128 characters";
    }
    if (users_password_is_common(pw, len)) {
        return "is too common: it is in a list of well-known passwords";
    }
    return NULL;
}


int
users_password_hash(const char *pw, size_t len, char *out, size_t outlen)
{
    uint8_t  salt[USERS_SALT_LEN];

    if (users_random(salt, sizeof(salt)) != 0) {
        return -1;
    }
    return argon2id_hash_encoded(users_cf.argon2_t, users_cf.argon2_m_kib,
                                 users_cf.argon2_p, pw, len, salt,
                                 sizeof(salt), USERS_HASH_LEN, out, outlen)
           == ARGON2_OK ? 0 : -1;
}


int
users_password_verify(const char *encoded, const char *pw, size_t len)
{
    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0) {
        users_password_dummy(pw, len);
        return 0;
    }
    return argon2id_verify(encoded, pw, len) == ARGON2_OK;
}


void
users_password_dummy(const char *pw, size_t len)
{
    (void) argon2id_verify(users_dummy_hash, pw, len);
}


int
users_password_needs_rehash(const char *encoded)
{
    unsigned  v, m, t, p;

    if (sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t, &p)
        != 4)
    {
        return 1;
    }
    return v != ARGON2_VERSION_13 || m < users_cf.argon2_m_kib
           || t < users_cf.argon2_t || p < users_cf.argon2_p;
}


int
users_password_init(char *err, size_t errlen)
{
    uint8_t  pw[16];

    if (users_password_common_load(users_cf.common_passwords, err, errlen)
        != 0)
    {
        return -1;
    }
    if (users_random(pw, sizeof(pw)) != 0
        || users_password_hash((const char *) pw, sizeof(pw),
                               users_dummy_hash,
                               sizeof(users_dummy_hash)) != 0)
    {
        snprintf(err, errlen, "could not hash with argon2id at m=%u KiB, "
                 "t=%u, p=%u", users_cf.argon2_m_kib, users_cf.argon2_t,
                 users_cf.argon2_p);
        return -1;
    }
    return 0;
}
