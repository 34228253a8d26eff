
/*
 * Kordon edge: the limits and the brute-force guard in Redis, through
 * the shared non-blocking client (ngx_http_kordon_redis.h).
 *
 * Cluster limits: one Lua script call checks every cluster limit of the
 * location atomically, with the time taken from Redis (TIME), so the
 * clocks of the edges do not matter: GCRA as in kordon_limit_core.c, in
 * microseconds.  A request refused by one limit takes nothing from the
 * others.  A key lives in Redis only while its bucket is not full (PX),
 * so idle keys cost nothing.
 *
 * Coalescing: requests of one event loop iteration that ask the same
 * keys with the same limits (a busy address, user or key) join one
 * call, sent by a posted event at the end of the iteration, with their
 * number n: the script admits the first a of the n as n calls at the
 * same Redis instant would (GCRA's state after j requests is a formula
 * of j), charges a, and answers a and each key's tat - now, from which
 * every member's own outcome (remaining, reset, retry after) is worked
 * out here exactly as its own call would have returned it.  Under load
 * one round trip, one command to format and one reply to parse serve
 * many requests.  A call carries at most NGX_HTTP_KORDON_LIMIT_BATCH_MAX
 * members and lives in worker memory (ngx_alloc()), as its members may
 * go first: a member's pool cleanup takes it out, the call still comes
 * back and is freed.  While Redis is not ready, requests are sent one
 * by one as before (each fails at once).
 *
 * Scripts go by SHA-1 (EVALSHA); a NOSCRIPT answer (a restarted or
 * flushed Redis) is followed by one EVAL with the text, which loads it
 * again.  The guard's failure report, sent after the request is gone
 * and rare, goes as EVAL straight away.
 *
 * Redis down, slow or failing: each limit applies its fail= policy
 * (open: the request goes on, $kordon_limit_status says error:<zone>;
 * closed: 503), the failure is counted in the zone and logged at most
 * once a second per worker.  Every command has the zone's timeout, so a
 * request never waits longer than that.
 *
 * Guard: a failed login (401 from the upstream) increments a counter
 * per account and per client address (kept "window" after the last
 * failure); from "failures" on, each failure sets a lock for "lockout",
 * doubling per further failure up to "lockout_max"
 * (kordon_limit_lockout()).  A locked account or address gets 429 with
 * Retry-After before the upstream sees the request.  A 2xx answer
 * deletes the account's counter and lock; the address's stay.
 */


#include <ngx_sha1.h>

#include <jansson.h>

#include "ngx_http_kordon_limit.h"


/* EVALSHA, sha, numkeys, n, then a key, an interval and a burst per limit */
#define NGX_HTTP_KORDON_LIMIT_ARGS_MAX                                      \
    (4 + 3 * NGX_HTTP_KORDON_LIMIT_RULES_MAX)

/* requests in one coalesced call, and calls gathered in one iteration */
#define NGX_HTTP_KORDON_LIMIT_BATCH_MAX    64
#define NGX_HTTP_KORDON_LIMIT_PENDING_MAX  16


typedef struct {
    ngx_str_t                        text;
    u_char                           sha[41];
} ngx_http_kordon_limit_script_t;


typedef struct {
    ngx_http_kordon_limit_script_t  *script;
    ngx_http_kordon_redis_server_t  *server;
    ngx_msec_t                       timeout;
    ngx_uint_t                       argc;
    const char                      *argv[NGX_HTTP_KORDON_LIMIT_ARGS_MAX];
    size_t                           argvlen[NGX_HTTP_KORDON_LIMIT_ARGS_MAX];
    ngx_http_kordon_redis_request_pt handler;
    unsigned                         evaled:1;
} ngx_http_kordon_limit_call_t;


typedef struct ngx_http_kordon_limit_batch_s  ngx_http_kordon_limit_batch_t;


/* a request in a coalesced call, in r->pool */
typedef struct {
    ngx_http_request_t              *request;
    ngx_http_kordon_limit_batch_t   *batch;      /* NULL: answered */
    ngx_uint_t                       index;
    unsigned                         test_reading:1;
} ngx_http_kordon_limit_member_t;


/* one call for up to BATCH_MAX requests, in worker memory */
struct ngx_http_kordon_limit_batch_s {
    ngx_http_kordon_redis_server_t  *server;
    ngx_msec_t                       timeout;
    ngx_uint_t                       argc;
    ngx_uint_t                       nth;        /* argv[] index of n */
    const char                      *argv[NGX_HTTP_KORDON_LIMIT_ARGS_MAX];
    size_t                           argvlen[NGX_HTTP_KORDON_LIMIT_ARGS_MAX];
    u_char                           n_text[NGX_INT_T_LEN];
    ngx_uint_t                       n;
    ngx_http_kordon_limit_member_t  *members[NGX_HTTP_KORDON_LIMIT_BATCH_MAX];
    unsigned                         evaled:1;
    u_char                           data[1];    /* argv[2...] bytes */
};


static ngx_int_t ngx_http_kordon_limit_call(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call);
static void ngx_http_kordon_limit_call_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static void ngx_http_kordon_limit_cluster_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static void ngx_http_kordon_limit_cluster_outcome(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, ngx_uint_t j);
static ngx_int_t ngx_http_kordon_limit_cluster_reply(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, redisReply *reply, ngx_uint_t j);
static ngx_int_t ngx_http_kordon_limit_join(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call, ngx_uint_t nth);
static ngx_http_kordon_limit_batch_t *ngx_http_kordon_limit_batch_find(
    ngx_http_kordon_limit_call_t *call);
static ngx_http_kordon_limit_batch_t *ngx_http_kordon_limit_batch_new(
    ngx_http_kordon_limit_call_t *call, ngx_uint_t nth);
static void ngx_http_kordon_limit_flush(ngx_event_t *ev);
static void ngx_http_kordon_limit_batch_send(
    ngx_http_kordon_limit_batch_t *batch);
static void ngx_http_kordon_limit_batch_done(redisReply *reply,
    ngx_uint_t status, void *data);
static void ngx_http_kordon_limit_batch_answer(
    ngx_http_kordon_limit_batch_t *batch, redisReply *reply,
    ngx_uint_t status);
static void ngx_http_kordon_limit_member_cleanup(void *data);
static ngx_int_t ngx_http_kordon_limit_cluster_failed(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t status);
static void ngx_http_kordon_limit_guard_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_limit_guard_keys(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_http_kordon_limit_ctx_t *ctx,
    ngx_http_kordon_limit_call_t *call, ngx_uint_t counters);
static void ngx_http_kordon_limit_report_done(redisReply *reply,
    ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_limit_json_account(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *account);
static ngx_int_t ngx_http_kordon_limit_arg(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call, uint64_t n);
static void ngx_http_kordon_limit_resume(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t stage);
static ngx_int_t ngx_http_kordon_limit_script_init(
    ngx_http_kordon_limit_script_t *s);


/*
 * KEYS: the limits' keys; ARGV: n, the requests asking, then interval
 * (us) and burst of each key.  Admits a of the n (the most every key
 * takes, 0..n), charges the a, and returns a followed by each key's
 * base - now, base = max(tat, now) before the charge: all a caller
 * needs to tell each of the n its outcome.
 */

static ngx_http_kordon_limit_script_t  ngx_http_kordon_limit_gcra_script = {
    ngx_string(
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        "local n = tonumber(ARGV[1])\n"
        "local base, a = {}, n\n"
        "for i = 1, #KEYS do\n"
        "  local interval = tonumber(ARGV[2 * i])\n"
        "  local limit = interval * tonumber(ARGV[2 * i + 1])\n"
        "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
        "  base[i] = math.max(tat, now)\n"
        "  local k = math.floor((limit - (base[i] - now)) / interval)\n"
        "  if k < a then a = k end\n"
        "end\n"
        "if a < 0 then a = 0 end\n"
        "local out = {a}\n"
        "for i = 1, #KEYS do\n"
        "  local tat = base[i] + a * tonumber(ARGV[2 * i])\n"
        "  if a > 0 then\n"
        "    redis.call('SET', KEYS[i], string.format('%.0f', tat),\n"
        "               'PX', math.floor((tat - now) / 1000) + 1)\n"
        "  end\n"
        "  out[i + 1] = base[i] - now\n"
        "end\n"
        "return out\n"),
    ""
};


/* KEYS: lock keys; the longest time to live of them in ms, or 0 */

static ngx_http_kordon_limit_script_t  ngx_http_kordon_limit_lock_script = {
    ngx_string(
        "local m = 0\n"
        "for i = 1, #KEYS do\n"
        "  local t = redis.call('PTTL', KEYS[i])\n"
        "  if t > m then m = t end\n"
        "end\n"
        "return m\n"),
    ""
};


/*
 * KEYS: counter and lock of each identity; ARGV: window, lockout and
 * lockout_max in ms, then the threshold of each identity.  Returns the
 * longest lockout it set, in ms.  kordon_limit_lockout() in Lua.
 */

static ngx_http_kordon_limit_script_t  ngx_http_kordon_limit_fail_script = {
    ngx_string(
        "local window = tonumber(ARGV[1])\n"
        "local base, max = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
        "local locked = 0\n"
        "for i = 1, #KEYS / 2 do\n"
        "  local n = redis.call('INCR', KEYS[2 * i - 1])\n"
        "  local threshold = tonumber(ARGV[3 + i])\n"
        "  local lockout = 0\n"
        "  if n >= threshold then\n"
        "    lockout = base\n"
        "    for j = 1, n - threshold do\n"
        "      if lockout >= max then break end\n"
        "      lockout = lockout * 2\n"
        "    end\n"
        "    lockout = math.min(lockout, max)\n"
        "    redis.call('SET', KEYS[2 * i], n, 'PX', lockout)\n"
        "  end\n"
        "  redis.call('PEXPIRE', KEYS[2 * i - 1], window + lockout)\n"
        "  locked = math.max(locked, lockout)\n"
        "end\n"
        "return locked\n"),
    ""
};


/* this worker's calls being gathered, sent at the end of the iteration */

static ngx_http_kordon_limit_batch_t
    *ngx_http_kordon_limit_pending[NGX_HTTP_KORDON_LIMIT_PENDING_MAX];
static ngx_uint_t    ngx_http_kordon_limit_npending;
static ngx_event_t   ngx_http_kordon_limit_flush_event;


/*
 * Sends the cluster limits of a request.  Returns NGX_DONE (waiting, or
 * answered when Redis could not be asked and a limit fails closed) or
 * NGX_DECLINED (nothing to ask, or every limit failed open at once).
 */

ngx_int_t
ngx_http_kordon_limit_cluster(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       i, nkeys, nth;
    ngx_msec_t                       timeout;
    ngx_http_kordon_limit_call_t    *call;
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_http_kordon_limit_result_t  *res;

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_limit_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->argc = 3;
    nkeys = 0;
    timeout = 0;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];
        zone = res->zone;

        if (zone->mode != NGX_HTTP_KORDON_LIMIT_CLUSTER) {
            continue;
        }

        if (ngx_http_kordon_limit_redis_key(r->pool, "kordon:limit:",
                                            &zone->name, &res->key, "", &key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->argv[call->argc] = (const char *) key.data;
        call->argvlen[call->argc++] = key.len;
        nkeys++;

        timeout = ngx_max(timeout, zone->timeout);
    }

    if (nkeys == 0) {
        return NGX_DECLINED;
    }

    /* ARGV[1]: one request; a coalesced call says how many */

    nth = call->argc;
    call->argv[call->argc] = "1";
    call->argvlen[call->argc++] = 1;

    for (i = 0; i < ctx->n; i++) {
        zone = ctx->results[i].zone;

        if (zone->mode == NGX_HTTP_KORDON_LIMIT_CLUSTER
            && (ngx_http_kordon_limit_arg(r, call, zone->gcra_us.interval)
                != NGX_OK
                || ngx_http_kordon_limit_arg(r, call, zone->gcra_us.burst)
                   != NGX_OK))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    call->script = &ngx_http_kordon_limit_gcra_script;
    call->server = llcf->redis;
    call->timeout = timeout;
    call->handler = ngx_http_kordon_limit_cluster_done;

    if (ngx_http_kordon_limit_arg(r, call, nkeys) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the key count was appended last: it belongs third */

    call->argv[2] = call->argv[--call->argc];
    call->argvlen[2] = call->argvlen[call->argc];

    if (ngx_http_kordon_redis_ready(call->server)
        && ngx_http_kordon_limit_join(r, call, nth) == NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    /* Redis not ready (fails at once), or no room: on its own */

    rc = ngx_http_kordon_limit_call(r, call);

    if (rc == NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    return ngx_http_kordon_limit_cluster_failed(r, ctx, rc) == NGX_DONE
           ? NGX_DONE : NGX_DECLINED;
}


static void
ngx_http_kordon_limit_cluster_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_http_kordon_limit_cluster_outcome(r, reply, status, 1);
}


/*
 * The outcome for the j-th (from 1) request of a call: on to the guard,
 * or 429, or the fail= policies when Redis could not say.
 */

static void
ngx_http_kordon_limit_cluster_outcome(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, ngx_uint_t j)
{
    ngx_int_t                     rc;
    ngx_http_kordon_limit_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_limit_module);

    if (status == NGX_HTTP_KORDON_REDIS_OK) {
        rc = ngx_http_kordon_limit_cluster_reply(r, ctx, reply, j);

        if (rc == NGX_OK) {
            ngx_http_kordon_limit_resume(r, ctx, NGX_HTTP_KORDON_LIMIT_GUARD);
            return;
        }

        if (rc == NGX_DONE) {
            ngx_http_kordon_limit_undo(ctx);

            rc = ngx_http_kordon_limit_refuse(r, ctx,
                                              NGX_HTTP_TOO_MANY_REQUESTS,
                                              NULL);
            ngx_http_finalize_request(r, rc);
            return;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon limit: unexpected reply of redis \"%V\" "
                      "to the limit script",
                      ngx_http_kordon_redis_name(
                                             ctx->results[0].zone->redis));
        status = NGX_HTTP_KORDON_REDIS_ERROR;
    }

    /* a refused request may be freed already: ctx with it */

    if (ngx_http_kordon_limit_cluster_failed(r, ctx, status) == NGX_DONE) {
        return;
    }

    ngx_http_kordon_limit_resume(r, ctx, NGX_HTTP_KORDON_LIMIT_GUARD);
}


/*
 * Reads the script's answer for the j-th (from 1) of the requests it
 * counted into the results: a admitted, then per key base - now.  The
 * j-th sees its j - 1 elders charged (only the first a are): admitted,
 * it is at ahead = base - now + j * interval; refused, a key whose next
 * step would pass its limit refuses it, the others report themselves
 * uncharged.  NGX_OK: all admitted; NGX_DONE: refused; NGX_ERROR: not
 * the answer the script gives.
 */

static ngx_int_t
ngx_http_kordon_limit_cluster_reply(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, redisReply *reply, ngx_uint_t j)
{
    uint64_t                         a, base, ahead, interval, limit, reset;
    ngx_int_t                        rc;
    ngx_uint_t                       i, k;
    ngx_http_kordon_limit_result_t  *res;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER
            || reply->element[i]->integer < 0)
        {
            return NGX_ERROR;
        }
    }

    a = (uint64_t) reply->element[0]->integer;
    rc = NGX_OK;
    k = 1;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];

        if (res->zone->mode != NGX_HTTP_KORDON_LIMIT_CLUSTER) {
            continue;
        }

        if (k >= reply->elements) {
            return NGX_ERROR;
        }

        base = (uint64_t) reply->element[k++]->integer;
        interval = res->zone->gcra_us.interval;
        limit = interval * res->zone->gcra_us.burst;

        res->applied = 1;
        res->limited = 0;

        if (j <= a) {
            ahead = base + j * interval;

            if (ahead > limit) {
                return NGX_ERROR;
            }

            res->remaining = (limit - ahead) / interval;
            reset = ahead;

        } else {
            ahead = base + (a + 1) * interval;
            reset = base + a * interval;

            if (ahead > limit) {
                res->limited = 1;
                res->remaining = 0;
                ctx->retry_after = ngx_max(ctx->retry_after,
                                           kordon_limit_seconds(ahead - limit,
                                                    NGX_HTTP_KORDON_LIMIT_US));
                rc = NGX_DONE;

            } else {
                res->remaining = (limit - ahead) / interval + 1;
            }
        }

        res->reset_s = kordon_limit_seconds(reset, NGX_HTTP_KORDON_LIMIT_US);
    }

    if (j > a && rc == NGX_OK) {
        return NGX_ERROR;
    }

    return rc;
}


/*
 * Redis could not say: each cluster limit applies its fail= policy.
 * NGX_DONE when a fail-closed limit answered the request (which may be
 * freed on return), NGX_OK to go on.
 */

static ngx_int_t
ngx_http_kordon_limit_cluster_failed(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t status)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, closed;
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_http_kordon_limit_result_t  *res;

    closed = 0;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];
        zone = res->zone;

        if (zone->mode != NGX_HTTP_KORDON_LIMIT_CLUSTER) {
            continue;
        }

        res->error = 1;
        closed |= !zone->fail_open;

        (void) ngx_atomic_fetch_add(&zone->sh->stats.redis_errors, 1);

        ngx_http_kordon_limit_log_failure(r->connection->log, &zone->name,
                                          ngx_http_kordon_redis_name(
                                                                zone->redis),
                                          status, zone->fail_open,
                                          &zone->log_sec, &zone->log_skipped);
    }

    if (!closed) {
        return NGX_OK;
    }

    ngx_http_kordon_limit_undo(ctx);

    rc = ngx_http_kordon_limit_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the rate limit service is not "
                                      "available");
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The guard's lockout check.  Returns NGX_DECLINED (no identity, or
 * Redis failed and the guard fails open), or NGX_DONE (waiting, or
 * answered).
 */

ngx_int_t
ngx_http_kordon_limit_guard_check(ngx_http_request_t *r,
    ngx_http_kordon_limit_loc_conf_t *llcf, ngx_http_kordon_limit_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_http_kordon_limit_call_t   *call;
    ngx_http_kordon_limit_guard_t  *guard;

    guard = llcf->guard;

    if (guard->json_fields && ctx->body_read
        && ngx_http_kordon_limit_json_account(r, guard, &ctx->account)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((guard->account && ctx->account.len == 0
         && ngx_http_complex_value(r, guard->account, &ctx->account)
            != NGX_OK)
        || (guard->ip
            && ngx_http_complex_value(r, guard->ip, &ctx->ip) != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->account.len == 0 && ctx->ip.len == 0) {
        return NGX_DECLINED;
    }

    ctx->guard = guard;

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_limit_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->argc = 3;

    if (ngx_http_kordon_limit_guard_keys(r, guard, ctx, call, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->argv[2] = call->argc == 5 ? "2" : "1";
    call->argvlen[2] = 1;

    call->script = &ngx_http_kordon_limit_lock_script;
    call->server = guard->redis;
    call->timeout = guard->timeout;
    call->handler = ngx_http_kordon_limit_guard_done;

    rc = ngx_http_kordon_limit_call(r, call);

    if (rc == NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    ngx_http_kordon_limit_log_failure(r->connection->log, &guard->name,
                                      &guard->redis_name, rc,
                                      guard->fail_open, &guard->log_sec,
                                      &guard->log_skipped);

    ctx->guard_error = 1;

    if (guard->fail_open) {
        return NGX_DECLINED;
    }

    ngx_http_kordon_limit_undo(ctx);

    rc = ngx_http_kordon_limit_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                      "the login guard is not available");
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static void
ngx_http_kordon_limit_guard_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_int_t                          rc;
    ngx_http_kordon_limit_ctx_t       *ctx;
    ngx_http_kordon_limit_guard_t     *guard;
    ngx_http_kordon_limit_loc_conf_t  *llcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_limit_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_limit_module);
    guard = llcf->guard;

    if (status == NGX_HTTP_KORDON_REDIS_OK
        && reply->type != REDIS_REPLY_INTEGER)
    {
        status = NGX_HTTP_KORDON_REDIS_ERROR;
    }

    if (status != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_limit_log_failure(r->connection->log, &guard->name,
                                          &guard->redis_name, status,
                                          guard->fail_open, &guard->log_sec,
                                          &guard->log_skipped);

        ctx->guard_error = 1;

        if (guard->fail_open) {
            ngx_http_kordon_limit_resume(r, ctx, NGX_HTTP_KORDON_LIMIT_DONE);
            return;
        }

        ngx_http_kordon_limit_undo(ctx);

        rc = ngx_http_kordon_limit_refuse(r, ctx,
                                          NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "the login guard is not available");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (reply->integer <= 0) {
        ngx_http_kordon_limit_resume(r, ctx, NGX_HTTP_KORDON_LIMIT_DONE);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "kordon limit \"%V\": locked out for %ui ms more",
                  &guard->name, (ngx_uint_t) reply->integer);

    ngx_http_kordon_limit_undo(ctx);

    ctx->guard_limited = 1;
    ctx->retry_after = kordon_limit_seconds(reply->integer, 1000);

    rc = ngx_http_kordon_limit_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                      "too many failed attempts, "
                                      "try again later");
    ngx_http_finalize_request(r, rc);
}


/*
 * The account from a small JSON body read into memory: the first of
 * the guard's fields that is a non-empty string (at most
 * NGX_HTTP_KORDON_LIMIT_ACCOUNT_MAX bytes), lowercased, so that
 * "Ann@Example.com" and "ann@example.com" share a counter.  A body in a
 * temporary file, too large, not JSON or without such a field leaves
 * account empty: the guard then counts by address alone.  NGX_ERROR
 * only when memory runs out.
 */

static ngx_int_t
ngx_http_kordon_limit_json_account(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *account)
{
    u_char        *data, *p;
    size_t         len, n;
    json_t        *root, *v;
    ngx_str_t     *field;
    ngx_buf_t     *b;
    ngx_uint_t     i;
    ngx_chain_t   *cl;
    json_error_t   err;

    if (r->request_body == NULL || r->request_body->temp_file
        || r->request_body->bufs == NULL)
    {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || !ngx_buf_in_memory(b)) {
            return NGX_OK;
        }

        len += b->last - b->pos;
    }

    if (len == 0 || len > NGX_HTTP_KORDON_LIMIT_JSON_BODY_MAX) {
        return NGX_OK;
    }

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_ERROR;
    }

    p = data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    root = json_loadb((const char *) data, len, 0, &err);
    if (root == NULL) {
        return NGX_OK;
    }

    field = guard->json_fields->elts;

    for (i = 0; i < guard->json_fields->nelts; i++) {
        v = json_object_get(root, (const char *) field[i].data);
        n = json_is_string(v) ? json_string_length(v) : 0;

        if (n == 0 || n > NGX_HTTP_KORDON_LIMIT_ACCOUNT_MAX) {
            continue;
        }

        account->data = ngx_pnalloc(r->pool, n);
        if (account->data == NULL) {
            json_decref(root);
            return NGX_ERROR;
        }

        ngx_strlow(account->data, (u_char *) json_string_value(v), n);
        account->len = n;
        break;
    }

    json_decref(root);

    return NGX_OK;
}


/*
 * From the header filter: a 401 counts a failure of the account and the
 * address, a 2xx clears the account.  Fire and forget: the request does
 * not wait, a failure is logged.
 */

void
ngx_http_kordon_limit_guard_report(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_http_kordon_limit_ctx_t *ctx,
    ngx_uint_t status)
{
    ngx_int_t                      rc;
    ngx_str_t                     *text;
    ngx_uint_t                     nkeys;
    ngx_http_kordon_limit_call_t   call;

    if (ctx->refused) {
        return;
    }

    ngx_memzero(&call, sizeof(ngx_http_kordon_limit_call_t));

    if (status == NGX_HTTP_UNAUTHORIZED) {
        text = &ngx_http_kordon_limit_fail_script.text;

        call.argv[0] = "EVAL";
        call.argvlen[0] = 4;
        call.argv[1] = (const char *) text->data;
        call.argvlen[1] = text->len;
        call.argc = 3;

        if (ngx_http_kordon_limit_guard_keys(r, guard, ctx, &call, 1)
            != NGX_OK)
        {
            return;
        }

        nkeys = call.argc - 3;

        if (ngx_http_kordon_limit_arg(r, &call, nkeys) != NGX_OK) {
            return;
        }

        call.argv[2] = call.argv[--call.argc];
        call.argvlen[2] = call.argvlen[call.argc];

        if (ngx_http_kordon_limit_arg(r, &call, guard->window) != NGX_OK
            || ngx_http_kordon_limit_arg(r, &call, guard->lockout) != NGX_OK
            || ngx_http_kordon_limit_arg(r, &call, guard->lockout_max)
               != NGX_OK
            || (ctx->account.len
                && ngx_http_kordon_limit_arg(r, &call, guard->failures)
                   != NGX_OK)
            || (ctx->ip.len
                && ngx_http_kordon_limit_arg(r, &call, guard->ip_failures)
                   != NGX_OK))
        {
            return;
        }

    } else if (status >= 200 && status < 300 && ctx->account.len) {
        call.argv[0] = "DEL";
        call.argvlen[0] = 3;
        call.argc = 1;

        /* the answer is the last use of ctx: the address's keys stay */

        ctx->ip.len = 0;

        if (ngx_http_kordon_limit_guard_keys(r, guard, ctx, &call, 1)
            != NGX_OK)
        {
            return;
        }

    } else {
        return;
    }

    /* hiredis copies the arguments: they may go with the request */

    rc = ngx_http_kordon_redis_send(guard->redis, call.argc, call.argv,
                                    call.argvlen, guard->timeout,
                                    ngx_http_kordon_limit_report_done, guard,
                                    NULL);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_limit_report_done(NULL, rc, guard);
    }
}


/*
 * Appends the guard's keys for the account and the address (those that
 * are known) to a call: the lock keys, or (counters) the counter and
 * the lock of each.
 */

static ngx_int_t
ngx_http_kordon_limit_guard_keys(ngx_http_request_t *r,
    ngx_http_kordon_limit_guard_t *guard, ngx_http_kordon_limit_ctx_t *ctx,
    ngx_http_kordon_limit_call_t *call, ngx_uint_t counters)
{
    ngx_str_t    key, *value;
    ngx_uint_t   i;
    const char  *prefix;

    for (i = 0; i < 2; i++) {
        value = i == 0 ? &ctx->account : &ctx->ip;
        prefix = i == 0 ? "kordon:guard:a:" : "kordon:guard:i:";

        if (value->len == 0) {
            continue;
        }

        if (counters) {
            if (ngx_http_kordon_limit_redis_key(r->pool, prefix,
                                                &guard->name, value, ":n",
                                                &key)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            call->argv[call->argc] = (const char *) key.data;
            call->argvlen[call->argc++] = key.len;
        }

        if (ngx_http_kordon_limit_redis_key(r->pool, prefix, &guard->name,
                                            value, ":lock", &key)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        call->argv[call->argc] = (const char *) key.data;
        call->argvlen[call->argc++] = key.len;
    }

    return NGX_OK;
}


static void
ngx_http_kordon_limit_report_done(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_limit_guard_t  *guard = data;

    if (status == NGX_HTTP_KORDON_REDIS_OK) {
        return;
    }

    ngx_http_kordon_limit_log_failure(ngx_cycle->log, &guard->name,
                                      &guard->redis_name, status, 1,
                                      &guard->log_sec, &guard->log_skipped);
}


/*
 * Sends a script call by SHA-1; call->argv[0..1] are filled here.
 * Returns what ngx_http_kordon_redis_request() returns.
 */

static ngx_int_t
ngx_http_kordon_limit_call(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call)
{
    if (call->evaled) {
        call->argv[0] = "EVAL";
        call->argvlen[0] = 4;
        call->argv[1] = (const char *) call->script->text.data;
        call->argvlen[1] = call->script->text.len;

    } else {
        call->argv[0] = "EVALSHA";
        call->argvlen[0] = 7;
        call->argv[1] = (const char *) call->script->sha;
        call->argvlen[1] = 40;
    }

    return ngx_http_kordon_redis_request(r, call->server, call->argc,
                                         call->argv, call->argvlen,
                                         call->timeout,
                                         ngx_http_kordon_limit_call_done,
                                         call);
}


/* NOSCRIPT: once more with the script's text, which loads it again */

static void
ngx_http_kordon_limit_call_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_http_kordon_limit_call_t *call = data;

    ngx_int_t  rc;

    if (status == NGX_HTTP_KORDON_REDIS_ERROR && reply != NULL
        && !call->evaled && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon limit: redis \"%V\" had no script %s, "
                      "sending it", ngx_http_kordon_redis_name(call->server),
                      call->script->sha);

        call->evaled = 1;

        rc = ngx_http_kordon_limit_call(r, call);

        if (rc == NGX_HTTP_KORDON_REDIS_OK) {
            /* as a phase handler does: the new wait holds the request */
            ngx_http_finalize_request(r, NGX_DONE);
            return;
        }

        call->handler(r, NULL, rc, NULL);
        return;
    }

    call->handler(r, reply, status, NULL);
}


/*
 * Adds a request to this iteration's call with the same arguments, or
 * to a new one.  NGX_OK: the request waits for the call (counted in
 * r->main->count); NGX_DECLINED: no room or no memory, nothing changed.
 */

static ngx_int_t
ngx_http_kordon_limit_join(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call, ngx_uint_t nth)
{
    ngx_event_t                     *ev;
    ngx_pool_cleanup_t              *cln;
    ngx_http_kordon_limit_batch_t   *batch;
    ngx_http_kordon_limit_member_t  *m;

    m = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_limit_member_t));
    if (m == NULL) {
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_DECLINED;
    }

    batch = ngx_http_kordon_limit_batch_find(call);

    if (batch == NULL) {
        if (ngx_http_kordon_limit_npending
            == NGX_HTTP_KORDON_LIMIT_PENDING_MAX)
        {
            return NGX_DECLINED;
        }

        batch = ngx_http_kordon_limit_batch_new(call, nth);
        if (batch == NULL) {
            return NGX_DECLINED;
        }

        ngx_http_kordon_limit_pending[ngx_http_kordon_limit_npending++] =
                                                                      batch;

        ev = &ngx_http_kordon_limit_flush_event;

        if (!ev->posted) {
            ev->handler = ngx_http_kordon_limit_flush;
            ev->log = ngx_cycle->log;
            ngx_post_event(ev, &ngx_posted_events);
        }
    }

    m->request = r;
    m->batch = batch;
    m->index = batch->n;
    batch->members[batch->n++] = m;

    cln->handler = ngx_http_kordon_limit_member_cleanup;
    cln->data = m;

    r->main->count++;

    /* as limit_req's delay: notice a client that leaves, ignore writes */

    if (r->read_event_handler == ngx_http_block_reading) {
        r->read_event_handler = ngx_http_test_reading;
        m->test_reading = 1;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_OK;
}


/* a pending call with room and exactly these arguments, or NULL */

static ngx_http_kordon_limit_batch_t *
ngx_http_kordon_limit_batch_find(ngx_http_kordon_limit_call_t *call)
{
    ngx_uint_t                      i, k;
    ngx_http_kordon_limit_batch_t  *batch;

    for (i = 0; i < ngx_http_kordon_limit_npending; i++) {
        batch = ngx_http_kordon_limit_pending[i];

        if (batch->server != call->server || batch->argc != call->argc
            || batch->n == NGX_HTTP_KORDON_LIMIT_BATCH_MAX)
        {
            continue;
        }

        for (k = 2; k < call->argc; k++) {
            if (batch->argvlen[k] != call->argvlen[k]
                || ngx_memcmp(batch->argv[k], call->argv[k],
                              call->argvlen[k])
                   != 0)
            {
                break;
            }
        }

        if (k == call->argc) {
            return batch;
        }
    }

    return NULL;
}


/* a call with a copy of the arguments (the request may go first) */

static ngx_http_kordon_limit_batch_t *
ngx_http_kordon_limit_batch_new(ngx_http_kordon_limit_call_t *call,
    ngx_uint_t nth)
{
    u_char                         *p;
    size_t                          size;
    ngx_uint_t                      k;
    ngx_http_kordon_limit_batch_t  *batch;

    size = 0;

    for (k = 2; k < call->argc; k++) {
        size += call->argvlen[k];
    }

    batch = ngx_alloc(sizeof(ngx_http_kordon_limit_batch_t) + size,
                      ngx_cycle->log);
    if (batch == NULL) {
        return NULL;
    }

    batch->server = call->server;
    batch->timeout = call->timeout;
    batch->argc = call->argc;
    batch->nth = nth;
    batch->n = 0;
    batch->evaled = 0;

    p = batch->data;

    for (k = 2; k < call->argc; k++) {
        batch->argv[k] = (const char *) p;
        batch->argvlen[k] = call->argvlen[k];
        p = ngx_cpymem(p, call->argv[k], call->argvlen[k]);
    }

    return batch;
}


/* the end of the iteration: every gathered call goes */

static void
ngx_http_kordon_limit_flush(ngx_event_t *ev)
{
    ngx_uint_t                      i, n;
    ngx_http_kordon_limit_batch_t  *batch[NGX_HTTP_KORDON_LIMIT_PENDING_MAX];

    n = ngx_http_kordon_limit_npending;

    ngx_memcpy(batch, ngx_http_kordon_limit_pending,
               n * sizeof(ngx_http_kordon_limit_batch_t *));

    ngx_http_kordon_limit_npending = 0;

    for (i = 0; i < n; i++) {
        ngx_http_kordon_limit_batch_send(batch[i]);
    }
}


/*
 * Sends a call for the members still there (numbered again from 0, n
 * their count), by SHA-1 or, after NOSCRIPT, with the text.  A call
 * that cannot go answers its members at once.
 */

static void
ngx_http_kordon_limit_batch_send(ngx_http_kordon_limit_batch_t *batch)
{
    u_char                          *p;
    ngx_int_t                        rc;
    ngx_uint_t                       i, n;
    ngx_http_kordon_limit_script_t  *script;

    n = 0;

    for (i = 0; i < batch->n; i++) {
        if (batch->members[i] != NULL) {
            batch->members[i]->index = n;
            batch->members[n++] = batch->members[i];
        }
    }

    batch->n = n;

    if (n == 0) {
        ngx_free(batch);
        return;
    }

    p = ngx_sprintf(batch->n_text, "%ui", n);
    batch->argv[batch->nth] = (const char *) batch->n_text;
    batch->argvlen[batch->nth] = p - batch->n_text;

    script = &ngx_http_kordon_limit_gcra_script;

    if (batch->evaled) {
        batch->argv[0] = "EVAL";
        batch->argvlen[0] = 4;
        batch->argv[1] = (const char *) script->text.data;
        batch->argvlen[1] = script->text.len;

    } else {
        batch->argv[0] = "EVALSHA";
        batch->argvlen[0] = 7;
        batch->argv[1] = (const char *) script->sha;
        batch->argvlen[1] = 40;
    }

    rc = ngx_http_kordon_redis_send(batch->server, batch->argc, batch->argv,
                                    batch->argvlen, batch->timeout,
                                    ngx_http_kordon_limit_batch_done, batch,
                                    NULL);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_limit_batch_answer(batch, NULL, rc);
    }
}


/* NOSCRIPT: once more with the script's text, which loads it again */

static void
ngx_http_kordon_limit_batch_done(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_limit_batch_t *batch = data;

    if (status == NGX_HTTP_KORDON_REDIS_ERROR && reply != NULL
        && !batch->evaled && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "kordon limit: redis \"%V\" had no script %s, "
                      "sending it", ngx_http_kordon_redis_name(batch->server),
                      ngx_http_kordon_limit_gcra_script.sha);

        batch->evaled = 1;
        ngx_http_kordon_limit_batch_send(batch);
        return;
    }

    ngx_http_kordon_limit_batch_answer(batch, reply, status);
}


/* each member still there hears its own outcome; then the call goes */

static void
ngx_http_kordon_limit_batch_answer(ngx_http_kordon_limit_batch_t *batch,
    redisReply *reply, ngx_uint_t status)
{
    ngx_uint_t                       i;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_kordon_limit_member_t  *m;

    for (i = 0; i < batch->n; i++) {
        m = batch->members[i];

        if (m == NULL) {
            continue;
        }

        m->batch = NULL;
        r = m->request;
        c = r->connection;

        if (m->test_reading) {
            r->read_event_handler = ngx_http_block_reading;
        }

        r->write_event_handler = ngx_http_core_run_phases;

        ngx_http_set_log_request(c->log, r);

        ngx_http_kordon_limit_cluster_outcome(r, reply, status, i + 1);

        ngx_http_run_posted_requests(c);
    }

    ngx_free(batch);
}


/* r->pool is being destroyed: the member leaves its call */

static void
ngx_http_kordon_limit_member_cleanup(void *data)
{
    ngx_http_kordon_limit_member_t *m = data;

    if (m->batch) {
        m->batch->members[m->index] = NULL;
        m->batch = NULL;
    }
}


/* the stage is over: on to the next one, through the phase handler */

static void
ngx_http_kordon_limit_resume(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, ngx_uint_t stage)
{
    ctx->stage = stage;

    ngx_http_core_run_phases(r);
}


/*
 * A Redis key: prefix, name, ":", the key as it is (or "#" and its
 * SHA-1 when long), suffix.
 */

ngx_int_t
ngx_http_kordon_limit_redis_key(ngx_pool_t *pool, const char *prefix,
    ngx_str_t *name, ngx_str_t *key, const char *suffix, ngx_str_t *out)
{
    u_char      *p, sha1[20];
    size_t       len;
    ngx_sha1_t   ctx;

    if (kordon_limit_redis_key_hashed(key->len)) {
        ngx_sha1_init(&ctx);
        ngx_sha1_update(&ctx, key->data, key->len);
        ngx_sha1_final(sha1, &ctx);
    }

    len = kordon_limit_redis_key_len(prefix, name->len, key->len);

    p = ngx_pnalloc(pool, len + ngx_strlen(suffix));
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = kordon_limit_redis_key(p, prefix, name->data, name->len,
                                      key->data, key->len, sha1);

    p = ngx_cpymem(p + out->len, suffix, ngx_strlen(suffix));
    out->len = p - out->data;

    return NGX_OK;
}


/* appends a number to a call's arguments */

static ngx_int_t
ngx_http_kordon_limit_arg(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call, uint64_t n)
{
    u_char  *p;

    if (call->argc == NGX_HTTP_KORDON_LIMIT_ARGS_MAX) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    call->argv[call->argc] = (const char *) p;
    call->argvlen[call->argc++] = ngx_sprintf(p, "%uL", n) - p;

    return NGX_OK;
}


ngx_int_t
ngx_http_kordon_limit_scripts_init(ngx_conf_t *cf)
{
    if (ngx_http_kordon_limit_script_init(&ngx_http_kordon_limit_gcra_script)
        != NGX_OK
        || ngx_http_kordon_limit_script_init(
                                      &ngx_http_kordon_limit_lock_script)
           != NGX_OK
        || ngx_http_kordon_limit_script_init(
                                      &ngx_http_kordon_limit_fail_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the script's SHA-1 in hex, as EVALSHA wants it */

static ngx_int_t
ngx_http_kordon_limit_script_init(ngx_http_kordon_limit_script_t *s)
{
    u_char      digest[20];
    ngx_sha1_t  ctx;

    ngx_sha1_init(&ctx);
    ngx_sha1_update(&ctx, s->text.data, s->text.len);
    ngx_sha1_final(digest, &ctx);

    ngx_hex_dump(s->sha, digest, sizeof(digest));
    s->sha[40] = '\0';

    return NGX_OK;
}
