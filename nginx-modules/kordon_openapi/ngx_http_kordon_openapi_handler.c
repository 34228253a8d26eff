
/*
 * Kordon edge: the precontent phase handler that validates a request
 * against the OpenAPI document, answering itself at the first failure:
 *
 *     1. the path matches no template                          404
 *     2. the template has no operation for the method          405 + Allow
 *     3. Content-Length above the operation's body limit       413
 *     4. a body whose Content-Type the operation does not take,
 *        or any body where the operation takes none              415
 *     5. the body is read (without blocking), its size checked  413
 *     6. path, query and header parameters and the JSON body    400
 *
 * Step 6 lists every problem found (up to KORDON_OA_ERRORS_MAX) in the
 * problem's "errors": {"pointer", "message"} for the body, with "in" and
 * "parameter" added for a parameter.
 *
 * It runs in the precontent phase rather than access so that tokens,
 * roles and limits (access and preaccess) are checked first: a caller
 * without a token learns nothing about the schema.  The body is read
 * as the mirror module does: ngx_http_read_client_request_body() calls
 * back when all of it is in, the handler runs again with ctx->body_read
 * set and validates; the body stays in place for proxy_pass.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_openapi.h"


static ngx_int_t ngx_http_kordon_openapi_precheck(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx);
static ngx_uint_t ngx_http_kordon_openapi_sends_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_openapi_media_type(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx);
static void ngx_http_kordon_openapi_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_openapi_validate(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_openapi_body(ngx_http_request_t *r,
    ngx_str_t *body);
static const char *ngx_http_kordon_openapi_header(void *data,
    const char *name, size_t *len);
static ngx_int_t ngx_http_kordon_openapi_invalid(ngx_http_request_t *r,
    kordon_oa_report_t *report);
static ngx_int_t ngx_http_kordon_openapi_errors(ngx_http_request_t *r,
    kordon_oa_report_t *report, ngx_str_t *members);
static ngx_int_t ngx_http_kordon_openapi_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *fmt, ...);


ngx_int_t
ngx_http_kordon_openapi_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_http_kordon_openapi_ctx_t       *ctx;
    ngx_http_kordon_openapi_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_openapi_module);

    /*
     * a subrequest or an internal redirect (error_page, X-Accel) is the
     * edge's own doing: the client's request was checked where it came in
     */
    if (!olcf->validate || r != r->main || r->internal) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_openapi_module);

    if (ctx != NULL && ctx->done) {
        return NGX_DECLINED;
    }

    if (ctx != NULL && ctx->body_read) {
        return ngx_http_kordon_openapi_validate(r, ctx);
    }

    ctx = ngx_http_kordon_openapi_route(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * cache $kordon_openapi_route now: the value outlives an error_page
     * redirect, so the log phase labels an error with the route asked for
     */
    (void) ngx_http_get_indexed_variable(r,
                                         ngx_http_kordon_openapi_route_index);

    rc = ngx_http_kordon_openapi_precheck(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!kordon_oa_has_body(ctx->op)) {
        return ngx_http_kordon_openapi_validate(r, ctx);
    }

    /*
     * read whatever body there is, even without Content-Length or
     * chunked: an HTTP/2 request has neither and may still carry DATA
     * frames; with no body the callback comes at once
     */
    rc = ngx_http_read_client_request_body(r,
                                        ngx_http_kordon_openapi_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


/*
 * Steps 1 to 4: NGX_OK to go on (ctx->op set), else what the handler
 * returns after answering.
 */
static ngx_int_t
ngx_http_kordon_openapi_precheck(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx)
{
    u_char            allow[128];
    size_t            len, max;
    ngx_table_elt_t  *h;

    if (ctx->path == NULL) {
        return ngx_http_kordon_openapi_refuse(r, NGX_HTTP_NOT_FOUND,
                                              "no such route");
    }

    ctx->op = kordon_oa_operation(ctx->path, (char *) r->method_name.data,
                                  r->method_name.len);

    if (ctx->op == NULL) {
        len = kordon_oa_allow(ctx->path, (char *) allow, sizeof(allow));

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = len;
        ngx_memcpy(h->value.data, allow, len);

        return ngx_http_kordon_openapi_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                              "method %V is not allowed "
                                              "here", &r->method_name);
    }

    if (!kordon_oa_has_body(ctx->op)) {
        if (ngx_http_kordon_openapi_sends_body(r)) {
            return ngx_http_kordon_openapi_refuse(r,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  "this operation takes no body");
        }

        return NGX_OK;
    }

    if (r->headers_in.content_length_n <= 0 && !r->headers_in.chunked) {
        return NGX_OK;      /* an HTTP/2 body without either: once read */
    }

    max = kordon_oa_body_max(ctx->op);

    if (r->headers_in.content_length_n > (off_t) max) {
        return ngx_http_kordon_openapi_refuse(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "the body is larger than the %uz bytes "
                                  "this operation takes", max);
    }

    return ngx_http_kordon_openapi_media_type(r, ctx);
}


/* 1 if the request has a body (or, over HTTP/2, may still send one) */
static ngx_uint_t
ngx_http_kordon_openapi_sends_body(ngx_http_request_t *r)
{
    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return 1;
    }

#if (NGX_HTTP_V2)
    if (r->stream != NULL && !r->stream->in_closed) {
        return 1;
    }
#endif

    return 0;
}


/* step 4: NGX_OK when the Content-Type is one the operation takes */
static ngx_int_t
ngx_http_kordon_openapi_media_type(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx)
{
    char       types[128];
    ngx_str_t  type;

    if (r->headers_in.content_type != NULL) {
        type = r->headers_in.content_type->value;

    } else {
        ngx_str_null(&type);
    }

    if (type.len == 0
        || !kordon_oa_media_type_ok(ctx->op, (char *) type.data, type.len))
    {
        if (kordon_oa_media_types(ctx->op, types, sizeof(types)) == 0) {
            return ngx_http_kordon_openapi_refuse(r,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  "this operation does not take this "
                                  "Content-Type");
        }

        /* the client learns what to send */
        return ngx_http_kordon_openapi_refuse(r,
                                  NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                  "this operation takes %s", types);
    }

    return NGX_OK;
}


static void
ngx_http_kordon_openapi_body_handler(ngx_http_request_t *r)
{
    ngx_http_kordon_openapi_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_kordon_openapi_module);

    ctx->body_read = 1;

    r->preserve_body = 1;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* step 6: NGX_DECLINED for a valid request, else answers */
static ngx_int_t
ngx_http_kordon_openapi_validate(ngx_http_request_t *r,
    ngx_http_kordon_openapi_ctx_t *ctx)
{
    ngx_int_t                            rc;
    ngx_str_t                            body;
    kordon_oa_report_t                   report_store, *report;
    ngx_http_kordon_openapi_srv_conf_t  *oscf;

    ctx->done = 1;

    if (ctx->op == NULL) {
        return NGX_DECLINED;
    }

    oscf = ngx_http_get_module_srv_conf(r, ngx_http_kordon_openapi_module);

    /* on the stack (16 KiB): a valid request, the usual one, costs no
     * allocation for it; an invalid one is rendered before we return */
    report = &report_store;
    kordon_oa_report_init(report);

    kordon_oa_check_params(oscf->doc, ctx->op, &ctx->match,
                           (char *) r->args.data, r->args.len,
                           ngx_http_kordon_openapi_header, r, report);

    ngx_str_null(&body);

    if (ctx->body_read) {
        rc = ngx_http_kordon_openapi_body(r, &body);
        if (rc != NGX_OK) {
            return rc;
        }

        if (body.len > kordon_oa_body_max(ctx->op)) {
            return ngx_http_kordon_openapi_refuse(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "the body is larger than the %uz bytes "
                                  "this operation takes",
                                  kordon_oa_body_max(ctx->op));
        }

        if (body.len > 0) {
            rc = ngx_http_kordon_openapi_media_type(r, ctx);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (kordon_oa_has_body(ctx->op)) {
        kordon_oa_check_body(oscf->doc, ctx->op, (char *) body.data,
                             body.len, report);
    }

    if (report->total == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_kordon_openapi_invalid(r, report);
}


/*
 * The request body in one buffer of the request pool: memory buffers
 * copied, a part nginx wrote to its temporary file read back (bounded
 * by client_max_body_size; the file was just written, so the read is
 * served by the page cache).  An empty body is { 0, NULL }.
 */
static ngx_int_t
ngx_http_kordon_openapi_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    body->data = ngx_pnalloc(r->pool, (size_t) len);
    if (body->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body->data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last
                                                    - b->file_pos),
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "could not read the request body back from "
                              "\"%V\"", &b->file->name);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = p - body->data;

    return NGX_OK;
}


static const char *
ngx_http_kordon_openapi_header(void *data, const char *name, size_t *len)
{
    ngx_http_request_t *r = data;

    size_t            n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == n
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0)
        {
            *len = h[i].value.len;
            return (char *) h[i].value.data;
        }
    }
}


/*
 * The 400 with every problem of the report in "errors"; the location's
 * kordon_openapi_schema_status instead when every problem is in a body
 * that is JSON (none in a parameter, the body neither absent nor
 * unparsable).
 */
static ngx_int_t
ngx_http_kordon_openapi_invalid(ngx_http_request_t *r,
    kordon_oa_report_t *report)
{
    ngx_int_t                            rc;
    ngx_str_t                            members, detail;
    ngx_uint_t                           i, status;
    ngx_http_kordon_openapi_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_openapi_module);

    status = report->malformed ? NGX_HTTP_BAD_REQUEST : olcf->schema_status;

    for (i = 0; i < report->n; i++) {
        if (report->errors[i].in != KORDON_OA_IN_BODY) {
            status = NGX_HTTP_BAD_REQUEST;
        }
    }

    if (ngx_http_kordon_openapi_errors(r, report, &members) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN * 2 + 64);
    if (detail.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (report->total > report->n) {
        detail.len = ngx_sprintf(detail.data, "the request does not match "
                                 "the API: %ui problems, the first %ui "
                                 "listed", (ngx_uint_t) report->total,
                                 (ngx_uint_t) report->n)
                     - detail.data;

    } else {
        detail.len = ngx_sprintf(detail.data, "the request does not match "
                                 "the API: %ui problem%s",
                                 (ngx_uint_t) report->total,
                                 report->total == 1 ? "" : "s")
                     - detail.data;
    }

    rc = ngx_http_kordon_problem_send_members(r, status, NULL, &detail,
                                              &members);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * "errors":[{"in":..,"parameter":..,"pointer":..,"message":..},...], in
 * the request pool; "in" and "parameter" only for parameters
 */
static ngx_int_t
ngx_http_kordon_openapi_errors(ngx_http_request_t *r,
    kordon_oa_report_t *report, ngx_str_t *members)
{
    u_char             *p;
    size_t              len;
    ngx_uint_t          i;
    kordon_oa_error_t  *e;

    len = sizeof("\"errors\":[]") - 1;

    for (i = 0; i < report->n; i++) {
        e = &report->errors[i];
        len += sizeof(",{\"in\":\"header\",\"parameter\":\"\","
                      "\"pointer\":\"\",\"message\":\"\"}") - 1
               + ngx_http_kordon_json_escape_len((u_char *) e->name,
                                                 ngx_strlen(e->name))
               + ngx_http_kordon_json_escape_len((u_char *) e->pointer,
                                                 ngx_strlen(e->pointer))
               + ngx_http_kordon_json_escape_len((u_char *) e->message,
                                                 ngx_strlen(e->message));
    }

    members->data = ngx_pnalloc(r->pool, len);
    if (members->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(members->data, "\"errors\":[",
                   sizeof("\"errors\":[") - 1);

    for (i = 0; i < report->n; i++) {
        e = &report->errors[i];

        p = ngx_cpymem(p, i ? ",{" : "{", i ? 2 : 1);

        if (e->in != KORDON_OA_IN_BODY) {
            p = ngx_sprintf(p, "\"in\":\"%s\",\"parameter\":\"",
                            kordon_oa_in_name(e->in));
            p = ngx_http_kordon_json_escape(p, (u_char *) e->name,
                                            ngx_strlen(e->name));
            p = ngx_cpymem(p, "\",", 2);
        }

        p = ngx_cpymem(p, "\"pointer\":\"", sizeof("\"pointer\":\"") - 1);
        p = ngx_http_kordon_json_escape(p, (u_char *) e->pointer,
                                        ngx_strlen(e->pointer));
        p = ngx_cpymem(p, "\",\"message\":\"",
                       sizeof("\",\"message\":\"") - 1);
        p = ngx_http_kordon_json_escape(p, (u_char *) e->message,
                                        ngx_strlen(e->message));
        p = ngx_cpymem(p, "\"}", 2);
    }

    *p++ = ']';
    members->len = p - members->data;

    return NGX_OK;
}


/* answers status with a problem whose detail is fmt */
static ngx_int_t
ngx_http_kordon_openapi_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char     buf[256], *last;
    va_list    args;
    ngx_int_t  rc;
    ngx_str_t  detail;

    va_start(args, fmt);
    last = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    detail.data = buf;
    detail.len = last - buf;

    rc = ngx_http_kordon_problem_send(r, status, NULL, &detail);
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}
