
/*
 * Kordon edge: the nginx-free part of the request metrics (see
 * kordon_metrics_core.h): the shared table of routes, the fixed label
 * sets, histograms and the lock-free table of limit names.  Linked into
 * ngx_http_kordon_module.so and, for the unit tests, libkordon_edge.a.
 */


#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kordon_metrics_core.h"


const char  *kordon_metrics_methods[KORDON_METRICS_METHODS] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
    KORDON_METRICS_OTHER
};

const char  *kordon_metrics_classes[KORDON_METRICS_CLASSES] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", KORDON_METRICS_OTHER
};

/* the contract's reasons of $kordon_auth_error, then "other" */
const char  *kordon_metrics_auth_reasons[KORDON_METRICS_AUTH_REASONS] = {
    "missing", "malformed", "expired", "not_yet_valid", "bad_signature",
    "unknown_key", "wrong_issuer", "wrong_audience", "revoked",
    "forbidden", "bad_api_key", KORDON_METRICS_OTHER
};

const char  *kordon_metrics_cache_results[KORDON_METRICS_CACHE_RESULTS] = {
    "hit", "miss", "bypass"
};

const char  *kordon_histogram_le[KORDON_HISTOGRAM_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    "5", "10", "+Inf"
};

static const uint64_t  kordon_histogram_bounds_ms[KORDON_HISTOGRAM_BUCKETS - 1]
    = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 };


size_t
kordon_metrics_shm_size(uint32_t nroutes)
{
    return sizeof(kordon_metrics_shm_t)
           + (size_t) nroutes * sizeof(kordon_metrics_route_t);
}


void
kordon_metrics_shm_init(kordon_metrics_shm_t *sh, uint32_t nroutes)
{
    memset(sh, 0, kordon_metrics_shm_size(nroutes));

    sh->nroutes = nroutes;
    sh->used = 1;

    sh->routes[0].name_len = sizeof(KORDON_METRICS_OTHER) - 1;
    memcpy(sh->routes[0].name, KORDON_METRICS_OTHER,
           sizeof(KORDON_METRICS_OTHER) - 1);
}


uint32_t
kordon_metrics_route_slot(kordon_metrics_shm_t *sh, const unsigned char *name,
    size_t len)
{
    uint32_t                 i;
    kordon_metrics_route_t  *slot;

    if (len > KORDON_METRICS_ROUTE_LEN_MAX) {
        len = KORDON_METRICS_ROUTE_LEN_MAX;
    }

    for (i = 1; i < sh->used; i++) {
        slot = &sh->routes[i];

        if (slot->name_len == len && memcmp(slot->name, name, len) == 0) {
            return i;
        }
    }

    if (sh->used == sh->nroutes) {
        return 0;
    }

    slot = &sh->routes[sh->used];
    memset(slot, 0, sizeof(kordon_metrics_route_t));
    memcpy(slot->name, name, len);
    slot->name_len = (uint32_t) len;

    return sh->used++;
}


unsigned
kordon_metrics_method_index(const unsigned char *m, size_t len)
{
    unsigned  i;

    for (i = 0; i < KORDON_METRICS_METHODS - 1; i++) {
        if (strlen(kordon_metrics_methods[i]) == len
            && memcmp(kordon_metrics_methods[i], m, len) == 0)
        {
            return i;
        }
    }

    return KORDON_METRICS_METHODS - 1;
}


unsigned
kordon_metrics_class_index(unsigned status)
{
    if (status < 100 || status > 599) {
        return KORDON_METRICS_CLASSES - 1;
    }

    return status / 100 - 1;
}


int
kordon_metrics_auth_index(const unsigned char *s, size_t len)
{
    int  i;

    if (len == 0) {
        return -1;
    }

    for (i = 0; i < KORDON_METRICS_AUTH_REASONS - 1; i++) {
        if (strlen(kordon_metrics_auth_reasons[i]) == len
            && memcmp(kordon_metrics_auth_reasons[i], s, len) == 0)
        {
            return i;
        }
    }

    return KORDON_METRICS_AUTH_REASONS - 1;
}


int
kordon_metrics_cache_index(const unsigned char *s, size_t len)
{
    int  i;

    for (i = 0; i < KORDON_METRICS_CACHE_RESULTS; i++) {
        if (strlen(kordon_metrics_cache_results[i]) == len
            && strncasecmp(kordon_metrics_cache_results[i], (const char *) s,
                           len) == 0)
        {
            return i;
        }
    }

    return -1;
}


unsigned
kordon_histogram_bucket(uint64_t ms)
{
    unsigned  i;

    for (i = 0; i < KORDON_HISTOGRAM_BUCKETS - 1; i++) {
        if (ms <= kordon_histogram_bounds_ms[i]) {
            return i;
        }
    }

    return KORDON_HISTOGRAM_BUCKETS - 1;
}


void
kordon_histogram_observe(kordon_histogram_t *h, uint64_t ms)
{
    kordon_metrics_add(&h->bucket[kordon_histogram_bucket(ms)], 1);
    kordon_metrics_add(&h->sum_ms, ms);
}


void
kordon_histogram_read(kordon_histogram_t *h, uint64_t *cumulative,
    uint64_t *sum_ms)
{
    unsigned  i;
    uint64_t  total;

    total = 0;

    for (i = 0; i < KORDON_HISTOGRAM_BUCKETS; i++) {
        total += kordon_metrics_load(&h->bucket[i]);
        cumulative[i] = total;
    }

    *sum_ms = kordon_metrics_load(&h->sum_ms);
}


/*
 * The slot of a limit name: an existing one, a newly claimed one, or
 * the "other" slot at the end of the table.
 */

static kordon_metrics_limit_t *
kordon_metrics_limit_slot(kordon_metrics_shm_t *sh, const unsigned char *name,
    size_t len)
{
    unsigned                 i;
    uint64_t                 expected;
    kordon_metrics_limit_t  *slot;

    if (len > KORDON_METRICS_LIMIT_LEN_MAX) {
        len = KORDON_METRICS_LIMIT_LEN_MAX;
    }

    for (i = 0; i < KORDON_METRICS_LIMITS_MAX; i++) {
        slot = &sh->limits[i];

        switch (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE)) {

        case KORDON_METRICS_SLOT_READY:
            if (slot->name_len == len && memcmp(slot->name, name, len) == 0) {
                return slot;
            }
            continue;

        case KORDON_METRICS_SLOT_BUSY:
            continue;

        default:
            expected = KORDON_METRICS_SLOT_FREE;

            if (!__atomic_compare_exchange_n(&slot->state, &expected,
                                             KORDON_METRICS_SLOT_BUSY, 0,
                                             __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
            {
                /* another worker took it: look at it again */
                i--;
                continue;
            }

            memcpy(slot->name, name, len);
            slot->name_len = (uint32_t) len;
            __atomic_store_n(&slot->state, KORDON_METRICS_SLOT_READY,
                             __ATOMIC_RELEASE);
            return slot;
        }
    }

    return &sh->limits[KORDON_METRICS_LIMITS_MAX];
}


void
kordon_metrics_limit_count(kordon_metrics_shm_t *sh,
    const unsigned char *status, size_t len)
{
    kordon_metrics_limit_t  *slot;

    if (len > sizeof("limited:") - 1
        && memcmp(status, "limited:", sizeof("limited:") - 1) == 0)
    {
        slot = kordon_metrics_limit_slot(sh, status + sizeof("limited:") - 1,
                                         len - (sizeof("limited:") - 1));
        kordon_metrics_add(&slot->limited, 1);
        return;
    }

    if (len > sizeof("error:") - 1
        && memcmp(status, "error:", sizeof("error:") - 1) == 0)
    {
        slot = kordon_metrics_limit_slot(sh, status + sizeof("error:") - 1,
                                         len - (sizeof("error:") - 1));
        kordon_metrics_add(&slot->errors, 1);
    }
}


size_t
kordon_metrics_label_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t          i;
    unsigned char  *p;

    p = dst;

    for (i = 0; i < len; i++) {
        switch (src[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = src[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = src[i];
        }
    }

    return (size_t) (p - dst);
}


size_t
kordon_metrics_seconds(char *dst, uint64_t ms)
{
    int  n;

    n = snprintf(dst, 32, "%llu.%03u", (unsigned long long) (ms / 1000),
                 (unsigned) (ms % 1000));

    return n < 0 ? 0 : (size_t) n;
}
