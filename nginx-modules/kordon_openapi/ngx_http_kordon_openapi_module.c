
/*
 * Kordon edge: the OpenAPI module's directives, configuration and the
 * $kordon_openapi_route variable.
 *
 *     kordon_openapi <file.json>;          http, server
 *     kordon_openapi_validate on | off;    http, server, location
 *     kordon_openapi_schema_status 400 | 422;      http, server, location
 *
 * The document is compiled when the directive is parsed, so "nginx -t"
 * refuses a document the core cannot compile and names the place in it
 * (a JSON Pointer).  Each configuration cycle compiles its own copy and
 * frees it with the cycle's pool: a reload picks up an edited document.
 * The merge refuses "kordon_openapi_validate on" in a server without a
 * document.  kordon_openapi_schema_status is the status of an answer
 * whose problems are all in a JSON body that parsed (default 400):
 * services that answer 422 for a body that breaks their rules, and 400
 * for one that is not JSON, keep doing so through the edge.
 *
 * $kordon_openapi_route is the path template the request matched
 * ("/v1/accounts/{id}"), empty when none did: a route label without ids
 * in it, for metrics and logs.  It is looked up once per request, by
 * the validator or by the first reader of the variable, and cached: the
 * validator reads it first, so after an error_page redirect the log
 * still sees the route the client asked for.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_openapi.h"


static char *ngx_http_kordon_openapi(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_kordon_openapi_routes(ngx_conf_t *cf,
    kordon_oa_doc_t *doc);
static ngx_int_t ngx_http_kordon_openapi_read(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *text);
static void ngx_http_kordon_openapi_cleanup(void *data);
static ngx_int_t ngx_http_kordon_openapi_route_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_openapi_add_variables(ngx_conf_t *cf);
static void *ngx_http_kordon_openapi_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_openapi_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static void *ngx_http_kordon_openapi_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_openapi_schema_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kordon_openapi_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_openapi_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_kordon_openapi_commands[] = {

    { ngx_string("kordon_openapi"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_openapi,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_openapi_validate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_openapi_loc_conf_t, validate),
      NULL },

    { ngx_string("kordon_openapi_schema_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_openapi_schema_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_openapi_loc_conf_t, schema_status),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_openapi_module_ctx = {
    ngx_http_kordon_openapi_add_variables, /* preconfiguration */
    ngx_http_kordon_openapi_init,          /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_kordon_openapi_create_srv_conf, /* create server configuration */
    ngx_http_kordon_openapi_merge_srv_conf,  /* merge server configuration */

    ngx_http_kordon_openapi_create_loc_conf, /* create location configuration */
    ngx_http_kordon_openapi_merge_loc_conf   /* merge location configuration */
};


ngx_int_t  ngx_http_kordon_openapi_route_index;


ngx_module_t  ngx_http_kordon_openapi_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_openapi_module_ctx,   /* module context */
    ngx_http_kordon_openapi_commands,      /* module directives */
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


/* cacheable: the validator caches it before any error_page redirect */
static ngx_http_variable_t  ngx_http_kordon_openapi_vars[] = {

    { ngx_string("kordon_openapi_route"), NULL,
      ngx_http_kordon_openapi_route_variable, 0, 0, 0 },

      ngx_http_null_variable
};


static char *
ngx_http_kordon_openapi(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_openapi_srv_conf_t *oscf = conf;

    ngx_str_t           *value, text;
    kordon_oa_error_t    err;
    ngx_pool_cleanup_t  *cln;

    if (oscf->doc != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    oscf->file = value[1];

    if (ngx_conf_full_name(cf->cycle, &oscf->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kordon_openapi_read(cf, &oscf->file, &text) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    oscf->doc = kordon_oa_load((char *) text.data, text.len, &err);
    if (oscf->doc == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "could not compile OpenAPI document \"%V\" at "
                           "\"%s\": %s", &oscf->file,
                           err.pointer[0] ? err.pointer : "/", err.message);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_kordon_openapi_cleanup;
    cln->data = oscf->doc;

    if (ngx_http_kordon_openapi_routes(cf, oscf->doc) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_DEBUG, cf, 0,
                       "OpenAPI document \"%V\": %uz paths, %uz operations",
                       &oscf->file, kordon_oa_paths(oscf->doc),
                       kordon_oa_operations(oscf->doc));

    return NGX_CONF_OK;
}


/*
 * Every path template of the document joins kordon's configured routes,
 * so "kordon_route $kordon_openapi_route;" gives metrics labels from the
 * document (a finite list) rather than "other".  The templates are
 * copied: the document is freed with the cycle's pool, but a reload that
 * fails keeps the old cycle and its copy.
 */
static ngx_int_t
ngx_http_kordon_openapi_routes(ngx_conf_t *cf, kordon_oa_doc_t *doc)
{
    size_t       i;
    ngx_str_t    name;
    const char  *t;

    for (i = 0; i < kordon_oa_paths(doc); i++) {
        t = kordon_oa_template(kordon_oa_path(doc, i));

        name.len = ngx_strlen(t);
        name.data = ngx_pnalloc(cf->pool, name.len);
        if (name.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(name.data, t, name.len);

        if (ngx_http_kordon_route_known(cf, &name) == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* reads the document into the temporary pool; logs why it cannot */
static ngx_int_t
ngx_http_kordon_openapi_read(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *text)
{
    off_t            size;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "could not open OpenAPI document \"%V\"", name);
        return NGX_ERROR;
    }

    n = NGX_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "could not read OpenAPI document \"%V\"", name);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (size <= 0 || size > KORDON_OA_DOC_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "OpenAPI document \"%V\" is empty or larger than "
                           "%d bytes", name, KORDON_OA_DOC_MAX);
        goto done;
    }

    text->data = ngx_pnalloc(cf->temp_pool, (size_t) size);
    if (text->data == NULL) {
        goto done;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.fd = fd;
    file.name = *name;
    file.log = cf->log;

    n = ngx_read_file(&file, text->data, (size_t) size, 0);

    if (n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, n == NGX_ERROR ? ngx_errno : 0,
                           "could not read OpenAPI document \"%V\"", name);
        n = NGX_ERROR;
    }

    text->len = (n == NGX_ERROR) ? 0 : (size_t) n;

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", name);
    }

    return (n == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


static void
ngx_http_kordon_openapi_cleanup(void *data)
{
    kordon_oa_free(data);
}


/*
 * The request's context with its path looked up in the server's
 * document (ctx->path NULL when none matched); NULL when the server has
 * no document or memory ran out.
 */
ngx_http_kordon_openapi_ctx_t *
ngx_http_kordon_openapi_route(ngx_http_request_t *r)
{
    ngx_http_kordon_openapi_ctx_t       *ctx;
    ngx_http_kordon_openapi_srv_conf_t  *oscf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_openapi_module);

    if (ctx != NULL && ctx->matched) {
        return ctx;
    }

    oscf = ngx_http_get_module_srv_conf(r, ngx_http_kordon_openapi_module);
    if (oscf->doc == NULL) {
        return NULL;
    }

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_openapi_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_kordon_openapi_module);
    }

    ctx->path = kordon_oa_match(oscf->doc, (char *) r->uri.data, r->uri.len,
                                &ctx->match);
    ctx->matched = 1;

    return ctx;
}


static ngx_int_t
ngx_http_kordon_openapi_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char                     *t;
    ngx_http_kordon_openapi_ctx_t  *ctx;

    ctx = ngx_http_kordon_openapi_route(r);

    t = (ctx != NULL && ctx->path != NULL) ? kordon_oa_template(ctx->path)
                                           : "";

    v->data = (u_char *) t;
    v->len = ngx_strlen(t);
    v->valid = 1;
    v->no_cacheable = 0;        /* see ngx_http_kordon_openapi_vars */
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_openapi_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_kordon_openapi_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_kordon_openapi_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_openapi_srv_conf_t  *conf;

    /* set by ngx_pcalloc(): conf->doc = NULL, conf->file = { 0, NULL } */

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_openapi_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    return conf;
}


static char *
ngx_http_kordon_openapi_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_openapi_srv_conf_t *prev = parent;
    ngx_http_kordon_openapi_srv_conf_t *conf = child;

    if (conf->doc == NULL) {
        conf->doc = prev->doc;
        conf->file = prev->file;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_kordon_openapi_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_openapi_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_openapi_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->validate = NGX_CONF_UNSET;
    conf->schema_status = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_kordon_openapi_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_openapi_loc_conf_t *prev = parent;
    ngx_http_kordon_openapi_loc_conf_t *conf = child;

    ngx_http_kordon_openapi_srv_conf_t  *oscf;

    ngx_conf_merge_value(conf->validate, prev->validate, 0);
    ngx_conf_merge_uint_value(conf->schema_status, prev->schema_status,
                              NGX_HTTP_BAD_REQUEST);

    if (!conf->validate) {
        return NGX_CONF_OK;
    }

    oscf = ngx_http_conf_get_module_srv_conf(cf,
                                             ngx_http_kordon_openapi_module);

    if (oscf->doc == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kordon_openapi_validate on\" needs a document: "
                           "\"kordon_openapi <file>\" in the server or http "
                           "block");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* 400 or 422, nothing else */
static char *
ngx_http_kordon_openapi_schema_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kordon_openapi_loc_conf_t *olcf = conf;

    ngx_str_t  *value;

    if (olcf->schema_status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "400") == 0) {
        olcf->schema_status = NGX_HTTP_BAD_REQUEST;

    } else if (ngx_strcmp(value[1].data, "422") == 0) {
        olcf->schema_status = 422;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be 400 or 422",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the validator runs in the precontent phase: after every access check */
static ngx_int_t
ngx_http_kordon_openapi_init(ngx_conf_t *cf)
{
    ngx_str_t                   name;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_openapi_handler;

    ngx_str_set(&name, "kordon_openapi_route");

    ngx_http_kordon_openapi_route_index = ngx_http_get_variable_index(cf,
                                                                      &name);
    if (ngx_http_kordon_openapi_route_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
