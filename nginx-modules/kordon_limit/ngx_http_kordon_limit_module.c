
/*
 * Kordon edge: rate limits and the brute-force guard; this file holds
 * the directives, the zones, $kordon_limit_status and the header filter.
 *
 *     kordon_limit_zone name=api rate=10/s burst=20 key=$binary_remote_addr
 *                       [mode=local|cluster] [redis=main] [fail=open|closed]
 *                       [size=10m] [timeout=100ms];
 *     kordon_limit api [methods=POST,PUT];
 *     kordon_limit_guard name=login redis=main account=$arg_email
 *                        [ip=$binary_remote_addr] [failures=5]
 *                        [ip_failures=50] [window=15m] [lockout=30s]
 *                        [lockout_max=1h] [fail=open|closed] [timeout=];
 *
 * Every zone has a shared memory zone of its own: a local zone keeps its
 * keys there, every zone its counters.  The limits of a location run in
 * the precontent phase, after the access phase has authenticated the
 * request (so $kordon_jwt_sub and $kordon_api_key_id are known), and
 * the header filter adds RateLimit-Policy and RateLimit to every answer
 * of a limited location, 2xx included, and Retry-After to a refusal.
 * README.md has the whole contract.
 */


#include "ngx_http_kordon_limit.h"


typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 method;
} ngx_http_kordon_limit_method_t;


static char *ngx_http_kordon_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_limit_zone_param(ngx_conf_t *cf,
    ngx_http_kordon_limit_zone_t *zone, ngx_str_t *v, ssize_t *size);
static char *ngx_http_kordon_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_limit_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_limit_guard_param(ngx_conf_t *cf,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *v);
static char *ngx_http_kordon_limit_json_fields(ngx_conf_t *cf,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *arg);
static char *ngx_http_kordon_limit_methods(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *methods);
static ngx_int_t ngx_http_kordon_limit_fail(ngx_str_t *v, ngx_flag_t *open);
static ngx_uint_t ngx_http_kordon_limit_is(ngx_str_t *name, char *s);
static ngx_http_complex_value_t *ngx_http_kordon_limit_cv(ngx_conf_t *cf,
    ngx_str_t *value);
static ngx_int_t ngx_http_kordon_limit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_limit_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_limit_add_headers(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_limit_add_header(ngx_http_request_t *r,
    char *name, u_char *value, size_t len);
static ngx_int_t ngx_http_kordon_limit_add_variables(ngx_conf_t *cf);
static void *ngx_http_kordon_limit_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_limit_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_limit_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_limit_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_limit_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_kordon_limit_commands[] = {

    { ngx_string("kordon_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_kordon_limit_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_kordon_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_limit_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kordon_limit_stats,
      0,
      0,
      NULL },

    { ngx_string("kordon_limit_guard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_kordon_limit_guard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_limit_module_ctx = {
    ngx_http_kordon_limit_add_variables,   /* preconfiguration */
    ngx_http_kordon_limit_init,            /* postconfiguration */

    ngx_http_kordon_limit_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_limit_create_loc_conf, /* create location configuration */
    ngx_http_kordon_limit_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_limit_module_ctx,     /* module context */
    ngx_http_kordon_limit_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kordon_limit_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_kordon_limit_vars[] = {

    { ngx_string("kordon_limit_status"), NULL,
      ngx_http_kordon_limit_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_kordon_limit_method_t  ngx_http_kordon_limit_method_names[] = {
    { ngx_string("GET"), NGX_HTTP_GET },
    { ngx_string("HEAD"), NGX_HTTP_HEAD },
    { ngx_string("POST"), NGX_HTTP_POST },
    { ngx_string("PUT"), NGX_HTTP_PUT },
    { ngx_string("DELETE"), NGX_HTTP_DELETE },
    { ngx_string("PATCH"), NGX_HTTP_PATCH },
    { ngx_string("OPTIONS"), NGX_HTTP_OPTIONS },
    { ngx_null_string, 0 }
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static char *
ngx_http_kordon_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_limit_main_conf_t *lmcf = conf;

    char                           *rv;
    ssize_t                         size;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_kordon_limit_zone_t   *zone, **zp;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_limit_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->mode = NGX_HTTP_KORDON_LIMIT_LOCAL;
    zone->fail_open = 1;
    size = 0;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_kordon_limit_zone_param(cf, zone, &value[i], &size);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (zone->name.len == 0 || zone->rate == 0 || zone->key.value.len == 0
        || zone->gcra_ns.burst == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs name=, rate=, burst= and key=",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (zp = lmcf->zones.elts, i = 0; i < lmcf->zones.nelts; i++) {
        if (zp[i]->name.len == zone->name.len
            && ngx_strncmp(zp[i]->name.data, zone->name.data, zone->name.len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate limit zone \"%V\"", &zone->name);
            return NGX_CONF_ERROR;
        }
    }

    if (zone->mode == NGX_HTTP_KORDON_LIMIT_HYBRID) {
        if (zone->sync == 0) {
            zone->sync = 100;
        }

        if (zone->share == 0) {
            zone->share = 1;
        }

        /* between syncs, each edge has its share of rate and burst */

        zone->gcra_ns.interval *= zone->share;
        zone->gcra_ns.burst = ngx_max(zone->gcra_ns.burst / zone->share, 1);

    } else if (zone->sync || zone->share) {
        return "has sync= or share= outside mode=hybrid";
    }

    if (zone->mode != NGX_HTTP_KORDON_LIMIT_LOCAL) {
        if (zone->redis_name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "limit zone \"%V\" in mode=%s needs "
                               "redis=", &zone->name,
                               zone->mode == NGX_HTTP_KORDON_LIMIT_CLUSTER
                               ? "cluster" : "hybrid");
            return NGX_CONF_ERROR;
        }

        zone->redis = ngx_http_kordon_redis_lookup(cf, &zone->redis_name);
        if (zone->redis == NULL) {
            return NGX_CONF_ERROR;
        }

        if (zone->gcra_us.interval < 1) {
            return "rate is too high for mode=cluster";
        }
    }

    if (size == 0) {
        size = zone->mode == NGX_HTTP_KORDON_LIMIT_CLUSTER ? 64 * 1024
                                                           : 10 * 1024 * 1024;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "limit zone \"%V\" is too small", &zone->name);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = ngx_shared_memory_add(cf, &zone->name, size,
                                           &ngx_http_kordon_limit_module);
    if (zone->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared memory zone \"%V\" is already in use",
                           &zone->name);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone->init = ngx_http_kordon_limit_init_zone;
    zone->shm_zone->data = zone;

    zp = ngx_array_push(&lmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_limit_zone_param(ngx_conf_t *cf,
    ngx_http_kordon_limit_zone_t *zone, ngx_str_t *v, ssize_t *size)
{
    ngx_int_t                          n;
    ngx_str_t                          s;
    ngx_http_compile_complex_value_t   ccv;

    if (ngx_strncmp(v->data, "name=", 5) == 0) {
        zone->name.data = v->data + 5;
        zone->name.len = v->len - 5;

        if (kordon_limit_name_ok(zone->name.data, zone->name.len)) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "rate=", 5) == 0) {
        if (kordon_limit_parse_rate(v->data + 5, v->len - 5, &zone->rate,
                                    &zone->period_s)
            == 0)
        {
            zone->gcra_ns.interval = kordon_limit_interval(zone->rate,
                                        zone->period_s,
                                        NGX_HTTP_KORDON_LIMIT_NS);
            zone->gcra_us.interval = zone->period_s
                                     * NGX_HTTP_KORDON_LIMIT_US / zone->rate;
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "burst=", 6) == 0) {
        n = ngx_atoi(v->data + 6, v->len - 6);

        if (n >= 1 && n <= KORDON_LIMIT_BURST_MAX) {
            zone->gcra_ns.burst = n;
            zone->gcra_us.burst = n;
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "key=", 4) == 0) {
        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        s.data = v->data + 4;
        s.len = v->len - 4;

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = &zone->key;

        if (s.len && ngx_http_compile_complex_value(&ccv) == NGX_OK) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strcmp(v->data, "mode=local") == 0) {
        zone->mode = NGX_HTTP_KORDON_LIMIT_LOCAL;
        return NGX_CONF_OK;

    } else if (ngx_strcmp(v->data, "mode=cluster") == 0) {
        zone->mode = NGX_HTTP_KORDON_LIMIT_CLUSTER;
        return NGX_CONF_OK;

    } else if (ngx_strcmp(v->data, "mode=hybrid") == 0) {
        zone->mode = NGX_HTTP_KORDON_LIMIT_HYBRID;
        return NGX_CONF_OK;

    } else if (ngx_strncmp(v->data, "sync=", 5) == 0) {
        s.data = v->data + 5;
        s.len = v->len - 5;

        zone->sync = ngx_parse_time(&s, 0);

        if (zone->sync != (ngx_msec_t) NGX_ERROR && zone->sync) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "share=", 6) == 0) {
        n = ngx_atoi(v->data + 6, v->len - 6);

        if (n >= 1 && n <= 64) {
            zone->share = n;
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "redis=", 6) == 0) {
        zone->redis_name.data = v->data + 6;
        zone->redis_name.len = v->len - 6;

        if (zone->redis_name.len) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "fail=", 5) == 0) {
        if (ngx_http_kordon_limit_fail(v, &zone->fail_open) == NGX_OK) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "size=", 5) == 0) {
        s.data = v->data + 5;
        s.len = v->len - 5;

        *size = ngx_parse_size(&s);

        if (*size != NGX_ERROR) {
            return NGX_CONF_OK;
        }

    } else if (ngx_strncmp(v->data, "timeout=", 8) == 0) {
        s.data = v->data + 8;
        s.len = v->len - 8;

        zone->timeout = ngx_parse_time(&s, 0);

        if (zone->timeout != (ngx_msec_t) NGX_ERROR && zone->timeout) {
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", v);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_kordon_limit_fail(ngx_str_t *v, ngx_flag_t *open)
{
    if (ngx_strcmp(v->data, "fail=open") == 0) {
        *open = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(v->data, "fail=closed") == 0) {
        *open = 0;
        return NGX_OK;
    }

    return NGX_ERROR;
}


static char *
ngx_http_kordon_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_limit_loc_conf_t *llcf = conf;

    ngx_str_t                          *value;
    ngx_uint_t                          i;
    ngx_http_kordon_limit_zone_t      **zp;
    ngx_http_kordon_limit_rule_t       *rule;
    ngx_http_kordon_limit_main_conf_t  *lmcf;

    value = cf->args->elts;

    if (llcf->rules == NULL) {
        llcf->rules = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_kordon_limit_rule_t));
        if (llcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (llcf->rules->nelts == NGX_HTTP_KORDON_LIMIT_RULES_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d \"%V\" in one place",
                           NGX_HTTP_KORDON_LIMIT_RULES_MAX, &cmd->name);
        return NGX_CONF_ERROR;
    }

    rule = ngx_array_push(llcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_kordon_limit_rule_t));

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_limit_module);

    for (zp = lmcf->zones.elts, i = 0; i < lmcf->zones.nelts; i++) {
        if (zp[i]->name.len == value[1].len
            && ngx_strncmp(zp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            rule->zone = zp[i];
            break;
        }
    }

    if (rule->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown limit zone \"%V\" (\"kordon_limit_zone\" "
                           "must come first)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "methods=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_kordon_limit_methods(cf, &value[2], &rule->methods)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (rule->zone->mode != NGX_HTTP_KORDON_LIMIT_CLUSTER) {
        return NGX_CONF_OK;
    }

    /* one script call per request: every cluster limit on one Redis */

    if (llcf->redis && llcf->redis != rule->zone->redis) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the cluster limits of one place must use "
                           "one redis");
        return NGX_CONF_ERROR;
    }

    llcf->redis = rule->zone->redis;

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_limit_methods(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *methods)
{
    u_char                          *p, *last, *comma;
    ngx_str_t                        m;
    ngx_http_kordon_limit_method_t  *name;

    p = value->data + 8;
    last = value->data + value->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');

        m.data = p;
        m.len = (comma ? comma : last) - p;

        for (name = ngx_http_kordon_limit_method_names; name->name.len;
             name++)
        {
            if (name->name.len == m.len
                && ngx_strncmp(name->name.data, m.data, m.len) == 0)
            {
                break;
            }
        }

        if (name->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown method \"%V\" in \"%V\"", &m, value);
            return NGX_CONF_ERROR;
        }

        *methods |= name->method;

        p = comma ? comma + 1 : last;
    }

    if (*methods == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "no method in \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_limit_guard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_limit_loc_conf_t *llcf = conf;

    char                           *rv;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_kordon_limit_guard_t  *guard;

    if (llcf->guard) {
        return "is duplicate";
    }

    guard = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_limit_guard_t));
    if (guard == NULL) {
        return NGX_CONF_ERROR;
    }

    guard->failures = 5;
    guard->ip_failures = 50;
    guard->window = 15 * 60 * 1000;
    guard->lockout = 30 * 1000;
    guard->lockout_max = 60 * 60 * 1000;
    guard->fail_open = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_kordon_limit_guard_param(cf, guard, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (guard->name.len == 0 || guard->redis_name.len == 0
        || (guard->account == NULL && guard->ip == NULL
            && guard->json_fields == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs name=, redis= and account=, "
                           "account_json= or ip=",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (guard->lockout_max < guard->lockout) {
        return "has lockout_max= below lockout=";
    }

    guard->redis = ngx_http_kordon_redis_lookup(cf, &guard->redis_name);
    if (guard->redis == NULL) {
        return NGX_CONF_ERROR;
    }

    llcf->guard = guard;

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_limit_guard_param(ngx_conf_t *cf,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *v)
{
    u_char      *eq;
    ngx_int_t    n;
    ngx_str_t    name, arg;
    ngx_msec_t   ms;

    eq = ngx_strlchr(v->data, v->data + v->len, '=');
    if (eq == NULL) {
        goto invalid;
    }

    name.data = v->data;
    name.len = eq - v->data;
    arg.data = eq + 1;
    arg.len = v->data + v->len - arg.data;

    if (arg.len == 0) {
        goto invalid;
    }

    if (ngx_http_kordon_limit_is(&name, "name")) {
        guard->name = arg;
        if (kordon_limit_name_ok(arg.data, arg.len)) {
            return NGX_CONF_OK;
        }
        goto invalid;
    }

    if (ngx_http_kordon_limit_is(&name, "redis")) {
        guard->redis_name = arg;
        return NGX_CONF_OK;
    }

    if (ngx_http_kordon_limit_is(&name, "account")) {
        guard->account = ngx_http_kordon_limit_cv(cf, &arg);
        return guard->account ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (ngx_http_kordon_limit_is(&name, "account_json")) {
        return ngx_http_kordon_limit_json_fields(cf, guard, &arg);
    }

    if (ngx_http_kordon_limit_is(&name, "ip")) {
        guard->ip = ngx_http_kordon_limit_cv(cf, &arg);
        return guard->ip ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    if (ngx_http_kordon_limit_is(&name, "fail")) {
        if (ngx_http_kordon_limit_fail(v, &guard->fail_open) == NGX_OK) {
            return NGX_CONF_OK;
        }
        goto invalid;
    }

    n = ngx_atoi(arg.data, arg.len);

    if (ngx_http_kordon_limit_is(&name, "failures")) {
        guard->failures = n;
        return (n >= 1 && n <= 1000000) ? NGX_CONF_OK : "invalid failures=";
    }

    if (ngx_http_kordon_limit_is(&name, "ip_failures")) {
        guard->ip_failures = n;
        return (n >= 1 && n <= 1000000) ? NGX_CONF_OK
                                        : "invalid ip_failures=";
    }

    ms = ngx_parse_time(&arg, 0);
    if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
        goto invalid;
    }

    if (ngx_http_kordon_limit_is(&name, "window")) {
        guard->window = ms;
    } else if (ngx_http_kordon_limit_is(&name, "lockout")) {
        guard->lockout = ms;
    } else if (ngx_http_kordon_limit_is(&name, "lockout_max")) {
        guard->lockout_max = ms;
    } else if (ngx_http_kordon_limit_is(&name, "timeout")) {
        guard->timeout = ms;
    } else {
        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"", v);

    return NGX_CONF_ERROR;
}


/* "email,phone": the body's fields that name the account, in order */

static char *
ngx_http_kordon_limit_json_fields(ngx_conf_t *cf,
    ngx_http_kordon_limit_guard_t *guard, ngx_str_t *arg)
{
    u_char     *p, *last, *comma;
    ngx_str_t  *field;

    guard->json_fields = ngx_array_create(cf->pool,
                                          NGX_HTTP_KORDON_LIMIT_JSON_FIELDS_MAX,
                                          sizeof(ngx_str_t));
    if (guard->json_fields == NULL) {
        return NGX_CONF_ERROR;
    }

    p = arg->data;
    last = arg->data + arg->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');

        if (guard->json_fields->nelts == NGX_HTTP_KORDON_LIMIT_JSON_FIELDS_MAX
            || p == (comma ? comma : last))
        {
            return "has an invalid account_json=";
        }

        field = ngx_array_push(guard->json_fields);
        if (field == NULL) {
            return NGX_CONF_ERROR;
        }

        field->len = (comma ? comma : last) - p;

        /* NUL-terminated for json_object_get() */

        field->data = ngx_pnalloc(cf->pool, field->len + 1);
        if (field->data == NULL) {
            return NGX_CONF_ERROR;
        }

        *ngx_cpymem(field->data, p, field->len) = '\0';

        p = comma ? comma + 1 : last;
    }

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_kordon_limit_is(ngx_str_t *name, char *s)
{
    return name->len == ngx_strlen(s)
           && ngx_strncmp(name->data, s, name->len) == 0;
}


static ngx_http_complex_value_t *
ngx_http_kordon_limit_cv(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NULL;
    }

    return cv;
}


static ngx_int_t
ngx_http_kordon_limit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_kordon_limit_ctx_t  *ctx;

    ctx = ngx_http_kordon_limit_get_ctx(r->main);

    if (ctx == NULL || ctx->status.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->status.data;
    v->len = ctx->status.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Adds the RateLimit fields to every answer of a limited location and
 * reports the answer's status to the brute-force guard.
 */

static ngx_int_t
ngx_http_kordon_limit_header_filter(ngx_http_request_t *r)
{
    ngx_http_kordon_limit_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_kordon_limit_get_ctx(r);

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if ((ctx->headers || ctx->retry_after)
        && ngx_http_kordon_limit_add_headers(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->guard && !ctx->guard_reported) {
        ctx->guard_reported = 1;
        ngx_http_kordon_limit_guard_report(r, ctx->guard, ctx,
                                           r->headers_out.status);
    }

    return ngx_http_next_header_filter(r);
}


/*
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers,
 * structured-field lists): one item per limit that applied, named after
 * its zone.  q is the burst (what a full bucket admits at once) and w
 * the seconds in which an empty bucket refills; r is what the bucket
 * admits now and t the seconds until it is full again.
 */

static ngx_int_t
ngx_http_kordon_limit_add_headers(ngx_http_request_t *r,
    ngx_http_kordon_limit_ctx_t *ctx)
{
    u_char                          *policy, *limit, *p, *q;
    size_t                           len;
    ngx_uint_t                       i;
    ngx_http_kordon_limit_zone_t    *zone;
    ngx_http_kordon_limit_result_t  *res;

    len = 0;

    for (i = 0; i < ctx->n; i++) {
        len += sizeof("\"\";q=;w=, ") - 1 + ctx->results[i].zone->name.len
               + 2 * NGX_INT64_LEN;
    }

    policy = ngx_pnalloc(r->pool, 2 * len + 1);
    if (policy == NULL) {
        return NGX_ERROR;
    }

    limit = policy + len;
    p = policy;
    q = limit;

    for (i = 0; i < ctx->n; i++) {
        res = &ctx->results[i];

        if (!res->applied || res->error) {
            continue;
        }

        zone = res->zone;

        p = ngx_sprintf(p, "%s\"%V\";q=%uL;w=%uL", p == policy ? "" : ", ",
                        &zone->name, zone->gcra_us.burst,
                        kordon_limit_window(&zone->gcra_us,
                                            NGX_HTTP_KORDON_LIMIT_US));

        q = ngx_sprintf(q, "%s\"%V\";r=%uL;t=%uL", q == limit ? "" : ", ",
                        &zone->name, res->remaining, res->reset_s);
    }

    if (p != policy) {
        if (ngx_http_kordon_limit_add_header(r, "RateLimit-Policy", policy,
                                             p - policy)
            != NGX_OK
            || ngx_http_kordon_limit_add_header(r, "RateLimit", limit,
                                                q - limit)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->retry_after == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_kordon_limit_add_header(r, "Retry-After", p,
                                    ngx_sprintf(p, "%ui", ctx->retry_after)
                                    - p);
}


static ngx_int_t
ngx_http_kordon_limit_add_header(ngx_http_request_t *r, char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;
    h->lowcase_key = NULL;

    return NGX_OK;
}


ngx_http_kordon_limit_zone_t **
ngx_http_kordon_limit_zones(ngx_cycle_t *cycle, ngx_uint_t *n)
{
    ngx_http_kordon_limit_main_conf_t  *lmcf;

    *n = 0;

    /* NULL without an http{} block */

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_limit_module);
    if (lmcf == NULL) {
        return NULL;
    }

    *n = lmcf->zones.nelts;

    return lmcf->zones.elts;
}


static ngx_int_t
ngx_http_kordon_limit_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_kordon_limit_vars; v->name.len; v++) {
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
ngx_http_kordon_limit_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_limit_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_limit_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->zones, cf->pool, 4,
                       sizeof(ngx_http_kordon_limit_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


static void *
ngx_http_kordon_limit_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_limit_loc_conf_t  *llcf;

    /*
     * set by ngx_pcalloc():
     *
     *     llcf->rules = NULL;
     *     llcf->guard = NULL;
     *     llcf->redis = NULL;
     */

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_limit_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    return llcf;
}


static char *
ngx_http_kordon_limit_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_limit_loc_conf_t *prev = parent;
    ngx_http_kordon_limit_loc_conf_t *conf = child;

    /* as limit_req: a level with limits of its own inherits none */

    if (conf->rules == NULL) {
        conf->rules = prev->rules;
        conf->redis = prev->redis;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kordon_limit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* after the access phase: the limits see the authenticated user */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_limit_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_kordon_limit_header_filter;

    return ngx_http_kordon_limit_scripts_init(cf);
}


/* each worker syncs the hybrid zones on a timer of its own */

static ngx_int_t
ngx_http_kordon_limit_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i, n;
    ngx_http_kordon_limit_zone_t  **zones;

    zones = ngx_http_kordon_limit_zones(cycle, &n);

    for (i = 0; i < n; i++) {
        if (zones[i]->mode == NGX_HTTP_KORDON_LIMIT_HYBRID
            && ngx_http_kordon_limit_sync_start(cycle, zones[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
