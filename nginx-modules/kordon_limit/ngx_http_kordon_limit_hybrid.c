
/*
 * Kordon edge: mode=hybrid, a local zone that shares its counts with
 * the other edges through Redis in batches.
 *
 * A request is decided in shared memory exactly as in mode=local, with
 * no I/O; its key is then listed as dirty (up to
 * NGX_HTTP_KORDON_LIMIT_SYNC_MAX keys, each with its count).  Every
 * sync= interval each worker takes the list and sends it in one script
 * call: Redis adds each key's count to the cluster-wide GCRA state (time
 * from Redis, as mode=cluster) and answers how far ahead each key now
 * is; the worker moves the local state to at least that.  So requests
 * admitted anywhere cost every edge, one sync later.  A listed key is
 * not expired before its sync (ngx_http_kordon_limit_expire()), so a
 * key keeps its one slot however often its bucket is full again.
 *
 * The trade-off (README.md has the figures): between two syncs each
 * edge decides alone, so for one sync interval N edges may admit up to
 * N times what the limit allows; but every admitted request is charged
 * in Redis, and an overdrawn key makes every edge wait until it is paid
 * back, so over any longer time the admitted count stays at the limit
 * (t/032-limit-edges.t: +1.2% with three edges, sync=50ms).  share=N
 * gives each edge 1/N of the rate and burst between syncs: smaller
 * bursts past the limit, and an edge alone admits rate/N until its
 * first sync shows the others idle.  Redis down: the local decisions
 * stand (the counts of a failed batch are dropped and counted).
 */


#include <time.h>

#include <ngx_sha1.h>

#include "ngx_http_kordon_limit.h"


static void ngx_http_kordon_limit_sync(ngx_event_t *ev);
static void ngx_http_kordon_limit_sync_done(redisReply *reply,
    ngx_uint_t status, void *data);
static void ngx_http_kordon_limit_sync_next(
    ngx_http_kordon_limit_zone_t *zone);
static uint64_t ngx_http_kordon_limit_hybrid_now(void);


/* KEYS: the keys; ARGV: interval (us), burst, the count of each key */

static ngx_str_t  ngx_http_kordon_limit_sync_script = ngx_string(
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local interval = tonumber(ARGV[1])\n"
    "local out = {}\n"
    "for i = 1, #KEYS do\n"
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
    "  tat = math.max(tat, now) + interval * tonumber(ARGV[2 + i])\n"
    "  redis.call('SET', KEYS[i], string.format('%.0f', tat),\n"
    "             'PX', math.floor((tat - now) / 1000) + 1)\n"
    "  out[i] = tat - now\n"
    "end\n"
    "return out\n");


/*
 * With the zone locked, after a request was admitted: counts it for the
 * next sync (key is the limit's key; the Redis key is made here, once a
 * sync).  A full list leaves the request counted here only.
 */

void
ngx_http_kordon_limit_mark(ngx_http_kordon_limit_zone_t *zone,
    ngx_http_kordon_limit_node_t *ln, ngx_rbtree_key_t hash, ngx_str_t *key)
{
    u_char                          sha1[20];
    ngx_sha1_t                      sha;
    ngx_http_kordon_limit_dirty_t  *d;
    ngx_http_kordon_limit_shctx_t  *sh;

    sh = zone->sh;

    /* listed in the current list: pad is its slot, gen the list's number */

    if (ln->dirty && ln->gen == sh->generation
        && ln->pad < sh->ndirty && sh->dirty[ln->pad].hash == hash)
    {
        sh->dirty[ln->pad].count++;
        return;
    }

    if (sh->ndirty == NGX_HTTP_KORDON_LIMIT_SYNC_MAX) {
        (void) ngx_atomic_fetch_add(&sh->stats.sync_dropped, 1);
        return;
    }

    /* the Redis key, as mode=cluster names it: at most 246 bytes */

    if (kordon_limit_redis_key_hashed(key->len)) {
        ngx_sha1_init(&sha);
        ngx_sha1_update(&sha, key->data, key->len);
        ngx_sha1_final(sha1, &sha);
    }

    d = &sh->dirty[sh->ndirty];
    d->hash = hash;
    d->count = 1;
    d->len = kordon_limit_redis_key(d->key, "kordon:limit:", zone->name.data,
                                    zone->name.len, key->data, key->len,
                                    sha1);

    ln->dirty = 1;
    ln->pad = (u_short) sh->ndirty++;
    ln->gen = sh->generation;
}


ngx_int_t
ngx_http_kordon_limit_sync_start(ngx_cycle_t *cycle,
    ngx_http_kordon_limit_zone_t *zone)
{
    zone->batch = ngx_palloc(cycle->pool,
                             NGX_HTTP_KORDON_LIMIT_SYNC_MAX
                             * sizeof(ngx_http_kordon_limit_dirty_t));
    if (zone->batch == NULL) {
        return NGX_ERROR;
    }

    zone->sync_event.handler = ngx_http_kordon_limit_sync;
    zone->sync_event.data = zone;
    zone->sync_event.log = cycle->log;
    zone->sync_event.cancelable = 1;

    ngx_add_timer(&zone->sync_event, zone->sync);

    return NGX_OK;
}


/* the timer: takes the dirty list and sends it, one batch at a time */

static void
ngx_http_kordon_limit_sync(ngx_event_t *ev)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_uint_t                      i, n, argc;
    ngx_http_kordon_limit_zone_t   *zone;
    ngx_http_kordon_limit_shctx_t  *sh;
    u_char                          nums[NGX_HTTP_KORDON_LIMIT_SYNC_MAX + 3]
                                        [NGX_INT64_LEN];
    const char                     *argv[2 * NGX_HTTP_KORDON_LIMIT_SYNC_MAX
                                         + 5];
    size_t                          argvlen[2 * NGX_HTTP_KORDON_LIMIT_SYNC_MAX
                                            + 5];

    zone = ev->data;
    sh = zone->sh;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    n = sh->ndirty;
    ngx_memcpy(zone->batch, sh->dirty,
               n * sizeof(ngx_http_kordon_limit_dirty_t));
    sh->ndirty = 0;
    sh->generation++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (n == 0) {
        ngx_add_timer(ev, zone->sync);
        return;
    }

    zone->nbatch = n;

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = (const char *) ngx_http_kordon_limit_sync_script.data;
    argvlen[1] = ngx_http_kordon_limit_sync_script.len;

    p = ngx_sprintf(nums[0], "%ui", n);
    argv[2] = (const char *) nums[0];
    argvlen[2] = p - nums[0];

    argc = 3;

    for (i = 0; i < n; i++) {
        argv[argc] = (const char *) zone->batch[i].key;
        argvlen[argc++] = zone->batch[i].len;
    }

    p = ngx_sprintf(nums[1], "%uL", zone->gcra_us.interval);
    argv[argc] = (const char *) nums[1];
    argvlen[argc++] = p - nums[1];

    p = ngx_sprintf(nums[2], "%uL", zone->gcra_us.burst);
    argv[argc] = (const char *) nums[2];
    argvlen[argc++] = p - nums[2];

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(nums[3 + i], "%uD", zone->batch[i].count);
        argv[argc] = (const char *) nums[3 + i];
        argvlen[argc++] = p - nums[3 + i];
    }

    /* hiredis copies the arguments; the reply needs zone->batch */

    rc = ngx_http_kordon_redis_send(zone->redis, argc, argv, argvlen,
                                    zone->timeout,
                                    ngx_http_kordon_limit_sync_done, zone,
                                    NULL);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_limit_sync_done(NULL, rc, zone);
    }
}


/*
 * Redis's answer: how far ahead (us) each key of the batch is, counting
 * every edge.  The local state moves to at least that.
 */

static void
ngx_http_kordon_limit_sync_done(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_limit_zone_t *zone = data;

    uint64_t                       now, tat;
    ngx_uint_t                     i;
    redisReply                    *e;
    ngx_rbtree_node_t             *node;
    ngx_http_kordon_limit_node_t  *ln;

    if (status == NGX_HTTP_KORDON_REDIS_OK
        && (reply->type != REDIS_REPLY_ARRAY
            || reply->elements != zone->nbatch))
    {
        status = NGX_HTTP_KORDON_REDIS_ERROR;
    }

    if (status != NGX_HTTP_KORDON_REDIS_OK) {
        (void) ngx_atomic_fetch_add(&zone->sh->stats.redis_errors, 1);
        (void) ngx_atomic_fetch_add(&zone->sh->stats.sync_dropped,
                                    zone->nbatch);

        ngx_http_kordon_limit_log_failure(ngx_cycle->log, &zone->name,
                                          &zone->redis_name, status, 1,
                                          &zone->log_sec, &zone->log_skipped);
        ngx_http_kordon_limit_sync_next(zone);
        return;
    }

    now = ngx_http_kordon_limit_hybrid_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < zone->nbatch; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_INTEGER || e->integer < 0) {
            continue;
        }

        node = ngx_http_kordon_limit_find(zone, zone->batch[i].hash);
        if (node == NULL) {
            continue;
        }

        ln = (ngx_http_kordon_limit_node_t *) &node->color;
        tat = now + (uint64_t) e->integer * 1000;

        if (ln->tat < tat) {
            ln->tat = tat;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    (void) ngx_atomic_fetch_add(&zone->sh->stats.synced, zone->nbatch);

    ngx_http_kordon_limit_sync_next(zone);
}


static void
ngx_http_kordon_limit_sync_next(ngx_http_kordon_limit_zone_t *zone)
{
    zone->nbatch = 0;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(&zone->sync_event, zone->sync);
}


static uint64_t
ngx_http_kordon_limit_hybrid_now(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * NGX_HTTP_KORDON_LIMIT_NS + ts.tv_nsec;
}
