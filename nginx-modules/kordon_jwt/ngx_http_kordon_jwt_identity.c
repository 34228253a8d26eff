
/*
 * Kordon edge: what a verified identity may do, and what the upstream
 * learns of it.
 *
 * Roles and scopes: a location's rules of each kind are looked up by the
 * request method (the rule naming it, else the rule without methods=, else
 * none).  Roles are "any of", scopes "all of".
 *
 * The identity goes upstream in request headers, so that proxy_pass and
 * the other proxies forward it from r->headers_in.headers:
 *
 *     X-Kordon-User: <sub>
 *     X-Kordon-Roles: <roles joined by ",">
 *     X-Kordon-Session: <sid, or empty>
 *     X-Kordon-Signature: t=<unix seconds>,v1=<HMAC-SHA256, hex>
 *
 * signed over the method, r->uri (the decoded path without the query),
 * those values and $request_id, exactly as docs/ARCHITECTURE.md and the
 * service kit define it (kordon_identity_core.c).  X-Request-Id itself is
 * sent by "proxy_set_header X-Request-Id $request_id"; the same indexed
 * variable is read here, so the value signed is the value sent.  Any
 * other X-Kordon-* entry in the list (a client's, where
 * "kordon_strip_headers off", or this handler's own from the location
 * before an internal redirect) is dropped first: there is one identity.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"


#define NGX_HTTP_KORDON_JWT_USER       0
#define NGX_HTTP_KORDON_JWT_ROLES      1
#define NGX_HTTP_KORDON_JWT_SESSION    2
#define NGX_HTTP_KORDON_JWT_SIGNATURE  3
#define NGX_HTTP_KORDON_JWT_NHEADERS   4


typedef struct {
    ngx_str_t                    name;
    u_char                      *lowcase;
    ngx_uint_t                   hash;
} ngx_http_kordon_jwt_header_t;


static ngx_http_kordon_jwt_rule_t *ngx_http_kordon_jwt_rule(
    ngx_array_t *rules, ngx_uint_t method);
static ngx_int_t ngx_http_kordon_jwt_check_roles(ngx_http_request_t *r,
    ngx_http_kordon_jwt_rule_t *rule, ngx_str_t *roles, ngx_str_t *detail);
static ngx_int_t ngx_http_kordon_jwt_check_scopes(ngx_http_request_t *r,
    ngx_http_kordon_jwt_rule_t *rule, ngx_str_t *scope, ngx_str_t *detail);
static ngx_int_t ngx_http_kordon_jwt_sign(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_identity_t *id,
    ngx_str_t *sig);
static ngx_int_t ngx_http_kordon_jwt_drop_reserved(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_jwt_add_header(ngx_http_request_t *r,
    ngx_http_kordon_jwt_header_t *header, ngx_str_t *value);


static u_char  ngx_http_kordon_jwt_user_lc[] = "x-kordon-user";
static u_char  ngx_http_kordon_jwt_roles_lc[] = "x-kordon-roles";
static u_char  ngx_http_kordon_jwt_session_lc[] = "x-kordon-session";
static u_char  ngx_http_kordon_jwt_signature_lc[] = "x-kordon-signature";


/* the hashes are computed once, by ngx_http_kordon_jwt_init_identity() */

static ngx_http_kordon_jwt_header_t
    ngx_http_kordon_jwt_headers[NGX_HTTP_KORDON_JWT_NHEADERS] =
{
    { ngx_string("X-Kordon-User"), ngx_http_kordon_jwt_user_lc, 0 },
    { ngx_string("X-Kordon-Roles"), ngx_http_kordon_jwt_roles_lc, 0 },
    { ngx_string("X-Kordon-Session"), ngx_http_kordon_jwt_session_lc, 0 },
    { ngx_string("X-Kordon-Signature"), ngx_http_kordon_jwt_signature_lc, 0 }
};


/*
 * Checks the location's roles and scopes for the request's method.
 * Returns NGX_OK, NGX_DECLINED with the reason in detail (a 403), or
 * NGX_ERROR when memory ran out.
 */

ngx_int_t
ngx_http_kordon_jwt_authorize(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_identity_t *id,
    ngx_str_t *detail)
{
    ngx_int_t                    rc;
    ngx_http_kordon_jwt_rule_t  *rule;

    rule = ngx_http_kordon_jwt_rule(klcf->roles, r->method);

    if (rule) {
        rc = ngx_http_kordon_jwt_check_roles(r, rule, &id->roles, detail);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rule = ngx_http_kordon_jwt_rule(klcf->scopes, r->method);

    if (rule) {
        return ngx_http_kordon_jwt_check_scopes(r, rule, &id->scope, detail);
    }

    return NGX_OK;
}


static ngx_http_kordon_jwt_rule_t *
ngx_http_kordon_jwt_rule(ngx_array_t *rules, ngx_uint_t method)
{
    ngx_uint_t                   i;
    ngx_http_kordon_jwt_rule_t  *rule, *other;

    if (rules == NULL) {
        return NULL;
    }

    rule = rules->elts;
    other = NULL;

    for (i = 0; i < rules->nelts; i++) {
        if (rule[i].methods & method) {
            return &rule[i];
        }

        if (rule[i].methods == 0) {
            other = &rule[i];
        }
    }

    return other;
}


/* any of the rule's roles: "missing role: needs one of admin, support" */

static ngx_int_t
ngx_http_kordon_jwt_check_roles(ngx_http_request_t *r,
    ngx_http_kordon_jwt_rule_t *rule, ngx_str_t *roles, ngx_str_t *detail)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *name;
    ngx_uint_t   i;

    name = rule->names.elts;
    len = sizeof("missing role: needs one of ") - 1;

    for (i = 0; i < rule->names.nelts; i++) {
        if (kordon_identity_list_has((char *) roles->data, roles->len, ',',
                                     (char *) name[i].data, name[i].len))
        {
            return NGX_OK;
        }

        len += name[i].len + 2;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    detail->data = p;

    p = ngx_cpymem(p, "missing role: needs ",
                   sizeof("missing role: needs ") - 1);

    if (rule->names.nelts > 1) {
        p = ngx_cpymem(p, "one of ", sizeof("one of ") - 1);
    }

    for (i = 0; i < rule->names.nelts; i++) {
        p = ngx_sprintf(p, "%s%V", i ? ", " : "", &name[i]);
    }

    detail->len = p - detail->data;

    return NGX_DECLINED;
}


/* all of the rule's scopes: "missing scope: needs read, write" (those
   the token lacks) */

static ngx_int_t
ngx_http_kordon_jwt_check_scopes(ngx_http_request_t *r,
    ngx_http_kordon_jwt_rule_t *rule, ngx_str_t *scope, ngx_str_t *detail)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *name;
    ngx_uint_t   i, n;

    name = rule->names.elts;
    len = sizeof("missing scope: needs ") - 1;
    n = 0;

    for (i = 0; i < rule->names.nelts; i++) {
        len += name[i].len + 2;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    detail->data = p;

    p = ngx_cpymem(p, "missing scope: needs ",
                   sizeof("missing scope: needs ") - 1);

    for (i = 0; i < rule->names.nelts; i++) {
        if (kordon_identity_list_has((char *) scope->data, scope->len, ' ',
                                     (char *) name[i].data, name[i].len))
        {
            continue;
        }

        p = ngx_sprintf(p, "%s%V", n++ ? ", " : "", &name[i]);
    }

    detail->len = p - detail->data;

    return (n == 0) ? NGX_OK : NGX_DECLINED;
}


/*
 * Adds the signed identity to the request headers.  Returns NGX_OK, or
 * NGX_ERROR (logged) when memory ran out or the signature failed; the
 * request must then fail, as no upstream may see an unsigned identity.
 */

ngx_int_t
ngx_http_kordon_jwt_pass_identity(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_identity_t *id)
{
    ngx_str_t                      sig;
    ngx_http_kordon_jwt_header_t  *hd;

    if (ngx_http_kordon_jwt_sign(r, klcf, id, &sig) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_kordon_jwt_drop_reserved(r) != NGX_OK) {
        return NGX_ERROR;
    }

    hd = ngx_http_kordon_jwt_headers;

    if (ngx_http_kordon_jwt_add_header(r, &hd[NGX_HTTP_KORDON_JWT_USER],
                                       &id->sub)
        != NGX_OK
        || ngx_http_kordon_jwt_add_header(r, &hd[NGX_HTTP_KORDON_JWT_ROLES],
                                          &id->roles)
           != NGX_OK
        || ngx_http_kordon_jwt_add_header(r,
                                          &hd[NGX_HTTP_KORDON_JWT_SESSION],
                                          &id->sid)
           != NGX_OK
        || ngx_http_kordon_jwt_add_header(r,
                                          &hd[NGX_HTTP_KORDON_JWT_SIGNATURE],
                                          &sig)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_sign(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *klcf, ngx_http_kordon_jwt_identity_t *id,
    ngx_str_t *sig)
{
    int                               n;
    kordon_identity_str_t             f[KORDON_IDENTITY_NFIELDS];
    ngx_http_variable_value_t        *vv;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_jwt_module);

    vv = ngx_http_get_indexed_variable(r, kmcf->request_id_index);
    if (vv == NULL) {
        return NGX_ERROR;
    }

    f[KORDON_IDENTITY_METHOD].data = (char *) r->method_name.data;
    f[KORDON_IDENTITY_METHOD].len = r->method_name.len;
    f[KORDON_IDENTITY_PATH].data = (char *) r->uri.data;
    f[KORDON_IDENTITY_PATH].len = r->uri.len;
    f[KORDON_IDENTITY_USER].data = (char *) id->sub.data;
    f[KORDON_IDENTITY_USER].len = id->sub.len;
    f[KORDON_IDENTITY_ROLES].data = (char *) id->roles.data;
    f[KORDON_IDENTITY_ROLES].len = id->roles.len;
    f[KORDON_IDENTITY_SESSION].data = (char *) id->sid.data;
    f[KORDON_IDENTITY_SESSION].len = id->sid.len;
    f[KORDON_IDENTITY_REQUEST_ID].data = (char *) vv->data;
    f[KORDON_IDENTITY_REQUEST_ID].len = vv->not_found ? 0 : vv->len;

    sig->data = ngx_pnalloc(r->pool, KORDON_IDENTITY_SIG_MAX);
    if (sig->data == NULL) {
        return NGX_ERROR;
    }

    n = kordon_identity_signer_sign(klcf->identity, f, (int64_t) ngx_time(),
                                    (char *) sig->data,
                                    KORDON_IDENTITY_SIG_MAX);
    if (n < 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon jwt: could not sign the identity");
        return NGX_ERROR;
    }

    sig->len = n;

    return NGX_OK;
}


/*
 * Rebuilds r->headers_in.headers without its X-Kordon-* entries, when it
 * has any; the entries themselves stay where they are, so the
 * r->headers_in shortcuts remain valid.
 */

static ngx_int_t
ngx_http_kordon_jwt_drop_reserved(ngx_http_request_t *r)
{
    ngx_uint_t        i, n, total;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header, *h;

    n = 0;
    total = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        header = part->elts;

        for (i = 0; i < part->nelts; i++) {
            total++;
            n += ngx_http_kordon_reserved_header(header[i].lowcase_key,
                                                 header[i].key.len);
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    list = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool,
                      total - n + NGX_HTTP_KORDON_JWT_NHEADERS,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        r->headers_in.headers = list;
        return NGX_ERROR;
    }

    for (part = &list.part; part; part = part->next) {
        header = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_kordon_reserved_header(header[i].lowcase_key,
                                                header[i].key.len))
            {
                continue;
            }

            h = ngx_list_push(&r->headers_in.headers);
            if (h == NULL) {
                r->headers_in.headers = list;
                return NGX_ERROR;
            }

            *h = header[i];
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_add_header(ngx_http_request_t *r,
    ngx_http_kordon_jwt_header_t *header, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = header->hash;
    h->key = header->name;
    h->value = *value;
    h->lowcase_key = header->lowcase;

    return NGX_OK;
}


ngx_int_t
ngx_http_kordon_jwt_init_identity(ngx_conf_t *cf)
{
    ngx_uint_t                     i;
    ngx_http_kordon_jwt_header_t  *hd;

    hd = ngx_http_kordon_jwt_headers;

    for (i = 0; i < NGX_HTTP_KORDON_JWT_NHEADERS; i++) {
        hd[i].hash = ngx_hash_key(hd[i].lowcase, hd[i].name.len);
    }

    return NGX_OK;
}
