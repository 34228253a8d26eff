
/*
 * auth_fuzz.c -- libFuzzer target for the pure parts of API keys and
 * revocations (nginx-modules/kordon_jwt/kordon_auth_core.c), which take
 * bytes from the network (X-Api-Key) and from Redis (key records, stream
 * ids, revocation entries).  Build and run: fuzz/run.
 *
 * Every input goes through every parser, and what each one promises is
 * checked: a parsed key points into the input at the right places with
 * the right alphabet, a parsed stream id prints back to an equivalent id,
 * joined roles fit and hold no separator run, hex decodes round-trip.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kordon_auth_core.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_apikey(const char *s, size_t len);
static void fuzz_stream_id(const char *s, size_t len);
static void fuzz_roles(const char *s, size_t len);
static void fuzz_hex(const char *s, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char  *s = (const char *) data;
    int64_t      v;

    if (size > 4096) {
        return 0;
    }

    fuzz_apikey(s, size);
    fuzz_stream_id(s, size);
    fuzz_roles(s, size);
    fuzz_hex(s, size);

    if (kordon_auth_parse_uint(s, size, &v) == 0 && v < 0) {
        abort();
    }

    (void) kordon_auth_scopes_check(s, size);

    if (kordon_auth_owner_check(s, size) == 0
        && (size == 0 || size > 128 || memchr(s, ' ', size) != NULL))
    {
        abort();
    }

    return 0;
}


static void
fuzz_apikey(const char *s, size_t len)
{
    const char  *id, *secret;

    if (kordon_apikey_parse(s, len, &id, &secret) != 0) {
        return;
    }

    if (len != KORDON_APIKEY_LEN || id != s + 4
        || secret != s + 4 + KORDON_APIKEY_ID_LEN + 1
        || strspn(id, "0123456789abcdef") < KORDON_APIKEY_ID_LEN)
    {
        abort();
    }
}


static void
fuzz_stream_id(const char *s, size_t len)
{
    char      buf[64];
    uint64_t  ms, seq, ms2, seq2;
    int       n;

    if (kordon_stream_id_parse(s, len, &ms, &seq) != 0) {
        return;
    }

    n = snprintf(buf, sizeof(buf), "%llu-%llu", (unsigned long long) ms,
                 (unsigned long long) seq);

    if (n <= 0 || kordon_stream_id_parse(buf, (size_t) n, &ms2, &seq2) != 0
        || kordon_stream_id_cmp(ms, seq, ms2, seq2) != 0)
    {
        abort();
    }
}


static void
fuzz_roles(const char *s, size_t len)
{
    int   n;
    char  out[KORDON_AUTH_ROLES_MAX];

    n = kordon_auth_roles_join(s, len, out, sizeof(out));

    if (n < 0) {
        return;
    }

    if ((size_t) n > sizeof(out)
        || (n > 0 && (out[0] == ',' || out[n - 1] == ','))
        || memchr(out, ' ', (size_t) n) != NULL
        || (n > 1 && memmem(out, (size_t) n, ",,", 2) != NULL))
    {
        abort();
    }
}


static void
fuzz_hex(const char *s, size_t len)
{
    size_t         i;
    unsigned char  out[32];
    char           back[65];

    if (kordon_auth_hex32(s, len, out) != 0) {
        return;
    }

    for (i = 0; i < 32; i++) {
        snprintf(back + 2 * i, 3, "%02x", out[i]);
    }

    if (strncasecmp(back, s, 64) != 0) {
        abort();
    }
}
