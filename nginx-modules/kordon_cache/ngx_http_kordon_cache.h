/*
 * Kordon edge: the Redis response cache, its C interface for other
 * modules (the metrics exporter): the counters, summed over the workers
 * in a shared memory zone "kordon_cache" and kept across reloads.  Read
 * them with plain loads.  README.md has the whole contract.
 */


#ifndef _NGX_HTTP_KORDON_CACHE_H_INCLUDED_
#define _NGX_HTTP_KORDON_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_atomic_t  hits;           /* answered from Redis */
    ngx_atomic_t  misses;         /* looked up, not found: proxied */
    ngx_atomic_t  bypasses;       /* not looked up, or Redis failed */
    ngx_atomic_t  redis_errors;   /* lookups that failed: down, timeout,
                                     error reply (each is also a bypass) */
    ngx_atomic_t  stores;         /* entries Redis accepted */
    ngx_atomic_t  store_errors;   /* stores Redis refused or never got */
    ngx_atomic_t  not_stored;     /* misses not stored: a never-cache rule
                                     or the size bound */
    ngx_atomic_t  purges;         /* tags purged: kordon_cache_purge or
                                     the channel */
    ngx_atomic_t  channel_messages; /* purge messages taken from the
                                       channel */
    ngx_atomic_t  channel_ignored;  /* messages that were not a tag list */
    ngx_atomic_t  lock_waits;     /* misses that waited for another
                                     request's answer (kordon_cache_lock) */
    ngx_atomic_t  lock_timeouts;  /* ... and went upstream after the wait */
} ngx_http_kordon_cache_stats_t;


/* the counters, or NULL before the zone exists (nginx -t) */
ngx_http_kordon_cache_stats_t *ngx_http_kordon_cache_stats(void);


extern ngx_module_t  ngx_http_kordon_cache_module;


#endif /* _NGX_HTTP_KORDON_CACHE_H_INCLUDED_ */
