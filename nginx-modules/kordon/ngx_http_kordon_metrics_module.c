
/*
 * Kordon edge: connection metrics in the Prometheus text format.
 *
 * "kordon_metrics" renders the counters nginx keeps for stub_status
 * (ngx_stat_accepted and the rest, in shared memory, so they cover every
 * worker) as kordon_edge_connections_* and kordon_edge_requests_total.
 * One table names each metric, its help, its type and its counter; the
 * body is sized from the table and written in a single buffer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon.h"


#if (NGX_STAT_STUB)

typedef struct {
    ngx_str_t                 name;
    ngx_str_t                 help;
    ngx_str_t                 type;
    ngx_atomic_t            **counter;
} ngx_http_kordon_metric_t;


static ngx_int_t ngx_http_kordon_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_kordon_metrics_write(u_char *p,
    ngx_http_kordon_metric_t *m);

#endif

static char *ngx_http_kordon_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_kordon_metrics_commands[] = {

    { ngx_string("kordon_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_kordon_metrics,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
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


static ngx_int_t
ngx_http_kordon_metrics_handler(ngx_http_request_t *r)
{
    u_char       *p;
    size_t        size;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_uint_t    i;
    ngx_chain_t   out;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    size = 0;

    for (i = 0; i < NGX_HTTP_KORDON_METRICS_N; i++) {
        size += sizeof("# HELP  \n# TYPE  \n \n") - 1
                + 3 * ngx_http_kordon_metrics_table[i].name.len
                + ngx_http_kordon_metrics_table[i].help.len
                + ngx_http_kordon_metrics_table[i].type.len
                + NGX_ATOMIC_T_LEN;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    for (i = 0; i < NGX_HTTP_KORDON_METRICS_N; i++) {
        p = ngx_http_kordon_metrics_write(p, &ngx_http_kordon_metrics_table[i]);
    }

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


static u_char *
ngx_http_kordon_metrics_write(u_char *p, ngx_http_kordon_metric_t *m)
{
    ngx_atomic_int_t  value;

    value = **m->counter;

    return ngx_sprintf(p, "# HELP %V %V\n# TYPE %V %V\n%V %uA\n",
                       &m->name, &m->help, &m->name, &m->type,
                       &m->name, value);
}

#endif


static char *
ngx_http_kordon_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
#if (NGX_STAT_STUB)

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_kordon_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_kordon_metrics_handler;

    return NGX_CONF_OK;

#else

    return "requires nginx built with --with-http_stub_status_module";

#endif
}
