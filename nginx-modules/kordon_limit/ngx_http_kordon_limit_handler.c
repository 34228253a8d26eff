
/*
 * Kordon edge: the precontent phase handler of the rate limits, and the
 * local limits in shared memory.
 *
 * A request goes through three stages, each of which may answer it:
 *
 *     1. the local limits, in shared memory, without any I/O;      429
 *     2. the cluster limits, one Redis script for all of them;     429/503
 *     3. the brute-force guard's lockout, in Redis;                429
 *
 * A stage that waits for Redis returns NGX_DONE; the reply handler runs
 * the phases again, and the handler goes on where its ctx says.  A
 * request refused by a later limit gives back what the earlier ones
 * took, so several limits on one location count only admitted requests.
 *
 * A local zone is an rbtree of keys with an LRU queue, as limit_req's.
 * The tree's key is a 64-bit keyed hash of the limit's key (MD5 with a
 * random secret drawn when the zone is created, so that nobody can
 * choose keys that collide with someone else's); the node is then 64
 * bytes whatever the key's length, and 1,000,000 keys take 64.4 MiB
 * (kordon_limit_zone_size()).  Each request frees up to two keys whose
 * bucket is full again (they hold nothing a new key would not); when the
 * zone is full, the least recently used keys are dropped, live or not,
 * and counted as evicted.  Time is CLOCK_MONOTONIC in nanoseconds, the
 * same clock in every worker.
 */


#include <time.h>

#include <ngx_md5.h>
#include <openssl/rand.h>

#include "ngx_http_kordon_limit.h"


#define NGX_HTTP_KORDON_LIMIT_EVICT_MAX  8


static ngx_int_t ngx_http_kordon_limit_local(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_limit_lookup(ngx_http_request_t *r,
    ngx_http_kordon_limit_result_t *res, ngx_http_kordon_limit_ctx_t *ctx);
static ngx_rbtree_node_t *ngx_http_kordon_limit_alloc(
    ngx_http_kordon_limit_zone_t *zone, uint64_t now);
static ngx_uint_t ngx_http_kordon_limit_expire(
    ngx_http_kordon_limit_zone_t *zone, uint64_t now, ngx_uint_t n,
    ngx_uint_t force);
static ngx_rbtree_key_t ngx_http_kordon_limit_hash(
    ngx_http_kordon_limit_zone_t *zone, ngx_str_t *key);
static void ngx_http_kordon_limit_peek(ngx_http_kordon_limit_result_t *res);
static void ngx_http_kordon_limit_undo_local(ngx_http_kordon_limit_ctx_t *ctx);
static uint64_t ngx_http_kordon_limit_now(void);
static ngx_http_kordon_limit_ctx_t *ngx_http_kordon_limit_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_kordon_limit_ctx_cleanup(void *data);
static void ngx_http_kordon_limit_body_read(ngx_http_request_t *r);


ngx_int_t
ngx_http_kordon_limit_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_http_kordon_limit_ctx_t       *ctx;
    ngx_http_kordon_limit_loc_conf_t  *llcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_limit_module);

    if (llcf->rules == NULL && llcf->guard == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_kordon_limit_get_ctx(r);

    if (ctx && ctx->decided) {
        /* an internal redirect (index, try_files): counted once */
        return NGX_DECLINED;
    }

    if (ctx == NULL) {
        ctx = ngx_http_kordon_limit_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (llcf->rules) {
            rc = ngx_http_kordon_limit_local(r, llcf, ctx);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        ctx->stage = NGX_HTTP_KORDON_LIMIT_CLUSTER_WAIT;

        if (llcf->redis) {
            rc = ngx_http_kordon_limit_cluster(r, llcf, ctx);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        ctx->stage = NGX_HTTP_KORDON_LIMIT_GUARD;
    }

    if (ctx->stage == NGX_HTTP_KORDON_LIMIT_GUARD
        && llcf->guard && llcf->guard->json_fields && !ctx->body_read
        && (r->headers_in.content_length_n > 0 || r->headers_in.chunked))
    {
        /* as the mirror module: read the body, then run the phases again */

        ctx->body_read = 1;

        rc = ngx_http_read_client_request_body(r,
                                            ngx_http_kordon_limit_body_read);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    if (ctx->stage == NGX_HTTP_KORDON_LIMIT_GUARD) {
        ctx->stage = NGX_HTTP_KORDON_LIMIT_GUARD_WAIT;

        if (llcf->guard) {
            rc = ngx_http_kordon_limit_guard_check(r, llcf, ctx);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        ctx->stage = NGX_HTTP_KORDON_LIMIT_DONE;
    }

    if (ctx->stage != NGX_HTTP_KORDON_LIMIT_DONE) {
        /* a wait not over: nothing here resumes a request twice */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "kordon limit: phases resumed in stage %ui",
                      ctx->stage);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->decided = 1;

    ngx_http_kordon_limit_set_status(r, ctx);
    ngx_http_kordon_limit_admitted(ctx);

    return NGX_DECLINED;
}


static void
ngx_http_kordon_limit_body_read(ngx_http_request_t *r)
{
    /* the body stays for the upstream */

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The ctx lives as long as the request, internal redirects included
 * (nginx clears module ctxs on a redirect): as the realip module does, a
 * pool cleanup finds it again.  So a request is counted once, and an
 * error page still carries the RateLimit fields.
 */

ngx_http_kordon_limit_ctx_t *
ngx_http_kordon_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_kordon_limit_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_limit_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_kordon_limit_ctx_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_kordon_limit_module);
            break;
        }
    }

    return ctx;
}


static ngx_http_kordon_limit_ctx_t *
ngx_http_kordon_limit_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_kordon_limit_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_limit_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_kordon_limit_ctx_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_kordon_limit_module);

    return ctx;
}


static void
ngx_http_kordon_limit_ctx_cleanup(void *data)
{
    /* nothing to free: the handler marks the ctx for get_ctx() */
}


/*
 * Evaluates every rule's key and runs the local ones.  Returns
 * NGX_DECLINED to go on, or NGX_DONE when the request was answered.
 */

static ngx_int_t
ngx_http_kordon_limit_local(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, refused;
    ngx_http_kordon_limit_rule_t    *rule;
    ngx_http_kordon_limit_result_t  *res;

    rule = llcf->rules->elts;
    refused = 0;

    for (i = 0; i < llcf->rules->nelts; i++) {

        if (rule[i].methods && !(r->method & rule[i].methods)) {
            continue;
        }

        res = &ctx->results[ctx->n];

        if (ngx_http_complex_value(r, &rule[i].zone->key, &res->key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* as limit_req: a request without a key is not limited */

        if (res->key.len == 0) {
            continue;
        }

        res->zone = rule[i].zone;
        ctx->n++;
        ctx->headers = 1;

        if (res->zone->mode == NGX_HTTP_KORDON_LIMIT_CLUSTER) {
            continue;
        }

        /* refused already: the rest only show their state in the fields */

        if (refused) {
            ngx_http_kordon_limit_peek(res);
            continue;
        }

        if (ngx_http_kordon_limit_lookup(r, res, ctx) != NGX_OK) {
            res->error = 1;
            continue;
        }

        res->applied = 1;
        refused = res->limited;
    }

    if (!refused) {
        return NGX_DECLINED;
    }

    ngx_http_kordon_limit_undo_local(ctx);

    rc = ngx_http_kordon_limit_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                      NULL);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * A local key's state without a request against it: what it admits now
 * and when it is full.  Marks res applied and peeked (nothing to undo).
 */

static void
ngx_http_kordon_limit_peek(ngx_http_kordon_limit_result_t *res)
{
    uint64_t                       now, tat;
    ngx_rbtree_node_t             *node;
    kordon_gcra_result_t           g;
    ngx_http_kordon_limit_zone_t  *zone;

    zone = res->zone;
    now = ngx_http_kordon_limit_now();
    tat = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_kordon_limit_find(zone,
                                      ngx_http_kordon_limit_hash(zone,
                                                                 &res->key));
    if (node) {
        tat = ((ngx_http_kordon_limit_node_t *) &node->color)->tat;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    kordon_gcra(&zone->gcra_ns, tat, now, &g);

    res->applied = 1;
    res->peeked = 1;
    res->remaining = g.allowed ? g.remaining + 1 : 0;
    res->reset_s = kordon_limit_seconds(tat > now ? tat - now : 0,
                                        NGX_HTTP_KORDON_LIMIT_NS);
}


/*
 * One request against one key of a local zone.  Fills res (limited,
 * remaining, reset_s, tat: the hash, for an undo) and ctx->retry_after.
 * NGX_ERROR when the zone has no room even after evicting (logged).
 */

static ngx_int_t
ngx_http_kordon_limit_lookup(ngx_http_request_t *r,
    ngx_http_kordon_limit_result_t *res, ngx_http_kordon_limit_ctx_t *ctx)
{
    uint64_t                        now, tat;
    ngx_rbtree_key_t                hash;
    ngx_rbtree_node_t              *node;
    kordon_gcra_result_t            g;
    ngx_http_kordon_limit_node_t   *ln;
    ngx_http_kordon_limit_zone_t   *zone;

    zone = res->zone;
    hash = ngx_http_kordon_limit_hash(zone, &res->key);
    now = ngx_http_kordon_limit_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_kordon_limit_expire(zone, now, NGX_HTTP_KORDON_LIMIT_EXPIRE_MAX,
                                 0);

    node = ngx_http_kordon_limit_find(zone, hash);

    if (node) {
        ln = (ngx_http_kordon_limit_node_t *) &node->color;
        ngx_queue_remove(&ln->queue);
        tat = ln->tat;

    } else {
        node = ngx_http_kordon_limit_alloc(zone, now);

        if (node == NULL) {
            ngx_shmtx_unlock(&zone->shpool->mutex);

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "kordon limit \"%V\": no room for a key in the "
                          "shared memory zone", &zone->name);
            return NGX_ERROR;
        }

        node->key = hash;
        ln = (ngx_http_kordon_limit_node_t *) &node->color;
        ln->tat = 0;
        ln->dirty = 0;
        tat = 0;

        ngx_rbtree_insert(&zone->sh->rbtree, node);
        (void) ngx_atomic_fetch_add(&zone->sh->stats.keys, 1);
    }

    kordon_gcra(&zone->gcra_ns, tat, now, &g);

    ln->tat = g.tat;
    ngx_queue_insert_head(&zone->sh->queue, &ln->queue);

    if (g.allowed && zone->mode == NGX_HTTP_KORDON_LIMIT_HYBRID) {
        ngx_http_kordon_limit_mark(zone, ln, hash, &res->key);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    res->hash = hash;
    res->limited = !g.allowed;
    res->remaining = g.remaining;
    res->reset_s = kordon_limit_seconds(g.reset_after,
                                        NGX_HTTP_KORDON_LIMIT_NS);

    if (!g.allowed) {
        ctx->retry_after = ngx_max(ctx->retry_after,
                                   kordon_limit_seconds(g.retry_after,
                                                    NGX_HTTP_KORDON_LIMIT_NS));
    }

    return NGX_OK;
}


ngx_rbtree_node_t *
ngx_http_kordon_limit_find(ngx_http_kordon_limit_zone_t *zone,
    ngx_rbtree_key_t hash)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash == node->key) {
            return node;
        }

        node = hash < node->key ? node->left : node->right;
    }

    return NULL;
}


/* with the zone locked: a node, evicting the oldest keys if need be */

static ngx_rbtree_node_t *
ngx_http_kordon_limit_alloc(ngx_http_kordon_limit_zone_t *zone, uint64_t now)
{
    size_t              size;
    ngx_uint_t          n;
    ngx_rbtree_node_t  *node;

    size = offsetof(ngx_rbtree_node_t, color)
           + sizeof(ngx_http_kordon_limit_node_t);

    node = ngx_slab_alloc_locked(zone->shpool, size);
    if (node) {
        return node;
    }

    if (ngx_time() != zone->evict_log_sec) {
        zone->evict_log_sec = ngx_time();

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "kordon limit \"%V\": zone full at %uA keys, "
                      "evicting the least recently used",
                      &zone->name, zone->sh->stats.keys);
    }

    n = ngx_http_kordon_limit_expire(zone, now,
                                     NGX_HTTP_KORDON_LIMIT_EVICT_MAX, 1);
    if (n == 0) {
        return NULL;
    }

    return ngx_slab_alloc_locked(zone->shpool, size);
}


/*
 * Frees up to n keys from the old end of the LRU queue: only keys whose
 * bucket is full again and (hybrid) whose count is not waiting in the
 * list for the next sync, or (force) any, counting the live ones as
 * evicted.  Returns how many it freed.  A listed key stays until its
 * sync: freed, a key far under its rate (full again before its next
 * request) would take a new slot of the list at each request, and fill
 * it with copies of itself.
 */

static ngx_uint_t
ngx_http_kordon_limit_expire(ngx_http_kordon_limit_zone_t *zone,
    uint64_t now, ngx_uint_t n, ngx_uint_t force)
{
    ngx_uint_t                     freed;
    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_kordon_limit_node_t  *ln;

    for (freed = 0; freed < n; freed++) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&zone->sh->queue);
        ln = ngx_queue_data(q, ngx_http_kordon_limit_node_t, queue);

        if (!force
            && (ln->tat > now
                || (ln->dirty && ln->gen == zone->sh->generation)))
        {
            break;
        }

        if (ln->tat > now) {
            (void) ngx_atomic_fetch_add(&zone->sh->stats.evicted, 1);
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&zone->sh->rbtree, node);
        ngx_slab_free_locked(zone->shpool, node);
        (void) ngx_atomic_fetch_add(&zone->sh->stats.keys, -1);
    }

    return freed;
}


static ngx_rbtree_key_t
ngx_http_kordon_limit_hash(ngx_http_kordon_limit_zone_t *zone, ngx_str_t *key)
{
    u_char            digest[16];
    ngx_md5_t         md5;
    ngx_rbtree_key_t  hash;

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, zone->sh->secret, sizeof(zone->sh->secret));
    ngx_md5_update(&md5, key->data, key->len);
    ngx_md5_final(digest, &md5);

    ngx_memcpy(&hash, digest, sizeof(ngx_rbtree_key_t));

    return hash;
}


/* gives back what the local limits of a refused request took */

static void
ngx_http_kordon_limit_undo_local(ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_uint_t                       i;
    ngx_rbtree_node_t               *node;
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_http_kordon_limit_node_t    *ln;
    ngx_http_kordon_limit_result_t  *res;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];
        zone = res->zone;

        if (!res->applied || res->limited || res->peeked
            || zone->mode == NGX_HTTP_KORDON_LIMIT_CLUSTER)
        {
            continue;
        }

        /* hybrid: the count already listed for Redis stays, one over */

        ngx_shmtx_lock(&zone->shpool->mutex);

        node = ngx_http_kordon_limit_find(zone, res->hash);

        if (node) {
            ln = (ngx_http_kordon_limit_node_t *) &node->color;
            ln->tat = kordon_gcra_undo(&zone->gcra_ns, ln->tat);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        res->remaining++;
    }
}


/* the cluster stage refused: the local limits give back theirs too */

void
ngx_http_kordon_limit_undo(ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_http_kordon_limit_undo_local(ctx);
}


/*
 * Sends the refusal: 429 (limited) or 503 (a fail-closed limit without
 * its Redis), counted, with Retry-After.  Returns what
 * ngx_http_kordon_problem_send() returns.
 */

ngx_int_t
ngx_http_kordon_limit_refuse(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t status, const char *detail)
{
    ngx_str_t                      text;
    ngx_str_t                     *dp;
    ngx_uint_t                     i;
    ngx_http_kordon_limit_zone_t  *zone;

    ctx->refused = 1;

    for (i = 0; i < ctx->n; i++) {
        zone = ctx->results[i].zone;

        if (ctx->results[i].limited) {
            (void) ngx_atomic_fetch_add(&zone->sh->stats.limited, 1);

        } else if (ctx->results[i].error
                   && status == NGX_HTTP_SERVICE_UNAVAILABLE)
        {
            (void) ngx_atomic_fetch_add(&zone->sh->stats.failed_closed, 1);
        }
    }

    if (ctx->retry_after == 0) {
        ctx->retry_after = 1;
    }

    ngx_http_kordon_limit_set_status(r, ctx);

    dp = NULL;

    if (detail) {
        text.data = (u_char *) detail;
        text.len = ngx_strlen(detail);
        dp = &text;
    }

    return ngx_http_kordon_problem_send(r, status, NULL, dp);
}


/* counts an admitted request in every zone that applied */

void
ngx_http_kordon_limit_admitted(ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_uint_t                       i;
    ngx_http_kordon_limit_zone_t    *zone;

    for (i = 0; i < ctx->n; i++) {
        zone = ctx->results[i].zone;

        (void) ngx_atomic_fetch_add(&zone->sh->stats.admitted, 1);

        if (ctx->results[i].error) {
            (void) ngx_atomic_fetch_add(&zone->sh->stats.failed_open, 1);
        }
    }
}


/* $kordon_limit_status: "ok", "limited:<zone>", "error:<zone>" or none */

void
ngx_http_kordon_limit_set_status(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx)
{
    size_t                           len;
    u_char                          *p;
    ngx_str_t                       *name;
    ngx_uint_t                       i;
    const char                      *what;
    ngx_http_kordon_limit_result_t  *res;

    name = NULL;
    what = NULL;

    /* a limit that refused, else the guard's lock, else a failure */

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];

        if (res->limited) {
            name = &res->zone->name;
            what = "limited";
            break;
        }

        if (res->error && name == NULL) {
            name = &res->zone->name;
            what = "error";
        }
    }

    if (ctx->guard && (ctx->guard_limited || (ctx->guard_error && !name))) {
        if (what == NULL || ngx_strcmp(what, "limited") != 0) {
            name = &ctx->guard->name;
            what = ctx->guard_limited ? "limited" : "error";
        }
    }

    if (name == NULL) {
        if (ctx->n || ctx->guard) {
            ngx_str_set(&ctx->status, "ok");
        }

        return;
    }

    len = sizeof("limited:") - 1 + name->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return;
    }

    ctx->status.data = p;
    ctx->status.len = ngx_sprintf(p, "%s:%V", what, name) - p;
}


/*
 * Logs a Redis failure of a zone or the guard at most once per
 * NGX_HTTP_KORDON_LIMIT_LOG_EVERY_S in a worker, with the number of
 * failures it did not log.
 */

void
ngx_http_kordon_limit_log_failure(ngx_log_t *log, ngx_str_t *what,
    ngx_str_t *redis, ngx_uint_t status, ngx_flag_t fail_open,
    time_t *log_sec, ngx_uint_t *log_skipped)
{
    if (ngx_time() - *log_sec < NGX_HTTP_KORDON_LIMIT_LOG_EVERY_S) {
        (*log_skipped)++;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "kordon limit \"%V\": redis \"%V\" failed (%V), "
                  "failing %s; %ui more such failures not logged",
                  what, redis, ngx_http_kordon_redis_status_text(status),
                  fail_open ? "open" : "closed", *log_skipped);

    *log_sec = ngx_time();
    *log_skipped = 0;
}


ngx_int_t
ngx_http_kordon_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kordon_limit_zone_t  *ozone = data;

    size_t                          len, size;
    ngx_http_kordon_limit_zone_t   *zone;

    zone = shm_zone->data;

    if (ozone) {
        if (ozone->mode != zone->mode) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "limit zone \"%V\" changed its mode; rename it "
                          "or restart nginx", &zone->name);
            return NGX_ERROR;
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    zone->sh = ngx_slab_alloc(zone->shpool,
                              sizeof(ngx_http_kordon_limit_shctx_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_rbtree_insert_value);

    if (zone->mode == NGX_HTTP_KORDON_LIMIT_HYBRID) {
        size = NGX_HTTP_KORDON_LIMIT_SYNC_MAX
               * sizeof(ngx_http_kordon_limit_dirty_t);

        zone->sh->dirty = ngx_slab_alloc(zone->shpool, size);
        if (zone->sh->dirty == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_queue_init(&zone->sh->queue);

    if (RAND_bytes(zone->sh->secret, sizeof(zone->sh->secret)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "kordon limit \"%V\": RAND_bytes() failed",
                      &zone->name);
        return NGX_ERROR;
    }

    len = sizeof(" in kordon limit zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in kordon limit zone \"%V\"%Z",
                &shm_zone->shm.name);

    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static uint64_t
ngx_http_kordon_limit_now(void)
{
    struct timespec  ts;

    /* a vDSO call: cheap, and nanoseconds where nginx's clock has ms */

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * NGX_HTTP_KORDON_LIMIT_NS + ts.tv_nsec;
}
