
/*
 * Kordon edge: the pure parts of API keys and revocations.
 *
 * Hand-written on purpose: each is a strict recognizer of a fixed,
 * short format (the contract's "kdk_<id>_<secret>", Redis stream ids,
 * a hex digest), where a library would accept more than the contract
 * does (strtoull takes signs and spaces; base64 decoders take padding).
 * Nothing here allocates; every loop is bounded by the input's length.
 */


#include <string.h>

#include "kordon_auth_core.h"


static int kordon_auth_hexval(char c);
static int kordon_auth_name_char(char c);


int
kordon_apikey_parse(const char *value, size_t len, const char **id,
    const char **secret)
{
    size_t       i;
    const char  *p;
    char         c;

    if (len != KORDON_APIKEY_LEN
        || memcmp(value, KORDON_APIKEY_PREFIX, 4) != 0
        || value[4 + KORDON_APIKEY_ID_LEN] != '_')
    {
        return -1;
    }

    p = value + 4;

    for (i = 0; i < KORDON_APIKEY_ID_LEN; i++) {
        c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return -1;
        }
    }

    p += KORDON_APIKEY_ID_LEN + 1;

    for (i = 0; i < KORDON_APIKEY_SECRET_LEN; i++) {
        c = p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
        {
            return -1;
        }
    }

    /*
     * 43 characters carry 258 bits: the last one holds 2 bits of
     * padding, which a canonical encoding leaves zero (RFC 4648, 3.5)
     */

    c = p[KORDON_APIKEY_SECRET_LEN - 1];

    if (strchr("AEIMQUYcgkosw048", c) == NULL) {
        return -1;
    }

    *id = value + 4;
    *secret = p;

    return 0;
}


int
kordon_stream_id_parse(const char *s, size_t len, uint64_t *ms,
    uint64_t *seq)
{
    size_t     i, digits;
    uint64_t   v[2];
    unsigned   part;

    if (len == 0 || len > KORDON_AUTH_STREAM_ID_MAX) {
        return -1;
    }

    v[0] = 0;
    v[1] = 0;
    part = 0;
    digits = 0;

    for (i = 0; i < len; i++) {

        if (s[i] == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
            continue;
        }

        if (s[i] < '0' || s[i] > '9'
            || v[part] > (UINT64_MAX - (uint64_t) (s[i] - '0')) / 10)
        {
            return -1;
        }

        v[part] = v[part] * 10 + (uint64_t) (s[i] - '0');
        digits++;
    }

    if (digits == 0) {
        return -1;
    }

    *ms = v[0];
    *seq = v[1];

    return 0;
}


int
kordon_stream_id_cmp(uint64_t ams, uint64_t aseq, uint64_t bms,
    uint64_t bseq)
{
    if (ams != bms) {
        return ams < bms ? -1 : 1;
    }

    if (aseq != bseq) {
        return aseq < bseq ? -1 : 1;
    }

    return 0;
}


int
kordon_auth_parse_uint(const char *s, size_t len, int64_t *out)
{
    size_t   i;
    int64_t  v;

    if (len == 0 || len > 18) {
        return -1;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        v = v * 10 + (s[i] - '0');
    }

    *out = v;

    return 0;
}


int
kordon_auth_hex32(const char *hex, size_t len, unsigned char out[32])
{
    int     hi, lo;
    size_t  i;

    if (len != 64) {
        return -1;
    }

    for (i = 0; i < 32; i++) {
        hi = kordon_auth_hexval(hex[2 * i]);
        lo = kordon_auth_hexval(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        out[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


int
kordon_auth_roles_join(const char *in, size_t len, char *out,
    size_t outlen)
{
    size_t  i, n, role;

    n = 0;
    role = 0;

    for (i = 0; i < len; i++) {

        if (in[i] == ' ' || in[i] == ',') {
            role = 0;
            continue;
        }

        if (!kordon_auth_name_char(in[i]) || role == KORDON_AUTH_ROLE_MAX) {
            return -1;
        }

        if (role == 0 && n > 0) {
            if (n == outlen) {
                return -1;
            }

            out[n++] = ',';
        }

        if (n == outlen) {
            return -1;
        }

        out[n++] = in[i];
        role++;
    }

    return (int) n;
}


int
kordon_auth_scopes_check(const char *s, size_t len)
{
    size_t  i;

    if (len > 0 && (s[0] == ' ' || s[len - 1] == ' ')) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\'
            || (s[i] == ' ' && s[i + 1] == ' '))
        {
            return -1;
        }
    }

    return 0;
}


int
kordon_auth_owner_check(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > 128) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (!kordon_auth_name_char(s[i])) {
            return -1;
        }
    }

    return 0;
}


static int
kordon_auth_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


static int
kordon_auth_name_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
           || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == ':'
           || c == '-';
}
