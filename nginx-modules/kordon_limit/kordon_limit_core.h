
/*
 * Kordon edge: the pure parts of the rate limits, free of nginx and of
 * any I/O, so that unit tests reach them: the GCRA decision, the
 * parsing of "rate=" values, the sizing of a local zone, the key that a
 * limit uses in Redis, the RateLimit header values and the brute-force
 * guard's lockout.  The nginx side is in ngx_http_kordon_limit_*.c.
 *
 * GCRA (the generic cell rate algorithm) keeps one number per key, the
 * theoretical arrival time (TAT) of the next request if every request
 * came exactly at the rate.  A request is admitted when, after adding
 * one emission interval T to max(TAT, now), the TAT is at most
 * burst * T ahead of now.  Everything is integer arithmetic in one time
 * unit chosen by the caller: nanoseconds for local zones (a monotonic
 * clock), microseconds in Redis (whose Lua numbers are doubles, exact
 * below 2^53, and whose TIME answers in microseconds).
 */


#ifndef _KORDON_LIMIT_CORE_H_INCLUDED_
#define _KORDON_LIMIT_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* limits: each has a fixed upper bound */

#define KORDON_LIMIT_BURST_MAX        1000000   /* burst= */
#define KORDON_LIMIT_RATE_MAX         1000000   /* requests per period */
#define KORDON_LIMIT_REDIS_KEY_RAW    200       /* longer keys are hashed */
#define KORDON_LIMIT_NAME_MAX         32        /* bytes of a zone name */

/*
 * The bytes one key takes in a local zone: nginx's slab allocator hands
 * out this exact size (a power of two, 64 on LP64) for the node, which
 * holds a keyed 64-bit hash of the key instead of the key itself.
 */
#define KORDON_LIMIT_NODE_SIZE        64
#define KORDON_LIMIT_PAGE_SIZE        4096
#define KORDON_LIMIT_PAGE_OVERHEAD    24        /* ngx_slab_page_t */


typedef struct {
    uint64_t  interval;      /* T: time units per request, > 0 */
    uint64_t  burst;         /* requests admitted at once, >= 1 */
} kordon_gcra_t;

typedef struct {
    int       allowed;
    uint64_t  tat;           /* TAT to store; the old one when refused */
    uint64_t  remaining;     /* requests admitted at once from now on */
    uint64_t  retry_after;   /* units until one more would be admitted;
                                0 when admitted */
    uint64_t  reset_after;   /* units until the bucket is full again */
} kordon_gcra_result_t;


/*
 * One request against a key whose stored TAT is tat (0: a new key) at
 * time now.  Fills *res; never fails.  g->interval * g->burst must not
 * overflow (the directive's bounds see to it).
 */
void kordon_gcra(const kordon_gcra_t *g, uint64_t tat, uint64_t now,
    kordon_gcra_result_t *res);

/*
 * 1 if a zone or guard name is 1 to KORDON_LIMIT_NAME_MAX bytes of
 * [A-Za-z0-9_-]: it goes as it is into headers and Redis keys.
 */
int kordon_limit_name_ok(const unsigned char *name, size_t len);

/*
 * Takes back one admitted request (when a later limit of the same
 * request refused it): the TAT that the key holds afterwards.
 */
uint64_t kordon_gcra_undo(const kordon_gcra_t *g, uint64_t tat);

/*
 * "rate=" text: "N/s" or "N/m" (also "Nr/s", as limit_req writes it),
 * N from 1 to KORDON_LIMIT_RATE_MAX.  Sets *n and *period_s (1 or 60)
 * and returns 0, or returns -1 leaving both untouched.
 */
int kordon_limit_parse_rate(const unsigned char *text, size_t len,
    uint64_t *n, uint64_t *period_s);

/*
 * The emission interval of n requests per period_s seconds in units of
 * unit_per_s (1000000000 for nanoseconds), rounded down, at least 1.
 */
uint64_t kordon_limit_interval(uint64_t n, uint64_t period_s,
    uint64_t unit_per_s);

/* how many keys a local zone of size bytes holds at most */
uint64_t kordon_limit_zone_keys(uint64_t size);

/* the smallest zone size that holds keys keys */
uint64_t kordon_limit_zone_size(uint64_t keys);

/*
 * The Redis key of a limit: "kordon:limit:<zone>:<key>", the key as it
 * is up to KORDON_LIMIT_REDIS_KEY_RAW bytes, longer ones replaced by
 * "#" and the hex of sha1 (20 bytes, computed by the caller, who needs
 * to call only when kordon_limit_redis_key_hashed() says so).  Returns
 * the length written to dst, which must hold
 * kordon_limit_redis_key_len() bytes.
 */
int kordon_limit_redis_key_hashed(size_t key_len);
size_t kordon_limit_redis_key_len(const char *prefix, size_t zone_len,
    size_t key_len);
size_t kordon_limit_redis_key(unsigned char *dst, const char *prefix,
    const unsigned char *zone, size_t zone_len, const unsigned char *key,
    size_t key_len, const unsigned char *sha1);

/*
 * Whole seconds for a header from a duration in units of unit_per_s,
 * rounded up (a client that waits that long is admitted).
 */
uint64_t kordon_limit_seconds(uint64_t units, uint64_t unit_per_s);

/*
 * The window of a policy for the RateLimit-Policy header: the seconds
 * in which a full bucket refills, rounded up, at least 1.
 */
uint64_t kordon_limit_window(const kordon_gcra_t *g, uint64_t unit_per_s);

/*
 * The brute-force guard's lockout after failures failed attempts, with
 * threshold failures allowed before the first one: 0 below the
 * threshold, then base_s doubling with each further failure, at most
 * max_s.
 */
uint64_t kordon_limit_lockout(uint64_t failures, uint64_t threshold,
    uint64_t base_s, uint64_t max_s);


#endif /* _KORDON_LIMIT_CORE_H_INCLUDED_ */
