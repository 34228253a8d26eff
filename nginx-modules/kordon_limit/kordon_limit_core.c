
/*
 * Kordon edge: the pure parts of the rate limits (see the header for the
 * contracts).  GCRA is written once here for local zones; the Redis
 * script in ngx_http_kordon_limit_cluster.c is the same arithmetic in
 * Lua (and the guard's script is kordon_limit_lockout() in Lua):
 * t/unit/test_limit.c pins the C, and t/030 and t/031 expect the same
 * answers, to the header, from a local and a cluster zone.
 */


#include <string.h>

#include "kordon_limit_core.h"


void
kordon_gcra(const kordon_gcra_t *g, uint64_t tat, uint64_t now,
    kordon_gcra_result_t *res)
{
    uint64_t  limit, new_tat, ahead;

    limit = g->interval * g->burst;

    new_tat = (tat > now ? tat : now) + g->interval;
    ahead = new_tat - now;

    if (ahead > limit) {
        res->allowed = 0;
        res->tat = tat;
        res->remaining = 0;
        res->retry_after = ahead - limit;
        res->reset_after = tat > now ? tat - now : 0;
        return;
    }

    res->allowed = 1;
    res->tat = new_tat;
    res->remaining = (limit - ahead) / g->interval;
    res->retry_after = 0;
    res->reset_after = ahead;
}


uint64_t
kordon_gcra_undo(const kordon_gcra_t *g, uint64_t tat)
{
    /* a TAT at or below now means a full bucket, as for a new key */

    return tat > g->interval ? tat - g->interval : 0;
}


int
kordon_limit_name_ok(const unsigned char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > KORDON_LIMIT_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '_' || name[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


int
kordon_limit_parse_rate(const unsigned char *text, size_t len, uint64_t *n,
    uint64_t *period_s)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        v = v * 10 + (text[i] - '0');

        if (v > KORDON_LIMIT_RATE_MAX) {
            return -1;
        }
    }

    if (i == 0 || v == 0) {
        return -1;
    }

    if (i < len && text[i] == 'r') {
        i++;
    }

    if (len - i != 2 || text[i] != '/') {
        return -1;
    }

    switch (text[i + 1]) {
    case 's':
        *period_s = 1;
        break;
    case 'm':
        *period_s = 60;
        break;
    default:
        return -1;
    }

    *n = v;

    return 0;
}


uint64_t
kordon_limit_interval(uint64_t n, uint64_t period_s, uint64_t unit_per_s)
{
    uint64_t  t;

    t = period_s * unit_per_s / n;

    return t ? t : 1;
}


uint64_t
kordon_limit_zone_keys(uint64_t size)
{
    uint64_t  pages;

    /*
     * ngx_slab_init() takes a page descriptor per page out of the zone
     * before the pages, and the zone's own header and the limit's state
     * (one page is plenty) come first; every page then holds
     * KORDON_LIMIT_PAGE_SIZE / KORDON_LIMIT_NODE_SIZE nodes.
     */

    if (size < 2 * KORDON_LIMIT_PAGE_SIZE) {
        return 0;
    }

    pages = (size - KORDON_LIMIT_PAGE_SIZE)
            / (KORDON_LIMIT_PAGE_SIZE + KORDON_LIMIT_PAGE_OVERHEAD);

    return (pages - 1) * (KORDON_LIMIT_PAGE_SIZE / KORDON_LIMIT_NODE_SIZE);
}


uint64_t
kordon_limit_zone_size(uint64_t keys)
{
    uint64_t  pages, per_page;

    per_page = KORDON_LIMIT_PAGE_SIZE / KORDON_LIMIT_NODE_SIZE;
    pages = (keys + per_page - 1) / per_page + 1;

    return KORDON_LIMIT_PAGE_SIZE
           + pages * (KORDON_LIMIT_PAGE_SIZE + KORDON_LIMIT_PAGE_OVERHEAD);
}


int
kordon_limit_redis_key_hashed(size_t key_len)
{
    return key_len > KORDON_LIMIT_REDIS_KEY_RAW;
}


size_t
kordon_limit_redis_key_len(const char *prefix, size_t zone_len,
    size_t key_len)
{
    if (kordon_limit_redis_key_hashed(key_len)) {
        key_len = 1 + 40;
    }

    return strlen(prefix) + zone_len + 1 + key_len;
}


size_t
kordon_limit_redis_key(unsigned char *dst, const char *prefix,
    const unsigned char *zone, size_t zone_len, const unsigned char *key,
    size_t key_len, const unsigned char *sha1)
{
    size_t          i, n;
    unsigned char  *p;

    static const char  hex[] = "0123456789abcdef";

    p = dst;
    n = strlen(prefix);

    memcpy(p, prefix, n);
    p += n;
    memcpy(p, zone, zone_len);
    p += zone_len;
    *p++ = ':';

    if (!kordon_limit_redis_key_hashed(key_len)) {
        memcpy(p, key, key_len);
        return p + key_len - dst;
    }

    *p++ = '#';

    for (i = 0; i < 20; i++) {
        *p++ = hex[sha1[i] >> 4];
        *p++ = hex[sha1[i] & 0xf];
    }

    return p - dst;
}


uint64_t
kordon_limit_seconds(uint64_t units, uint64_t unit_per_s)
{
    return (units + unit_per_s - 1) / unit_per_s;
}


uint64_t
kordon_limit_window(const kordon_gcra_t *g, uint64_t unit_per_s)
{
    uint64_t  w;

    w = kordon_limit_seconds(g->interval * g->burst, unit_per_s);

    return w ? w : 1;
}


uint64_t
kordon_limit_lockout(uint64_t failures, uint64_t threshold, uint64_t base_s,
    uint64_t max_s)
{
    uint64_t  lockout, n;

    if (failures < threshold || base_s == 0) {
        return 0;
    }

    lockout = base_s;

    for (n = failures - threshold; n > 0 && lockout < max_s; n--) {
        lockout *= 2;
    }

    return lockout < max_s ? lockout : max_s;
}
