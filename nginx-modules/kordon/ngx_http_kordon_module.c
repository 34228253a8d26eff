
/*
 * Kordon edge: the request header guard.
 *
 * Identity reaches the services in X-Kordon-* request headers that only
 * the edge may set, so every such header a client sends is removed before
 * any other module sees it.  The proxy module and the $http_* variables
 * read r->headers_in.headers, so the guard rebuilds that list without
 * the reserved entries; marking an entry (hash = 0) is not enough, as the
 * proxy module forwards every entry of the list.
 *
 * The guard runs twice.  In the post-read phase, before server rewrites,
 * the server's "kordon_strip_headers" decides; in the rewrite phase, the
 * first one that knows the location, the location's value decides.  The
 * client's list is kept in a context that survives internal redirects,
 * so a location with "kordon_strip_headers off" gets the headers back,
 * and one with "on" loses them again after a redirect; cached $http_*
 * values are dropped whenever the list changes.  Underscores count as
 * dashes ("X_Kordon_User"), as some backends treat them alike when
 * underscores_in_headers is on.
 *
 * The route: "kordon_route" names the route template of a location (by
 * default the location's own name, "/v1/accounts/"), which metrics and
 * events label requests with instead of the raw URI.  $kordon_route is
 * set on entering each location (a rewrite phase handler) and kept in
 * r->variables, which internal redirects leave alone, so an error page
 * still reports the route that failed, not "/.kordon/problem".  Route
 * names without variables make the configured set; a runtime value
 * outside it is "other" (ngx_http_kordon_route()), so label values stay
 * a finite list read from the configuration.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon.h"


typedef struct {
    ngx_flag_t                strip_headers;
    ngx_http_complex_value_t *route;
    ngx_flag_t                route_default;   /* the location's name */
} ngx_http_kordon_loc_conf_t;


/*
 * The client's list as it arrived.  The request has its headers
 * stripped exactly when its list is not this one.
 */

typedef struct {
    ngx_list_t                original;
} ngx_http_kordon_ctx_t;


static ngx_int_t ngx_http_kordon_strip_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_strip(ngx_http_request_t *r,
    ngx_http_kordon_ctx_t *ctx);
static void ngx_http_kordon_restore(ngx_http_request_t *r,
    ngx_http_kordon_ctx_t *ctx);
static void ngx_http_kordon_flush_variables(ngx_http_request_t *r);
static ngx_uint_t ngx_http_kordon_count_reserved(ngx_list_t *list,
    ngx_uint_t *total);
static ngx_http_kordon_ctx_t *ngx_http_kordon_get_ctx(ngx_http_request_t *r);
static ngx_http_kordon_ctx_t *ngx_http_kordon_create_ctx(
    ngx_http_request_t *r);
static void ngx_http_kordon_cleanup(void *data);
static ngx_int_t ngx_http_kordon_route_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_route_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v);
static char *ngx_http_kordon_route_add(ngx_conf_t *cf,
    ngx_http_kordon_loc_conf_t *conf);
static ngx_int_t ngx_http_kordon_route_hash(ngx_conf_t *cf,
    ngx_http_kordon_main_conf_t *kmcf);
static ngx_int_t ngx_http_kordon_add_variables(ngx_conf_t *cf);
static void *ngx_http_kordon_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_kordon_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_kordon_commands[] = {

    { ngx_string("kordon_strip_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_loc_conf_t, strip_headers),
      NULL },

    { ngx_string("kordon_route"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_loc_conf_t, route),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_module_ctx = {
    ngx_http_kordon_add_variables,         /* preconfiguration */
    ngx_http_kordon_init,                  /* postconfiguration */

    ngx_http_kordon_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_create_loc_conf,       /* create location configuration */
    ngx_http_kordon_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_module_ctx,           /* module context */
    ngx_http_kordon_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The post-read and rewrite phase handler.  Always declines; fails the
 * request with 500 only when memory runs out, leaving the list untouched.
 */

static ngx_int_t
ngx_http_kordon_strip_handler(ngx_http_request_t *r)
{
    ngx_http_kordon_ctx_t       *ctx;
    ngx_http_kordon_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_module);

    ctx = ngx_http_kordon_get_ctx(r);

    if (klcf->strip_headers) {
        if (ngx_http_kordon_strip(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    if (ctx != NULL) {
        ngx_http_kordon_restore(r, ctx);
    }

    return NGX_DECLINED;
}


/*
 * Replaces r->headers_in.headers with a new list of the same entries
 * minus the reserved ones.  The old entries stay where they are, so the
 * r->headers_in shortcuts (host, user_agent, cookies, ...) remain valid.
 */

static ngx_int_t
ngx_http_kordon_strip(ngx_http_request_t *r, ngx_http_kordon_ctx_t *ctx)
{
    ngx_uint_t        i, n, total;
    ngx_list_t        list;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header, *h;

    n = ngx_http_kordon_count_reserved(&r->headers_in.headers, &total);

    if (n == 0) {
        return NGX_OK;
    }

    if (ctx == NULL) {
        ctx = ngx_http_kordon_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    list = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool,
                      total - n ? total - n : 1, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        r->headers_in.headers = list;
        return NGX_ERROR;
    }

    part = &list.part;
    header = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = part->elts;
            i = 0;
        }

        if (ngx_http_kordon_reserved_header(header[i].lowcase_key,
                                            header[i].key.len))
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "kordon strip header \"%V\"", &header[i].key);
            continue;
        }

        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            r->headers_in.headers = list;
            return NGX_ERROR;
        }

        *h = header[i];
    }

    ngx_http_kordon_flush_variables(r);

    return NGX_OK;
}


/*
 * Puts the client's list back for a location that keeps the headers.
 * The saved copy is the list as it was, so this cannot fail.
 */

static void
ngx_http_kordon_restore(ngx_http_request_t *r, ngx_http_kordon_ctx_t *ctx)
{
    if (r->headers_in.headers.part.elts == ctx->original.part.elts) {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon restore headers");

    r->headers_in.headers = ctx->original;

    ngx_http_kordon_flush_variables(r);
}


/*
 * $http_* values are cached once read, so a server-level "set" would
 * leave a stale copy for the location; forget every cached one.
 * Variables derived from them (map, set) keep what they computed.
 */

static void
ngx_http_kordon_flush_variables(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len > sizeof("http_") - 1
            && ngx_strncmp(v[i].name.data, "http_", sizeof("http_") - 1)
               == 0)
        {
            r->variables[i].valid = 0;
            r->variables[i].not_found = 0;
        }
    }
}


static ngx_uint_t
ngx_http_kordon_count_reserved(ngx_list_t *list, ngx_uint_t *total)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header;

    n = 0;
    *total = 0;

    part = &list->part;
    header = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            header = part->elts;
            i = 0;
        }

        (*total)++;

        if (ngx_http_kordon_reserved_header(header[i].lowcase_key,
                                            header[i].key.len))
        {
            n++;
        }
    }

    return n;
}


ngx_uint_t
ngx_http_kordon_reserved_header(u_char *lowcase_key, size_t len)
{
    u_char      c;
    ngx_uint_t  i;

    static u_char  prefix[] = NGX_HTTP_KORDON_RESERVED_PREFIX;

    if (lowcase_key == NULL || len < sizeof(prefix) - 1) {
        return 0;
    }

    for (i = 0; i < sizeof(prefix) - 1; i++) {
        c = lowcase_key[i];

        if (c == '_') {
            c = '-';
        }

        if (c != prefix[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * The context lives in a pool cleanup as well as in r->ctx: internal
 * redirects (error_page, named locations) zero r->ctx, and the client's
 * list must still be found after them, as the realip module does.
 */

/*
 * Rewrite phase: the location's route becomes $kordon_route, unless the
 * request came here as an error page (then the failed location's stays).
 */

static ngx_int_t
ngx_http_kordon_route_handler(ngx_http_request_t *r)
{
    ngx_http_kordon_main_conf_t  *kmcf;

    if (r != r->main || r->error_page) {
        return NGX_DECLINED;
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_module);

    if (ngx_http_kordon_route_value(r, &r->variables[kmcf->route_index])
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * $kordon_route read before the rewrite phase set it: the current
 * location's, unless the request never reached one before an error page
 * took it (a request line nginx could not parse): then none, so that it
 * counts as "other" rather than under the error page's location.
 */

static ngx_int_t
ngx_http_kordon_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    if (r->error_page) {
        v->len = 0;
        v->data = (u_char *) "";
        v->valid = 1;
        v->no_cacheable = 0;
        v->not_found = 0;
        return NGX_OK;
    }

    return ngx_http_kordon_route_value(r, v);
}


static ngx_int_t
ngx_http_kordon_route_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v)
{
    ngx_str_t                    value;
    ngx_http_kordon_loc_conf_t  *klcf;

    klcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_module);

    if (klcf->route == NULL) {
        ngx_str_null(&value);

    } else if (ngx_http_complex_value(r, klcf->route, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


ngx_uint_t
ngx_http_kordon_route(ngx_http_request_t *r, ngx_str_t *route)
{
    ngx_uint_t                    key;
    ngx_http_variable_value_t    *v;
    ngx_http_kordon_main_conf_t  *kmcf;

    kmcf = ngx_http_get_module_main_conf(r->main, ngx_http_kordon_module);

    v = ngx_http_get_indexed_variable(r->main, kmcf->route_index);

    if (v == NULL || v->not_found || v->len == 0) {
        ngx_str_set(route, "");
        return 0;
    }

    route->data = v->data;
    route->len = v->len;

    key = ngx_hash_key(v->data, v->len);

    return (uintptr_t) ngx_hash_find(&kmcf->route_hash, key, v->data, v->len);
}


ngx_array_t *
ngx_http_kordon_routes(ngx_conf_t *cf)
{
    ngx_http_kordon_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_module);

    return &kmcf->routes;
}


/* a route without variables joins the configured set, once */

static char *
ngx_http_kordon_route_add(ngx_conf_t *cf, ngx_http_kordon_loc_conf_t *conf)
{
    ngx_str_t                    *name, *route;
    ngx_uint_t                    i;
    ngx_http_kordon_main_conf_t  *kmcf;

    if (conf->route->lengths != NULL || conf->route->value.len == 0) {
        return NGX_CONF_OK;
    }

    name = &conf->route->value;

    if (name->len > NGX_HTTP_KORDON_ROUTE_LEN_MAX) {
        if (conf->route_default) {
            return NGX_CONF_OK;     /* a long regex counts as "other" */
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "kordon_route \"%V\" is longer than %d bytes",
                           name, NGX_HTTP_KORDON_ROUTE_LEN_MAX);
        return NGX_CONF_ERROR;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_module);

    route = kmcf->routes.elts;

    for (i = 0; i < kmcf->routes.nelts; i++) {
        if (route[i].len == name->len
            && ngx_strncmp(route[i].data, name->data, name->len) == 0)
        {
            return NGX_CONF_OK;
        }
    }

    route = ngx_array_push(&kmcf->routes);
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    *route = *name;

    return NGX_CONF_OK;
}


/* the configured set by name: the value of route i is i + 1 */

static ngx_int_t
ngx_http_kordon_route_hash(ngx_conf_t *cf, ngx_http_kordon_main_conf_t *kmcf)
{
    ngx_str_t       *route;
    ngx_uint_t       i;
    ngx_array_t      keys;
    ngx_hash_key_t  *k;
    ngx_hash_init_t  hash;

    if (ngx_array_init(&keys, cf->temp_pool, kmcf->routes.nelts + 1,
                       sizeof(ngx_hash_key_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    route = kmcf->routes.elts;

    for (i = 0; i < kmcf->routes.nelts; i++) {
        k = ngx_array_push(&keys);
        if (k == NULL) {
            return NGX_ERROR;
        }

        k->key = route[i];
        k->key_hash = ngx_hash_key(route[i].data, route[i].len);
        k->value = (void *) (uintptr_t) (i + 1);
    }

    hash.hash = &kmcf->route_hash;
    hash.key = ngx_hash_key;
    hash.max_size = 4096;
    hash.bucket_size = ngx_align(NGX_HTTP_KORDON_ROUTE_LEN_MAX
                                 + 4 * sizeof(void *), ngx_cacheline_size);
    hash.name = "kordon_route_hash";
    hash.pool = cf->pool;
    hash.temp_pool = NULL;

    return ngx_hash_init(&hash, keys.elts, keys.nelts);
}


static ngx_http_kordon_ctx_t *
ngx_http_kordon_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_kordon_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_kordon_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_kordon_module);
                break;
            }
        }
    }

    return ctx;
}


static ngx_http_kordon_ctx_t *
ngx_http_kordon_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_kordon_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_kordon_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;

    /*
     * a plain copy: its "last" may point at r->headers_in.headers.part,
     * which is right again once the copy is put back there
     */

    ctx->original = r->headers_in.headers;

    cln->handler = ngx_http_kordon_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_kordon_module);

    return ctx;
}


static void
ngx_http_kordon_cleanup(void *data)
{
    /* nothing to free: the handler only marks the context's cleanup */
}


static ngx_int_t
ngx_http_kordon_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    static ngx_str_t  name = ngx_string("kordon_route");

    var = ngx_http_add_variable(cf, &name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_kordon_route_variable;

    return NGX_OK;
}


static void *
ngx_http_kordon_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_main_conf_t  *kmcf;

    kmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_main_conf_t));
    if (kmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&kmcf->routes, cf->pool, 16, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    return kmcf;
}


static void *
ngx_http_kordon_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->strip_headers = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_kordon_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_kordon_loc_conf_t *prev = parent;
    ngx_http_kordon_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->strip_headers, prev->strip_headers, 1);

    /*
     * An explicit kordon_route is inherited; the default is each
     * location's own name ("" at the server level).
     */

    if (conf->route == NULL) {
        if (prev->route != NULL && !prev->route_default) {
            conf->route = prev->route;

        } else {
            clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

            conf->route = ngx_pcalloc(cf->pool,
                                      sizeof(ngx_http_complex_value_t));
            if (conf->route == NULL) {
                return NGX_CONF_ERROR;
            }

            conf->route->value = clcf->name;
            conf->route_default = 1;
        }
    }

    return ngx_http_kordon_route_add(cf, conf);
}


static ngx_int_t
ngx_http_kordon_init(ngx_conf_t *cf)
{
    ngx_str_t                     name;
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_kordon_main_conf_t  *kmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_module);

    ngx_str_set(&name, "kordon_route");

    kmcf->route_index = ngx_http_get_variable_index(cf, &name);
    if (kmcf->route_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_kordon_route_hash(cf, kmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_strip_handler;

    /*
     * handlers of a phase run last pushed first, and dynamic modules
     * initialize after the built-in ones, so this runs before the rewrite
     * module's directives of the location
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_strip_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_route_handler;

    return NGX_OK;
}
