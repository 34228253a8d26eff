/*
 * Kordon edge: the Redis response cache.
 *
 * For the locations with "kordon_cache <redis>", a GET or HEAD is looked
 * up in Redis (the shared client of ngx_http_kordon_redis_module, so
 * never a blocking call) before the content handler runs: a hit is
 * answered from the stored entry without touching the upstream; a miss
 * is proxied while a body filter copies the answer, which is stored with
 * SET ... PX after the last byte went to the client.  Redis down or slow
 * means the request passes through to the upstream (BYPASS), never an
 * error.  Every answer of such a location carries X-Cache and sets
 * $kordon_cache_status.
 *
 * The one idea: the lookup sits in the PRECONTENT phase, after every
 * access check (JWT, API keys, roles, auth_request, allow/deny), so a hit
 * can never answer a request that the edge would have refused; the key
 * (kordon_cache_key) names the user for private data, and the values of
 * the request headers named by kordon_cache_vary; an answer whose Vary
 * names any other header is not stored, so a hit always fits.
 *
 * Misses of one key in one worker fly once (kordon_cache_lock): the
 * first goes upstream, the others wait for its answer, bounded.
 *
 * This file: directives, configuration, the variable, the counters'
 * zone, kordon_cache_stats, the worker's library loader start and
 * worker 0's purge channel subscription.  The lookup and the filters are
 * in ngx_http_kordon_cache_handler.c, tag purges (route, FCALL library,
 * channel) in ngx_http_kordon_cache_purge.c, single-flight in
 * ngx_http_kordon_cache_lock.c, the nginx-free key, Cache-Control and
 * entry code in kordon_cache_core.c.
 */


#include "ngx_http_kordon_cache_internal.h"


static ngx_int_t ngx_http_kordon_cache_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void *ngx_http_kordon_cache_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_cache_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_cache_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_cache_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_kordon_cache_init_process(ngx_cycle_t *cycle);
static void ngx_http_kordon_cache_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_kordon_cache_purge_channel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kordon_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_cache_purge(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_cache_stats_cmd(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kordon_cache_statuses(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_kordon_cache_vary(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_kordon_redis_server_t *ngx_http_kordon_cache_server(
    ngx_conf_t *cf, ngx_str_t *name);
static ngx_int_t ngx_http_kordon_cache_stats_handler(ngx_http_request_t *r);


/* 200, 203 and 204: answers that are complete and safe to repeat */
static ngx_uint_t  ngx_http_kordon_cache_default_statuses[] = {
    200, 203, 204
};

static ngx_str_t  ngx_http_kordon_cache_zone_name =
    ngx_string("kordon_cache");


static ngx_command_t  ngx_http_kordon_cache_commands[] = {

    { ngx_string("kordon_cache"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_cache_key"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, user),
      NULL },

    { ngx_string("kordon_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, ttl),
      NULL },

    { ngx_string("kordon_cache_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, max_size),
      NULL },

    { ngx_string("kordon_cache_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, timeout),
      NULL },

    { ngx_string("kordon_cache_statuses"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_cache_statuses,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_cache_vary"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_cache_vary,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_cache_lock"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, lock),
      NULL },

    { ngx_string("kordon_cache_lock_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_cache_loc_conf_t, lock_timeout),
      NULL },

    { ngx_string("kordon_cache_purge"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_cache_purge,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_cache_purge_channel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_kordon_cache_purge_channel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_cache_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kordon_cache_stats_cmd,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_cache_module_ctx = {
    ngx_http_kordon_cache_add_variables,   /* preconfiguration */
    ngx_http_kordon_cache_init,            /* postconfiguration */

    ngx_http_kordon_cache_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_cache_create_loc_conf, /* create location configuration */
    ngx_http_kordon_cache_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_cache_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_cache_module_ctx,     /* module context */
    ngx_http_kordon_cache_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kordon_cache_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_kordon_cache_exit_process,    /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_kordon_cache_status_texts[] = {
    ngx_null_string,
    ngx_string("HIT"),
    ngx_string("MISS"),
    ngx_string("BYPASS")
};


ngx_http_kordon_cache_stats_t *
ngx_http_kordon_cache_stats(void)
{
    ngx_http_kordon_cache_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kordon_cache_module);

    return kmcf ? kmcf->stats : NULL;
}


ngx_str_t *
ngx_http_kordon_cache_status_text(ngx_uint_t status)
{
    if (status > NGX_HTTP_KORDON_CACHE_BYPASS) {
        status = 0;
    }

    return &ngx_http_kordon_cache_status_texts[status];
}


static ngx_int_t
ngx_http_kordon_cache_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    static ngx_str_t  name = ngx_string("kordon_cache_status");

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_kordon_cache_status_variable;

    return NGX_OK;
}


/* "HIT", "MISS", "BYPASS", or empty where the cache is off */
static ngx_int_t
ngx_http_kordon_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                    *text;
    ngx_http_kordon_cache_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_kordon_cache_module);

    text = ngx_http_kordon_cache_status_text(ctx ? ctx->status : 0);

    v->len = text->len;
    v->data = text->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_http_kordon_cache_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_cache_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_cache_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&cmcf->servers, cf->pool, 2,
                       sizeof(ngx_http_kordon_redis_server_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return cmcf;
}


static void *
ngx_http_kordon_cache_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_cache_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_cache_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->user = NULL;
     *     clcf->purge = NULL;
     */

    clcf->server = NGX_CONF_UNSET_PTR;
    clcf->ttl = NGX_CONF_UNSET_MSEC;
    clcf->max_size = NGX_CONF_UNSET_SIZE;
    clcf->timeout = NGX_CONF_UNSET_MSEC;
    clcf->statuses = NGX_CONF_UNSET_PTR;
    clcf->vary = NGX_CONF_UNSET_PTR;
    clcf->lock = NGX_CONF_UNSET;
    clcf->lock_timeout = NGX_CONF_UNSET_MSEC;

    return clcf;
}


static char *
ngx_http_kordon_cache_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_cache_loc_conf_t  *prev = parent;
    ngx_http_kordon_cache_loc_conf_t  *conf = child;

    ngx_uint_t  i, *s;

    ngx_conf_merge_ptr_value(conf->server, prev->server, NULL);
    ngx_conf_merge_msec_value(conf->ttl, prev->ttl, 60000);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size, 64 * 1024);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 0);
    ngx_conf_merge_ptr_value(conf->statuses, prev->statuses, NULL);
    ngx_conf_merge_ptr_value(conf->vary, prev->vary, NULL);
    ngx_conf_merge_value(conf->lock, prev->lock, 1);
    ngx_conf_merge_msec_value(conf->lock_timeout, prev->lock_timeout, 2000);

    if (conf->user == NULL) {
        conf->user = prev->user;
    }

    if (conf->statuses == NULL) {
        conf->statuses = ngx_array_create(cf->pool, 3, sizeof(ngx_uint_t));
        if (conf->statuses == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < 3; i++) {
            s = ngx_array_push(conf->statuses);
            if (s == NULL) {
                return NGX_CONF_ERROR;
            }

            *s = ngx_http_kordon_cache_default_statuses[i];
        }
    }

    if (conf->ttl == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"kordon_cache_ttl\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kordon_cache_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt                *h;
    ngx_http_core_main_conf_t          *cmcf;
    ngx_http_kordon_cache_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_cache_module);

    if (kmcf->servers.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* after every access check: a hit never skips authorization */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_cache_handler;

    /* a fixed size, so that a reload keeps the zone and the counters */

    kmcf->shm_zone = ngx_shared_memory_add(cf,
                                           &ngx_http_kordon_cache_zone_name,
                                           8 * ngx_pagesize,
                                           &ngx_http_kordon_cache_module);
    if (kmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    kmcf->shm_zone->init = ngx_http_kordon_cache_init_zone;
    kmcf->shm_zone->data = kmcf;

    return ngx_http_kordon_cache_filter_init(cf);
}


static ngx_int_t
ngx_http_kordon_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                    *shpool;
    ngx_http_kordon_cache_stats_t      *stats;
    ngx_http_kordon_cache_main_conf_t  *kmcf;

    kmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        stats = shpool->data;

    } else {
        stats = ngx_slab_calloc(shpool,
                                sizeof(ngx_http_kordon_cache_stats_t));
        if (stats == NULL) {
            return NGX_ERROR;
        }

        shpool->data = stats;
    }

    kmcf->stats = stats;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_cache_init_process(ngx_cycle_t *cycle)
{
    ngx_http_kordon_cache_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_cache_module);

    if (kmcf == NULL || kmcf->servers.nelts == 0) {
        return NGX_OK;
    }

    ngx_http_kordon_cache_loader_start(cycle, &kmcf->servers);

    /*
     * one subscriber per edge: every worker purges the same Redis, so
     * one purge per message is enough; worker 0 is there as long as the
     * edge is (a new one after a reload or a crash)
     */

    if (kmcf->channel.len
        && ngx_worker == 0
        && (ngx_process == NGX_PROCESS_WORKER
            || ngx_process == NGX_PROCESS_SINGLE))
    {
        kmcf->subscriber = ngx_http_kordon_redis_subscribe(cycle,
                               kmcf->channel_server, &kmcf->channel,
                               ngx_http_kordon_cache_channel_message, kmcf);

        if (kmcf->subscriber == NULL) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "kordon cache: could not subscribe to channel "
                          "\"%V\"", &kmcf->channel);
        }
    }

    return NGX_OK;
}


static void
ngx_http_kordon_cache_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_kordon_cache_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_cache_module);

    if (kmcf && kmcf->subscriber) {
        ngx_http_kordon_redis_unsubscribe(kmcf->subscriber);
        kmcf->subscriber = NULL;
    }
}


/* kordon_cache_purge_channel <redis> <channel>: the edge's subscription */
static char *
ngx_http_kordon_cache_purge_channel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kordon_cache_main_conf_t *kmcf = conf;

    ngx_str_t  *value;

    if (kmcf->channel.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[2].len == 0 || value[2].len > 256
        || ngx_strlchr(value[2].data, value[2].data + value[2].len, '*')
        || ngx_strlchr(value[2].data, value[2].data + value[2].len, '?')
        || ngx_strlchr(value[2].data, value[2].data + value[2].len, '['))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid channel \"%V\": 1 to 256 bytes, "
                           "no pattern characters", &value[2]);
        return NGX_CONF_ERROR;
    }

    kmcf->channel_server = ngx_http_kordon_cache_server(cf, &value[1]);
    if (kmcf->channel_server == NULL) {
        return NGX_CONF_ERROR;
    }

    kmcf->channel = value[2];

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_cache_loc_conf_t *clcf = conf;

    ngx_str_t  *value;

    if (clcf->server != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->server = NULL;
        return NGX_CONF_OK;
    }

    clcf->server = ngx_http_kordon_cache_server(cf, &value[1]);
    if (clcf->server == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_cache_purge(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_cache_loc_conf_t *clcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *core;

    if (clcf->purge) {
        return "is duplicate";
    }

    value = cf->args->elts;

    clcf->purge = ngx_http_kordon_cache_server(cf, &value[1]);
    if (clcf->purge == NULL) {
        return NGX_CONF_ERROR;
    }

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_kordon_cache_purge_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_cache_stats_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *core;

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    core->handler = ngx_http_kordon_cache_stats_handler;

    return NGX_CONF_OK;
}


/* kordon_cache_statuses 200 203 ...: 2xx and 3xx only, never 206 or 304 */
static char *
ngx_http_kordon_cache_statuses(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kordon_cache_loc_conf_t *clcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *s;

    if (clcf->statuses != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    clcf->statuses = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_uint_t));
    if (clcf->statuses == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 200 || n > 399 || n == 206 || n == 304) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status \"%V\": a cacheable one is "
                               "2xx or 3xx, not 206 or 304", &value[i]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(clcf->statuses);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}


/*
 * kordon_cache_vary Accept-Language Origin ...: the request headers this
 * location's answers may vary on; their values join the key, and an
 * answer whose Vary names another header is not stored.  "off" (alone)
 * cancels an inherited list.
 */
static char *
ngx_http_kordon_cache_vary(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_cache_loc_conf_t *clcf = conf;

    u_char      *p;
    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    if (clcf->vary != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        clcf->vary = NULL;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts - 1 > KORDON_CACHE_VARY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d headers in \"kordon_cache_vary\"",
                           KORDON_CACHE_VARY_MAX);
        return NGX_CONF_ERROR;
    }

    clcf->vary = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(ngx_str_t));
    if (clcf->vary == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        for (p = value[i].data; p < value[i].data + value[i].len; p++) {
            if (!(isalnum(*p) || *p == '-' || *p == '_')) {
                break;
            }
        }

        if (value[i].len == 0 || p < value[i].data + value[i].len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid header name \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(clcf->vary);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        name->len = value[i].len;
        name->data = ngx_pnalloc(cf->pool, name->len);
        if (name->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_strlow(name->data, value[i].data, name->len);
    }

    return NGX_CONF_OK;
}


/* the Redis server called name, remembered once for the library loader */
static ngx_http_kordon_redis_server_t *
ngx_http_kordon_cache_server(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                           i;
    ngx_http_kordon_redis_server_t      *server, **s;
    ngx_http_kordon_cache_main_conf_t   *kmcf;

    server = ngx_http_kordon_redis_lookup(cf, name);
    if (server == NULL) {
        return NULL;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_cache_module);

    s = kmcf->servers.elts;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        if (s[i] == server) {
            return server;
        }
    }

    s = ngx_array_push(&kmcf->servers);
    if (s == NULL) {
        return NULL;
    }

    *s = server;

    return server;
}


/* kordon_cache_stats: the counters as one JSON object */
static ngx_int_t
ngx_http_kordon_cache_stats_handler(ngx_http_request_t *r)
{
    size_t                          len;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_chain_t                     out;
    ngx_http_kordon_cache_stats_t  *st, zero;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_http_kordon_cache_stats();

    if (st == NULL) {
        ngx_memzero(&zero, sizeof(ngx_http_kordon_cache_stats_t));
        st = &zero;
    }

    len = sizeof("{\"hits\":,\"misses\":,\"bypasses\":,\"redis_errors\":,"
                 "\"stores\":,\"store_errors\":,\"not_stored\":,"
                 "\"purges\":,\"channel_messages\":,\"channel_ignored\":,"
                 "\"lock_waits\":,\"lock_timeouts\":}\n")
          + 12 * NGX_ATOMIC_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last,
                          "{\"hits\":%uA,\"misses\":%uA,\"bypasses\":%uA,"
                          "\"redis_errors\":%uA,\"stores\":%uA,"
                          "\"store_errors\":%uA,\"not_stored\":%uA,"
                          "\"purges\":%uA,\"channel_messages\":%uA,"
                          "\"channel_ignored\":%uA,\"lock_waits\":%uA,"
                          "\"lock_timeouts\":%uA}\n",
                          st->hits, st->misses, st->bypasses,
                          st->redis_errors, st->stores, st->store_errors,
                          st->not_stored, st->purges, st->channel_messages,
                          st->channel_ignored, st->lock_waits,
                          st->lock_timeouts);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
