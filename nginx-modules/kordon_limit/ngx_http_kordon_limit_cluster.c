
/*
 * Kordon edge: the limits and the brute-force guard in Redis, through
 * the shared non-blocking client (ngx_http_kordon_redis.h).
 *
 * Cluster limits: one Lua script call per request checks every cluster
 * limit of the location atomically, with the time taken from Redis
 * (TIME), so the clocks of the edges do not matter: GCRA as in
 * kordon_limit_core.c, in microseconds.  A request refused by one limit
 * takes nothing from the others.  A key lives in Redis only while its
 * bucket is not full (PX), so idle keys cost nothing.
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


/* EVALSHA, sha, numkeys, then a key, an interval and a burst per limit */
#define NGX_HTTP_KORDON_LIMIT_ARGS_MAX                                      \
    (3 + 3 * NGX_HTTP_KORDON_LIMIT_RULES_MAX)


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


static ngx_int_t ngx_http_kordon_limit_call(ngx_http_request_t *r,
    ngx_http_kordon_limit_call_t *call);
static void ngx_http_kordon_limit_call_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static void ngx_http_kordon_limit_cluster_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_limit_cluster_reply(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, redisReply *reply);
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
 * KEYS: the limits' keys; ARGV: interval (us) and burst of each.  Per
 * key: admitted (1/0), remaining, retry after (us), reset after (us);
 * all or nothing is charged, and when one refuses the others report
 * their state uncharged.
 */

static ngx_http_kordon_limit_script_t  ngx_http_kordon_limit_gcra_script = {
    ngx_string(
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        "local out, tats, ok = {}, {}, true\n"
        "for i = 1, #KEYS do\n"
        "  local interval = tonumber(ARGV[2 * i - 1])\n"
        "  local limit = interval * tonumber(ARGV[2 * i])\n"
        "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
        "  local new_tat = math.max(tat, now) + interval\n"
        "  local ahead = new_tat - now\n"
        "  if ahead > limit then\n"
        "    ok = false\n"
        "    out[4 * i - 3] = 0\n"
        "    out[4 * i - 2] = 0\n"
        "    out[4 * i - 1] = ahead - limit\n"
        "    out[4 * i] = math.max(tat - now, 0)\n"
        "  else\n"
        "    tats[i] = new_tat\n"
        "    out[4 * i - 3] = 1\n"
        "    out[4 * i - 2] = math.floor((limit - ahead) / interval)\n"
        "    out[4 * i - 1] = 0\n"
        "    out[4 * i] = ahead\n"
        "  end\n"
        "end\n"
        "for i = 1, #KEYS do\n"
        "  if ok then\n"
        "    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]),\n"
        "               'PX', math.floor((tats[i] - now) / 1000) + 1)\n"
        "  elseif out[4 * i - 3] == 1 then\n"
        "    out[4 * i - 2] = out[4 * i - 2] + 1\n"
        "    out[4 * i] = out[4 * i] - tonumber(ARGV[2 * i - 1])\n"
        "  end\n"
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
    ngx_uint_t                       i, nkeys;
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
    ngx_int_t                     rc;
    ngx_http_kordon_limit_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_limit_module);

    if (status == NGX_HTTP_KORDON_REDIS_OK) {
        rc = ngx_http_kordon_limit_cluster_reply(r, ctx, reply);

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
 * Reads the script's answer into the results.  NGX_OK: all admitted;
 * NGX_DONE: refused; NGX_ERROR: not the answer the script gives.
 */

static ngx_int_t
ngx_http_kordon_limit_cluster_reply(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx, redisReply *reply)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, j, k;
    redisReply                     **e;
    ngx_http_kordon_limit_result_t  *res;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER
            || reply->element[i]->integer < 0)
        {
            return NGX_ERROR;
        }
    }

    rc = NGX_OK;
    j = 0;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];

        if (res->zone->mode != NGX_HTTP_KORDON_LIMIT_CLUSTER) {
            continue;
        }

        k = 4 * j++;

        if (k + 4 > reply->elements) {
            return NGX_ERROR;
        }

        e = &reply->element[k];

        res->applied = 1;
        res->limited = e[0]->integer == 0;
        res->remaining = e[1]->integer;
        res->reset_s = kordon_limit_seconds(e[3]->integer,
                                            NGX_HTTP_KORDON_LIMIT_US);

        if (res->limited) {
            ctx->retry_after = ngx_max(ctx->retry_after,
                                       kordon_limit_seconds(e[2]->integer,
                                                    NGX_HTTP_KORDON_LIMIT_US));
            rc = NGX_DONE;
        }
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
