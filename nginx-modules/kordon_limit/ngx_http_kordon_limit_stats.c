
/*
 * Kordon edge: "kordon_limit_stats", the counters of every limit zone
 * as JSON, for operators and tests on an internal listener (the metrics
 * module exports the same counters to Prometheus):
 *
 *     {"zones":[{"zone":"api","mode":"local","admitted":12,...},...]}
 *
 * The counters are shared memory sums over every worker, kept across
 * reloads; they are read with plain loads, so one answer is not a
 * snapshot taken at one instant.
 */


#include "ngx_http_kordon_limit.h"


typedef struct {
    const char                *name;
    size_t                     offset;
} ngx_http_kordon_limit_counter_t;


static ngx_int_t ngx_http_kordon_limit_stats_handler(ngx_http_request_t *r);


static ngx_http_kordon_limit_counter_t  ngx_http_kordon_limit_counters[] = {
    { "admitted", offsetof(ngx_http_kordon_limit_stats_t, admitted) },
    { "limited", offsetof(ngx_http_kordon_limit_stats_t, limited) },
    { "redis_errors", offsetof(ngx_http_kordon_limit_stats_t, redis_errors) },
    { "failed_open", offsetof(ngx_http_kordon_limit_stats_t, failed_open) },
    { "failed_closed",
      offsetof(ngx_http_kordon_limit_stats_t, failed_closed) },
    { "evicted", offsetof(ngx_http_kordon_limit_stats_t, evicted) },
    { "keys", offsetof(ngx_http_kordon_limit_stats_t, keys) },
    { "synced", offsetof(ngx_http_kordon_limit_stats_t, synced) },
    { "sync_dropped", offsetof(ngx_http_kordon_limit_stats_t, sync_dropped) },
    { NULL, 0 }
};


static const char  *ngx_http_kordon_limit_modes[] = {
    "", "local", "cluster", "hybrid"
};


char *
ngx_http_kordon_limit_stats(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_kordon_limit_stats_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kordon_limit_stats_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    size_t                             len;
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_uint_t                         i, n;
    ngx_chain_t                        out;
    ngx_atomic_t                      *v;
    ngx_http_kordon_limit_zone_t     **zones;
    ngx_http_kordon_limit_counter_t   *c;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    zones = ngx_http_kordon_limit_zones((ngx_cycle_t *) ngx_cycle, &n);

    /* names are [A-Za-z0-9_-]: nothing to escape */

    len = sizeof("{\"zones\":[]}\n");

    for (i = 0; i < n; i++) {
        len += sizeof("{\"zone\":\"\",\"mode\":\"cluster\"},") - 1
               + zones[i]->name.len;

        for (c = ngx_http_kordon_limit_counters; c->name; c++) {
            len += sizeof(",\"\":") - 1 + ngx_strlen(c->name)
                   + NGX_ATOMIC_T_LEN;
        }
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"zones\":[", sizeof("{\"zones\":[") - 1);

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%s{\"zone\":\"%V\",\"mode\":\"%s\"",
                        i ? "," : "", &zones[i]->name,
                        ngx_http_kordon_limit_modes[zones[i]->mode]);

        for (c = ngx_http_kordon_limit_counters; c->name; c++) {
            v = (ngx_atomic_t *) ((u_char *) &zones[i]->sh->stats
                                  + c->offset);
            p = ngx_sprintf(p, ",\"%s\":%uA", c->name, *v);
        }

        *p++ = '}';
    }

    p = ngx_cpymem(p, "]}\n", 3);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
