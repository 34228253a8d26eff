
/*
 * Kordon edge: rate limits and the brute-force guard, shared by the
 * files of ngx_http_kordon_limit_module.so.
 *
 *     ngx_http_kordon_limit_module.c   directives, zones, variable, filter
 *     ngx_http_kordon_limit_handler.c  the precontent phase handler and
 *                                      the local (shared memory) limits
 *     ngx_http_kordon_limit_cluster.c  limits and the guard in Redis
 *     kordon_limit_core.c              GCRA and the rest that needs no
 *                                      nginx (unit-tested)
 *
 * The counters of each zone live in its shared memory, for the metrics
 * module: ngx_http_kordon_limit_zones() lists them.
 */


#ifndef _NGX_HTTP_KORDON_LIMIT_H_INCLUDED_
#define _NGX_HTTP_KORDON_LIMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon.h"
#include "ngx_http_kordon_redis.h"
#include "kordon_limit_core.h"


#define NGX_HTTP_KORDON_LIMIT_LOCAL     1
#define NGX_HTTP_KORDON_LIMIT_CLUSTER   2
#define NGX_HTTP_KORDON_LIMIT_HYBRID    3

/* hybrid: keys synced per batch, and the longest Redis key kept for it */
#define NGX_HTTP_KORDON_LIMIT_SYNC_MAX      256
#define NGX_HTTP_KORDON_LIMIT_SYNC_KEY_MAX  256

#define NGX_HTTP_KORDON_LIMIT_RULES_MAX  8
#define NGX_HTTP_KORDON_LIMIT_NS        1000000000
#define NGX_HTTP_KORDON_LIMIT_US        1000000

/* entries freed per request: at most this many expired keys */
#define NGX_HTTP_KORDON_LIMIT_EXPIRE_MAX  2

/* account_json=: fields, and the largest body that is parsed */
#define NGX_HTTP_KORDON_LIMIT_JSON_FIELDS_MAX  4
#define NGX_HTTP_KORDON_LIMIT_JSON_BODY_MAX    16384
#define NGX_HTTP_KORDON_LIMIT_ACCOUNT_MAX      320

/* Redis failures are logged at most once per this many seconds */
#define NGX_HTTP_KORDON_LIMIT_LOG_EVERY_S  1


typedef struct {
    ngx_atomic_t                     admitted;
    ngx_atomic_t                     limited;
    ngx_atomic_t                     redis_errors;  /* timeout, down, error */
    ngx_atomic_t                     failed_open;   /* admitted that way */
    ngx_atomic_t                     failed_closed; /* refused that way */
    ngx_atomic_t                     evicted;       /* live keys dropped */
    ngx_atomic_t                     keys;          /* held now */
    ngx_atomic_t                     synced;        /* hybrid: key counts
                                                       sent to Redis */
    ngx_atomic_t                     sync_dropped;  /* hybrid: not sent */
} ngx_http_kordon_limit_stats_t;


/* hybrid: a key with requests admitted here and not yet sent to Redis */
typedef struct {
    ngx_rbtree_key_t                 hash;
    uint32_t                         count;
    u_short                          len;
    u_char                           key[NGX_HTTP_KORDON_LIMIT_SYNC_KEY_MAX];
} ngx_http_kordon_limit_dirty_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_queue_t                      queue;          /* LRU, newest first */
    u_char                           secret[16];     /* of the key hash */
    ngx_http_kordon_limit_stats_t    stats;
    ngx_uint_t                       ndirty;         /* hybrid only: */
    uint32_t                         generation;     /* of the list */
    ngx_http_kordon_limit_dirty_t   *dirty;          /* SYNC_MAX of them */
} ngx_http_kordon_limit_shctx_t;


/*
 * A key of a local zone: its keyed hash is the rbtree key, so a node
 * is 64 bytes with the rbtree node's head (KORDON_LIMIT_NODE_SIZE).
 */
typedef struct {
    u_char                           color;
    u_char                           dirty;          /* hybrid: listed */
    u_short                          pad;            /* hybrid: its slot */
    uint32_t                         gen;            /* hybrid: the list */
    ngx_queue_t                      queue;
    uint64_t                         tat;            /* nanoseconds */
} ngx_http_kordon_limit_node_t;


typedef struct {
    ngx_str_t                        name;
    ngx_http_complex_value_t         key;
    kordon_gcra_t                    gcra_ns;        /* local */
    kordon_gcra_t                    gcra_us;        /* in Redis */
    uint64_t                         rate;
    uint64_t                         period_s;
    ngx_uint_t                       mode;
    ngx_flag_t                       fail_open;
    ngx_msec_t                       timeout;
    ngx_str_t                        redis_name;
    ngx_http_kordon_redis_server_t  *redis;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_kordon_limit_shctx_t   *sh;
    ngx_slab_pool_t                 *shpool;
    time_t                           log_sec;        /* this worker's */
    ngx_uint_t                       log_skipped;
    time_t                           evict_log_sec;
    ngx_msec_t                       sync;           /* hybrid */
    ngx_uint_t                       share;
    ngx_event_t                      sync_event;     /* this worker's */
    ngx_http_kordon_limit_dirty_t   *batch;          /* in flight */
    ngx_uint_t                       nbatch;
    uint32_t                         counts[NGX_HTTP_KORDON_LIMIT_SYNC_MAX];
} ngx_http_kordon_limit_zone_t;


typedef struct {
    ngx_str_t                        name;
    ngx_http_complex_value_t        *account;
    ngx_http_complex_value_t        *ip;
    ngx_array_t                     *json_fields;    /* of ngx_str_t */
    ngx_uint_t                       failures;       /* per account */
    ngx_uint_t                       ip_failures;
    ngx_msec_t                       window;
    ngx_msec_t                       lockout;
    ngx_msec_t                       lockout_max;
    ngx_msec_t                       timeout;
    ngx_flag_t                       fail_open;
    ngx_str_t                        redis_name;
    ngx_http_kordon_redis_server_t  *redis;
    time_t                           log_sec;
    ngx_uint_t                       log_skipped;
} ngx_http_kordon_limit_guard_t;


typedef struct {
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_uint_t                       methods;        /* 0: every method */
} ngx_http_kordon_limit_rule_t;


typedef struct {
    ngx_array_t                     *rules;          /* of _rule_t */
    ngx_http_kordon_limit_guard_t   *guard;
    ngx_http_kordon_redis_server_t  *redis;          /* of the cluster
                                                        rules */
    ngx_uint_t                       headers;        /* kordon_limit_headers */
} ngx_http_kordon_limit_loc_conf_t;


typedef struct {
    ngx_array_t                      zones;          /* of _zone_t * */
} ngx_http_kordon_limit_main_conf_t;


/* the outcome of one limit for one request */
typedef struct {
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_str_t                        key;
    uint64_t                         remaining;
    uint64_t                         reset_s;
    ngx_rbtree_key_t                 hash;           /* local */
    unsigned                         applied:1;
    unsigned                         limited:1;
    unsigned                         peeked:1;       /* not charged */
    unsigned                         error:1;
} ngx_http_kordon_limit_result_t;


#define NGX_HTTP_KORDON_LIMIT_START     0
#define NGX_HTTP_KORDON_LIMIT_CLUSTER_WAIT  1
#define NGX_HTTP_KORDON_LIMIT_GUARD     2
#define NGX_HTTP_KORDON_LIMIT_GUARD_WAIT    3
#define NGX_HTTP_KORDON_LIMIT_DONE      4


typedef struct {
    ngx_uint_t                       stage;
    ngx_uint_t                       n;              /* results used */
    ngx_http_kordon_limit_result_t   results[NGX_HTTP_KORDON_LIMIT_RULES_MAX];
    ngx_uint_t                       retry_after;    /* seconds, 0: none */
    ngx_str_t                        status;         /* the variable */
    ngx_str_t                        account;        /* guard keys */
    ngx_str_t                        ip;
    ngx_uint_t                       evalsha_tries;
    ngx_http_kordon_limit_guard_t   *guard;          /* to report to */
    unsigned                         headers:1;
    unsigned                         guard_reported:1;
    unsigned                         refused:1;
    unsigned                         body_read:1;
    unsigned                         decided:1;
    unsigned                         guard_limited:1;
    unsigned                         guard_error:1;
} ngx_http_kordon_limit_ctx_t;


ngx_int_t ngx_http_kordon_limit_handler(ngx_http_request_t *r);
ngx_http_kordon_limit_ctx_t *ngx_http_kordon_limit_get_ctx(
    ngx_http_request_t *r);
ngx_int_t ngx_http_kordon_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);

ngx_int_t ngx_http_kordon_limit_cluster(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx);
ngx_int_t ngx_http_kordon_limit_guard_check(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx);
void ngx_http_kordon_limit_guard_report(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_http_kordon_limit_ctx_t *ctx,
    ngx_uint_t status);
ngx_int_t ngx_http_kordon_limit_scripts_init(ngx_conf_t *cf);
void ngx_http_kordon_limit_mark(ngx_http_kordon_limit_zone_t *zone,
    ngx_http_kordon_limit_node_t *ln, ngx_rbtree_key_t hash, ngx_str_t *key);
ngx_rbtree_node_t *ngx_http_kordon_limit_find(
    ngx_http_kordon_limit_zone_t *zone, ngx_rbtree_key_t hash);
ngx_int_t ngx_http_kordon_limit_sync_start(ngx_cycle_t *cycle,
    ngx_http_kordon_limit_zone_t *zone);
ngx_int_t ngx_http_kordon_limit_redis_key(ngx_pool_t *pool,
    const char *prefix, ngx_str_t *name, ngx_str_t *key, const char *suffix,
    ngx_str_t *out);

void ngx_http_kordon_limit_undo(ngx_http_kordon_limit_ctx_t *ctx);
void ngx_http_kordon_limit_admitted(ngx_http_kordon_limit_ctx_t *ctx);
ngx_int_t ngx_http_kordon_limit_refuse(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t status, const char *detail);
void ngx_http_kordon_limit_set_status(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx);
void ngx_http_kordon_limit_log_failure(ngx_log_t *log, ngx_str_t *what,
    ngx_str_t *redis, ngx_uint_t status, ngx_flag_t fail_open,
    time_t *log_sec, ngx_uint_t *log_skipped);

char *ngx_http_kordon_limit_stats(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* every zone of a cycle's configuration, for exporters; *n set */
ngx_http_kordon_limit_zone_t **ngx_http_kordon_limit_zones(
    ngx_cycle_t *cycle, ngx_uint_t *n);


extern ngx_module_t  ngx_http_kordon_limit_module;


#endif /* _NGX_HTTP_KORDON_LIMIT_H_INCLUDED_ */
