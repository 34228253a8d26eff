
/*
 * Kordon edge: the access phase handler of "kordon_auth jwt".
 *
 * For a location that wants a token it runs, in this order, and answers
 * itself at the first failure:
 *
 *     1. the Authorization header: "Bearer <token>", strictly;     401
 *     2. the token: a cache hit, or the core's full verification;   401
 *     3. the revocation hook, if a module set one;                  401
 *     4. the roles and scopes of the location for the method;       403
 *     5. the signed identity, added to the request headers.
 *
 * A 401 carries WWW-Authenticate: Bearer (with error="invalid_token" and
 * the failed check when there was a token) and a problem+json body whose
 * detail names the check, never a byte of the token.
 *
 * A cache hit is a token whose keyed id (SipHash-128, see the cache) was
 * stored by an earlier full verification under the same issuer, audience
 * and type; it is accepted only while the key that verified it is still
 * in this location's JWKS, and its times are checked again with this
 * location's leeway.  The
 * core's claims structure (15 KiB) lives on the stack for the duration
 * of a verification; what is kept for the request is the identity,
 * copied into the request pool.
 *
 * API keys ("kordon_auth apikey", or "jwt apikey": a bearer token wins
 * when both are sent, X-Api-Key is used only without one) replace steps
 * 1 to 3 by ngx_http_kordon_jwt_apikey.c: a lookup that is not in its
 * cache parks the request (NGX_DONE) and the Redis reply runs the phases
 * again, so this handler is called once more and finds the record in its
 * ctx (ctx->resume).  No answer from Redis: 503.
 *
 * Every refusal leaves a short word in ctx->error for $kordon_auth_error
 * (missing, malformed, expired, revoked, forbidden, bad_api_key, ...).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"


static ngx_int_t ngx_http_kordon_jwt_authenticate(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_jwt_by_apikey(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);
static void ngx_http_kordon_jwt_set_error(ngx_http_kordon_jwt_ctx_t *ctx,
    int rc);
static ngx_int_t ngx_http_kordon_jwt_bearer(ngx_http_request_t *r,
    ngx_str_t *token);
static int ngx_http_kordon_jwt_verify(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx);
static int ngx_http_kordon_jwt_cache_hit(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx,
    ngx_shm_zone_t *zone, u_char *hash);
static void ngx_http_kordon_jwt_cache_store(
    ngx_http_kordon_jwt_main_conf_t *kmcf,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx,
    u_char *hash, kordon_jwt_claims_t *claims);
static ngx_int_t ngx_http_kordon_jwt_from_claims(ngx_http_request_t *r,
    kordon_jwt_claims_t *c, ngx_http_kordon_jwt_identity_t *id);
static ngx_int_t ngx_http_kordon_jwt_from_compact(ngx_http_request_t *r,
    kordon_jwt_compact_t *k, ngx_http_kordon_jwt_identity_t *id);
static ngx_int_t ngx_http_kordon_jwt_copy(ngx_http_request_t *r,
    ngx_str_t *dst, char *src, size_t len);
static ngx_int_t ngx_http_kordon_jwt_unauthorized(ngx_http_request_t *r,
    char *error, const char *reason);
static ngx_int_t ngx_http_kordon_jwt_challenge(ngx_http_request_t *r,
    char *scheme, char *error, const char *reason);
static ngx_int_t ngx_http_kordon_jwt_forbidden(ngx_http_request_t *r,
    ngx_http_kordon_jwt_identity_t *id, ngx_str_t *detail);
static ngx_http_kordon_jwt_ctx_t *ngx_http_kordon_jwt_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_kordon_jwt_cleanup(void *data);


ngx_int_t
ngx_http_kordon_jwt_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        detail;
    ngx_http_kordon_jwt_ctx_t       *ctx;
    ngx_http_kordon_jwt_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_jwt_module);

    if (klcf->auth == NGX_HTTP_KORDON_AUTH_OFF) {
        return NGX_DECLINED;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon jwt handler");

    ctx = ngx_http_kordon_jwt_get_ctx(r);

    if (ctx == NULL) {
        ctx = ngx_http_kordon_jwt_create_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (ctx->resume) {
        /* run again by the reply of an API key lookup */
        ctx->resume = 0;

    } else {
        /* again after an internal redirect: this location decides */
        ngx_memzero(ctx, sizeof(ngx_http_kordon_jwt_ctx_t));
    }

    rc = ngx_http_kordon_jwt_authenticate(r, klcf, ctx);

    if (rc == NGX_AGAIN) {
        ctx->resume = 1;
        ngx_http_finalize_request(r, NGX_DONE);
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) {
            ngx_str_set(&ctx->error, "unavailable");
        }

        return rc;
    }

    ctx->verified = 1;

    rc = ngx_http_kordon_jwt_authorize(r, klcf, &ctx->id, &detail);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&ctx->error, "forbidden");
        return ngx_http_kordon_jwt_forbidden(r, &ctx->id, &detail);
    }

    if (rc != NGX_OK
        || ngx_http_kordon_jwt_pass_identity(r, klcf, &ctx->id) != NGX_OK)
    {
        ngx_str_set(&ctx->error, "unavailable");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * Steps 1 to 3: the bearer token, its verification, the revocation hook.
 * Returns NGX_OK with ctx->id set, NGX_DONE when a 401 was sent, or
 * NGX_HTTP_INTERNAL_SERVER_ERROR when the edge itself failed.
 */

static ngx_int_t
ngx_http_kordon_jwt_authenticate(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx)
{
    int                               rc;
    ngx_int_t                         n;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    if (!(klcf->auth & NGX_HTTP_KORDON_AUTH_JWT)) {
        return ngx_http_kordon_jwt_by_apikey(r, ctx);
    }

    n = ngx_http_kordon_jwt_bearer(r, &ctx->token);

    if (n == NGX_DECLINED
        && ((klcf->auth & NGX_HTTP_KORDON_AUTH_APIKEY)
            && ngx_http_kordon_jwt_apikey_present(r)))
    {
        return ngx_http_kordon_jwt_by_apikey(r, ctx);
    }

    if (n == NGX_DECLINED) {
        ngx_str_set(&ctx->error, "missing");
        return ngx_http_kordon_jwt_unauthorized(r, NULL,
                                                "missing bearer token");
    }

    if (n == NGX_ERROR) {
        ngx_str_set(&ctx->error, "malformed");
        return ngx_http_kordon_jwt_unauthorized(r, "invalid_request",
                                             "malformed authorization header");
    }

    rc = ngx_http_kordon_jwt_verify(r, klcf, ctx);

    if (rc == KORDON_JWT_ENOMEM || rc == KORDON_JWT_EINTERNAL
        || rc == KORDON_JWT_ECONF)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon jwt: could not verify the token: %s",
                      kordon_jwt_strerror(rc));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != KORDON_JWT_OK) {
        ngx_http_kordon_jwt_set_error(ctx, rc);
        return ngx_http_kordon_jwt_unauthorized(r, "invalid_token",
                                                kordon_jwt_strerror(rc));
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_jwt_module);

    if (kmcf->revoked == NULL) {
        return NGX_OK;
    }

    n = kmcf->revoked(r, &ctx->id, kmcf->revoked_data);

    if (n == NGX_DECLINED) {
        ngx_str_set(&ctx->error, "revoked");
        return ngx_http_kordon_jwt_unauthorized(r, "invalid_token",
                                                "token revoked");
    }

    return (n == NGX_OK) ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Steps 1 to 3 with X-Api-Key: NGX_OK, NGX_AGAIN (parked until Redis
 * answers), NGX_DONE when a 401 or 503 was sent, or a 500.
 */

static ngx_int_t
ngx_http_kordon_jwt_by_apikey(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  detail;

    rc = ngx_http_kordon_jwt_apikey(r, ctx);

    if (rc == NGX_OK || rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_BUSY) {
        ngx_http_finalize_request(r, ngx_http_kordon_jwt_unavailable(r, ctx));
        return NGX_DONE;
    }

    if (rc != NGX_DECLINED) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "kordon jwt: unauthorized: %s", ctx->reason);

    if (ngx_http_kordon_jwt_challenge(r, "ApiKey", NULL, NULL) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail.data = (u_char *) ctx->reason;
    detail.len = ngx_strlen(ctx->reason);

    rc = ngx_http_kordon_problem_send(r, NGX_HTTP_UNAUTHORIZED, NULL,
                                      &detail);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * 503 when the key store did not answer; called from the handler or from
 * the Redis reply, so it returns what to finalize the request with.
 */

ngx_int_t
ngx_http_kordon_jwt_unavailable(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    ngx_str_t  detail;

    detail.data = (u_char *) ctx->reason;
    detail.len = ngx_strlen(ctx->reason);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "kordon jwt: unavailable: %s", ctx->reason);

    return ngx_http_kordon_problem_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NULL, &detail);
}


/* the core's reason to refuse a token, as $kordon_auth_error says it */

static void
ngx_http_kordon_jwt_set_error(ngx_http_kordon_jwt_ctx_t *ctx, int rc)
{
    switch (rc) {

    case KORDON_JWT_EEXPIRED:
        ngx_str_set(&ctx->error, "expired");
        break;

    case KORDON_JWT_ENOTYET:
    case KORDON_JWT_EFUTURE:
        ngx_str_set(&ctx->error, "not_yet_valid");
        break;

    case KORDON_JWT_ESIG:
    case KORDON_JWT_ENONE:
    case KORDON_JWT_EALG:
        ngx_str_set(&ctx->error, "bad_signature");
        break;

    case KORDON_JWT_EUNKNOWNKEY:
    case KORDON_JWT_ENOKID:
        ngx_str_set(&ctx->error, "unknown_key");
        break;

    case KORDON_JWT_EISS:
        ngx_str_set(&ctx->error, "wrong_issuer");
        break;

    case KORDON_JWT_EAUD:
        ngx_str_set(&ctx->error, "wrong_audience");
        break;

    default:
        ngx_str_set(&ctx->error, "malformed");
    }
}


/*
 * The token of "Authorization: Bearer <token>": the scheme in any case,
 * then spaces, then exactly one token.  Returns NGX_OK with token set,
 * NGX_DECLINED when there is no header or another scheme ("Basic ..."),
 * NGX_ERROR when it says Bearer but holds no token or more than one.
 * nginx has already refused a second Authorization header and trimmed
 * the value's trailing spaces.
 */

static ngx_int_t
ngx_http_kordon_jwt_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NGX_DECLINED;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len < sizeof("Bearer") - 1
        || ngx_strncasecmp(p, (u_char *) "Bearer", sizeof("Bearer") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof("Bearer") - 1;

    if (p < last && *p != ' ' && *p != '\t') {
        return NGX_DECLINED;                    /* "Bearerish ..." */
    }

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    /* the value ends at the token's end: a space left means two tokens */

    if (p == last
        || memchr(p, ' ', last - p) != NULL
        || memchr(p, '\t', last - p) != NULL)
    {
        return NGX_ERROR;
    }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


/*
 * Verifies ctx->token for the location, from the cache when it can, and
 * fills ctx->id.  Returns the core's code: KORDON_JWT_OK, a reason to
 * refuse the token, or ENOMEM/EINTERNAL when the edge itself failed.
 */

static int
ngx_http_kordon_jwt_verify(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx)
{
    int                               rc;
    u_char                            hash[KORDON_JWT_TOKEN_ID_LEN];
    kordon_jwt_claims_t               claims;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    /* the size first: nothing is hashed or decoded past the limit */

    if (ctx->token.len > klcf->max_size) {
        return KORDON_JWT_ETOOLARGE;
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_jwt_module);

    ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_BYPASS;

    if (kmcf->cache
        && ngx_http_kordon_jwt_cache_id(kmcf->cache, &ctx->token, hash)
           == NGX_OK)
    {
        rc = ngx_http_kordon_jwt_cache_hit(r, klcf, ctx, kmcf->cache, hash);

        if (rc != KORDON_JWT_ENOENT) {
            return rc;
        }

        ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_MISS;
    }

    rc = kordon_jwt_verify(klcf->keys->keys, &klcf->verify,
                           (char *) ctx->token.data, ctx->token.len,
                           (int64_t) ngx_time(), &claims);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon jwt verify: %s, kid \"%s\"",
                   kordon_jwt_strerror(rc), claims.kid);

    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    if (ngx_http_kordon_jwt_from_claims(r, &claims, &ctx->id) != NGX_OK) {
        return KORDON_JWT_ENOMEM;
    }

    if (ctx->cache_status == NGX_HTTP_KORDON_JWT_CACHE_MISS) {
        ngx_http_kordon_jwt_cache_store(kmcf, klcf, ctx, hash, &claims);
    }

    return KORDON_JWT_OK;
}


/*
 * A cached token: KORDON_JWT_OK with ctx->id filled, a time check's code
 * when it is cached but no longer valid here, or KORDON_JWT_ENOENT when
 * the token must be verified (not cached, or cached by a key that this
 * location's JWKS no longer has).
 */

static int
ngx_http_kordon_jwt_cache_hit(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx,
    ngx_shm_zone_t *zone, u_char *hash)
{
    int                   rc;
    kordon_jwt_compact_t  k;

    if (ngx_http_kordon_jwt_cache_get(zone, hash, klcf->verify_fp, &k)
        != NGX_OK)
    {
        return KORDON_JWT_ENOENT;
    }

    if (!kordon_jwt_keys_has(klcf->keys->keys, k.key_fp)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "kordon jwt cache: key no longer loaded");
        return KORDON_JWT_ENOENT;
    }

    ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_HIT;

    rc = kordon_jwt_compact_times(&k, &klcf->verify, (int64_t) ngx_time());

    if (rc != KORDON_JWT_OK) {
        return rc;
    }

    if (ngx_http_kordon_jwt_from_compact(r, &k, &ctx->id) != NGX_OK) {
        return KORDON_JWT_ENOMEM;
    }

    return KORDON_JWT_OK;
}


/*
 * Stores a verified token until min(exp, now + max_ttl); a token whose
 * identity is too large for an entry is verified every time (BYPASS).
 */

static void
ngx_http_kordon_jwt_cache_store(ngx_http_kordon_jwt_main_conf_t *kmcf,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_ctx_t *ctx,
    u_char *hash, kordon_jwt_claims_t *claims)
{
    time_t                now, expire;
    kordon_jwt_compact_t  k;

    if (kordon_jwt_compact(claims, &k) != KORDON_JWT_OK) {
        ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_BYPASS;
        return;
    }

    now = ngx_time();
    expire = now + kmcf->cache_max_ttl;

    if (claims->exp < (int64_t) expire) {
        expire = (time_t) claims->exp;
    }

    if (expire > now) {
        ngx_http_kordon_jwt_cache_put(kmcf->cache, hash, klcf->verify_fp, &k,
                                      expire);
    }
}


static ngx_int_t
ngx_http_kordon_jwt_from_claims(ngx_http_request_t *r,
    kordon_jwt_claims_t *c, ngx_http_kordon_jwt_identity_t *id)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   i;

    id->exp = c->exp;
    id->iat = c->iat;

    if (ngx_http_kordon_jwt_copy(r, &id->sub, c->sub, ngx_strlen(c->sub))
        != NGX_OK
        || ngx_http_kordon_jwt_copy(r, &id->sid, c->sid, ngx_strlen(c->sid))
           != NGX_OK
        || ngx_http_kordon_jwt_copy(r, &id->scope, c->scope,
                                    ngx_strlen(c->scope))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = c->nroles;

    for (i = 0; i < c->nroles; i++) {
        len += ngx_strlen(c->roles[i]);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->roles.data = p;

    for (i = 0; i < c->nroles; i++) {
        if (i > 0) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, c->roles[i], ngx_strlen(c->roles[i]));
    }

    id->roles.len = p - id->roles.data;

    return NGX_OK;
}


/*
 * The identity of a cached token: its strings lie back to back in k->data
 * (sub, sid, roles, scope), so one copy into the pool makes all four.
 */

static ngx_int_t
ngx_http_kordon_jwt_from_compact(ngx_http_request_t *r,
    kordon_jwt_compact_t *k, ngx_http_kordon_jwt_identity_t *id)
{
    u_char  *p;
    size_t   len;

    id->exp = k->exp;
    id->iat = k->iat;

    len = (size_t) k->sub_len + k->sid_len + k->roles_len + k->scope_len;

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, k->data, len);

    id->sub.data = p;
    id->sub.len = k->sub_len;
    p += k->sub_len;

    id->sid.data = p;
    id->sid.len = k->sid_len;
    p += k->sid_len;

    id->roles.data = p;
    id->roles.len = k->roles_len;
    p += k->roles_len;

    id->scope.data = p;
    id->scope.len = k->scope_len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_copy(ngx_http_request_t *r, ngx_str_t *dst, char *src,
    size_t len)
{
    dst->len = len;

    if (len == 0) {
        dst->data = (u_char *) "";
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(r->pool, len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);

    return NGX_OK;
}


/*
 * Answers 401 with the challenge and a problem whose detail is reason.
 * error is NULL when the request had no bearer token at all (RFC 6750,
 * 3.1: no error code then).
 */

static ngx_int_t
ngx_http_kordon_jwt_unauthorized(ngx_http_request_t *r, char *error,
    const char *reason)
{
    ngx_int_t  rc;
    ngx_str_t  detail;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "kordon jwt: unauthorized: %s", reason);

    if (ngx_http_kordon_jwt_challenge(r, "Bearer", error, reason) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail.data = (u_char *) reason;
    detail.len = ngx_strlen(reason);

    rc = ngx_http_kordon_problem_send(r, NGX_HTTP_UNAUTHORIZED, NULL,
                                      &detail);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * WWW-Authenticate: Bearer[ error="...", error_description="..."], or
 * "ApiKey" for a refused API key.  The description may not hold '"' or
 * '\' (RFC 6750, 3): the core's texts quote claim names, which become
 * single quotes here.
 */

static ngx_int_t
ngx_http_kordon_jwt_challenge(ngx_http_request_t *r, char *scheme,
    char *error, const char *reason)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");

    if (error == NULL) {
        h->value.data = (u_char *) scheme;
        h->value.len = ngx_strlen(scheme);
        r->headers_out.www_authenticate = h;
        return NGX_OK;
    }

    len = sizeof("Bearer error=\"\", error_description=\"\"") - 1
          + ngx_strlen(error) + ngx_strlen(reason);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->value.data = p;
    h->value.len = len;

    p = ngx_sprintf(p, "Bearer error=\"%s\", error_description=\"", error);

    while (*reason) {
        *p++ = (*reason == '"' || *reason == '\\') ? '\'' : *reason;
        reason++;
    }

    *p = '"';

    r->headers_out.www_authenticate = h;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_forbidden(ngx_http_request_t *r,
    ngx_http_kordon_jwt_identity_t *id, ngx_str_t *detail)
{
    ngx_int_t  rc;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "kordon jwt: forbidden for \"%V\": %V", &id->sub, detail);

    rc = ngx_http_kordon_problem_send(r, NGX_HTTP_FORBIDDEN, NULL, detail);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The context lives in a pool cleanup as well as in r->ctx: internal
 * redirects (error_page, named locations) zero r->ctx, and the variables
 * must still find the identity in the log phase.
 */

ngx_http_kordon_jwt_ctx_t *
ngx_http_kordon_jwt_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_kordon_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_jwt_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_kordon_jwt_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_kordon_jwt_module);
                break;
            }
        }
    }

    return ctx;
}


static ngx_http_kordon_jwt_ctx_t *
ngx_http_kordon_jwt_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_kordon_jwt_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_kordon_jwt_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_kordon_jwt_ctx_t));

    cln->handler = ngx_http_kordon_jwt_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_kordon_jwt_module);

    return ctx;
}


static void
ngx_http_kordon_jwt_cleanup(void *data)
{
    /* nothing to free: the handler only marks the context's cleanup */
}
