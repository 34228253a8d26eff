
/*
 * Kordon edge: revocations, from a Redis stream into shared memory.
 *
 * users appends "sub <uuid> nbf <unix-s>" (a user-wide cut) or "sid
 * <uuid> nbf <unix-s>" (one session) to the stream kordon:revocations.
 * Every worker runs a timer; on each tick at most one worker of all
 * (whoever first finds the shared "next poll" time passed) reads the
 * stream from where the last read stopped, without BLOCK, through the
 * shared Redis client, and stores each entry in a shared table: an
 * rbtree of "u<sub>" and "s<sid>" keys, each with the latest nbf.  The
 * request path only looks at that table (the revocation hook of the
 * handler, for cached tokens too): a token whose iat is before the nbf
 * of its sub or its sid is refused.  Nothing on the request path talks
 * to Redis.
 *
 * Each read is two commands: XINFO STREAM first, so that a stream that
 * no longer holds the last id read (trimmed past it, deleted, or made
 * again after Redis lost its data) is read again from 0, which is
 * harmless (an entry only ever raises an nbf); then XREAD COUNT n, again
 * at once while a read comes back full, at most rounds_max times a tick.
 *
 * Entries live until nbf + max_age (a token older than the longest
 * token lifetime is refused by its exp anyway), in insertion order on a
 * queue: a full table drops the oldest entry, and says so once, loudly.
 * Redis down or slow: the table keeps what it knows, the failure is
 * logged once (and the recovery once), and the next tick tries again.
 * The table and the read position live in shared memory, so they
 * survive reloads.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"
#include "kordon_auth_core.h"
#include "ngx_http_kordon_redis.h"


#define NGX_HTTP_KORDON_REVOKE_ID_MAX     (KORDON_JWT_SUB_MAX + 1)
#define NGX_HTTP_KORDON_REVOKE_ROUNDS     8      /* XREADs a tick */
#define NGX_HTTP_KORDON_REVOKE_EXPIRE     4      /* stale ones per insert */
#define NGX_HTTP_KORDON_REVOKE_ZONE       "kordon_jwt_revocations"


typedef struct {
    ngx_rbtree_node_t                 node;
    ngx_queue_t                       queue;
    time_t                            expire;
    int64_t                           nbf;
    u_short                           len;
    u_char                            key[1];      /* 'u' or 's', the id */
} ngx_http_kordon_revoke_node_t;


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       queue;
    ngx_atomic_t                      count;       /* entries */

    uint64_t                          last_ms;     /* the last id read */
    uint64_t                          last_seq;
    ngx_msec_t                        next_poll;   /* wall clock ms */
    ngx_msec_t                        busy_until;  /* a worker reads */

    ngx_uint_t                        reads;       /* entries read */
    ngx_uint_t                        resets;      /* reads from 0 */
    unsigned                          down:1;      /* failure logged */
    unsigned                          full:1;      /* eviction logged */
} ngx_http_kordon_revoke_sh_t;


struct ngx_http_kordon_revoke_s {
    ngx_http_kordon_revoke_sh_t      *sh;
    ngx_slab_pool_t                  *shpool;
    ngx_shm_zone_t                   *zone;

    ngx_http_kordon_redis_server_t   *redis;
    ngx_str_t                         key;
    ngx_msec_t                        interval;
    ngx_msec_t                        timeout;
    time_t                            max_age;
    ngx_uint_t                        count;

    /* per worker */
    ngx_event_t                       timer;
    ngx_uint_t                        rounds;
    u_char                            from[KORDON_AUTH_STREAM_ID_MAX + 1];
};


static void ngx_http_kordon_revoke_tick(ngx_event_t *ev);
static ngx_msec_t ngx_http_kordon_revoke_now(void);
static void ngx_http_kordon_revoke_info(redisReply *reply,
    ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_revoke_check_info(
    ngx_http_kordon_revoke_t *rv, redisReply *reply);
static ngx_int_t ngx_http_kordon_revoke_reply_id(redisReply *id,
    uint64_t *ms, uint64_t *seq);
static void ngx_http_kordon_revoke_xread(ngx_http_kordon_revoke_t *rv);
static void ngx_http_kordon_revoke_read(redisReply *reply, ngx_uint_t status,
    void *data);
static ngx_int_t ngx_http_kordon_revoke_entries(ngx_http_kordon_revoke_t *rv,
    redisReply *reply, ngx_uint_t *n);
static void ngx_http_kordon_revoke_entry(ngx_http_kordon_revoke_t *rv,
    redisReply *fields);
static void ngx_http_kordon_revoke_store(ngx_http_kordon_revoke_t *rv,
    u_char kind, u_char *id, size_t len, int64_t nbf);
static ngx_http_kordon_revoke_node_t *ngx_http_kordon_revoke_alloc(
    ngx_http_kordon_revoke_t *rv, size_t len, time_t now);
static void ngx_http_kordon_revoke_done(ngx_http_kordon_revoke_t *rv,
    ngx_uint_t failed, const char *why);
static ngx_http_kordon_revoke_node_t *ngx_http_kordon_revoke_lookup(
    ngx_http_kordon_revoke_t *rv, u_char *key, size_t len, uint32_t hash);
static void ngx_http_kordon_revoke_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_kordon_revoke_delete(ngx_http_kordon_revoke_t *rv,
    ngx_http_kordon_revoke_node_t *rn);
static ngx_int_t ngx_http_kordon_revoke_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_kordon_revoked(ngx_http_request_t *r,
    ngx_http_kordon_jwt_identity_t *id, void *data);
static int64_t ngx_http_kordon_revoke_nbf(ngx_http_kordon_revoke_t *rv,
    u_char kind, ngx_str_t *id);


/*
 * "kordon_jwt_revocations redis=<name> [key=kordon:revocations]
 * [interval=250ms] [timeout=] [max_age=30m] [count=256] [size=4m]"
 */

char *
ngx_http_kordon_jwt_revocations(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kordon_jwt_main_conf_t *kmcf = conf;

    ssize_t                    size;
    ngx_int_t                  n;
    ngx_str_t                 *value, s, zname;
    ngx_uint_t                 i;
    ngx_http_kordon_revoke_t  *rv;

    if (kmcf->revocations != NULL) {
        return "is duplicate";
    }

    rv = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_revoke_t));
    if (rv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&rv->key, "kordon:revocations");
    rv->interval = 250;
    rv->max_age = 1800;
    rv->count = 256;
    size = 4 * 1024 * 1024;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "redis=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            rv->redis = ngx_http_kordon_redis_lookup(cf, &s);
            if (rv->redis == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0
            && value[i].len > 4)
        {
            rv->key.data = value[i].data + 4;
            rv->key.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 10 || n > 60000) {
                goto invalid;
            }

            rv->interval = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1 || n > 60000) {
                goto invalid;
            }

            rv->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_age=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n < 60 || n > 86400) {
                goto invalid;
            }

            rv->max_age = (time_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "count=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n < 1 || n > 10000) {
                goto invalid;
            }

            rv->count = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (rv->redis == NULL) {
        return "needs \"redis=\"";
    }

    ngx_str_set(&zname, NGX_HTTP_KORDON_REVOKE_ZONE);

    rv->zone = ngx_shared_memory_add(cf, &zname, size,
                                     &ngx_http_kordon_jwt_module);
    if (rv->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    rv->zone->init = ngx_http_kordon_revoke_init_zone;
    rv->zone->data = rv;

    kmcf->revocations = rv;

    if (ngx_http_kordon_jwt_set_revocation(cf, ngx_http_kordon_revoked, rv)
        != NGX_OK)
    {
        return "conflicts with another revocation hook";
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* called from the module's init_process: the worker's timer */

ngx_int_t
ngx_http_kordon_jwt_revoke_init_process(ngx_cycle_t *cycle,
    ngx_http_kordon_revoke_t *rv)
{
    rv->timer.handler = ngx_http_kordon_revoke_tick;
    rv->timer.data = rv;
    rv->timer.log = cycle->log;
    rv->timer.cancelable = 1;

    /* the client connects in its own init_process: give it a moment */

    ngx_add_timer(&rv->timer, 10 + ngx_random() % rv->interval);

    return NGX_OK;
}


static void
ngx_http_kordon_revoke_tick(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_msec_t                    now;
    const char                   *argv[3];
    ngx_http_kordon_revoke_t     *rv;
    ngx_http_kordon_revoke_sh_t  *sh;

    rv = ev->data;
    sh = rv->sh;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, rv->interval);

    now = ngx_http_kordon_revoke_now();

    ngx_shmtx_lock(&rv->shpool->mutex);

    if ((ngx_msec_int_t) (now - sh->next_poll) < 0
        || (ngx_msec_int_t) (now - sh->busy_until) < 0)
    {
        ngx_shmtx_unlock(&rv->shpool->mutex);
        return;
    }

    /* this worker reads; a worker that dies meanwhile blocks no one long */

    sh->busy_until = now + rv->interval + 2 * (rv->timeout ? rv->timeout
                                                           : 1000);
    sh->next_poll = now + rv->interval;

    ngx_shmtx_unlock(&rv->shpool->mutex);

    argv[0] = "XINFO";
    argv[1] = "STREAM";
    argv[2] = (const char *) rv->key.data;

    rc = ngx_http_kordon_redis_send(rv->redis, 3, argv, NULL, rv->timeout,
                                    ngx_http_kordon_revoke_info, rv, NULL);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_revoke_done(rv, 1, "redis is not reachable");
    }
}


static ngx_msec_t
ngx_http_kordon_revoke_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) (tp->sec * 1000 + tp->msec);
}


/*
 * XINFO STREAM's answer: where to read from.  A stream that does not
 * exist has nothing to read and starts the next read from 0.
 */

static void
ngx_http_kordon_revoke_info(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_revoke_t  *rv = data;

    if (status == NGX_HTTP_KORDON_REDIS_ERROR && reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && ngx_strstr(reply->str, "no such key") != NULL)
    {
        ngx_shmtx_lock(&rv->shpool->mutex);

        if (rv->sh->last_ms || rv->sh->last_seq) {
            rv->sh->resets++;
        }

        rv->sh->last_ms = 0;
        rv->sh->last_seq = 0;

        ngx_shmtx_unlock(&rv->shpool->mutex);

        ngx_http_kordon_revoke_done(rv, 0, NULL);
        return;
    }

    if (status != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_revoke_done(rv, 1,
                               status == NGX_HTTP_KORDON_REDIS_TIMEOUT
                               ? "redis did not answer in time"
                               : status == NGX_HTTP_KORDON_REDIS_DOWN
                               ? "redis is not reachable"
                               : "redis answered with an error");
        return;
    }

    if (ngx_http_kordon_revoke_check_info(rv, reply) != NGX_OK) {
        ngx_http_kordon_revoke_done(rv, 1, "unexpected XINFO STREAM reply");
        return;
    }

    rv->rounds = 0;

    ngx_http_kordon_revoke_xread(rv);
}


/*
 * Moves the read position back to 0 when the stream's first entry is
 * after it (entries in between may have been trimmed unread) or its
 * last generated id is before it (the stream was made anew).
 */

static ngx_int_t
ngx_http_kordon_revoke_check_info(ngx_http_kordon_revoke_t *rv,
    redisReply *reply)
{
    size_t                        i;
    uint64_t                      ms, seq;
    ngx_uint_t                    reset;
    redisReply                   *k, *v;
    ngx_http_kordon_revoke_sh_t  *sh;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        return NGX_ERROR;
    }

    sh = rv->sh;
    reset = 0;

    ngx_shmtx_lock(&rv->shpool->mutex);

    for (i = 0; i < reply->elements; i += 2) {
        k = reply->element[i];
        v = reply->element[i + 1];

        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS) {
            continue;
        }

        if (ngx_strcmp(k->str, "last-generated-id") == 0
            && ngx_http_kordon_revoke_reply_id(v, &ms, &seq) == NGX_OK
            && kordon_stream_id_cmp(ms, seq, sh->last_ms, sh->last_seq) < 0)
        {
            reset = 1;
        }

        if (ngx_strcmp(k->str, "first-entry") == 0
            && v->type == REDIS_REPLY_ARRAY && v->elements == 2
            && ngx_http_kordon_revoke_reply_id(v->element[0], &ms, &seq)
               == NGX_OK
            && kordon_stream_id_cmp(ms, seq, sh->last_ms, sh->last_seq) > 0
            && (sh->last_ms || sh->last_seq))
        {
            reset = 1;
        }
    }

    if (reset) {
        sh->last_ms = 0;
        sh->last_seq = 0;
        sh->resets++;
    }

    ngx_sprintf(rv->from, "%uL-%uL%Z", sh->last_ms, sh->last_seq);

    ngx_shmtx_unlock(&rv->shpool->mutex);

    if (reset) {
        ngx_log_error(NGX_LOG_NOTICE, rv->timer.log, 0,
                      "kordon jwt: revocation stream \"%V\" was trimmed "
                      "or made anew, reading it again from 0", &rv->key);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_revoke_reply_id(redisReply *id, uint64_t *ms, uint64_t *seq)
{
    if (id->type != REDIS_REPLY_STRING && id->type != REDIS_REPLY_STATUS) {
        return NGX_ERROR;
    }

    if (kordon_stream_id_parse(id->str, id->len, ms, seq) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_kordon_revoke_xread(ngx_http_kordon_revoke_t *rv)
{
    u_char       count[NGX_INT_T_LEN + 1];
    ngx_int_t    rc;
    const char  *argv[6];

    ngx_sprintf(count, "%ui%Z", rv->count);

    argv[0] = "XREAD";
    argv[1] = "COUNT";
    argv[2] = (const char *) count;
    argv[3] = "STREAMS";
    argv[4] = (const char *) rv->key.data;
    argv[5] = (const char *) rv->from;

    rc = ngx_http_kordon_redis_send(rv->redis, 6, argv, NULL, rv->timeout,
                                    ngx_http_kordon_revoke_read, rv, NULL);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_revoke_done(rv, 1, "redis is not reachable");
    }
}


static void
ngx_http_kordon_revoke_read(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_revoke_t  *rv = data;

    ngx_uint_t  n;

    if (status != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_revoke_done(rv, 1,
                               status == NGX_HTTP_KORDON_REDIS_TIMEOUT
                               ? "redis did not answer in time"
                               : status == NGX_HTTP_KORDON_REDIS_DOWN
                               ? "redis is not reachable"
                               : "redis answered with an error");
        return;
    }

    n = 0;

    if (reply->type != REDIS_REPLY_NIL
        && ngx_http_kordon_revoke_entries(rv, reply, &n) != NGX_OK)
    {
        ngx_http_kordon_revoke_done(rv, 1, "unexpected XREAD reply");
        return;
    }

    if (n == rv->count && ++rv->rounds < NGX_HTTP_KORDON_REVOKE_ROUNDS) {
        ngx_http_kordon_revoke_xread(rv);
        return;
    }

    ngx_http_kordon_revoke_done(rv, 0, NULL);
}


/*
 * XREAD's [[key, [[id, [field, value, ...]], ...]]]: stores each entry
 * and moves the read position (rv->from, and the shared one) past it.
 */

static ngx_int_t
ngx_http_kordon_revoke_entries(ngx_http_kordon_revoke_t *rv,
    redisReply *reply, ngx_uint_t *n)
{
    size_t       i;
    uint64_t     ms, seq;
    redisReply  *entries, *e;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[0]->elements != 2
        || reply->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    entries = reply->element[0]->element[1];

    for (i = 0; i < entries->elements; i++) {
        e = entries->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
            || ngx_http_kordon_revoke_reply_id(e->element[0], &ms, &seq)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (e->element[1]->type == REDIS_REPLY_ARRAY) {
            ngx_http_kordon_revoke_entry(rv, e->element[1]);
        }

        ngx_shmtx_lock(&rv->shpool->mutex);

        if (kordon_stream_id_cmp(ms, seq, rv->sh->last_ms, rv->sh->last_seq)
            > 0)
        {
            rv->sh->last_ms = ms;
            rv->sh->last_seq = seq;
        }

        ngx_shmtx_unlock(&rv->shpool->mutex);

        ngx_sprintf(rv->from, "%uL-%uL%Z", ms, seq);
        (*n)++;
    }

    return NGX_OK;
}


/* one entry's fields: "sub" or "sid", and "nbf"; anything else is skipped */

static void
ngx_http_kordon_revoke_entry(ngx_http_kordon_revoke_t *rv,
    redisReply *fields)
{
    u_char       kind;
    size_t       i;
    int64_t      nbf;
    redisReply  *k, *v, *id;

    kind = 0;
    id = NULL;
    nbf = -1;

    for (i = 0; i + 1 < fields->elements; i += 2) {
        k = fields->element[i];
        v = fields->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (ngx_strcmp(k->str, "sub") == 0 || ngx_strcmp(k->str, "sid") == 0)
        {
            kind = (k->str[1] == 'u') ? 'u' : 's';
            id = v;

        } else if (ngx_strcmp(k->str, "nbf") == 0) {
            if (kordon_auth_parse_uint(v->str, v->len, &nbf) != 0) {
                nbf = -1;
            }
        }
    }

    if (id == NULL || nbf < 0 || id->len == 0
        || id->len >= NGX_HTTP_KORDON_REVOKE_ID_MAX)
    {
        ngx_log_error(NGX_LOG_WARN, rv->timer.log, 0,
                      "kordon jwt: revocation entry without a valid "
                      "\"sub\" or \"sid\" and \"nbf\" skipped");
        return;
    }

    ngx_http_kordon_revoke_store(rv, kind, (u_char *) id->str, id->len, nbf);
}


static void
ngx_http_kordon_revoke_store(ngx_http_kordon_revoke_t *rv, u_char kind,
    u_char *id, size_t len, int64_t nbf)
{
    u_char                          key[NGX_HTTP_KORDON_REVOKE_ID_MAX + 1];
    time_t                          expire, now;
    uint32_t                        hash;
    ngx_http_kordon_revoke_sh_t    *sh;
    ngx_http_kordon_revoke_node_t  *rn;

    now = ngx_time();
    expire = (time_t) nbf + rv->max_age;

    if (expire <= now) {
        return;                 /* every token it could refuse is expired */
    }

    key[0] = kind;
    ngx_memcpy(key + 1, id, len);
    len++;

    hash = ngx_crc32_short(key, len);
    sh = rv->sh;

    ngx_shmtx_lock(&rv->shpool->mutex);

    sh->reads++;

    rn = ngx_http_kordon_revoke_lookup(rv, key, len, hash);

    if (rn != NULL) {
        if (nbf > rn->nbf) {
            rn->nbf = nbf;
            rn->expire = expire;
        }

        ngx_shmtx_unlock(&rv->shpool->mutex);
        return;
    }

    rn = ngx_http_kordon_revoke_alloc(rv, len, now);

    if (rn == NULL) {
        ngx_shmtx_unlock(&rv->shpool->mutex);
        return;
    }

    rn->node.key = hash;
    rn->expire = expire;
    rn->nbf = nbf;
    rn->len = (u_short) len;
    ngx_memcpy(rn->key, key, len);

    ngx_rbtree_insert(&sh->rbtree, &rn->node);
    ngx_queue_insert_head(&sh->queue, &rn->queue);
    ngx_atomic_fetch_add(&sh->count, 1);

    ngx_shmtx_unlock(&rv->shpool->mutex);
}


/*
 * A node for a key of len bytes, with the zone's mutex held: the oldest
 * entries are dropped first when stale, then, when there is no room,
 * even when not (said once, loudly).  NULL only when the zone cannot
 * hold one entry.
 */

static ngx_http_kordon_revoke_node_t *
ngx_http_kordon_revoke_alloc(ngx_http_kordon_revoke_t *rv, size_t len,
    time_t now)
{
    size_t                          size;
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_http_kordon_revoke_sh_t    *sh;
    ngx_http_kordon_revoke_node_t  *rn;

    sh = rv->sh;
    size = offsetof(ngx_http_kordon_revoke_node_t, key) + len;

    for (i = 0; i < NGX_HTTP_KORDON_REVOKE_EXPIRE; i++) {
        if (ngx_queue_empty(&sh->queue)) {
            break;
        }

        q = ngx_queue_last(&sh->queue);
        rn = ngx_queue_data(q, ngx_http_kordon_revoke_node_t, queue);

        if (rn->expire > now) {
            break;
        }

        ngx_http_kordon_revoke_delete(rv, rn);
    }

    for ( ;; ) {
        rn = ngx_slab_alloc_locked(rv->shpool, size);

        if (rn != NULL || ngx_queue_empty(&sh->queue)) {
            return rn;
        }

        if (!sh->full) {
            sh->full = 1;
            ngx_log_error(NGX_LOG_ERR, rv->timer.log, 0,
                          "kordon jwt: zone \"%V\" is full, dropping the "
                          "oldest revocations: raise its size=",
                          &rv->zone->shm.name);
        }

        q = ngx_queue_last(&sh->queue);
        ngx_http_kordon_revoke_delete(rv, ngx_queue_data(q,
                                     ngx_http_kordon_revoke_node_t, queue));
    }
}


/* the end of a read: the next tick may read; a failure is logged once */

static void
ngx_http_kordon_revoke_done(ngx_http_kordon_revoke_t *rv, ngx_uint_t failed,
    const char *why)
{
    ngx_uint_t                    log;
    ngx_http_kordon_revoke_sh_t  *sh;

    sh = rv->sh;
    log = 0;

    ngx_shmtx_lock(&rv->shpool->mutex);

    sh->busy_until = 0;

    if (failed != sh->down) {
        sh->down = failed;
        log = 1;
    }

    ngx_shmtx_unlock(&rv->shpool->mutex);

    if (!log) {
        return;
    }

    if (failed) {
        ngx_log_error(NGX_LOG_ERR, rv->timer.log, 0,
                      "kordon jwt: could not read revocation stream \"%V\" "
                      "from redis \"%V\": %s; keeping the revocations known, "
                      "retrying every %M ms", &rv->key,
                      ngx_http_kordon_redis_name(rv->redis), why,
                      rv->interval);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, rv->timer.log, 0,
                      "kordon jwt: reading revocation stream \"%V\" from "
                      "redis \"%V\" again", &rv->key,
                      ngx_http_kordon_redis_name(rv->redis));
    }
}


static ngx_http_kordon_revoke_node_t *
ngx_http_kordon_revoke_lookup(ngx_http_kordon_revoke_t *rv, u_char *key,
    size_t len, uint32_t hash)
{
    ngx_int_t                       rc;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_kordon_revoke_node_t  *rn;

    node = rv->sh->rbtree.root;
    sentinel = rv->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        rn = (ngx_http_kordon_revoke_node_t *) node;

        rc = ngx_memn2cmp(key, rn->key, len, rn->len);

        if (rc == 0) {
            return rn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_kordon_revoke_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t              **p;
    ngx_http_kordon_revoke_node_t   *rn, *rnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            rn = (ngx_http_kordon_revoke_node_t *) node;
            rnt = (ngx_http_kordon_revoke_node_t *) temp;

            p = (ngx_memn2cmp(rn->key, rnt->key, rn->len, rnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static void
ngx_http_kordon_revoke_delete(ngx_http_kordon_revoke_t *rv,
    ngx_http_kordon_revoke_node_t *rn)
{
    ngx_queue_remove(&rn->queue);
    ngx_rbtree_delete(&rv->sh->rbtree, &rn->node);
    ngx_slab_free_locked(rv->shpool, rn);
    ngx_atomic_fetch_add(&rv->sh->count, -1);
}


/* the zone and its read position are kept across reloads */

static ngx_int_t
ngx_http_kordon_revoke_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kordon_revoke_t  *orv = data;

    size_t                     len;
    ngx_http_kordon_revoke_t  *rv;

    rv = shm_zone->data;

    if (orv) {
        rv->sh = orv->sh;
        rv->shpool = orv->shpool;
        return NGX_OK;
    }

    rv->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        rv->sh = rv->shpool->data;
        return NGX_OK;
    }

    rv->sh = ngx_slab_calloc(rv->shpool, sizeof(ngx_http_kordon_revoke_sh_t));
    if (rv->sh == NULL) {
        return NGX_ERROR;
    }

    rv->shpool->data = rv->sh;

    ngx_rbtree_init(&rv->sh->rbtree, &rv->sh->sentinel,
                    ngx_http_kordon_revoke_insert_value);
    ngx_queue_init(&rv->sh->queue);

    len = sizeof(" in zone \"\"") + shm_zone->shm.name.len;

    rv->shpool->log_ctx = ngx_slab_alloc(rv->shpool, len);
    if (rv->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(rv->shpool->log_ctx, " in zone \"%V\"%Z",
                &shm_zone->shm.name);

    rv->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * The hook: NGX_DECLINED when the token was issued before the nbf of its
 * user or its session.  An empty table costs one load and no lock.
 */

static ngx_int_t
ngx_http_kordon_revoked(ngx_http_request_t *r,
    ngx_http_kordon_jwt_identity_t *id, void *data)
{
    ngx_http_kordon_revoke_t  *rv = data;

    if (rv->sh == NULL || rv->sh->count == 0) {
        return NGX_OK;
    }

    if (id->iat < ngx_http_kordon_revoke_nbf(rv, 'u', &id->sub)
        || (id->sid.len
            && id->iat < ngx_http_kordon_revoke_nbf(rv, 's', &id->sid)))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon jwt: token of \"%V\" issued at %L is revoked",
                      &id->sub, id->iat);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the nbf of "u<sub>" or "s<sid>", or INT64_MIN when there is none */

static int64_t
ngx_http_kordon_revoke_nbf(ngx_http_kordon_revoke_t *rv, u_char kind,
    ngx_str_t *id)
{
    u_char                          key[NGX_HTTP_KORDON_REVOKE_ID_MAX + 1];
    size_t                          len;
    int64_t                         nbf;
    ngx_http_kordon_revoke_node_t  *rn;

    if (id->len == 0 || id->len >= NGX_HTTP_KORDON_REVOKE_ID_MAX) {
        return INT64_MIN;
    }

    key[0] = kind;
    ngx_memcpy(key + 1, id->data, id->len);
    len = id->len + 1;

    nbf = INT64_MIN;

    ngx_shmtx_lock(&rv->shpool->mutex);

    rn = ngx_http_kordon_revoke_lookup(rv, key, len,
                                       ngx_crc32_short(key, len));

    if (rn != NULL && rn->expire > ngx_time()) {
        nbf = rn->nbf;
    }

    ngx_shmtx_unlock(&rv->shpool->mutex);

    return nbf;
}
