
/*
 * Kordon edge: the nginx-free part of the request metrics.
 *
 * Every counter is a uint64_t in shared memory that workers bump with
 * relaxed atomic adds and that the exporter reads with relaxed loads: no
 * lock on the request path, and a scrape sees each counter as some value
 * it really had.  Histograms keep one non-cumulative count per bucket;
 * the exporter adds them up, so the "+Inf" bucket and _count are the
 * same number by construction, even while workers write.
 *
 * Labels are bounded by construction: methods, status classes, auth
 * reasons and cache results are fixed lists here (anything else falls
 * into "other"), routes come from the configuration, and limit names
 * into a fixed table (KORDON_METRICS_LIMITS_MAX, then "other").
 */


#ifndef _KORDON_METRICS_CORE_H_INCLUDED_
#define _KORDON_METRICS_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* GET HEAD POST PUT PATCH DELETE OPTIONS other */
#define KORDON_METRICS_METHODS        8
/* 1xx 2xx 3xx 4xx 5xx other */
#define KORDON_METRICS_CLASSES        6
/* upper bounds in ms: 5 10 25 50 100 250 500 1000 2500 5000 10000, +Inf */
#define KORDON_HISTOGRAM_BUCKETS      12
#define KORDON_METRICS_AUTH_REASONS   12
#define KORDON_METRICS_CACHE_RESULTS  3
#define KORDON_METRICS_LIMITS_MAX     64
#define KORDON_METRICS_LIMIT_LEN_MAX  63
#define KORDON_METRICS_WORKERS_MAX    1024   /* NGX_MAX_PROCESSES */

/* a route name is cut to this many bytes in the shared table */
#define KORDON_METRICS_ROUTE_LEN_MAX  255

/* the fixed label of what is not in a bounded set */
#define KORDON_METRICS_OTHER          "other"


typedef struct {
    uint64_t      bucket[KORDON_HISTOGRAM_BUCKETS];   /* not cumulative */
    uint64_t      sum_ms;
} kordon_histogram_t;


/* one route's counters; slot 0 of the table is "other" */
typedef struct {
    uint64_t            requests[KORDON_METRICS_METHODS]
                                [KORDON_METRICS_CLASSES];
    kordon_histogram_t  duration;
    kordon_histogram_t  upstream;
    uint32_t            name_len;
    unsigned char       name[KORDON_METRICS_ROUTE_LEN_MAX + 1];
} kordon_metrics_route_t;


/* state of a limit slot: free, being written by one worker, readable */
#define KORDON_METRICS_SLOT_FREE      0
#define KORDON_METRICS_SLOT_BUSY      1
#define KORDON_METRICS_SLOT_READY     2

typedef struct {
    uint64_t       state;
    uint64_t       limited;
    uint64_t       errors;
    uint32_t       name_len;
    unsigned char  name[KORDON_METRICS_LIMIT_LEN_MAX + 1];
} kordon_metrics_limit_t;


/* what kordon_events reports; see its README for the meaning of each */
typedef struct {
    uint64_t      produced;
    uint64_t      delivered;
    uint64_t      dropped_queue_full;
    uint64_t      dropped_error;
    uint64_t      delivery_failed;
    uint64_t      errors;
    uint64_t      queue[KORDON_METRICS_WORKERS_MAX];  /* per worker */
} kordon_metrics_kafka_t;


/*
 * The shared memory zone.  routes[] has nroutes slots, of which used
 * carry a name; the master assigns them while it reads a configuration,
 * by name, so counters survive a reload that keeps the route.
 */
typedef struct {
    uint64_t                 auth_failures[KORDON_METRICS_AUTH_REASONS];
    uint64_t                 cache[KORDON_METRICS_CACHE_RESULTS];
    kordon_metrics_limit_t   limits[KORDON_METRICS_LIMITS_MAX + 1];
    kordon_metrics_kafka_t   kafka;
    uint32_t                 nroutes;
    uint32_t                 used;
    kordon_metrics_route_t   routes[];
} kordon_metrics_shm_t;


/* the bytes the zone's table needs for nroutes slots */
size_t kordon_metrics_shm_size(uint32_t nroutes);

/*
 * Prepares a zeroed table of nroutes slots (slot 0, "other", included).
 */
void kordon_metrics_shm_init(kordon_metrics_shm_t *sh, uint32_t nroutes);

/*
 * The slot of a route name, assigning a free one on first sight.  Only
 * the master calls it, while no worker of this configuration runs yet.
 * Returns 0 ("other") when the table is full.
 */
uint32_t kordon_metrics_route_slot(kordon_metrics_shm_t *sh,
    const unsigned char *name, size_t len);

/* indexes of the fixed label sets; the last of each set is "other" */
unsigned kordon_metrics_method_index(const unsigned char *m, size_t len);
unsigned kordon_metrics_class_index(unsigned status);
/* -1 for an empty reason (authenticated, or no auth) */
int kordon_metrics_auth_index(const unsigned char *s, size_t len);
/* -1 unless HIT, MISS or BYPASS (any case) */
int kordon_metrics_cache_index(const unsigned char *s, size_t len);

extern const char  *kordon_metrics_methods[KORDON_METRICS_METHODS];
extern const char  *kordon_metrics_classes[KORDON_METRICS_CLASSES];
extern const char  *kordon_metrics_auth_reasons[KORDON_METRICS_AUTH_REASONS];
extern const char  *kordon_metrics_cache_results[KORDON_METRICS_CACHE_RESULTS];
/* the "le" label of each bucket: "0.005" ... "10", "+Inf" */
extern const char  *kordon_histogram_le[KORDON_HISTOGRAM_BUCKETS];

/* the bucket of a duration in milliseconds */
unsigned kordon_histogram_bucket(uint64_t ms);
void kordon_histogram_observe(kordon_histogram_t *h, uint64_t ms);

/*
 * Reads a histogram: cumulative[i] is the count of observations <= the
 * i-th bound, cumulative[KORDON_HISTOGRAM_BUCKETS - 1] is the total.
 */
void kordon_histogram_read(kordon_histogram_t *h, uint64_t *cumulative,
    uint64_t *sum_ms);

/*
 * Counts a rate-limit outcome: $kordon_limit_status as "limited:<name>"
 * or "error:<name>"; anything else is ignored.  A name not in the table
 * takes a free slot (lock-free: a compare-and-swap claims it), and when
 * none is left it counts as "other" (the table's last slot).  Two
 * workers that add the same name at once may both get a slot; readers
 * add up slots of one name.
 */
void kordon_metrics_limit_count(kordon_metrics_shm_t *sh,
    const unsigned char *status, size_t len);

/*
 * Escapes a Prometheus label value (backslash, double quote, newline)
 * into dst, which holds 2 * len bytes; returns the bytes written.
 */
size_t kordon_metrics_label_escape(unsigned char *dst,
    const unsigned char *src, size_t len);

/* the formatted value of ms as seconds ("1.234"); dst holds 32 bytes */
size_t kordon_metrics_seconds(char *dst, uint64_t ms);

static inline void
kordon_metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t
kordon_metrics_load(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static inline void
kordon_metrics_store(uint64_t *counter, uint64_t v)
{
    __atomic_store_n(counter, v, __ATOMIC_RELAXED);
}


#endif /* _KORDON_METRICS_CORE_H_INCLUDED_ */
