/*
 * Kordon edge: the Redis response cache, what its files share.
 */


#ifndef _NGX_HTTP_KORDON_CACHE_INTERNAL_H_INCLUDED_
#define _NGX_HTTP_KORDON_CACHE_INTERNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon.h"
#include "ngx_http_kordon_redis.h"
#include "ngx_http_kordon_cache.h"
#include "kordon_cache_core.h"


#define NGX_HTTP_KORDON_CACHE_HIT      1
#define NGX_HTTP_KORDON_CACHE_MISS     2
#define NGX_HTTP_KORDON_CACHE_BYPASS   3

/* the Redis Function library that purges a tag, see the purge file */
#define NGX_HTTP_KORDON_CACHE_LIBRARY  "kordon_cache_v1"

/* how often each worker checks that Redis has the library */
#define NGX_HTTP_KORDON_CACHE_LOADER_MS  1000

/* misses in flight that others may wait for, per worker (the lock) */
#define NGX_HTTP_KORDON_CACHE_FLIGHTS_MAX  4096


typedef struct {
    ngx_http_kordon_redis_server_t  *server;     /* kordon_cache; NULL off */
    ngx_http_complex_value_t        *user;       /* kordon_cache_key */
    ngx_msec_t                       ttl;        /* kordon_cache_ttl */
    size_t                           max_size;   /* kordon_cache_max_size */
    ngx_msec_t                       timeout;    /* kordon_cache_timeout */
    ngx_array_t                     *statuses;   /* kordon_cache_statuses */
    ngx_array_t                     *vary;       /* kordon_cache_vary:
                                                    ngx_str_t, lowercase */
    ngx_flag_t                       lock;       /* kordon_cache_lock */
    ngx_msec_t                       lock_timeout;
    ngx_http_kordon_redis_server_t  *purge;      /* kordon_cache_purge */
} ngx_http_kordon_cache_loc_conf_t;


typedef struct {
    /* every server a kordon_cache or kordon_cache_purge names, once */
    ngx_array_t                      servers;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_kordon_cache_stats_t   *stats;     /* in the zone */

    /* kordon_cache_purge_channel <redis> <channel> */
    ngx_http_kordon_redis_server_t  *channel_server;
    ngx_str_t                        channel;
    ngx_http_kordon_redis_sub_t     *subscriber;  /* worker 0's */
} ngx_http_kordon_cache_main_conf_t;


typedef struct {
    ngx_uint_t                       status;     /* HIT, MISS, BYPASS */
    ngx_msec_t                       ttl;        /* store with this TTL */

    u_char                          *body;       /* captured so far */
    size_t                           body_len;
    size_t                           body_size;  /* allocated */

    ngx_uint_t                       ntags;
    ngx_str_t                        tags[KORDON_CACHE_TAGS_MAX];

    kordon_cache_entry_t             entry;      /* status and headers */

    u_char                           key[KORDON_CACHE_KEY_LEN];

    /* single-flight (ngx_http_kordon_cache_lock.c) */
    void                            *flight;     /* the one it leads */
    ngx_queue_t                      lock_queue; /* in a flight's waiters */
    ngx_event_t                      lock_ev;    /* woken, or timed out */
    u_char                          *lock_entry; /* the leader's, copied */
    size_t                           lock_entry_len;

    unsigned                         waiting:1;  /* lookup in flight */
    unsigned                         done:1;     /* lookup decided */
    unsigned                         user_key:1; /* the key has a user */
    unsigned                         store:1;    /* capturing the body */
    unsigned                         lock_wait:1;     /* in lock_queue */
    unsigned                         lock_reading:1;  /* test_reading set */
    unsigned                         lock_cleanup:1;  /* cleanup added */
} ngx_http_kordon_cache_ctx_t;


ngx_int_t ngx_http_kordon_cache_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_kordon_cache_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_kordon_cache_purge_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_kordon_cache_send_hit(ngx_http_request_t *r,
    u_char *data, size_t len);
ngx_int_t ngx_http_kordon_cache_lock(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx,
    ngx_http_kordon_cache_loc_conf_t *clcf);
void *ngx_http_kordon_cache_lock_release(ngx_http_kordon_cache_ctx_t *ctx,
    u_char *entry, size_t len);
void ngx_http_kordon_cache_lock_done(void *flight);
void ngx_http_kordon_cache_loader_start(ngx_cycle_t *cycle,
    ngx_array_t *servers);
void ngx_http_kordon_cache_channel_message(ngx_str_t *message, void *data);
ngx_str_t *ngx_http_kordon_cache_status_text(ngx_uint_t status);


/*
 * counts in the zone of the running cycle's configuration (never a
 * zone a reload dropped); nothing without one (nginx -t)
 */
#define ngx_http_kordon_cache_inc(field)                                     \
    do {                                                                     \
        ngx_http_kordon_cache_stats_t  *st_;                                 \
                                                                             \
        st_ = ngx_http_kordon_cache_stats();                                 \
        if (st_) {                                                           \
            (void) ngx_atomic_fetch_add(&st_->field, 1);                     \
        }                                                                    \
    } while (0)


#endif /* _NGX_HTTP_KORDON_CACHE_INTERNAL_H_INCLUDED_ */
