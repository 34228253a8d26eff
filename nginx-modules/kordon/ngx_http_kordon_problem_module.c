
/*
 * Kordon edge: errors as RFC 9457 problem details.
 *
 * Every error the edge returns has the same body:
 *
 *     {"type":"about:blank","title":"Bad Gateway","status":502,
 *      "detail":"the upstream service is unavailable",
 *      "request_id":"<$request_id>"}
 *
 * with Content-Type application/problem+json and the same id in the
 * X-Request-Id response header.  Modules call
 * ngx_http_kordon_problem_send(); nginx's own errors reach the
 * "kordon_problem" content handler through error_page, which keeps the
 * original status in r->err_status when it has no "=code" (point it at
 * a URI location: nginx will not redirect to a named location while the
 * URI is empty, as it is after a 414).  Titles and details come from a
 * fixed table, so no internal name can leak; the body is sized exactly,
 * then written into one buffer.
 *
 * $request_id itself is nginx's variable with a cheaper source: nginx
 * calls RAND_bytes() for 16 bytes on every request, and OpenSSL 3
 * spends some 6,600 instructions per call on its provider machinery
 * whatever the size.  At configuration time this module points the
 * variable at ngx_http_kordon_request_id_variable(), which draws the
 * same 16 bytes of the same generator out of a per-worker block of
 * NGX_HTTP_KORDON_REQUEST_IDS ids filled by one RAND_bytes() call:
 * 32 lowercase hex digits as before, about 150 instructions.  The
 * block is refilled after fork() (a new pid) and wiped as it is used.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon.h"

#include <openssl/rand.h>


/* ids drawn from one RAND_bytes() call */
#define NGX_HTTP_KORDON_REQUEST_IDS  64


typedef struct {
    ngx_int_t                  request_id_index;
} ngx_http_kordon_problem_main_conf_t;


typedef struct {
    ngx_http_complex_value_t  *detail;
    ngx_flag_t                 request_id;
} ngx_http_kordon_problem_loc_conf_t;


typedef struct {
    ngx_uint_t                 status;
    ngx_str_t                  title;
    ngx_str_t                  detail;
} ngx_http_kordon_problem_text_t;


static ngx_int_t ngx_http_kordon_problem_handler(ngx_http_request_t *r);
static ngx_http_kordon_problem_text_t *ngx_http_kordon_problem_text(
    ngx_uint_t status);
static ngx_int_t ngx_http_kordon_problem_request_id(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_kordon_problem_headers(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *id, off_t length);
static ngx_int_t ngx_http_kordon_problem_request_id_header(
    ngx_http_request_t *r, ngx_str_t *id);
static ngx_chain_t *ngx_http_kordon_problem_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *title, ngx_str_t *detail, ngx_str_t *id,
    ngx_str_t *members);
static size_t ngx_http_kordon_utf8_len(u_char *p, size_t size);
static void *ngx_http_kordon_problem_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_problem_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_problem_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_request_id_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_kordon_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_kordon_request_id_source(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_problem_init(ngx_conf_t *cf);
static char *ngx_http_kordon_problem(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_kordon_problem_commands[] = {

    { ngx_string("kordon_problem"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_kordon_problem,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_request_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_problem_loc_conf_t, request_id),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_problem_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_kordon_problem_init,          /* postconfiguration */

    ngx_http_kordon_problem_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_problem_create_loc_conf, /* create location configuration */
    ngx_http_kordon_problem_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_problem_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_problem_module_ctx,   /* module context */
    ngx_http_kordon_problem_commands,      /* module directives */
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


#define ngx_http_kordon_text(s, t, d)  { s, ngx_string(t), ngx_string(d) }

/* titles are the RFC 9110 reason phrases */

static ngx_http_kordon_problem_text_t  ngx_http_kordon_problem_texts[] = {

    ngx_http_kordon_text(400, "Bad Request",
                         "the request is malformed"),
    ngx_http_kordon_text(401, "Unauthorized",
                         "valid credentials are required"),
    ngx_http_kordon_text(402, "Payment Required",
                         "payment is required"),
    ngx_http_kordon_text(403, "Forbidden",
                         "access to this resource is not allowed"),
    ngx_http_kordon_text(404, "Not Found",
                         "the requested resource does not exist"),
    ngx_http_kordon_text(405, "Method Not Allowed",
                         "the method is not allowed for this resource"),
    ngx_http_kordon_text(406, "Not Acceptable",
                         "no acceptable representation is available"),
    ngx_http_kordon_text(408, "Request Timeout",
                         "the request did not arrive in time"),
    ngx_http_kordon_text(409, "Conflict",
                         "the request conflicts with the resource's state"),
    ngx_http_kordon_text(410, "Gone",
                         "the resource is no longer available"),
    ngx_http_kordon_text(411, "Length Required",
                         "the request must declare its length"),
    ngx_http_kordon_text(412, "Precondition Failed",
                         "a precondition of the request failed"),
    ngx_http_kordon_text(413, "Content Too Large",
                         "the request body is too large"),
    ngx_http_kordon_text(414, "URI Too Long",
                         "the request URI is too long"),
    ngx_http_kordon_text(415, "Unsupported Media Type",
                         "the request body has an unsupported media type"),
    ngx_http_kordon_text(416, "Range Not Satisfiable",
                         "the requested range cannot be served"),
    ngx_http_kordon_text(421, "Misdirected Request",
                         "the request was sent to the wrong server"),
    ngx_http_kordon_text(422, "Unprocessable Content",
                         "the request body is not valid"),
    ngx_http_kordon_text(428, "Precondition Required",
                         "the request must be conditional"),
    ngx_http_kordon_text(429, "Too Many Requests",
                         "too many requests, retry later"),
    ngx_http_kordon_text(431, "Request Header Fields Too Large",
                         "the request headers are too large"),

    ngx_http_kordon_text(500, "Internal Server Error",
                         "an internal error occurred"),
    ngx_http_kordon_text(501, "Not Implemented",
                         "the method is not supported"),
    ngx_http_kordon_text(502, "Bad Gateway",
                         "the upstream service is unavailable"),
    ngx_http_kordon_text(503, "Service Unavailable",
                         "the service is temporarily unavailable"),
    ngx_http_kordon_text(504, "Gateway Timeout",
                         "the upstream service did not answer in time"),
    ngx_http_kordon_text(505, "HTTP Version Not Supported",
                         "the HTTP version is not supported"),
    ngx_http_kordon_text(507, "Insufficient Storage",
                         "the server cannot store the request"),

    /* the fallbacks, matched by class */

    ngx_http_kordon_text(4, "Client Error",
                         "the request cannot be served"),
    ngx_http_kordon_text(5, "Server Error",
                         "the request could not be completed"),
    ngx_http_kordon_text(0, "Error",
                         "the request could not be completed")
};


static ngx_str_t  ngx_http_kordon_request_id_name = ngx_string("request_id");

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * The content handler of "kordon_problem".  The status is the one the
 * error_page redirect kept; a request that arrives here directly, such
 * as a try_files fallback, gets 404.  nginx itself turns 494-497 into
 * 400 for error_page, so those all read "the request is malformed".
 */

static ngx_int_t
ngx_http_kordon_problem_handler(ngx_http_request_t *r)
{
    ngx_str_t                            detail, *dp;
    ngx_uint_t                           status;
    ngx_http_kordon_problem_loc_conf_t  *kplcf;

    status = r->err_status ? r->err_status : NGX_HTTP_NOT_FOUND;

    kplcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_problem_module);

    dp = NULL;

    if (kplcf->detail) {
        if (ngx_http_complex_value(r, kplcf->detail, &detail) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dp = &detail;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "kordon problem handler, status %ui", status);

    return ngx_http_kordon_problem_send(r, status, NULL, dp);
}


ngx_int_t
ngx_http_kordon_problem_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *title, ngx_str_t *detail)
{
    return ngx_http_kordon_problem_send_members(r, status, title, detail,
                                                NULL);
}


ngx_int_t
ngx_http_kordon_problem_send_members(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *title, ngx_str_t *detail,
    ngx_str_t *members)
{
    ngx_int_t     rc;
    ngx_str_t     id;
    ngx_chain_t  *out;

    if (r->header_sent) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "could not send problem %ui: header already sent",
                      status);
        return NGX_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    /* nginx's 494-497 are its names for kinds of 400 */

    if (status >= NGX_HTTP_REQUEST_HEADER_TOO_LARGE
        && status <= NGX_HTTP_TO_HTTPS)
    {
        status = NGX_HTTP_BAD_REQUEST;
    }

    if (title == NULL) {
        title = ngx_http_kordon_problem_title(status);
    }

    if (detail == NULL) {
        detail = ngx_http_kordon_problem_detail(status);
    }

    if (ngx_http_kordon_problem_request_id(r, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out = ngx_http_kordon_problem_body(r, status, title, detail, &id,
                                       members);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_kordon_problem_headers(r, status, &id,
                                        out->buf->last - out->buf->pos)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


ngx_str_t *
ngx_http_kordon_problem_title(ngx_uint_t status)
{
    return &ngx_http_kordon_problem_text(status)->title;
}


ngx_str_t *
ngx_http_kordon_problem_detail(ngx_uint_t status)
{
    return &ngx_http_kordon_problem_text(status)->detail;
}


static ngx_http_kordon_problem_text_t *
ngx_http_kordon_problem_text(ngx_uint_t status)
{
    ngx_uint_t                       i, n, class;
    ngx_http_kordon_problem_text_t  *t;

    t = ngx_http_kordon_problem_texts;
    n = sizeof(ngx_http_kordon_problem_texts)
        / sizeof(ngx_http_kordon_problem_text_t);

    for (i = 0; i < n; i++) {
        if (t[i].status == status) {
            return &t[i];
        }
    }

    class = (status >= 400 && status < 600) ? status / 100 : 0;

    for (i = 0; i < n; i++) {
        if (t[i].status == class) {
            return &t[i];
        }
    }

    /* not reached: the table ends with the class 0 entry */

    return &t[n - 1];
}


/*
 * $request_id is read through an index, so its cached value is the one
 * proxy_set_header and the access log see; a lookup by name would make
 * a new id.
 */

static ngx_int_t
ngx_http_kordon_problem_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_variable_value_t            *vv;
    ngx_http_kordon_problem_main_conf_t  *kpmcf;

    kpmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_problem_module);

    vv = ngx_http_get_indexed_variable(r, kpmcf->request_id_index);

    if (vv == NULL || vv->not_found) {
        ngx_str_null(id);
        return vv == NULL ? NGX_ERROR : NGX_OK;
    }

    id->len = vv->len;
    id->data = vv->data;

    return NGX_OK;
}


/*
 * Sets the response headers of a problem, dropping those that describe
 * another body.  Returns NGX_ERROR only when memory runs out.
 */

static ngx_int_t
ngx_http_kordon_problem_headers(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *id, off_t length)
{
    if (ngx_http_kordon_problem_request_id_header(r, id) != NGX_OK) {
        return NGX_ERROR;
    }

    /* ngx_http_send_header() sends r->err_status when it is set */

    if (r->err_status) {
        r->err_status = status;
    }

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;
    r->headers_out.content_length_n = length;

    ngx_str_set(&r->headers_out.content_type, NGX_HTTP_KORDON_PROBLEM_TYPE);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return NGX_OK;
}


/*
 * Sets X-Request-Id, replacing a value an earlier attempt left and
 * dropping any further copy, so that an answer carries exactly one.
 */

static ngx_int_t
ngx_http_kordon_problem_request_id_header(ngx_http_request_t *r,
    ngx_str_t *id)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *header, *h;

    h = NULL;
    part = &r->headers_out.headers.part;
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

        if (header[i].hash != 0
            && header[i].key.len == sizeof("X-Request-Id") - 1
            && ngx_strncasecmp(header[i].key.data, (u_char *) "X-Request-Id",
                               sizeof("X-Request-Id") - 1)
               == 0)
        {
            if (h == NULL) {
                h = &header[i];
                h->value = *id;

            } else {
                header[i].hash = 0;
            }
        }
    }

    if (h != NULL) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-Request-Id");
    h->value = *id;

    return NGX_OK;
}


/* one buffer, sized exactly; NULL if memory runs out */

static ngx_chain_t *
ngx_http_kordon_problem_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *title, ngx_str_t *detail, ngx_str_t *id, ngx_str_t *members)
{
    u_char       *p;
    size_t        len, tlen, dlen;
    ngx_buf_t    *b;
    ngx_chain_t  *out;

    tlen = ngx_min(title->len, NGX_HTTP_KORDON_PROBLEM_TEXT_MAX);
    dlen = ngx_min(detail->len, NGX_HTTP_KORDON_PROBLEM_TEXT_MAX);

    len = sizeof("{\"type\":\"about:blank\",\"title\":\"") - 1
          + ngx_http_kordon_json_escape_len(title->data, tlen)
          + sizeof("\",\"status\":") - 1 + NGX_INT_T_LEN
          + sizeof(",\"detail\":\"") - 1
          + ngx_http_kordon_json_escape_len(detail->data, dlen)
          + sizeof("\",\"request_id\":\"") - 1
          + ngx_http_kordon_json_escape_len(id->data, id->len)
          + sizeof("\"}") - 1;

    if (members && members->len) {
        len += sizeof(",") - 1 + members->len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    out = ngx_alloc_chain_link(r->pool);
    if (out == NULL) {
        return NULL;
    }

    p = ngx_cpymem(b->last, "{\"type\":\"about:blank\",\"title\":\"",
                   sizeof("{\"type\":\"about:blank\",\"title\":\"") - 1);
    p = ngx_http_kordon_json_escape(p, title->data, tlen);
    p = ngx_sprintf(p, "\",\"status\":%ui,\"detail\":\"", status);
    p = ngx_http_kordon_json_escape(p, detail->data, dlen);
    p = ngx_cpymem(p, "\",\"request_id\":\"",
                   sizeof("\",\"request_id\":\"") - 1);
    p = ngx_http_kordon_json_escape(p, id->data, id->len);
    *p++ = '"';

    if (members && members->len) {
        *p++ = ',';
        p = ngx_cpymem(p, members->data, members->len);
    }

    *p++ = '}';

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out->buf = b;
    out->next = NULL;

    return out;
}


size_t
ngx_http_kordon_json_escape_len(u_char *src, size_t size)
{
    u_char  *last;
    size_t   len, n;

    len = 0;
    last = src + size;

    while (src < last) {

        if (*src < 0x80) {
            if (*src == '"' || *src == '\\') {
                len += 2;

            } else if (*src < 0x20) {
                len += (*src == '\n' || *src == '\r' || *src == '\t')
                       ? 2 : sizeof("\\u0000") - 1;

            } else {
                len++;
            }

            src++;
            continue;
        }

        n = ngx_http_kordon_utf8_len(src, last - src);

        if (n == 0) {
            len += sizeof("\\ufffd") - 1;
            src++;
            continue;
        }

        len += n;
        src += n;
    }

    return len;
}


u_char *
ngx_http_kordon_json_escape(u_char *dst, u_char *src, size_t size)
{
    u_char  *last;
    size_t   n;

    static u_char  hex[] = "0123456789abcdef";

    last = src + size;

    while (src < last) {

        if (*src >= 0x80) {
            n = ngx_http_kordon_utf8_len(src, last - src);

            if (n == 0) {
                dst = ngx_cpymem(dst, "\\ufffd", sizeof("\\ufffd") - 1);
                src++;
                continue;
            }

            dst = ngx_cpymem(dst, src, n);
            src += n;
            continue;
        }

        switch (*src) {

        case '"':
        case '\\':
            *dst++ = '\\';
            *dst++ = *src;
            break;

        case '\n':
            *dst++ = '\\'; *dst++ = 'n';
            break;

        case '\r':
            *dst++ = '\\'; *dst++ = 'r';
            break;

        case '\t':
            *dst++ = '\\'; *dst++ = 't';
            break;

        default:
            if (*src < 0x20) {
                dst = ngx_cpymem(dst, "\\u00", sizeof("\\u00") - 1);
                *dst++ = hex[*src >> 4];
                *dst++ = hex[*src & 0xf];

            } else {
                *dst++ = *src;
            }
        }

        src++;
    }

    return dst;
}


/*
 * The length of the well-formed UTF-8 sequence at p, or 0: overlong
 * forms, surrogates and code points above U+10FFFF are not well-formed.
 */

static size_t
ngx_http_kordon_utf8_len(u_char *p, size_t size)
{
    size_t    i, len;
    uint32_t  u, min;

    if (*p < 0x80) {
        return 1;
    }

    if (*p >= 0xc2 && *p <= 0xdf) {
        len = 2;
        u = *p & 0x1f;
        min = 0x80;

    } else if (*p >= 0xe0 && *p <= 0xef) {
        len = 3;
        u = *p & 0x0f;
        min = 0x800;

    } else if (*p >= 0xf0 && *p <= 0xf4) {
        len = 4;
        u = *p & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (size < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        u = (u << 6) | (p[i] & 0x3f);
    }

    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
        return 0;
    }

    return len;
}


static void *
ngx_http_kordon_problem_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_problem_main_conf_t  *kpmcf;

    kpmcf = ngx_pcalloc(cf->pool,
                        sizeof(ngx_http_kordon_problem_main_conf_t));
    if (kpmcf == NULL) {
        return NULL;
    }

    kpmcf->request_id_index = NGX_ERROR;

    return kpmcf;
}


static void *
ngx_http_kordon_problem_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_problem_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_problem_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->detail = NULL;
     */

    conf->request_id = NGX_CONF_UNSET;

    return conf;
}


/* "kordon_problem"'s detail belongs to its own location: not merged */

static char *
ngx_http_kordon_problem_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_problem_loc_conf_t *prev = parent;
    ngx_http_kordon_problem_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->request_id, prev->request_id, 0);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kordon_problem_init(ngx_conf_t *cf)
{
    ngx_http_kordon_problem_main_conf_t  *kpmcf;

    kpmcf = ngx_http_conf_get_module_main_conf(cf,
                                            ngx_http_kordon_problem_module);

    if (ngx_http_kordon_request_id_source(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    kpmcf->request_id_index = ngx_http_get_variable_index(cf,
                                            &ngx_http_kordon_request_id_name);
    if (kpmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_kordon_request_id_filter;

    return NGX_OK;
}


/*
 * "kordon_request_id on": every answer of the main request carries
 * exactly one X-Request-Id, $request_id.  add_header cannot promise
 * that: it appends to the copy an error sent by a module already set.
 */

static ngx_int_t
ngx_http_kordon_request_id_filter(ngx_http_request_t *r)
{
    ngx_str_t                            id;
    ngx_http_kordon_problem_loc_conf_t  *kplcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    kplcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_problem_module);

    if (!kplcf->request_id) {
        return ngx_http_next_header_filter(r);
    }

    if (ngx_http_kordon_problem_request_id(r, &id) != NGX_OK
        || ngx_http_kordon_problem_request_id_header(r, &id) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static char *
ngx_http_kordon_problem(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_problem_loc_conf_t *kplcf = conf;

    ngx_str_t                         *value;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_compile_complex_value_t   ccv;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_kordon_problem_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_kordon_problem_handler;

    if (cf->args->nelts == 1) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    kplcf->detail = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (kplcf->detail == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = kplcf->detail;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Points nginx's $request_id at the batched generator.  Runs in
 * postconfiguration, before nginx copies each variable's handler into
 * its index (ngx_http_variables_init_vars()).  A build of nginx without
 * the variable keeps what it has.
 */

static ngx_int_t
ngx_http_kordon_request_id_source(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_hash_key_t             *key;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->variables_keys == NULL) {
        return NGX_OK;
    }

    key = cmcf->variables_keys->keys.elts;

    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len != ngx_http_kordon_request_id_name.len
            || ngx_strncmp(key[i].key.data,
                           ngx_http_kordon_request_id_name.data,
                           key[i].key.len) != 0)
        {
            continue;
        }

        v = key[i].value;
        v->get_handler = ngx_http_kordon_request_id_variable;
        v->data = 0;

        return NGX_OK;
    }

    return NGX_OK;
}


/*
 * 16 random bytes from the worker's block as 32 hex digits; not found
 * (as in nginx) when the generator fails.
 */

static ngx_int_t
ngx_http_kordon_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char            *id, *bytes;
    static ngx_pid_t   pid;
    static ngx_uint_t  next = NGX_HTTP_KORDON_REQUEST_IDS;
    static u_char      block[16 * NGX_HTTP_KORDON_REQUEST_IDS];

    if (next == NGX_HTTP_KORDON_REQUEST_IDS || pid != ngx_pid) {

        if (RAND_bytes(block, sizeof(block)) != 1) {
            ngx_ssl_error(NGX_LOG_ERR, r->connection->log, 0,
                          "RAND_bytes() failed");
            v->not_found = 1;
            return NGX_OK;
        }

        pid = ngx_pid;
        next = 0;
    }

    id = ngx_pnalloc(r->pool, 32);
    if (id == NULL) {
        return NGX_ERROR;
    }

    bytes = &block[16 * next++];

    ngx_hex_dump(id, bytes, 16);
    ngx_memzero(bytes, 16);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = 32;
    v->data = id;

    return NGX_OK;
}
