/*
 * Kordon edge: the Redis response cache, the request path.
 *
 * The PRECONTENT handler decides HIT, MISS or BYPASS: it builds the key,
 * sends GET <key> bound to the request and suspends it; the reply either
 * answers the request from the entry (HIT) or resumes the phases so that
 * the content handler (proxy_pass) runs (MISS, or BYPASS when Redis
 * failed).  On a miss the header filter applies the never-cache rules
 * and the body filter copies the answer, at most kordon_cache_max_size
 * bytes; after the last buffer went down the chain the entry is stored
 * with commands that are not bound to the request, so their handler
 * only counts and never touches it (it may be gone by then).  A miss
 * first asks the single-flight lock (ngx_http_kordon_cache_lock.c)
 * whether another request is fetching the same key; the filters release
 * the requests waiting on this one as soon as its fate is known.
 */


#include "ngx_http_kordon_cache_internal.h"


static ngx_int_t ngx_http_kordon_cache_lookup(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx,
    ngx_http_kordon_cache_loc_conf_t *clcf);
static ngx_int_t ngx_http_kordon_cache_make_key(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_str_t *user, ngx_array_t *vary);
static ngx_int_t ngx_http_kordon_cache_vary_part(ngx_http_request_t *r,
    ngx_array_t *vary, ngx_str_t *out);
static size_t ngx_http_kordon_cache_vary_header(ngx_http_request_t *r,
    ngx_str_t *name, u_char *out);
static ngx_uint_t ngx_http_kordon_cache_vary_ok(ngx_str_t *value,
    ngx_array_t *vary);
static ngx_uint_t ngx_http_kordon_cache_has_credentials(
    ngx_http_request_t *r);
static void ngx_http_kordon_cache_lookup_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_cache_replay(ngx_http_request_t *r,
    kordon_cache_entry_t *e);
static ngx_int_t ngx_http_kordon_cache_cc_set(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static void ngx_http_kordon_cache_validator(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static ngx_int_t ngx_http_kordon_cache_add_age(ngx_http_request_t *r,
    kordon_cache_entry_t *e);
static ngx_int_t ngx_http_kordon_cache_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_cache_add_x_cache(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_int_t ngx_http_kordon_cache_decide(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx,
    ngx_http_kordon_cache_loc_conf_t *clcf);
static ngx_uint_t ngx_http_kordon_cache_scan_headers(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, kordon_cache_cc_t *cc, ngx_uint_t ok,
    ngx_array_t *vary);
static ngx_uint_t ngx_http_kordon_cache_named(ngx_table_elt_t *h,
    ngx_str_t *name);
static ngx_int_t ngx_http_kordon_cache_keep_header(
    ngx_http_kordon_cache_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value);
static void ngx_http_kordon_cache_read_tags(ngx_http_kordon_cache_ctx_t *ctx,
    ngx_str_t *value);
static ngx_int_t ngx_http_kordon_cache_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_kordon_cache_capture(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_buf_t *b, size_t max_size);
static void ngx_http_kordon_cache_store(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx,
    ngx_http_kordon_cache_loc_conf_t *clcf);
static void ngx_http_kordon_cache_store_tag(ngx_http_request_t *r,
    ngx_http_kordon_redis_server_t *server, ngx_http_kordon_cache_ctx_t *ctx,
    ngx_str_t *tag, u_char *ttl, size_t ttl_len);
static void ngx_http_kordon_cache_stored(redisReply *reply,
    ngx_uint_t status, void *data);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/* the response headers an entry keeps besides Content-Type */
static ngx_str_t  ngx_http_kordon_cache_kept[] = {
    ngx_string("Cache-Control"),
    ngx_string("Content-Disposition"),
    ngx_string("Content-Language"),
    ngx_string("ETag"),
    ngx_string("Expires"),
    ngx_string("Last-Modified"),
    ngx_string("Link"),
    ngx_string("Location"),
    ngx_string("Vary"),
    ngx_null_string
};

/* the data of the SET's handler, so that it alone is counted */
static u_char  ngx_http_kordon_cache_set_mark;

static ngx_str_t  ngx_http_kordon_cache_tags_header =
    ngx_string("X-Kordon-Cache-Tags");
static ngx_str_t  ngx_http_kordon_cache_cookie = ngx_string("Set-Cookie");
static ngx_str_t  ngx_http_kordon_cache_encoding =
    ngx_string("Content-Encoding");
static ngx_str_t  ngx_http_kordon_cache_vary = ngx_string("Vary");
static ngx_str_t  ngx_http_kordon_cache_cc = ngx_string("Cache-Control");


ngx_int_t
ngx_http_kordon_cache_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_kordon_cache_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_kordon_cache_body_filter;

    return NGX_OK;
}


ngx_int_t
ngx_http_kordon_cache_handler(ngx_http_request_t *r)
{
    ngx_http_kordon_cache_ctx_t       *ctx;
    ngx_http_kordon_cache_loc_conf_t  *clcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_cache_module);

    if (clcf->server == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_cache_module);

    if (ctx) {
        /* resumed after the lookup, or re-run while it is in flight */
        return ctx->waiting ? NGX_DONE : NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_cache_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_kordon_cache_module);

    if (ngx_http_kordon_cache_lookup(r, ctx, clcf) == NGX_OK) {
        ctx->waiting = 1;
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    ctx->done = 1;
    ctx->status = NGX_HTTP_KORDON_CACHE_BYPASS;
    ngx_http_kordon_cache_inc(bypasses);

    return NGX_DECLINED;
}


/*
 * Sends the lookup.  Returns NGX_OK when it is in flight (the request is
 * suspended), NGX_DECLINED when the request bypasses the cache: not a
 * GET or HEAD, credentials without a user in the key, a query with too
 * many parameters, or Redis not taking the command (counted).
 */
static ngx_int_t
ngx_http_kordon_cache_lookup(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_loc_conf_t *clcf)
{
    ngx_int_t    rc;
    ngx_str_t    user;
    const char  *argv[2];
    size_t       argvlen[2];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_DECLINED;
    }

    ngx_str_null(&user);

    if (clcf->user
        && ngx_http_complex_value(r, clcf->user, &user) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ctx->user_key = (user.len > 0);

    if (!ctx->user_key && ngx_http_kordon_cache_has_credentials(r)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "kordon cache: credentials on a shared key, bypass");
        return NGX_DECLINED;
    }

    if (ngx_http_kordon_cache_make_key(r, ctx, &user, clcf->vary) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    argv[0] = "GET";
    argvlen[0] = 3;
    argv[1] = (const char *) ctx->key;
    argvlen[1] = KORDON_CACHE_KEY_LEN;

    rc = ngx_http_kordon_redis_request(r, clcf->server, 2, argv, argvlen,
                                       clcf->timeout,
                                       ngx_http_kordon_cache_lookup_done,
                                       ctx);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon cache: lookup not sent to redis \"%V\" (%V), "
                      "passing through",
                      ngx_http_kordon_redis_name(clcf->server),
                      ngx_http_kordon_redis_status_text(rc));
        ngx_http_kordon_cache_inc(redis_errors);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a HEAD looks up what a GET stored: the method in the key is GET */
static ngx_int_t
ngx_http_kordon_cache_make_key(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_str_t *user, ngx_array_t *vary)
{
    long       qlen;
    u_char    *path, *query;
    size_t     plen;
    ngx_str_t  v;

    ngx_str_null(&v);

    if (vary && ngx_http_kordon_cache_vary_part(r, vary, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    path = ngx_pnalloc(r->pool, r->uri.len + 1 + r->args.len + 1);
    if (path == NULL) {
        return NGX_ERROR;
    }

    query = path + r->uri.len + 1;

    plen = kordon_cache_path_normalize((char *) r->uri.data, r->uri.len,
                                       (char *) path);

    qlen = kordon_cache_query_normalize((char *) r->args.data, r->args.len,
                                        (char *) query);
    if (qlen < 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon cache: more than %d query parameters, bypass",
                      KORDON_CACHE_QUERY_PARAMS_MAX);
        return NGX_DECLINED;
    }

    if (kordon_cache_key_vary("GET", 3, (char *) path, plen, (char *) query,
                              (size_t) qlen, (char *) user->data, user->len,
                              vary ? (char *) v.data : NULL, v.len,
                              (char *) ctx->key)
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "kordon cache: could not hash the key");
        return NGX_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon cache: key %*s",
                   (size_t) KORDON_CACHE_KEY_LEN, ctx->key);

    return NGX_OK;
}


/*
 * The key's part for kordon_cache_vary: per header named, in the order
 * of the directive, "<name>\0" and then "=<value>\0" with the values of
 * all its lines joined by "," and normalized (kordon_cache_vary_value),
 * or "-\0" when the request has none.  A header value never holds a NUL,
 * so no two requests that differ share a part.  NGX_ERROR: no memory.
 */
static ngx_int_t
ngx_http_kordon_cache_vary_part(ngx_http_request_t *r, ngx_array_t *vary,
    ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *name;
    ngx_uint_t   j;

    name = vary->elts;
    len = 0;

    for (j = 0; j < vary->nelts; j++) {
        len += name[j].len + 3
               + ngx_http_kordon_cache_vary_header(r, &name[j], NULL);
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (j = 0; j < vary->nelts; j++) {
        p = ngx_cpymem(p, name[j].data, name[j].len);
        *p++ = '\0';

        len = ngx_http_kordon_cache_vary_header(r, &name[j], p);

        if (len == 0) {
            *p++ = '-';
        }

        p += len;
        *p++ = '\0';
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * One header's values for the vary part: "=" before the first line's,
 * "," before each other's, each normalized.  With out NULL, returns the
 * most it may write; else writes it and returns its length, 0 when the
 * request has no such header.
 */
static size_t
ngx_http_kordon_cache_vary_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *out)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = 0;
    p = out;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != name->len
            || ngx_strncasecmp(h[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (out == NULL) {
            len += h[i].value.len + 1;
            continue;
        }

        *p = (u_char) (p == out ? '=' : ',');
        p++;
        p += kordon_cache_vary_value((char *) h[i].value.data,
                                     h[i].value.len, (char *) p);
    }

    return out ? (size_t) (p - out) : len;
}


/* Authorization or X-Api-Key: the answer may depend on who asks */
static ngx_uint_t
ngx_http_kordon_cache_has_credentials(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (r->headers_in.authorization) {
        return 1;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("X-Api-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Api-Key",
                               sizeof("X-Api-Key") - 1) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_kordon_cache_lookup_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    u_char                            *copy;
    ngx_int_t                          rc;
    ngx_http_kordon_cache_loc_conf_t  *clcf;
    ngx_http_kordon_cache_ctx_t       *ctx = data;

    ctx->waiting = 0;
    ctx->done = 1;

    if (status != NGX_HTTP_KORDON_REDIS_OK
        || (reply->type != REDIS_REPLY_NIL
            && reply->type != REDIS_REPLY_STRING))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon cache: lookup failed (%V), passing through",
                      ngx_http_kordon_redis_status_text(status));
        ctx->status = NGX_HTTP_KORDON_CACHE_BYPASS;
        ngx_http_kordon_cache_inc(redis_errors);
        ngx_http_kordon_cache_inc(bypasses);
        ngx_http_core_run_phases(r);
        return;
    }

    if (reply->type == REDIS_REPLY_STRING) {
        /* the reply dies with this call: the answer needs its own copy */
        copy = ngx_pnalloc(r->pool, reply->len);

        if (copy) {
            ngx_memcpy(copy, reply->str, reply->len);
            rc = ngx_http_kordon_cache_send_hit(r, copy, reply->len);

            if (rc != NGX_DECLINED) {
                ngx_http_finalize_request(r, rc);
                return;
            }
        }
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_cache_module);

    /* another request of this worker may be fetching it already */
    rc = clcf->lock ? ngx_http_kordon_cache_lock(r, ctx, clcf) : NGX_OK;

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_DONE) {
        /* stored a moment ago, the SET not yet answered */
        rc = ngx_http_kordon_cache_send_hit(r, ctx->lock_entry,
                                            ctx->lock_entry_len);
        if (rc != NGX_DECLINED) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    ctx->status = NGX_HTTP_KORDON_CACHE_MISS;
    ngx_http_kordon_cache_inc(misses);
    ngx_http_core_run_phases(r);
}


/*
 * Answers from an entry.  Returns NGX_DECLINED for an entry that does
 * not parse (treated as a miss, and overwritten by the store), else what
 * a content handler returns.
 */
ngx_int_t
ngx_http_kordon_cache_send_hit(ngx_http_request_t *r, u_char *data,
    size_t len)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_chain_t                   out;
    ngx_http_kordon_cache_ctx_t  *ctx;
    kordon_cache_entry_t          e;

    if (kordon_cache_entry_parse((char *) data, len, &e) != 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "kordon cache: malformed entry, treated as a miss");
        return NGX_DECLINED;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_cache_module);
    ctx->status = NGX_HTTP_KORDON_CACHE_HIT;
    ngx_http_kordon_cache_inc(hits);

    r->headers_out.status = e.status;
    r->headers_out.content_length_n = (off_t) e.body_len;

    if (ngx_http_kordon_cache_replay(r, &e) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* RFC 9111: how long ago the upstream answered */
    if (ngx_http_kordon_cache_add_age(r, &e) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only
        || e.body_len == 0)
    {
        return rc == NGX_OK && !r->header_only
               ? ngx_http_send_special(r, NGX_HTTP_LAST) : rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) e.body;
    b->last = (u_char *) e.body + e.body_len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* the entry's headers into headers_out; NGX_ERROR: no memory */
static ngx_int_t
ngx_http_kordon_cache_replay(ngx_http_request_t *r, kordon_cache_entry_t *e)
{
    ngx_uint_t              i;
    ngx_table_elt_t        *h;
    kordon_cache_header_t  *eh;

    for (i = 0; i < e->nheaders; i++) {
        eh = &e->headers[i];

        if (eh->name_len == sizeof("Content-Type") - 1
            && ngx_strncasecmp((u_char *) eh->name, (u_char *) "Content-Type",
                               eh->name_len) == 0)
        {
            r->headers_out.content_type.len = eh->value_len;
            r->headers_out.content_type.data = (u_char *) eh->value;
            r->headers_out.content_type_len = eh->value_len;
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif
        h->key.len = eh->name_len;
        h->key.data = (u_char *) eh->name;
        h->value.len = eh->value_len;
        h->value.data = (u_char *) eh->value;

        /* nginx's not_modified filter answers conditional requests */
        ngx_http_kordon_cache_validator(r, h);

        if (h->key.len == ngx_http_kordon_cache_cc.len
            && ngx_strncasecmp(h->key.data, ngx_http_kordon_cache_cc.data,
                               h->key.len) == 0
            && ngx_http_kordon_cache_cc_set(r, h) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Where the upstream module puts Cache-Control, so that a HIT reads as
 * the proxied answer did: $sent_http_cache_control (which the public
 * server's no-store default looks at) reads this, not the header list.
 */
static ngx_int_t
ngx_http_kordon_cache_cc_set(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    ngx_table_elt_t  **ph;

#if (nginx_version >= 1023000)
    for (ph = &r->headers_out.cache_control; *ph; ph = &(*ph)->next) {
        /* void */
    }

#else
    if (r->headers_out.cache_control.elts == NULL
        && ngx_array_init(&r->headers_out.cache_control, r->pool, 1,
                          sizeof(ngx_table_elt_t *))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ph = ngx_array_push(&r->headers_out.cache_control);
    if (ph == NULL) {
        return NGX_ERROR;
    }
#endif

    *ph = h;

    return NGX_OK;
}


/* ETag and Last-Modified where nginx's not_modified filter looks */
static void
ngx_http_kordon_cache_validator(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    time_t  t;

    if (h->key.len == sizeof("ETag") - 1
        && ngx_strncasecmp(h->key.data, (u_char *) "ETag", 4) == 0)
    {
        r->headers_out.etag = h;
        return;
    }

    if (h->key.len == sizeof("Last-Modified") - 1
        && ngx_strncasecmp(h->key.data, (u_char *) "Last-Modified",
                           h->key.len) == 0)
    {
        t = ngx_parse_http_time(h->value.data, h->value.len);

        if (t != NGX_ERROR) {
            r->headers_out.last_modified = h;
            r->headers_out.last_modified_time = t;
        }
    }
}


static ngx_int_t
ngx_http_kordon_cache_add_age(ngx_http_request_t *r, kordon_cache_entry_t *e)
{
    time_t            now;
    ngx_table_elt_t  *h;

    now = ngx_time();

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Age");
    h->value.len = ngx_sprintf(h->value.data, "%T",
                               (uint64_t) now > e->stored
                               ? now - (time_t) e->stored : 0)
                   - h->value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_cache_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_http_kordon_cache_ctx_t       *ctx;
    ngx_http_kordon_cache_loc_conf_t  *clcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_cache_module);

    if (ctx == NULL || ctx->status == 0) {
        return ngx_http_next_header_filter(r);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_cache_module);

    /* strips X-Kordon-Cache-Tags whatever the decision */
    if (ngx_http_kordon_cache_decide(r, ctx, clcf) == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_kordon_cache_add_x_cache(r, ctx->status) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_next_header_filter(r);

    /*
     * a filter below turned the answer into a head only (nginx's 304 to
     * a conditional request): the body may never come, store nothing
     */
    if (ctx->store
        && (r->header_only || r->headers_out.status != ctx->entry.status))
    {
        ctx->store = 0;
        ngx_http_kordon_cache_inc(not_stored);
    }

    /* nothing will be stored: whoever waits for it goes upstream now */
    if (!ctx->store) {
        (void) ngx_http_kordon_cache_lock_release(ctx, NULL, 0);
    }

    return rc;
}


static ngx_int_t
ngx_http_kordon_cache_add_x_cache(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "X-Cache");
    h->value = *ngx_http_kordon_cache_status_text(status);

    return NGX_OK;
}


/*
 * On a miss: sets ctx->store when the answer may be stored (the status
 * is one of kordon_cache_statuses, not over the size, and the headers
 * allow it, see scan_headers), keeping its status, kept headers, TTL
 * and tags.  Always strips X-Kordon-Cache-Tags.  Returns NGX_OK.
 */
static ngx_int_t
ngx_http_kordon_cache_decide(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_loc_conf_t *clcf)
{
    ngx_uint_t         i, ok, *s;
    ngx_str_t          ct;
    kordon_cache_cc_t  cc;

    ok = (ctx->status == NGX_HTTP_KORDON_CACHE_MISS
          && r->method == NGX_HTTP_GET
          && r->headers_out.content_length_n <= (off_t) clcf->max_size);

    if (ok) {
        ok = 0;
        s = clcf->statuses->elts;

        for (i = 0; i < clcf->statuses->nelts; i++) {
            if (s[i] == r->headers_out.status) {
                ok = 1;
                break;
            }
        }
    }

    if (ok && r->headers_out.content_type.len) {
        ngx_str_set(&ct, "Content-Type");
        ok = (ngx_http_kordon_cache_keep_header(ctx, &ct,
                                            &r->headers_out.content_type)
              == NGX_OK);
    }

    kordon_cache_cc_init(&cc);

    ok = ngx_http_kordon_cache_scan_headers(r, ctx, &cc, ok, clcf->vary);

    if (ok) {
        ctx->ttl = (ngx_msec_t) kordon_cache_ttl_ms(&cc, clcf->ttl,
                                                    ctx->user_key);
        ok = (ctx->ttl > 0);
    }

    if (!ok) {
        if (ctx->status == NGX_HTTP_KORDON_CACHE_MISS) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "kordon cache: answer not stored");
            ngx_http_kordon_cache_inc(not_stored);
        }

        return NGX_OK;
    }

    ctx->store = 1;
    ctx->entry.status = r->headers_out.status;

    /* buffers in a temp file come back to memory for the copy */
    r->filter_need_in_memory = 1;

    return NGX_OK;
}


/*
 * Walks the response headers: strips X-Kordon-Cache-Tags (its tags
 * kept), and while ok, reads Cache-Control into cc and keeps the headers
 * an entry replays.  Returns 0 for an answer that must not be stored:
 * Set-Cookie, a Vary that the key does not cover (vary_ok), a
 * Content-Encoding (a hit would reach clients
 * that never accepted it; nginx's gzip, below this filter, compresses a
 * hit per client), too many kept headers; else ok.
 */
static ngx_uint_t
ngx_http_kordon_cache_scan_headers(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, kordon_cache_cc_t *cc, ngx_uint_t ok,
    ngx_array_t *vary)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0) {
            continue;
        }

        if (ngx_http_kordon_cache_named(&h[i],
                                        &ngx_http_kordon_cache_tags_header))
        {
            ngx_http_kordon_cache_read_tags(ctx, &h[i].value);
            h[i].hash = 0;
            continue;
        }

        if (!ok) {
            continue;
        }

        if (ngx_http_kordon_cache_named(&h[i], &ngx_http_kordon_cache_cookie)
            || (ngx_http_kordon_cache_named(&h[i],
                                            &ngx_http_kordon_cache_encoding)
                && !(h[i].value.len == sizeof("identity") - 1
                     && ngx_strncasecmp(h[i].value.data,
                                        (u_char *) "identity",
                                        h[i].value.len) == 0))
            || (ngx_http_kordon_cache_named(&h[i], &ngx_http_kordon_cache_vary)
                && !ngx_http_kordon_cache_vary_ok(&h[i].value, vary)))
        {
            ok = 0;
            continue;
        }

        if (ngx_http_kordon_cache_named(&h[i], &ngx_http_kordon_cache_cc)) {
            kordon_cache_cc_parse(cc, (char *) h[i].value.data,
                                  h[i].value.len);
        }

        if (ngx_http_kordon_cache_keep_header(ctx, &h[i].key, &h[i].value)
            != NGX_OK)
        {
            ok = 0;
        }
    }

    return ok;
}


/*
 * 1 if every header a Vary value names is in the key: one of the
 * location's kordon_cache_vary, or Accept-Encoding (an entry is never
 * encoded, so it fits every request; nginx's gzip, below this filter,
 * compresses per client).  "*" never fits.
 */
static ngx_uint_t
ngx_http_kordon_cache_vary_ok(ngx_str_t *value, ngx_array_t *vary)
{
    u_char      *p, *end, *s;
    size_t       len;
    ngx_str_t   *name;
    ngx_uint_t   i;

    p = value->data;
    end = p + value->len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        for (s = p; p < end && *p != ' ' && *p != '\t' && *p != ','; p++) {
            /* void */
        }

        len = p - s;

        if (len == 0) {
            continue;
        }

        if (len == sizeof("Accept-Encoding") - 1
            && ngx_strncasecmp(s, (u_char *) "Accept-Encoding", len) == 0)
        {
            continue;
        }

        if (vary == NULL) {
            return 0;
        }

        name = vary->elts;

        for (i = 0; i < vary->nelts; i++) {
            if (name[i].len == len
                && ngx_strncasecmp(s, name[i].data, len) == 0)
            {
                break;
            }
        }

        if (i == vary->nelts) {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_kordon_cache_named(ngx_table_elt_t *h, ngx_str_t *name)
{
    return h->key.len == name->len
           && ngx_strncasecmp(h->key.data, name->data, name->len) == 0;
}


/* adds a header to the entry if it is one kept; NGX_ERROR: too many */
static ngx_int_t
ngx_http_kordon_cache_keep_header(ngx_http_kordon_cache_ctx_t *ctx,
    ngx_str_t *name, ngx_str_t *value)
{
    ngx_str_t              *k;
    kordon_cache_header_t  *eh;

    if (!(name->len == sizeof("Content-Type") - 1
          && ngx_strncasecmp(name->data, (u_char *) "Content-Type",
                             name->len) == 0))
    {
        for (k = ngx_http_kordon_cache_kept; k->len; k++) {
            if (k->len == name->len
                && ngx_strncasecmp(k->data, name->data, k->len) == 0)
            {
                break;
            }
        }

        if (k->len == 0) {
            return NGX_OK;
        }
    }

    if (ctx->entry.nheaders == KORDON_CACHE_HEADERS_MAX) {
        return NGX_ERROR;
    }

    eh = &ctx->entry.headers[ctx->entry.nheaders++];
    eh->name = (char *) name->data;
    eh->name_len = name->len;
    eh->value = (char *) value->data;
    eh->value_len = value->len;

    return NGX_OK;
}


/* "a b, c": valid tags kept (at most KORDON_CACHE_TAGS_MAX), others not */
static void
ngx_http_kordon_cache_read_tags(ngx_http_kordon_cache_ctx_t *ctx,
    ngx_str_t *value)
{
    u_char  *p, *end, *s;

    p = value->data;
    end = p + value->len;

    while (p < end && ctx->ntags < KORDON_CACHE_TAGS_MAX) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) {
            p++;
        }

        for (s = p; p < end && *p != ' ' && *p != ',' && *p != '\t'; p++) {
            /* void */
        }

        if (p > s && kordon_cache_tag_valid((char *) s, (size_t) (p - s))) {
            ctx->tags[ctx->ntags].data = s;
            ctx->tags[ctx->ntags].len = (size_t) (p - s);
            ctx->ntags++;
        }
    }
}


static ngx_int_t
ngx_http_kordon_cache_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                          rc;
    ngx_uint_t                         last;
    ngx_chain_t                       *cl;
    ngx_http_kordon_cache_ctx_t       *ctx;
    ngx_http_kordon_cache_loc_conf_t  *clcf;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_cache_module);

    if (ctx == NULL || !ctx->store) {
        return ngx_http_next_body_filter(r, in);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_cache_module);
    last = 0;

    /* copy before passing on: the filters below move b->pos */
    for (cl = in; cl && ctx->store; cl = cl->next) {
        if (ngx_http_kordon_cache_capture(r, ctx, cl->buf, clcf->max_size)
            != NGX_OK)
        {
            ctx->store = 0;
            ngx_http_kordon_cache_inc(not_stored);
            (void) ngx_http_kordon_cache_lock_release(ctx, NULL, 0);
            break;
        }

        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    rc = ngx_http_next_body_filter(r, in);

    if (last && ctx->store) {
        ctx->store = 0;

        /* an upstream that closed early never leaves a short entry */
        if (r->headers_out.content_length_n >= 0
            && (off_t) ctx->body_len != r->headers_out.content_length_n)
        {
            ngx_http_kordon_cache_inc(not_stored);
            (void) ngx_http_kordon_cache_lock_release(ctx, NULL, 0);
            return rc;
        }

        ngx_http_kordon_cache_store(r, ctx, clcf);
    }

    return rc;
}


/*
 * Appends a buffer's bytes to the copy, doubling it up to max_size.
 * NGX_DECLINED: over the size, or bytes not in memory; NGX_ERROR: no
 * memory.  Either way the answer is not stored.
 */
static ngx_int_t
ngx_http_kordon_cache_capture(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_buf_t *b, size_t max_size)
{
    u_char  *p;
    size_t   size, want;

    if (ngx_buf_special(b)) {
        return NGX_OK;
    }

    if (!ngx_buf_in_memory(b)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "kordon cache: body not in memory, not stored");
        return NGX_DECLINED;
    }

    size = (size_t) (b->last - b->pos);

    if (size > max_size - ctx->body_len) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "kordon cache: body over %uz bytes, not stored",
                       max_size);
        return NGX_DECLINED;
    }

    if (ctx->body_len + size > ctx->body_size) {
        want = ctx->body_size ? ctx->body_size * 2 : 4096;

        if (r->headers_out.content_length_n > 0) {
            want = (size_t) r->headers_out.content_length_n;
        }

        while (want < ctx->body_len + size) {
            want *= 2;
        }

        want = ngx_min(want, max_size);

        p = ngx_pnalloc(r->pool, want);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->body_len) {
            ngx_memcpy(p, ctx->body, ctx->body_len);
        }

        ctx->body = p;
        ctx->body_size = want;
    }

    if (size) {
        ngx_memcpy(ctx->body + ctx->body_len, b->pos, size);
        ctx->body_len += size;
    }

    return NGX_OK;
}


/*
 * SET <key> <entry> PX <ttl>, and per tag SADD <tag set> <key> with the
 * set's expiry raised to the entry's (PEXPIRE NX, then GT).  Pipelined,
 * not bound to the request: the handler only counts.
 */
static void
ngx_http_kordon_cache_store(ngx_http_request_t *r,
    ngx_http_kordon_cache_ctx_t *ctx, ngx_http_kordon_cache_loc_conf_t *clcf)
{
    void        *flight;
    u_char      *entry, *end;
    u_char       ttl[NGX_INT64_LEN];
    size_t       ttl_len;
    ngx_int_t    rc;
    ngx_uint_t   i;
    const char  *argv[5];
    size_t       argvlen[5];

    ctx->entry.body = (char *) ctx->body;
    ctx->entry.body_len = ctx->body_len;
    ctx->entry.stored = (uint64_t) ngx_time();

    entry = ngx_pnalloc(r->pool, kordon_cache_entry_size(&ctx->entry));
    if (entry == NULL) {
        (void) ngx_http_kordon_cache_lock_release(ctx, NULL, 0);
        return;
    }

    end = (u_char *) kordon_cache_entry_write((char *) entry, &ctx->entry);
    ttl_len = ngx_sprintf(ttl, "%M", ctx->ttl) - ttl;

    /*
     * the answer is complete: whoever waits for it gets it, stored or
     * not; the flight stays until Redis answers the SET
     */
    flight = ngx_http_kordon_cache_lock_release(ctx, entry, end - entry);

    argv[0] = "SET";
    argv[1] = (char *) ctx->key;
    argv[2] = (char *) entry;
    argv[3] = "PX";
    argv[4] = (char *) ttl;
    argvlen[0] = 3;
    argvlen[1] = KORDON_CACHE_KEY_LEN;
    argvlen[2] = (size_t) (end - entry);
    argvlen[3] = 2;
    argvlen[4] = ttl_len;

    rc = ngx_http_kordon_redis_send(clcf->server, 5, argv, argvlen, 0,
                                    ngx_http_kordon_cache_stored,
                                    flight ? flight
                                           : &ngx_http_kordon_cache_set_mark,
                                    NULL);
    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_http_kordon_cache_inc(store_errors);

        if (flight) {
            ngx_http_kordon_cache_lock_done(flight);
        }

        return;
    }

    for (i = 0; i < ctx->ntags; i++) {
        ngx_http_kordon_cache_store_tag(r, clcf->server, ctx, &ctx->tags[i],
                                        ttl, ttl_len);
    }
}


/* SADD <tag set> <key>; PEXPIRE <tag set> <ttl> NX; the same GT */
static void
ngx_http_kordon_cache_store_tag(ngx_http_request_t *r,
    ngx_http_kordon_redis_server_t *server, ngx_http_kordon_cache_ctx_t *ctx,
    ngx_str_t *tag, u_char *ttl, size_t ttl_len)
{
    u_char      *set;
    ngx_uint_t   j;
    const char  *argv[4];
    size_t       argvlen[4];

    static const char  *nx_gt[] = { "NX", "GT" };

    set = ngx_pnalloc(r->pool, sizeof(KORDON_CACHE_TAG_PREFIX) - 1
                               + tag->len);
    if (set == NULL) {
        return;
    }

    ngx_memcpy(ngx_cpymem(set, KORDON_CACHE_TAG_PREFIX,
                          sizeof(KORDON_CACHE_TAG_PREFIX) - 1),
               tag->data, tag->len);

    argv[0] = "SADD";
    argvlen[0] = 4;
    argv[1] = (char *) set;
    argvlen[1] = sizeof(KORDON_CACHE_TAG_PREFIX) - 1 + tag->len;
    argv[2] = (char *) ctx->key;
    argvlen[2] = KORDON_CACHE_KEY_LEN;

    (void) ngx_http_kordon_redis_send(server, 3, argv, argvlen, 0,
                                      ngx_http_kordon_cache_stored, NULL,
                                      NULL);

    argv[0] = "PEXPIRE";
    argvlen[0] = 7;
    argv[2] = (char *) ttl;
    argvlen[2] = ttl_len;

    for (j = 0; j < 2; j++) {
        argv[3] = nx_gt[j];
        argvlen[3] = 2;

        (void) ngx_http_kordon_redis_send(server, 4, argv, argvlen, 0,
                                          ngx_http_kordon_cache_stored, NULL,
                                          NULL);
    }
}


/*
 * A store command's end.  data is non-NULL for the SET only, which is
 * counted: the mark, or the single-flight's flight, which goes now;
 * never a request.
 */
static void
ngx_http_kordon_cache_stored(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_cache_stats_t  *st;

    if (data == NULL) {
        return;
    }

    if (data != &ngx_http_kordon_cache_set_mark) {
        ngx_http_kordon_cache_lock_done(data);
    }

    st = ngx_http_kordon_cache_stats();

    if (st == NULL) {
        return;
    }

    if (status == NGX_HTTP_KORDON_REDIS_OK) {
        (void) ngx_atomic_fetch_add(&st->stores, 1);

    } else {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "kordon cache: store failed (%V)",
                      ngx_http_kordon_redis_status_text(status));
        (void) ngx_atomic_fetch_add(&st->store_errors, 1);
    }
}
