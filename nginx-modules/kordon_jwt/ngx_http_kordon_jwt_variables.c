
/*
 * Kordon edge: the variables of a verified token.
 *
 *     $kordon_jwt_sub, $kordon_jwt_sid, $kordon_jwt_roles (joined by ","),
 *     $kordon_jwt_scope, $kordon_jwt_cache_status (HIT, MISS, BYPASS),
 *     $kordon_jwt_claim_<name> (any claim of the payload)
 *     $kordon_auth_error: empty when authenticated or auth is off, else
 *         missing, malformed, expired, not_yet_valid, bad_signature,
 *         unknown_key, wrong_issuer, wrong_audience, revoked, forbidden,
 *         bad_api_key, or unavailable (the edge could not decide: 503/500)
 *     $kordon_api_key_id: the id of a well-formed X-Api-Key the location
 *         looked at, accepted or not (empty otherwise)
 *
 * They are not found until the access phase verified a token, and not
 * cached, so a value read in the rewrite phase does not stick.  A claim
 * is read from the token's payload on demand, decoded again from the
 * Authorization header: after a full verification and after a cache hit
 * alike, since a hit proves by its SHA-256 that the bytes are those of
 * a verified token.  Only requests that evaluate such a variable pay the
 * decoding and one small JSON parse per variable.  Strings come out raw,
 * other values as compact JSON; a value holding a control character is
 * not found, so that no claim can split a header line upstream.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"


#define NGX_HTTP_KORDON_JWT_CLAIM_PREFIX  "kordon_jwt_claim_"


static ngx_int_t ngx_http_kordon_jwt_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_jwt_cache_status_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static kordon_jwt_claims_t *ngx_http_kordon_jwt_claims(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_jwt_ctx_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_kordon_jwt_vars[] = {

    { ngx_string("kordon_jwt_sub"), NULL,
      ngx_http_kordon_jwt_identity_variable,
      offsetof(ngx_http_kordon_jwt_identity_t, sub),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_jwt_sid"), NULL,
      ngx_http_kordon_jwt_identity_variable,
      offsetof(ngx_http_kordon_jwt_identity_t, sid),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_jwt_roles"), NULL,
      ngx_http_kordon_jwt_identity_variable,
      offsetof(ngx_http_kordon_jwt_identity_t, roles),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_jwt_scope"), NULL,
      ngx_http_kordon_jwt_identity_variable,
      offsetof(ngx_http_kordon_jwt_identity_t, scope),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_jwt_cache_status"), NULL,
      ngx_http_kordon_jwt_cache_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_auth_error"), NULL,
      ngx_http_kordon_jwt_ctx_str_variable,
      offsetof(ngx_http_kordon_jwt_ctx_t, error),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("kordon_api_key_id"), NULL,
      ngx_http_kordon_jwt_ctx_str_variable,
      offsetof(ngx_http_kordon_jwt_ctx_t, apikey_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string(NGX_HTTP_KORDON_JWT_CLAIM_PREFIX), NULL,
      ngx_http_kordon_jwt_claim_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_kordon_jwt_cache_status[] = {
    ngx_null_string,
    ngx_string("HIT"),
    ngx_string("MISS"),
    ngx_string("BYPASS")
};


static ngx_int_t
ngx_http_kordon_jwt_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_kordon_jwt_ctx_t  *ctx;

    ctx = ngx_http_kordon_jwt_get_ctx(r);

    if (ctx == NULL || !ctx->verified) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) &ctx->id + data);

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


/* $kordon_auth_error, $kordon_api_key_id: always found, maybe empty */

static ngx_int_t
ngx_http_kordon_jwt_ctx_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_kordon_jwt_ctx_t  *ctx;

    ctx = ngx_http_kordon_jwt_get_ctx(r);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (ctx == NULL) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    v->len = s->len;
    v->data = s->len ? s->data : (u_char *) "";

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_kordon_jwt_ctx_t  *ctx;

    ctx = ngx_http_kordon_jwt_get_ctx(r);

    if (ctx == NULL
        || ctx->cache_status == NGX_HTTP_KORDON_JWT_CACHE_NONE
        || ctx->cache_status > NGX_HTTP_KORDON_JWT_CACHE_BYPASS)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_kordon_jwt_cache_status[ctx->cache_status].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ngx_http_kordon_jwt_cache_status[ctx->cache_status].data;

    return NGX_OK;
}


/*
 * $kordon_jwt_claim_<name>: data is the variable's whole name, which
 * nginx has lowercased, so claims are reached by lowercase names.
 */

static ngx_int_t
ngx_http_kordon_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    int                         n;
    u_char                     *name, *buf;
    size_t                      len, size;
    ngx_uint_t                  i;
    kordon_jwt_claims_t        *claims;
    ngx_http_kordon_jwt_ctx_t  *ctx;

    v->not_found = 1;

    ctx = ngx_http_kordon_jwt_get_ctx(r);

    if (ctx == NULL || !ctx->verified) {
        return NGX_OK;
    }

    claims = ngx_http_kordon_jwt_claims(r, ctx);
    if (claims == NULL) {
        return NGX_OK;
    }

    len = var->len - (sizeof(NGX_HTTP_KORDON_JWT_CLAIM_PREFIX) - 1);

    name = ngx_pnalloc(r->pool, len + 1);
    if (name == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(name, var->data + sizeof(NGX_HTTP_KORDON_JWT_CLAIM_PREFIX) - 1,
               len);
    name[len] = '\0';

    /* re-encoding may grow numbers ("1e3" becomes "1000.0") */
    size = 2 * claims->payload_len + 64;

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    n = kordon_jwt_claim_get(claims, (char *) name, (char *) buf, size);

    if (n < 0) {
        return NGX_OK;
    }

    for (i = 0; i < (ngx_uint_t) n; i++) {
        if (buf[i] < 0x20 || buf[i] == 0x7f) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "kordon jwt: claim \"%s\" holds a control "
                          "character, not used", name);
            return NGX_OK;
        }
    }

    v->len = n;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = buf;

    return NGX_OK;
}


/* the decoded payload, once per request; NULL if it cannot be had */

static kordon_jwt_claims_t *
ngx_http_kordon_jwt_claims(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    kordon_jwt_claims_t  *claims;

    if (ctx->claims) {
        return ctx->claims;
    }

    claims = ngx_palloc(r->pool, sizeof(kordon_jwt_claims_t));
    if (claims == NULL) {
        return NULL;
    }

    if (kordon_jwt_payload_load((char *) ctx->token.data, ctx->token.len,
                                claims)
        != KORDON_JWT_OK)
    {
        return NULL;
    }

    ctx->claims = claims;

    return claims;
}


ngx_int_t
ngx_http_kordon_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_kordon_jwt_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
