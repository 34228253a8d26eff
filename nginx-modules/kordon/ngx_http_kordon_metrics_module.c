/*
 * Kordon edge: metrics in the Prometheus text format.
 *
 * "kordon_metrics" renders, from shared memory so that every worker's
 * share is in it:
 *
 *   - nginx's own connection counters (those of stub_status) as
 *     kordon_edge_connections_* and kordon_edge_requests_total;
 *   - request counters and duration histograms by route template (never
 *     the raw URI), method and status class, counted in the log phase
 *     by every location with "kordon_metrics_requests on" (the default);
 *   - auth failures by reason, rate-limited requests by limit, cache
 *     results, read from the variables $kordon_auth_error,
 *     $kordon_limit_status and $kordon_cache_status of the other
 *     modules, looked up by name at configuration time: a module that is
 *     not loaded leaves its metric at zero, without an error;
 *   - kordon_events' Kafka counters, which that module writes into this
 *     zone (ngx_http_kordon_metrics_kafka());
 *   - kordon_redis' per-server counters, read from its own zone through
 *     functions found with dlsym() when that module is loaded;
 *   - kordon_cache's counters of what happens besides a request's
 *     result (stores, purges, channel messages, single-flight waits),
 *     read the same way from its zone.
 *
 * The request path takes no lock: counters are bumped with relaxed
 * atomic adds (kordon_metrics_core.c).  The zone holds a slot per route
 * name that the configuration has, assigned by the master while it
 * reads the configuration; a reload that keeps a route keeps its
 * counters.  The zone's size is a power of two of slots (at least 64),
 * so adding a few routes does not reset everything either.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <dlfcn.h>
#include "ngx_http_kordon.h"
#include "ngx_http_kordon_redis.h"
#include "ngx_http_kordon_cache.h"


#define NGX_HTTP_KORDON_METRICS_SLOTS_MIN  64

/* the bytes of a sample line besides its escaped route label */
#define NGX_HTTP_KORDON_METRICS_LINE_MAX   192

/* kordon_cache's counter families, at most */
#define NGX_HTTP_KORDON_METRICS_CACHE_MAX  16


typedef ngx_http_kordon_redis_server_t **(*ngx_http_kordon_redis_servers_pt)(
    ngx_cycle_t *cycle, ngx_uint_t *n);
typedef ngx_http_kordon_redis_stats_t *(*ngx_http_kordon_redis_stats_pt)(
    ngx_http_kordon_redis_server_t *server);
typedef ngx_str_t *(*ngx_http_kordon_redis_name_pt)(
    ngx_http_kordon_redis_server_t *server);
typedef ngx_http_kordon_cache_stats_t *(*ngx_http_kordon_cache_stats_pt)(
    void);


typedef struct {
    ngx_shm_zone_t                    *shm_zone;
    kordon_metrics_shm_t              *sh;
    ngx_array_t                       *routes;      /* ngx_str_t */
    uint32_t                          *slots;       /* route + 1 -> slot */
    u_char                            *shown;       /* first of its slot */
    uint32_t                           nslots;

    ngx_int_t                          auth_index;
    ngx_int_t                          limit_index;
    ngx_int_t                          cache_index;

    ngx_http_kordon_redis_servers_pt   redis_servers;
    ngx_http_kordon_redis_stats_pt     redis_stats;
    ngx_http_kordon_redis_name_pt      redis_name;
    ngx_http_kordon_cache_stats_pt     cache_stats;
} ngx_http_kordon_metrics_main_conf_t;


typedef struct {
    ngx_flag_t                         requests;
} ngx_http_kordon_metrics_loc_conf_t;


typedef struct {
    ngx_str_t                 name;
    ngx_str_t                 help;
    ngx_str_t                 type;
    ngx_atomic_t            **counter;
} ngx_http_kordon_metric_t;


static ngx_int_t ngx_http_kordon_metrics_handler(ngx_http_request_t *r);
static size_t ngx_http_kordon_metrics_size(ngx_http_request_t *r,
    ngx_http_kordon_metrics_main_conf_t *mcf);
static u_char *ngx_http_kordon_metrics_connections(u_char *p);
static u_char *ngx_http_kordon_metrics_routes(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf);
static u_char *ngx_http_kordon_metrics_route(u_char *p, ngx_uint_t kind,
    kordon_metrics_route_t *slot);
static u_char *ngx_http_kordon_metrics_histogram(u_char *p, char *name,
    u_char *label, size_t len, kordon_histogram_t *h);
static u_char *ngx_http_kordon_metrics_outcomes(u_char *p,
    kordon_metrics_shm_t *sh);
static u_char *ngx_http_kordon_metrics_limits(u_char *p,
    kordon_metrics_shm_t *sh, ngx_uint_t errors);
static u_char *ngx_http_kordon_metrics_kafka_write(u_char *p,
    kordon_metrics_kafka_t *k);
static u_char *ngx_http_kordon_metrics_redis(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf);
static u_char *ngx_http_kordon_metrics_cache(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf);
static ngx_int_t ngx_http_kordon_metrics_log_handler(ngx_http_request_t *r);
static void ngx_http_kordon_metrics_count(ngx_http_request_t *r,
    ngx_http_kordon_metrics_main_conf_t *mcf, kordon_metrics_shm_t *sh);
static ngx_int_t ngx_http_kordon_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_kordon_metrics_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_metrics_init(ngx_conf_t *cf);
static char *ngx_http_kordon_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* the zone of the running configuration, for kordon_events */
static kordon_metrics_shm_t  *ngx_http_kordon_metrics_shm;


static ngx_command_t  ngx_http_kordon_metrics_commands[] = {

    { ngx_string("kordon_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kordon_metrics,
      0,
      0,
      NULL },

    { ngx_string("kordon_metrics_requests"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_metrics_loc_conf_t, requests),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_kordon_metrics_init,          /* postconfiguration */

    ngx_http_kordon_metrics_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_metrics_create_loc_conf, /* create location configuration */
    ngx_http_kordon_metrics_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_metrics_module_ctx,   /* module context */
    ngx_http_kordon_metrics_commands,      /* module directives */
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


#if (NGX_STAT_STUB)

#define ngx_http_kordon_metric(n, h, t, c)                                   \
    { ngx_string("kordon_edge_" n), ngx_string(h), ngx_string(t), c }

static ngx_http_kordon_metric_t  ngx_http_kordon_metrics_table[] = {

    ngx_http_kordon_metric("connections_accepted_total",
                           "Client connections accepted.",
                           "counter", &ngx_stat_accepted),

    ngx_http_kordon_metric("connections_handled_total",
                           "Client connections handled (not dropped for "
                           "lack of resources).",
                           "counter", &ngx_stat_handled),

    ngx_http_kordon_metric("connections_active",
                           "Client connections open now, idle ones "
                           "included.",
                           "gauge", &ngx_stat_active),

    ngx_http_kordon_metric("connections_reading",
                           "Connections where nginx reads a request header.",
                           "gauge", &ngx_stat_reading),

    ngx_http_kordon_metric("connections_writing",
                           "Connections with a request in progress.",
                           "gauge", &ngx_stat_writing),

    ngx_http_kordon_metric("connections_waiting",
                           "Idle keepalive connections.",
                           "gauge", &ngx_stat_waiting),

    ngx_http_kordon_metric("requests_total",
                           "Client requests.",
                           "counter", &ngx_stat_requests)
};


#define NGX_HTTP_KORDON_METRICS_N                                            \
    (sizeof(ngx_http_kordon_metrics_table) / sizeof(ngx_http_kordon_metric_t))


#endif


/*
 * The content handler.  The body is sized from the configuration (an
 * upper bound of every line it may write) and written in one buffer.
 */

static ngx_int_t
ngx_http_kordon_metrics_handler(ngx_http_request_t *r)
{
    u_char                               *p;
    ngx_int_t                             rc;
    ngx_buf_t                            *b;
    ngx_chain_t                           out;
    ngx_http_kordon_metrics_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_metrics_module);

    b = ngx_create_temp_buf(r->pool, ngx_http_kordon_metrics_size(r, mcf));
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_kordon_metrics_connections(b->last);

    if (mcf->sh != NULL) {
        p = ngx_http_kordon_metrics_routes(p, mcf);
        p = ngx_http_kordon_metrics_outcomes(p, mcf->sh);
        p = ngx_http_kordon_metrics_kafka_write(p, &mcf->sh->kafka);
    }

    p = ngx_http_kordon_metrics_redis(p, mcf);
    p = ngx_http_kordon_metrics_cache(p, mcf);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


/* an upper bound of the body's size: lines times their longest form */

static size_t
ngx_http_kordon_metrics_size(ngx_http_request_t *r,
    ngx_http_kordon_metrics_main_conf_t *mcf)
{
    size_t       size, lines;
    ngx_str_t   *route;
    ngx_uint_t   i, n;

    /* HELP and TYPE of every family, connections, outcomes, Kafka */
    size = 64 * 2 * NGX_HTTP_KORDON_METRICS_LINE_MAX;

    lines = KORDON_METRICS_AUTH_REASONS + KORDON_METRICS_CACHE_RESULTS
            + 2 * (KORDON_METRICS_LIMITS_MAX + 1) + 16;
    size += lines * (NGX_HTTP_KORDON_METRICS_LINE_MAX
                     + 2 * KORDON_METRICS_LIMIT_LEN_MAX);

    /* per route: each method and class, and two histograms */
    lines = KORDON_METRICS_METHODS * KORDON_METRICS_CLASSES
            + 2 * (KORDON_HISTOGRAM_BUCKETS + 2);

    size += lines * (NGX_HTTP_KORDON_METRICS_LINE_MAX
                     + 2 * (sizeof(KORDON_METRICS_OTHER) - 1));

    route = mcf->routes ? mcf->routes->elts : NULL;
    n = mcf->routes ? mcf->routes->nelts : 0;

    for (i = 0; i < n; i++) {
        size += lines * (NGX_HTTP_KORDON_METRICS_LINE_MAX
                         + 2 * ngx_min(route[i].len,
                                       KORDON_METRICS_ROUTE_LEN_MAX));
    }

    if (mcf->redis_servers != NULL) {
        (void) mcf->redis_servers((ngx_cycle_t *) ngx_cycle, &n);
        size += n * 8 * (NGX_HTTP_KORDON_METRICS_LINE_MAX
                         + 2 * NGX_MAXHOSTNAMELEN);
    }

    /* kordon_cache: HELP, TYPE and a sample for each of its counters */
    size += 3 * NGX_HTTP_KORDON_METRICS_CACHE_MAX
            * NGX_HTTP_KORDON_METRICS_LINE_MAX;

    return size;
}


static u_char *
ngx_http_kordon_metrics_connections(u_char *p)
{
#if (NGX_STAT_STUB)

    ngx_uint_t                 i;
    ngx_atomic_int_t           value;
    ngx_http_kordon_metric_t  *m;

    for (i = 0; i < NGX_HTTP_KORDON_METRICS_N; i++) {
        m = &ngx_http_kordon_metrics_table[i];
        value = **m->counter;

        p = ngx_sprintf(p, "# HELP %V %V\n# TYPE %V %V\n%V %uA\n",
                        &m->name, &m->help, &m->name, &m->type,
                        &m->name, value);
    }

#endif

    return p;
}


#define NGX_HTTP_KORDON_METRICS_REQUESTS   0
#define NGX_HTTP_KORDON_METRICS_DURATION   1
#define NGX_HTTP_KORDON_METRICS_UPSTREAM   2

static char  *ngx_http_kordon_metrics_route_help[] = {
    "# HELP kordon_edge_http_requests_total HTTP requests by route "
    "template, method and status class.\n"
    "# TYPE kordon_edge_http_requests_total counter\n",

    "# HELP kordon_edge_http_request_duration_seconds Time from the first "
    "byte of the request to the log phase.\n"
    "# TYPE kordon_edge_http_request_duration_seconds histogram\n",

    "# HELP kordon_edge_http_upstream_duration_seconds Time spent on the "
    "upstream, every try summed.\n"
    "# TYPE kordon_edge_http_upstream_duration_seconds histogram\n"
};


/* each family once, with a sample set for every route that has some */

static u_char *
ngx_http_kordon_metrics_routes(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf)
{
    ngx_uint_t  i, kind;

    for (kind = 0; kind < 3; kind++) {
        p = ngx_cpymem(p, ngx_http_kordon_metrics_route_help[kind],
                       ngx_strlen(ngx_http_kordon_metrics_route_help[kind]));

        for (i = 0; i < mcf->routes->nelts + 1; i++) {
            if (mcf->shown[i]) {
                p = ngx_http_kordon_metrics_route(p, kind,
                                              &mcf->sh->routes[mcf->slots[i]]);
            }
        }
    }

    return p;
}


static u_char *
ngx_http_kordon_metrics_route(u_char *p, ngx_uint_t kind,
    kordon_metrics_route_t *slot)
{
    size_t      len;
    u_char      label[2 * KORDON_METRICS_ROUTE_LEN_MAX];
    uint64_t    v;
    ngx_uint_t  m, c;

    len = kordon_metrics_label_escape(label, slot->name, slot->name_len);

    if (kind == NGX_HTTP_KORDON_METRICS_DURATION) {
        return ngx_http_kordon_metrics_histogram(p,
                   "kordon_edge_http_request_duration_seconds", label, len,
                   &slot->duration);
    }

    if (kind == NGX_HTTP_KORDON_METRICS_UPSTREAM) {
        return ngx_http_kordon_metrics_histogram(p,
                   "kordon_edge_http_upstream_duration_seconds", label, len,
                   &slot->upstream);
    }

    for (m = 0; m < KORDON_METRICS_METHODS; m++) {
        for (c = 0; c < KORDON_METRICS_CLASSES; c++) {
            v = kordon_metrics_load(&slot->requests[m][c]);

            if (v == 0) {
                continue;
            }

            p = ngx_sprintf(p, "kordon_edge_http_requests_total{route=\"%*s\","
                            "method=\"%s\",code_class=\"%s\"} %uL\n",
                            len, label, kordon_metrics_methods[m],
                            kordon_metrics_classes[c], v);
        }
    }

    return p;
}


/* a histogram's samples, none for a route it never observed */

static u_char *
ngx_http_kordon_metrics_histogram(u_char *p, char *name, u_char *label,
    size_t len, kordon_histogram_t *h)
{
    char        sum[32];
    size_t      n;
    uint64_t    cumulative[KORDON_HISTOGRAM_BUCKETS], sum_ms;
    ngx_uint_t  i;

    kordon_histogram_read(h, cumulative, &sum_ms);

    if (cumulative[KORDON_HISTOGRAM_BUCKETS - 1] == 0) {
        return p;
    }

    for (i = 0; i < KORDON_HISTOGRAM_BUCKETS; i++) {
        p = ngx_sprintf(p, "%s_bucket{route=\"%*s\",le=\"%s\"} %uL\n",
                        name, len, label, kordon_histogram_le[i],
                        cumulative[i]);
    }

    n = kordon_metrics_seconds(sum, sum_ms);

    return ngx_sprintf(p, "%s_sum{route=\"%*s\"} %*s\n"
                       "%s_count{route=\"%*s\"} %uL\n",
                       name, len, label, n, sum,
                       name, len, label,
                       cumulative[KORDON_HISTOGRAM_BUCKETS - 1]);
}


/* auth failures, cache results, rate limits: fixed or bounded sets */

static u_char *
ngx_http_kordon_metrics_outcomes(u_char *p, kordon_metrics_shm_t *sh)
{
    ngx_uint_t  i;

    p = ngx_cpymem(p, "# HELP kordon_edge_auth_failures_total Requests "
                   "refused by authentication or authorization, by "
                   "reason.\n# TYPE kordon_edge_auth_failures_total "
                   "counter\n",
                   sizeof("# HELP kordon_edge_auth_failures_total Requests "
                   "refused by authentication or authorization, by "
                   "reason.\n# TYPE kordon_edge_auth_failures_total "
                   "counter\n") - 1);

    for (i = 0; i < KORDON_METRICS_AUTH_REASONS; i++) {
        p = ngx_sprintf(p, "kordon_edge_auth_failures_total{reason=\"%s\"} "
                        "%uL\n", kordon_metrics_auth_reasons[i],
                        kordon_metrics_load(&sh->auth_failures[i]));
    }

    p = ngx_cpymem(p, "# HELP kordon_edge_cache_requests_total Cacheable "
                   "requests by result.\n# TYPE "
                   "kordon_edge_cache_requests_total counter\n",
                   sizeof("# HELP kordon_edge_cache_requests_total Cacheable "
                   "requests by result.\n# TYPE "
                   "kordon_edge_cache_requests_total counter\n") - 1);

    for (i = 0; i < KORDON_METRICS_CACHE_RESULTS; i++) {
        p = ngx_sprintf(p, "kordon_edge_cache_requests_total{result=\"%s\"} "
                        "%uL\n", kordon_metrics_cache_results[i],
                        kordon_metrics_load(&sh->cache[i]));
    }

    p = ngx_http_kordon_metrics_limits(p, sh, 0);

    return ngx_http_kordon_metrics_limits(p, sh, 1);
}


/*
 * Requests refused by a limit (or limits that failed), one sample per
 * name: slots of the same name (two workers added it at once) add up.
 */

static u_char *
ngx_http_kordon_metrics_limits(u_char *p, kordon_metrics_shm_t *sh,
    ngx_uint_t errors)
{
    size_t                   len;
    u_char                   label[2 * KORDON_METRICS_LIMIT_LEN_MAX];
    uint64_t                 v;
    ngx_uint_t               i, k, dup;
    kordon_metrics_limit_t  *a, *b;

    if (errors) {
        p = ngx_sprintf(p, "# HELP kordon_edge_rate_limit_errors_total "
                        "Requests whose limit could not be checked, by "
                        "limit.\n# TYPE kordon_edge_rate_limit_errors_total "
                        "counter\n");
    } else {
        p = ngx_sprintf(p, "# HELP kordon_edge_rate_limited_total Requests "
                        "refused by a rate limit, by limit.\n"
                        "# TYPE kordon_edge_rate_limited_total counter\n");
    }

    for (i = 0; i <= KORDON_METRICS_LIMITS_MAX; i++) {
        a = &sh->limits[i];

        if (i < KORDON_METRICS_LIMITS_MAX
            && __atomic_load_n(&a->state, __ATOMIC_ACQUIRE)
               != KORDON_METRICS_SLOT_READY)
        {
            continue;
        }

        dup = 0;
        v = kordon_metrics_load(errors ? &a->errors : &a->limited);

        for (k = 0;
             k < KORDON_METRICS_LIMITS_MAX && i < KORDON_METRICS_LIMITS_MAX;
             k++)
        {
            b = &sh->limits[k];

            if (k == i
                || __atomic_load_n(&b->state, __ATOMIC_ACQUIRE)
                   != KORDON_METRICS_SLOT_READY
                || b->name_len != a->name_len
                || ngx_memcmp(b->name, a->name, a->name_len) != 0)
            {
                continue;
            }

            if (k < i) {
                dup = 1;
                break;
            }

            v += kordon_metrics_load(errors ? &b->errors : &b->limited);
        }

        if (dup || (i == KORDON_METRICS_LIMITS_MAX && v == 0)) {
            continue;
        }

        if (i == KORDON_METRICS_LIMITS_MAX) {
            len = sizeof(KORDON_METRICS_OTHER) - 1;
            ngx_memcpy(label, KORDON_METRICS_OTHER, len);

        } else {
            len = kordon_metrics_label_escape(label, a->name, a->name_len);
        }

        p = ngx_sprintf(p, "kordon_edge_rate_limit%s{limit=\"%*s\"} %uL\n",
                        errors ? "_errors_total" : "ed_total", len, label, v);
    }

    return p;
}


static u_char *
ngx_http_kordon_metrics_kafka_write(u_char *p, kordon_metrics_kafka_t *k)
{
    uint64_t    queue;
    ngx_uint_t  i;

    queue = 0;

    for (i = 0; i < KORDON_METRICS_WORKERS_MAX; i++) {
        queue += kordon_metrics_load(&k->queue[i]);
    }

    return ngx_sprintf(p,
        "# HELP kordon_edge_kafka_queue_messages Request events waiting in "
        "the producers' queues.\n"
        "# TYPE kordon_edge_kafka_queue_messages gauge\n"
        "kordon_edge_kafka_queue_messages %uL\n"
        "# HELP kordon_edge_kafka_messages_produced_total Request events "
        "queued for the broker.\n"
        "# TYPE kordon_edge_kafka_messages_produced_total counter\n"
        "kordon_edge_kafka_messages_produced_total %uL\n"
        "# HELP kordon_edge_kafka_messages_delivered_total Request events "
        "the broker acknowledged.\n"
        "# TYPE kordon_edge_kafka_messages_delivered_total counter\n"
        "kordon_edge_kafka_messages_delivered_total %uL\n"
        "# HELP kordon_edge_kafka_messages_dropped_total Request events "
        "lost, by reason.\n"
        "# TYPE kordon_edge_kafka_messages_dropped_total counter\n"
        "kordon_edge_kafka_messages_dropped_total{reason=\"queue_full\"} %uL\n"
        "kordon_edge_kafka_messages_dropped_total{reason=\"produce_error\"} "
        "%uL\n"
        "kordon_edge_kafka_messages_dropped_total{reason=\"delivery_failed\"} "
        "%uL\n"
        "# HELP kordon_edge_kafka_errors_total Errors the Kafka clients "
        "reported (broker down, transport).\n"
        "# TYPE kordon_edge_kafka_errors_total counter\n"
        "kordon_edge_kafka_errors_total %uL\n",
        queue,
        kordon_metrics_load(&k->produced),
        kordon_metrics_load(&k->delivered),
        kordon_metrics_load(&k->dropped_queue_full),
        kordon_metrics_load(&k->dropped_error),
        kordon_metrics_load(&k->delivery_failed),
        kordon_metrics_load(&k->errors));
}


/* kordon_redis' counters of each named server, when it is loaded */

static u_char *
ngx_http_kordon_metrics_redis(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf)
{
    ngx_str_t                        *name;
    ngx_uint_t                        i, k, n;
    ngx_atomic_t                     *v;
    ngx_http_kordon_redis_stats_t    *st;
    ngx_http_kordon_redis_server_t  **servers;

    static struct {
        char    *name;
        char    *help;
        size_t   offset;
    } family[] = {
        { "commands_total", "Commands sent.",
          offsetof(ngx_http_kordon_redis_stats_t, commands) },
        { "errors_total", "Commands that ended with an error reply.",
          offsetof(ngx_http_kordon_redis_stats_t, errors) },
        { "timeouts_total", "Commands that got no reply in time.",
          offsetof(ngx_http_kordon_redis_stats_t, timeouts) },
        { "unavailable_total", "Commands refused or lost for want of a "
          "connection.", offsetof(ngx_http_kordon_redis_stats_t, down) },
        { "reconnects_total", "Reconnection attempts.",
          offsetof(ngx_http_kordon_redis_stats_t, reconnects) },
        { "connect_failures_total", "Connection attempts that failed.",
          offsetof(ngx_http_kordon_redis_stats_t, connect_failures) }
    };

    if (mcf->redis_servers == NULL) {
        return p;
    }

    servers = mcf->redis_servers((ngx_cycle_t *) ngx_cycle, &n);

    for (k = 0; k < sizeof(family) / sizeof(family[0]); k++) {
        p = ngx_sprintf(p, "# HELP kordon_edge_redis_%s %s\n"
                        "# TYPE kordon_edge_redis_%s counter\n",
                        family[k].name, family[k].help, family[k].name);

        for (i = 0; servers != NULL && i < n; i++) {
            st = mcf->redis_stats(servers[i]);
            if (st == NULL) {
                continue;
            }

            name = mcf->redis_name(servers[i]);
            v = (ngx_atomic_t *) ((u_char *) st + family[k].offset);

            p = ngx_sprintf(p, "kordon_edge_redis_%s{server=\"%*s\"} %uA\n",
                            family[k].name,
                            ngx_min(name->len, NGX_MAXHOSTNAMELEN),
                            name->data, *v);
        }
    }

    return p;
}


/*
 * kordon_cache's counters, when it is loaded and its zone exists (one
 * set for the edge, no labels); hits, misses and bypasses are
 * kordon_edge_cache_requests_total{result} above.
 */

static u_char *
ngx_http_kordon_metrics_cache(u_char *p,
    ngx_http_kordon_metrics_main_conf_t *mcf)
{
    ngx_uint_t                      k;
    ngx_atomic_t                   *v;
    ngx_http_kordon_cache_stats_t  *st;

    static struct {
        char    *name;
        char    *help;
        size_t   offset;
    } family[] = {
        { "stores_total", "Answers the cache stored in Redis.",
          offsetof(ngx_http_kordon_cache_stats_t, stores) },
        { "store_errors_total", "Stores Redis refused or never got.",
          offsetof(ngx_http_kordon_cache_stats_t, store_errors) },
        { "not_stored_total", "Misses not stored: a never-cache rule or "
          "the size bound.", offsetof(ngx_http_kordon_cache_stats_t,
                                      not_stored) },
        { "redis_errors_total", "Lookups that failed (down, timeout, "
          "error reply).", offsetof(ngx_http_kordon_cache_stats_t,
                                    redis_errors) },
        { "purges_total", "Tags purged, by the purge route or the "
          "channel.", offsetof(ngx_http_kordon_cache_stats_t, purges) },
        { "channel_messages_total", "Purge messages taken from the Redis "
          "channel.", offsetof(ngx_http_kordon_cache_stats_t,
                               channel_messages) },
        { "channel_ignored_total", "Channel messages that were not a tag "
          "list.", offsetof(ngx_http_kordon_cache_stats_t,
                            channel_ignored) },
        { "lock_waits_total", "Misses that waited for another request's "
          "answer.", offsetof(ngx_http_kordon_cache_stats_t, lock_waits) },
        { "lock_timeouts_total", "Waits that ended in the timeout and went "
          "upstream.", offsetof(ngx_http_kordon_cache_stats_t,
                                lock_timeouts) }
    };

    if (mcf->cache_stats == NULL) {
        return p;
    }

    st = mcf->cache_stats();
    if (st == NULL) {
        return p;
    }

    for (k = 0; k < sizeof(family) / sizeof(family[0]); k++) {
        v = (ngx_atomic_t *) ((u_char *) st + family[k].offset);

        p = ngx_sprintf(p, "# HELP kordon_edge_cache_%s %s\n"
                        "# TYPE kordon_edge_cache_%s counter\n"
                        "kordon_edge_cache_%s %uA\n",
                        family[k].name, family[k].help, family[k].name,
                        family[k].name, *v);
    }

    return p;
}


/*
 * The log phase: one request counted in its route's slot.  Subrequests
 * and locations with "kordon_metrics_requests off" are not counted.
 */

static ngx_int_t
ngx_http_kordon_metrics_log_handler(ngx_http_request_t *r)
{
    ngx_http_kordon_metrics_loc_conf_t   *mlcf;
    ngx_http_kordon_metrics_main_conf_t  *mcf;

    if (r != r->main) {
        return NGX_OK;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_metrics_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_metrics_module);

    if (mcf->sh == NULL || !mlcf->requests) {
        return NGX_OK;
    }

    ngx_http_kordon_metrics_count(r, mcf, mcf->sh);

    return NGX_OK;
}


static void
ngx_http_kordon_metrics_count(ngx_http_request_t *r,
    ngx_http_kordon_metrics_main_conf_t *mcf, kordon_metrics_shm_t *sh)
{
    int                         i;
    ngx_str_t                   route;
    ngx_uint_t                  n, status, upstream;
    ngx_msec_int_t              ms;
    ngx_time_t                 *tp;
    kordon_metrics_route_t     *slot;
    ngx_http_variable_value_t  *v;
    ngx_http_upstream_state_t  *state;

    slot = &sh->routes[mcf->slots[ngx_http_kordon_route(r, &route)]];

    status = r->err_status ? r->err_status : r->headers_out.status;

    kordon_metrics_add(&slot->requests[kordon_metrics_method_index(
                                           r->method_name.data,
                                           r->method_name.len)]
                                      [kordon_metrics_class_index(status)],
                       1);

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    kordon_histogram_observe(&slot->duration, ngx_max(ms, 0));

    if (r->upstream_states != NULL && r->upstream_states->nelts > 0) {
        state = r->upstream_states->elts;
        upstream = 0;

        for (n = 0; n < r->upstream_states->nelts; n++) {
            if (state[n].status && state[n].response_time != (ngx_msec_t) -1)
            {
                upstream += state[n].response_time;
            }
        }

        kordon_histogram_observe(&slot->upstream, upstream);
    }

    if (mcf->auth_index != NGX_ERROR) {
        v = ngx_http_get_indexed_variable(r, mcf->auth_index);

        if (v != NULL && !v->not_found) {
            i = kordon_metrics_auth_index(v->data, v->len);
            if (i >= 0) {
                kordon_metrics_add(&sh->auth_failures[i], 1);
            }
        }
    }

    if (mcf->limit_index != NGX_ERROR) {
        v = ngx_http_get_indexed_variable(r, mcf->limit_index);

        if (v != NULL && !v->not_found) {
            kordon_metrics_limit_count(sh, v->data, v->len);
        }
    }

    if (mcf->cache_index != NGX_ERROR) {
        v = ngx_http_get_indexed_variable(r, mcf->cache_index);

        if (v != NULL && !v->not_found) {
            i = kordon_metrics_cache_index(v->data, v->len);
            if (i >= 0) {
                kordon_metrics_add(&sh->cache[i], 1);
            }
        }
    }
}


kordon_metrics_kafka_t *
ngx_http_kordon_metrics_kafka(void)
{
    return ngx_http_kordon_metrics_shm ? &ngx_http_kordon_metrics_shm->kafka
                                       : NULL;
}


/*
 * In the master, while a configuration is read: the table is the old
 * one (same size, a reload) or a new one, and each configured route
 * gets its slot by name.
 */

static ngx_int_t
ngx_http_kordon_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kordon_metrics_main_conf_t  *omcf = data;

    size_t                                size;
    ngx_str_t                            *route;
    ngx_uint_t                            i, k;
    ngx_slab_pool_t                      *shpool;
    kordon_metrics_shm_t                 *sh;
    ngx_http_kordon_metrics_main_conf_t  *mcf;

    mcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (omcf != NULL) {
        sh = omcf->sh;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        size = kordon_metrics_shm_size(mcf->nslots);

        sh = ngx_slab_alloc(shpool, size);
        if (sh == NULL) {
            return NGX_ERROR;
        }

        kordon_metrics_shm_init(sh, mcf->nslots);
        shpool->data = sh;
    }

    mcf->sh = sh;
    ngx_http_kordon_metrics_shm = sh;

    route = mcf->routes->elts;
    mcf->slots[0] = 0;
    mcf->shown[0] = 1;

    for (i = 0; i < mcf->routes->nelts; i++) {
        mcf->slots[i + 1] = kordon_metrics_route_slot(sh, route[i].data,
                                                      route[i].len);

        /*
         * routes that share a slot (the table is full: "other"; or two
         * names cut to one) are rendered once
         */

        mcf->shown[i + 1] = 1;

        for (k = 0; k <= i; k++) {
            if (mcf->slots[k] == mcf->slots[i + 1]) {
                mcf->shown[i + 1] = 0;
                break;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_kordon_variable_index(ngx_conf_t *cf, char *name)
{
    ngx_str_t                   s;
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    s.data = (u_char *) name;
    s.len = ngx_strlen(name);

    /*
     * ngx_http_get_variable_index() of a name nobody defines would make
     * nginx refuse the configuration ("unknown variable"): look first
     */

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len == s.len
            && ngx_strncmp(key[i].key.data, s.data, s.len) == 0)
        {
            return ngx_http_get_variable_index(cf, &s);
        }
    }

    return NGX_ERROR;
}


static void *
ngx_http_kordon_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_metrics_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_metrics_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->auth_index = NGX_ERROR;
    mcf->limit_index = NGX_ERROR;
    mcf->cache_index = NGX_ERROR;

    return mcf;
}


static void *
ngx_http_kordon_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_metrics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_metrics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->requests = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_kordon_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_metrics_loc_conf_t *prev = parent;
    ngx_http_kordon_metrics_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->requests, prev->requests, 1);

    return NGX_CONF_OK;
}


/*
 * After every location is merged (so every route is known): the zone,
 * sized for the routes, the other modules' variables, the log handler.
 */

static ngx_int_t
ngx_http_kordon_metrics_init(ngx_conf_t *cf)
{
    size_t                                size;
    ngx_str_t                             name;
    uint32_t                              nslots;
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_kordon_metrics_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_kordon_metrics_module);

    mcf->routes = ngx_http_kordon_routes(cf);

    mcf->slots = ngx_pcalloc(cf->pool,
                             (mcf->routes->nelts + 1) * sizeof(uint32_t));
    if (mcf->slots == NULL) {
        return NGX_ERROR;
    }

    mcf->shown = ngx_pcalloc(cf->pool, mcf->routes->nelts + 1);
    if (mcf->shown == NULL) {
        return NGX_ERROR;
    }

    for (nslots = NGX_HTTP_KORDON_METRICS_SLOTS_MIN;
         nslots < mcf->routes->nelts + 1;
         nslots *= 2)
    {
        /* void */
    }

    mcf->nslots = nslots;

    size = kordon_metrics_shm_size(nslots);
    size = 2 * ngx_align(size, ngx_pagesize) + 16 * ngx_pagesize;

    ngx_str_set(&name, "kordon_metrics");

    mcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                          &ngx_http_kordon_metrics_module);
    if (mcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->shm_zone->init = ngx_http_kordon_metrics_init_zone;
    mcf->shm_zone->data = mcf;

    mcf->auth_index = ngx_http_kordon_variable_index(cf,
                                                     "kordon_auth_error");
    mcf->limit_index = ngx_http_kordon_variable_index(cf,
                                                      "kordon_limit_status");
    mcf->cache_index = ngx_http_kordon_variable_index(cf,
                                                      "kordon_cache_status");

    /* nginx loads modules with RTLD_GLOBAL: kordon_redis, if loaded */
    mcf->redis_servers = (ngx_http_kordon_redis_servers_pt)
                         dlsym(RTLD_DEFAULT, "ngx_http_kordon_redis_servers");
    mcf->redis_stats = (ngx_http_kordon_redis_stats_pt)
                       dlsym(RTLD_DEFAULT, "ngx_http_kordon_redis_stats");
    mcf->redis_name = (ngx_http_kordon_redis_name_pt)
                      dlsym(RTLD_DEFAULT, "ngx_http_kordon_redis_name");

    if (mcf->redis_stats == NULL || mcf->redis_name == NULL) {
        mcf->redis_servers = NULL;
    }

    mcf->cache_stats = (ngx_http_kordon_cache_stats_pt)
                       dlsym(RTLD_DEFAULT, "ngx_http_kordon_cache_stats");

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_metrics_log_handler;

    return NGX_OK;
}


static char *
ngx_http_kordon_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_kordon_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_kordon_metrics_handler;

    return NGX_CONF_OK;
}
