
/*
 * Kordon edge: "kordon_redis_health <name>", a Redis health check.
 *
 * A content handler that sends PING on the worker's connection to the
 * named Redis, through the request-bound helper, and answers
 *
 *     200 {"redis":"<name>","status":"ok","ms":<round trip>}
 *
 * or 503 problem+json when Redis is down, does not answer in the
 * server's timeout= or answers with an error.  It is also the client's
 * end-to-end test: every path of a command (reply, timeout, lost
 * connection, refused while down, orphaned by a client that left) ends
 * in one of these two answers, never in a hang or another status.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon.h"
#include "ngx_http_kordon_redis.h"


typedef struct {
    ngx_http_kordon_redis_server_t  *server;
} ngx_http_kordon_redis_health_loc_conf_t;


typedef struct {
    struct timespec                  start;
} ngx_http_kordon_redis_health_ctx_t;


static ngx_int_t ngx_http_kordon_redis_health_handler(ngx_http_request_t *r);
static void ngx_http_kordon_redis_health_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_redis_health_ok(ngx_http_request_t *r,
    ngx_http_kordon_redis_health_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_redis_health_fail(ngx_http_request_t *r,
    ngx_uint_t status);
static void *ngx_http_kordon_redis_health_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_redis_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_kordon_redis_health_commands[] = {

    { ngx_string("kordon_redis_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_redis_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_redis_health_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_redis_health_create_loc_conf,
                                           /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_redis_health_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_redis_health_module_ctx, /* module context */
    ngx_http_kordon_redis_health_commands, /* module directives */
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


static ngx_str_t  ngx_http_kordon_redis_health_details[] = {
    ngx_null_string,
    ngx_string("redis did not answer in time"),
    ngx_string("redis answered with an error"),
    ngx_string("redis is not reachable")
};


static ngx_int_t
ngx_http_kordon_redis_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                                 rc;
    const char                               *argv[1];
    ngx_http_kordon_redis_health_ctx_t       *ctx;
    ngx_http_kordon_redis_health_loc_conf_t  *hlcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    hlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_kordon_redis_health_module);

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_kordon_redis_health_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ctx->start);

    argv[0] = "PING";

    rc = ngx_http_kordon_redis_request(r, hlcf->server, 1, argv, NULL, 0,
                                       ngx_http_kordon_redis_health_done,
                                       ctx);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        return ngx_http_kordon_redis_health_fail(r, rc);
    }

    return NGX_DONE;
}


static void
ngx_http_kordon_redis_health_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_int_t                            rc;
    ngx_http_kordon_redis_health_ctx_t  *ctx = data;

    if (status == NGX_HTTP_KORDON_REDIS_OK
        && reply->type == REDIS_REPLY_STATUS
        && reply->len == 4 && ngx_strncmp(reply->str, "PONG", 4) == 0)
    {
        rc = ngx_http_kordon_redis_health_ok(r, ctx);

    } else {
        if (status == NGX_HTTP_KORDON_REDIS_OK) {
            status = NGX_HTTP_KORDON_REDIS_ERROR;
        }

        rc = ngx_http_kordon_redis_health_fail(r, status);
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_kordon_redis_health_ok(ngx_http_request_t *r,
    ngx_http_kordon_redis_health_ctx_t *ctx)
{
    u_char                                   *p;
    size_t                                    len;
    ngx_int_t                                 rc;
    ngx_buf_t                                *b;
    ngx_str_t                                *name;
    ngx_uint_t                                us;
    ngx_chain_t                               out;
    struct timespec                           now;
    ngx_http_kordon_redis_health_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_kordon_redis_health_module);
    name = ngx_http_kordon_redis_name(hlcf->server);

    (void) clock_gettime(CLOCK_MONOTONIC, &now);

    us = (ngx_uint_t) ((now.tv_sec - ctx->start.tv_sec) * 1000000
                       + (now.tv_nsec - ctx->start.tv_nsec) / 1000);

    /* the name is [A-Za-z0-9_.-]: nothing to escape */

    len = sizeof("{\"redis\":\"\",\"status\":\"ok\",\"ms\":.000}\n") - 1
          + name->len + NGX_INT_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"redis\":\"%V\",\"status\":\"ok\","
                    "\"ms\":%ui.%03ui}\n", name, us / 1000, us % 1000);
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


static ngx_int_t
ngx_http_kordon_redis_health_fail(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_str_t  *detail;

    if (status > NGX_HTTP_KORDON_REDIS_DOWN
        || status == NGX_HTTP_KORDON_REDIS_OK)
    {
        status = NGX_HTTP_KORDON_REDIS_ERROR;
    }

    detail = &ngx_http_kordon_redis_health_details[status];

    return ngx_http_kordon_problem_send(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                        detail);
}


static void *
ngx_http_kordon_redis_health_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_redis_health_loc_conf_t  *conf;

    /* set by ngx_pcalloc(): conf->server = NULL */

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_kordon_redis_health_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    return conf;
}


static char *
ngx_http_kordon_redis_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_redis_health_loc_conf_t *hlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->server) {
        return "is duplicate";
    }

    value = cf->args->elts;

    hlcf->server = ngx_http_kordon_redis_lookup(cf, &value[1]);
    if (hlcf->server == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_kordon_redis_health_handler;

    return NGX_CONF_OK;
}
