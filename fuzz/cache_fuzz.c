/*
 * cache_fuzz.c -- libFuzzer target for the nginx-free core of the edge's
 * Redis response cache (nginx-modules/kordon_cache/kordon_cache_core.c):
 * the parsers of bytes that come from outside the edge.  The first byte
 * picks what the rest feeds:
 *
 *   0x00  an entry read back from Redis: kordon_cache_entry_parse();
 *         what parses is written again and must read back the same
 *   0x01  a Cache-Control value from the upstream, then the TTL rule
 *   0x02  a request path: kordon_cache_path_normalize(), whose output
 *         must start with "/" and hold no "//", "." or ".." segment
 *   0x03  a query: kordon_cache_query_normalize(), never longer
 *   0x04  tags: kordon_cache_tag_valid()
 *   0x05  a purge message from the Redis channel:
 *         kordon_cache_tags_parse(), every tag it returns valid
 *   0x06  a request header value for kordon_cache_vary:
 *         kordon_cache_vary_value(), never longer, no space at the ends
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kordon_cache_core.h"


static void
fuzz_entry(const char *p, size_t len)
{
    char                  *out, *end;
    kordon_cache_entry_t   e, again;

    if (kordon_cache_entry_parse(p, len, &e) != 0) {
        return;
    }

    out = malloc(kordon_cache_entry_size(&e));
    assert(out != NULL);

    end = kordon_cache_entry_write(out, &e);
    assert((size_t) (end - out) <= kordon_cache_entry_size(&e));
    assert(kordon_cache_entry_parse(out, (size_t) (end - out), &again) == 0);
    assert(again.status == e.status && again.nheaders == e.nheaders);
    assert(again.body_len == e.body_len);
    assert(e.body_len == 0 || memcmp(again.body, e.body, e.body_len) == 0);

    free(out);
}


static void
fuzz_path(const char *p, size_t len)
{
    char    *out;
    size_t   n, i;

    out = malloc(len + 1);
    assert(out != NULL);

    n = kordon_cache_path_normalize(p, len, out);
    assert(n >= 1 && n <= len + 1 && out[0] == '/');

    for (i = 1; i < n; i++) {
        assert(!(out[i] == '/' && out[i - 1] == '/'));

        /* a segment "." or ".." right after a slash */
        if (out[i - 1] == '/' && out[i] == '.') {
            assert(!(i + 1 == n || out[i + 1] == '/'));
            assert(!(out[i + 1] == '.' && (i + 2 == n || out[i + 2] == '/')));
        }
    }

    free(out);
}


static void
fuzz_tags(const char *p, size_t len)
{
    long                 n, i;
    kordon_cache_str_t   tags[KORDON_CACHE_TAGS_MAX];

    n = kordon_cache_tags_parse(p, len, tags, KORDON_CACHE_TAGS_MAX);
    assert(n == -1 || (n >= 1 && n <= KORDON_CACHE_TAGS_MAX));

    for (i = 0; i < n; i++) {
        assert(tags[i].data >= p && tags[i].data + tags[i].len <= p + len);
        assert(kordon_cache_tag_valid(tags[i].data, tags[i].len));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *out;
    long                n;
    const char         *p;
    kordon_cache_cc_t   cc;

    if (size == 0) {
        return 0;
    }

    p = (const char *) data + 1;
    size--;

    switch (data[0]) {

    case 0x00:
        fuzz_entry(p, size);
        break;

    case 0x01:
        kordon_cache_cc_init(&cc);
        kordon_cache_cc_parse(&cc, p, size);
        assert(kordon_cache_ttl_ms(&cc, 60000, 0) <= 60000);
        assert(kordon_cache_ttl_ms(&cc, 60000, 1) <= 60000);
        break;

    case 0x02:
        fuzz_path(p, size);
        break;

    case 0x03:
        out = malloc(size + 1);
        assert(out != NULL);
        n = kordon_cache_query_normalize(p, size, out);
        assert(n <= (long) size);
        free(out);
        break;

    case 0x04:
        (void) kordon_cache_tag_valid(p, size);
        break;

    case 0x05:
        fuzz_tags(p, size);
        break;

    case 0x06:
        out = malloc(size + 1);
        assert(out != NULL);
        n = (long) kordon_cache_vary_value(p, size, out);
        assert(n <= (long) size);
        assert(n == 0 || (out[0] != ' ' && out[n - 1] != ' '));
        free(out);
        break;
    }

    return 0;
}
