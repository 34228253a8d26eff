/*
 * Kordon edge: the Redis response cache, single-flight for misses
 * (kordon_cache_lock).
 *
 * When N requests for the same cold key arrive together, the first GET
 * that misses leads: it goes upstream.  The others that miss while it is
 * in flight wait, suspended, in the leader's wait list; when the leader's
 * answer has been captured and stored, each of them gets its own copy of
 * the stored entry and is answered from it (a HIT), in its own posted
 * event, never inside the leader's filter.  When the leader's answer will
 * not be stored (an error, no-store, too large, a client that left), the
 * waiters are let go upstream as soon as the leader knows it, at its
 * response header; a waiter that waited kordon_cache_lock_timeout goes
 * upstream by itself.  Nothing ever waits without a timer.
 *
 * The one idea: the wait list is per worker, in process memory (an
 * rbtree of flights by key), not a Redis lock.  It costs no Redis round
 * trip on any miss, leaves no lock behind when an edge dies, and wakes
 * waiters the moment the answer exists instead of polling Redis; the
 * price is one upstream request per worker (per edge) for a herd, not
 * one in all.
 *
 * Each leader or waiter has a cleanup on its pool: a request freed while
 * it leads releases its waiters (upstream), one freed while it waits
 * leaves the list and drops its timer and posted event.
 *
 * A stored answer's flight outlives its leader until Redis acknowledges
 * the SET: a lookup sent just before the SET may still answer nil (the
 * replies come in order on the worker's connection), and without the
 * flight that miss would lead a second upstream request.  Such a miss is
 * answered from the flight's copy of the entry instead.
 */


#include "ngx_http_kordon_cache_internal.h"


typedef struct {
    ngx_str_node_t                   sn;        /* by key, in the tree */
    ngx_queue_t                      waiters;   /* ctx->lock_queue */
    u_char                          *entry;     /* filled: the stored one */
    size_t                           entry_len;
    u_char                           key[KORDON_CACHE_KEY_LEN];
} ngx_http_kordon_cache_flight_t;


static ngx_int_t ngx_http_kordon_cache_lock_wait(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_flight_t *f,
    ngx_msec_t timeout);
static ngx_http_kordon_cache_flight_t *ngx_http_kordon_cache_flight_find(
    u_char *key);
static void ngx_http_kordon_cache_flight_free(
    ngx_http_kordon_cache_flight_t *f);
static ngx_int_t ngx_http_kordon_cache_lock_cleanup_add(
    ngx_http_request_t *r, ngx_http_kordon_cache_ctx_t *ctx);
static void ngx_http_kordon_cache_lock_cleanup(void *data);
static void ngx_http_kordon_cache_lock_wake(ngx_event_t *ev);


static ngx_rbtree_t       ngx_http_kordon_cache_flights;
static ngx_rbtree_node_t  ngx_http_kordon_cache_flights_sentinel;
static ngx_uint_t         ngx_http_kordon_cache_nflights;
static ngx_uint_t         ngx_http_kordon_cache_flights_init;


/*
 * On a miss of a GET (or HEAD) whose location has kordon_cache_lock on.
 * Returns NGX_AGAIN when the request now waits for another one's answer
 * (it holds its reference; the wake handler resumes it), NGX_DONE when
 * the answer was just stored (ctx->lock_entry is a copy: answer from
 * it), NGX_OK when it leads (a GET with no flight for its key: it goes
 * upstream, and must release the flight), NGX_DECLINED when none of
 * these (a HEAD with nobody to wait for, too many flights, no memory):
 * it goes upstream alone.
 */
ngx_int_t
ngx_http_kordon_cache_lock(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_loc_conf_t *clcf)
{
    ngx_http_kordon_cache_flight_t  *f;

    if (!ngx_http_kordon_cache_flights_init) {
        ngx_rbtree_init(&ngx_http_kordon_cache_flights,
                        &ngx_http_kordon_cache_flights_sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_http_kordon_cache_flights_init = 1;
    }

    f = ngx_http_kordon_cache_flight_find(ctx->key);

    if (f && f->entry) {
        ctx->lock_entry = ngx_pnalloc(r->pool, f->entry_len);
        if (ctx->lock_entry == NULL) {
            return NGX_DECLINED;
        }

        ngx_memcpy(ctx->lock_entry, f->entry, f->entry_len);
        ctx->lock_entry_len = f->entry_len;

        return NGX_DONE;
    }

    if (f) {
        return ngx_http_kordon_cache_lock_wait(r, ctx, f, clcf->lock_timeout);
    }

    if (r->method != NGX_HTTP_GET
        || ngx_http_kordon_cache_nflights >= NGX_HTTP_KORDON_CACHE_FLIGHTS_MAX)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_kordon_cache_lock_cleanup_add(r, ctx) != NGX_OK) {
        return NGX_DECLINED;
    }

    f = ngx_alloc(sizeof(ngx_http_kordon_cache_flight_t), r->connection->log);
    if (f == NULL) {
        return NGX_DECLINED;
    }

    f->entry = NULL;
    f->entry_len = 0;
    ngx_memcpy(f->key, ctx->key, KORDON_CACHE_KEY_LEN);
    f->sn.str.data = f->key;
    f->sn.str.len = KORDON_CACHE_KEY_LEN;
    f->sn.node.key = ngx_crc32_short(f->key, KORDON_CACHE_KEY_LEN);
    ngx_queue_init(&f->waiters);

    ngx_rbtree_insert(&ngx_http_kordon_cache_flights, &f->sn.node);
    ngx_http_kordon_cache_nflights++;

    ctx->flight = f;

    return NGX_OK;
}


/* joins f's waiters: NGX_AGAIN, or NGX_DECLINED (no memory) */
static ngx_int_t
ngx_http_kordon_cache_lock_wait(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_flight_t *f,
    ngx_msec_t timeout)
{
    if (ngx_http_kordon_cache_lock_cleanup_add(r, ctx) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_queue_insert_tail(&f->waiters, &ctx->lock_queue);
    ctx->lock_wait = 1;

    ctx->lock_ev.handler = ngx_http_kordon_cache_lock_wake;
    ctx->lock_ev.data = r;
    ctx->lock_ev.log = r->connection->log;
    ngx_add_timer(&ctx->lock_ev, timeout);

    /* as limit_req's delay: notice a client that leaves */
    if (r->read_event_handler == ngx_http_block_reading) {
        r->read_event_handler = ngx_http_test_reading;
        ctx->lock_reading = 1;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_kordon_cache_inc(lock_waits);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon cache: waiting for the answer of another "
                   "request");

    return NGX_AGAIN;
}


static ngx_http_kordon_cache_flight_t *
ngx_http_kordon_cache_flight_find(u_char *key)
{
    ngx_str_t        name;
    ngx_str_node_t  *sn;

    name.data = key;
    name.len = KORDON_CACHE_KEY_LEN;

    sn = ngx_str_rbtree_lookup(&ngx_http_kordon_cache_flights, &name,
                               ngx_crc32_short(key, KORDON_CACHE_KEY_LEN));

    return (ngx_http_kordon_cache_flight_t *) sn;
}


/* once per request; NGX_ERROR: no memory */
static ngx_int_t
ngx_http_kordon_cache_lock_cleanup_add(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    if (ctx->lock_cleanup) {
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_kordon_cache_lock_cleanup;
    cln->data = ctx;
    ctx->lock_cleanup = 1;

    return NGX_OK;
}


/*
 * The leader is done with its flight: entry (len bytes, a stored entry
 * in the format of kordon_cache_core.h) is what is being stored, or NULL
 * when nothing will be.  Each waiter gets its own copy in its pool (or
 * none: it goes upstream) and is woken by a posted event.  With an
 * entry, returns the flight, kept with a copy of it until the caller
 * hands it to ngx_http_kordon_cache_lock_done() (when Redis has answered
 * the SET); else NULL, the flight gone.  NULL for a request that leads
 * no flight.
 */
void *
ngx_http_kordon_cache_lock_release(ngx_http_kordon_cache_ctx_t *ctx,
    u_char *entry, size_t len)
{
    ngx_queue_t                     *q;
    ngx_http_request_t              *w;
    ngx_http_kordon_cache_ctx_t     *wctx;
    ngx_http_kordon_cache_flight_t  *f;

    f = ctx->flight;

    if (f == NULL) {
        return NULL;
    }

    ctx->flight = NULL;

    while (!ngx_queue_empty(&f->waiters)) {
        q = ngx_queue_head(&f->waiters);
        ngx_queue_remove(q);

        wctx = ngx_queue_data(q, ngx_http_kordon_cache_ctx_t, lock_queue);
        wctx->lock_wait = 0;
        w = wctx->lock_ev.data;

        if (wctx->lock_ev.timer_set) {
            ngx_del_timer(&wctx->lock_ev);
        }

        if (entry) {
            wctx->lock_entry = ngx_pnalloc(w->pool, len);

            if (wctx->lock_entry) {
                ngx_memcpy(wctx->lock_entry, entry, len);
                wctx->lock_entry_len = len;
            }
        }

        ngx_post_event(&wctx->lock_ev, &ngx_posted_events);
    }

    if (entry) {
        f->entry = ngx_alloc(len, ngx_cycle->log);

        if (f->entry) {
            ngx_memcpy(f->entry, entry, len);
            f->entry_len = len;
            return f;
        }
    }

    ngx_http_kordon_cache_flight_free(f);

    return NULL;
}


/* the SET of a flight's entry was answered (or failed): it goes */
void
ngx_http_kordon_cache_lock_done(void *flight)
{
    ngx_http_kordon_cache_flight_free(flight);
}


static void
ngx_http_kordon_cache_flight_free(ngx_http_kordon_cache_flight_t *f)
{
    ngx_rbtree_delete(&ngx_http_kordon_cache_flights, &f->sn.node);
    ngx_http_kordon_cache_nflights--;

    if (f->entry) {
        ngx_free(f->entry);
    }

    ngx_free(f);
}


/* r->pool is going: let the waiters go, or leave the wait list */
static void
ngx_http_kordon_cache_lock_cleanup(void *data)
{
    ngx_http_kordon_cache_ctx_t  *ctx = data;

    (void) ngx_http_kordon_cache_lock_release(ctx, NULL, 0);

    if (ctx->lock_wait) {
        ngx_queue_remove(&ctx->lock_queue);
        ctx->lock_wait = 0;
    }

    if (ctx->lock_ev.timer_set) {
        ngx_del_timer(&ctx->lock_ev);
    }

    if (ctx->lock_ev.posted) {
        ngx_delete_posted_event(&ctx->lock_ev);
    }
}


/*
 * A waiter's end: the leader's entry (a HIT from its copy), the leader
 * gave up (upstream), or the timer (upstream).  It runs as the request
 * handler would: with its log, then the posted requests.
 */
static void
ngx_http_kordon_cache_lock_wake(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_kordon_cache_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_cache_module);

    ngx_http_set_log_request(c->log, r);

    if (ctx->lock_wait) {
        /* the timer: the leader still runs */
        ngx_queue_remove(&ctx->lock_queue);
        ctx->lock_wait = 0;
    }

    if (ctx->lock_reading) {
        r->read_event_handler = ngx_http_block_reading;
        ctx->lock_reading = 0;
    }

    r->write_event_handler = ngx_http_core_run_phases;

    if (ctx->lock_entry) {
        rc = ngx_http_kordon_cache_send_hit(r, ctx->lock_entry,
                                            ctx->lock_entry_len);
        if (rc != NGX_DECLINED) {
            ngx_http_finalize_request(r, rc);
            ngx_http_run_posted_requests(c);
            return;
        }
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "kordon cache: another request's answer did not come "
                      "in time, going upstream");
        ngx_http_kordon_cache_inc(lock_timeouts);
    }

    ctx->status = NGX_HTTP_KORDON_CACHE_MISS;
    ngx_http_kordon_cache_inc(misses);

    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
}
