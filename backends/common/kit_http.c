/*
 * kit_http.c -- the HTTP face of a service: libmicrohttpd's internal
 * thread pool, one kit_req_t per request, the kit's own routes and the
 * graceful stop.
 *
 * libmicrohttpd calls the access handler several times per request.  The
 * first call (headers in, no body yet) checks all that needs no body --
 * path, route, identity, content type and length.  A declared length over
 * body_max is answered 413 at once, which refuses the body and closes the
 * connection; other failures are answered in the last call, after the
 * (bounded) body was read and dropped, so a keep-alive connection from
 * the edge survives a 401 or a 404.  The middle calls gather the body,
 * never past body_max.  The last call parses JSON and runs the handler.
 *
 * Every answer, whoever gives it, is a response stored in the request
 * under req->mu and queued by the access handler on the connection's own
 * thread: right after the handler returned or, after kit_suspend(), when
 * the replying thread has resumed the connection.  The mutex settles the
 * race that matters: a reply that arrives before the handler returned is
 * simply queued, without suspending.
 *
 * A request is freed when its last reference goes: libmicrohttpd's
 * (dropped when the request completes), a suspending handler's (dropped
 * by its reply) and the suspended list's (dropped when it is answered).
 * The list lets a stop that ran out of patience answer 503 to requests
 * whose handlers never did: libmicrohttpd must not be stopped with
 * connections suspended.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "kit.h"
#include "kit_internal.h"

#define KIT_CONNECTIONS_MAX     512
#define KIT_CONN_MEMORY_MAX     (64 * 1024)
#define KIT_LISTEN_BACKLOG      511
#define KIT_REPLY_HEADERS_MAX   16
#define KIT_REQUEST_ID_MAX      64
#define KIT_METHOD_MAX          16
#define KIT_ALLOW_MAX           128
#define KIT_DETAIL_MAX          512
/* How much of an oversized chunked body is read and dropped before the
 * connection is closed instead of answered. */
#define KIT_BODY_DISCARD_MAX    (1024 * 1024)
#define KIT_DRAIN_POLL_MS       10
#define KIT_FORCE_WAIT_MS       2000
#define KIT_MHD_LOG_MAX         512
#define KIT_READY_PING_MS       500

#define KIT_STR_(x)  #x
#define KIT_STR(x)   KIT_STR_(x)

struct kit_req_s {
    pthread_mutex_t         mu;
    /* Under mu. */
    int                     refs;
    int                     owed;           /* its handler owes a reply */
    int                     suspend_wanted;
    int                     suspended;
    int                     replied;
    int                     status;
    struct MHD_Response    *response;
    /* Under kit_http.susp_mu. */
    kit_req_t              *prev, *next;
    int                     in_list;
    /* Set on the connection's thread before the handler runs. */
    struct MHD_Connection  *conn;
    struct timespec         start;
    int                     started, dispatched, queued;
    int                     nul_in_path, too_large, no_memory;
    char                    method[KIT_METHOD_MAX];
    const char             *path;
    const kit_route_t      *route;
    const char             *route_name;
    kit_params_t            params;
    const char             *param[KIT_ROUTE_PARAMS_MAX];
    char                    param_buf[KIT_PATH_MAX + KIT_ROUTE_PARAMS_MAX];
    char                   *body;
    size_t                  body_len, body_cap, body_seen;
    json_t                 *json;
    kit_identity_t          id;
    char                    request_id[KIT_REQUEST_ID_MAX + 1];
    /* The handler's own. */
    int                     nheaders;
    char                   *hname[KIT_REPLY_HEADERS_MAX];
    char                   *hvalue[KIT_REPLY_HEADERS_MAX];
};

static struct {
    const kit_service_t    *svc;
    const kit_config_t     *cf;
    struct MHD_Daemon      *daemon;
    int                     listen_fd;
    atomic_int              inflight;
    atomic_int              stopping;
    pthread_mutex_t         susp_mu;
    int                     forcing;        /* under susp_mu */
    kit_req_t              *susp_head;      /* under susp_mu */
} kit_http = { .listen_fd = -1, .susp_mu = PTHREAD_MUTEX_INITIALIZER };

static void kit_http_healthz(kit_req_t *req);
static void kit_http_readyz(kit_req_t *req);
static void kit_http_metrics(kit_req_t *req);

static const kit_route_t kit_http_own[] = {
    { "GET", "/healthz", kit_http_healthz, KIT_ROUTE_PUBLIC },
    { "GET", "/readyz", kit_http_readyz, KIT_ROUTE_PUBLIC },
    { "GET", "/metrics", kit_http_metrics, KIT_ROUTE_PUBLIC },
};
#define KIT_HTTP_OWN_N  (sizeof(kit_http_own) / sizeof(kit_http_own[0]))


/* ---- request lifetime ------------------------------------------------ */

/* The raw path (before '?') holds "%00", which decodes to a NUL. */
static int
kit_http_raw_has_nul(const char *uri)
{
    const char  *p;

    for (p = uri; *p != '\0' && *p != '?'; p++) {
        if (p[0] == '%' && p[1] == '0' && p[2] == '0') {
            return 1;
        }
    }
    return 0;
}


/*
 * A new request; counted: its connection's "fresh" count carries over to
 * it, so it is not counted in flight again.
 */
static kit_req_t *
kit_req_new(struct MHD_Connection *conn, const char *uri, int counted)
{
    kit_req_t  *req;

    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        if (counted) {
            atomic_fetch_sub(&kit_http.inflight, 1);
        }
        return NULL;
    }
    pthread_mutex_init(&req->mu, NULL);
    req->refs = 1;
    req->conn = conn;
    req->route_name = "unmatched";
    req->nul_in_path = uri != NULL && kit_http_raw_has_nul(uri);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    if (!counted) {
        atomic_fetch_add(&kit_http.inflight, 1);
    }
    return req;
}


static void
kit_req_free(kit_req_t *req)
{
    int  i;

    for (i = 0; i < req->nheaders; i++) {
        free(req->hname[i]);
        free(req->hvalue[i]);
    }
    if (req->response != NULL) {
        MHD_destroy_response(req->response);
    }
    json_decref(req->json);
    free(req->body);
    pthread_mutex_destroy(&req->mu);
    free(req);
}


static void
kit_req_unref(kit_req_t *req)
{
    int  last;

    pthread_mutex_lock(&req->mu);
    KIT_ASSERT(req->refs > 0);
    last = --req->refs == 0;
    pthread_mutex_unlock(&req->mu);
    if (last) {
        kit_req_free(req);
    }
}


/* Unlinks req from the suspended list; 1 when it was there. */
static int
kit_susp_unlink_locked(kit_req_t *req)
{
    if (!req->in_list) {
        return 0;
    }
    if (req->prev != NULL) {
        req->prev->next = req->next;
    } else {
        kit_http.susp_head = req->next;
    }
    if (req->next != NULL) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
    req->in_list = 0;
    return 1;
}


/* ---- answers --------------------------------------------------------- */

/*
 * Builds a response around buf (malloc()ed, taken; NULL for no body).
 * with_own adds the handler's kit_reply_header()s, which only the
 * handler's thread may touch.  NULL when out of memory.
 */
static struct MHD_Response *
kit_http_response(kit_req_t *req, const char *ctype, char *buf, size_t len,
    int with_own)
{
    struct MHD_Response  *resp;
    int                   i;

    if (buf == NULL) {
        resp = MHD_create_response_from_buffer(0, (void *) "",
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(len, buf,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
            free(buf);
        }
    }
    if (resp == NULL) {
        return NULL;
    }
    if ((ctype != NULL
         && MHD_add_response_header(resp, "Content-Type", ctype) != MHD_YES)
        || MHD_add_response_header(resp, "X-Request-Id", req->request_id)
           != MHD_YES)
    {
        MHD_destroy_response(resp);
        return NULL;
    }
    for (i = 0; with_own && i < req->nheaders; i++) {
        if (MHD_add_response_header(resp, req->hname[i], req->hvalue[i])
            != MHD_YES)
        {
            kit_log(KIT_LOG_ERROR, "could not add header \"%s\" to the "
                    "answer of request \"%s\"", req->hname[i],
                    req->request_id);
        }
    }
    if (atomic_load(&kit_http.stopping)) {
        MHD_add_response_header(resp, "Connection", "close");
    }
    return resp;
}


/* A problem+json response from p (taken); NULL when out of memory. */
static struct MHD_Response *
kit_http_problem(kit_req_t *req, json_t *p, int with_own)
{
    char  *buf;

    buf = p != NULL ? json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER)
                    : NULL;
    json_decref(p);
    if (buf == NULL) {
        return NULL;
    }
    return kit_http_response(req, "application/problem+json", buf,
                             strlen(buf), with_own);
}


/*
 * Stores resp (NULL when out of memory: the connection is then closed)
 * as req's answer, and resumes the connection if it is suspended.
 * by_owner: the handler's own answer, which settles its kit_suspend().
 * A second answer is dropped.  After this, by_owner callers must not
 * touch req again.
 */
static void
kit_http_answer(kit_req_t *req, int status, struct MHD_Response *resp,
    int by_owner)
{
    struct MHD_Connection  *conn;
    int                     dup, resume, settle, listed;

    pthread_mutex_lock(&req->mu);
    dup = req->replied;
    if (!dup) {
        req->replied = 1;
        req->status = status;
        req->response = resp;
    }
    resume = !dup && req->suspended;
    settle = by_owner && req->owed;
    req->owed = settle ? 0 : req->owed;
    conn = req->conn;
    pthread_mutex_unlock(&req->mu);

    if (dup) {
        if (resp != NULL) {
            MHD_destroy_response(resp);
        }
        if (by_owner) {
            kit_log(KIT_LOG_ERROR, "request \"%s\" was already answered, "
                    "dropping this answer", req->request_id);
        }
    }
    if (resume) {
        pthread_mutex_lock(&kit_http.susp_mu);
        listed = kit_susp_unlink_locked(req);
        pthread_mutex_unlock(&kit_http.susp_mu);
        if (listed) {
            kit_req_unref(req);     /* never the last: the caller has one */
        }
        MHD_resume_connection(conn);
    }
    if (settle) {
        kit_req_unref(req);
    }
}


void
kit_reply_json(kit_req_t *req, int status, json_t *body)
{
    char    *buf;
    size_t   len;

    KIT_ASSERT(req != NULL && status >= 100 && status <= 599);
    buf = NULL;
    len = 0;
    if (body != NULL) {
        buf = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY
                               | JSON_PRESERVE_ORDER);
        json_decref(body);
        if (buf == NULL) {
            kit_log(KIT_LOG_ERROR, "could not encode the answer to request "
                    "\"%s\"", req->request_id);
            kit_reply_problem(req, 500, NULL, "could not encode the answer");
            return;
        }
        len = strlen(buf);
    }
    kit_http_answer(req, status,
                    kit_http_response(req, buf != NULL ? "application/json"
                                                       : NULL, buf, len, 1),
                    1);
}


void
kit_reply_problem(kit_req_t *req, int status, const char *title,
    const char *detail)
{
    json_t  *p;

    KIT_ASSERT(req != NULL && status >= 100 && status <= 599);
    p = kit_problem_new(status, title, detail, req->request_id);
    kit_http_answer(req, status, kit_http_problem(req, p, 1), 1);
}


void
kit_reply_invalid(kit_req_t *req, const char *detail, json_t *errors)
{
    json_t  *p;

    KIT_ASSERT(req != NULL);
    p = kit_problem_new(422, NULL, detail, req->request_id);
    if (errors == NULL) {
        errors = json_array();
    }
    if (p != NULL && json_object_set_new(p, "errors", errors) != 0) {
        json_decref(p);
        p = NULL;
    } else if (p == NULL) {
        json_decref(errors);
    }
    kit_http_answer(req, 422, kit_http_problem(req, p, 1), 1);
}


void
kit_reply_header(kit_req_t *req, const char *name, const char *value)
{
    char  *n, *v;

    KIT_ASSERT(req != NULL && name != NULL && value != NULL);
    if (req->nheaders == KIT_REPLY_HEADERS_MAX) {
        kit_log(KIT_LOG_ERROR, "too many answer headers for request \"%s\", "
                "dropping \"%s\"", req->request_id, name);
        return;
    }
    n = strdup(name);
    v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return;
    }
    req->hname[req->nheaders] = n;
    req->hvalue[req->nheaders] = v;
    req->nheaders++;
}


void
kit_suspend(kit_req_t *req)
{
    KIT_ASSERT(req != NULL);
    pthread_mutex_lock(&req->mu);
    KIT_ASSERT(!req->suspend_wanted);
    if (!req->suspend_wanted) {
        req->suspend_wanted = 1;
        req->owed = 1;
        req->refs++;
    }
    pthread_mutex_unlock(&req->mu);
}


/* ---- what a handler reads -------------------------------------------- */

const char *
kit_req_method(const kit_req_t *req)
{
    return req->method;
}


const char *
kit_req_path(const kit_req_t *req)
{
    return req->path;
}


const char *
kit_req_route(const kit_req_t *req)
{
    return req->route_name;
}


const char *
kit_req_param(const kit_req_t *req, const char *name)
{
    int  i;

    i = kit_params_find(&req->params, name);
    return i >= 0 ? req->param[i] : NULL;
}


const char *
kit_req_query(const kit_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}


const char *
kit_req_header(const kit_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}


const char *
kit_req_body(const kit_req_t *req, size_t *len)
{
    *len = req->body_len;
    return req->body != NULL ? req->body : "";
}


json_t *
kit_req_json(const kit_req_t *req)
{
    return req->json;
}


const kit_identity_t *
kit_req_identity(const kit_req_t *req)
{
    return &req->id;
}


/*
 * Roles count only when the edge signed them: on a public route an
 * unsigned X-Kordon-Roles must never grant anything.
 */
int
kit_req_has_role(const kit_req_t *req, const char *role)
{
    const char  *p;
    size_t       rlen, len, seg;

    if (!req->id.verified || role == NULL || role[0] == '\0') {
        return 0;
    }
    rlen = strlen(role);
    p = req->id.roles;
    while (*p != '\0') {
        p += strspn(p, " ,");
        seg = strcspn(p, ",");
        for (len = seg; len > 0 && p[len - 1] == ' '; len--) {
            /* trailing spaces are not part of the role */
        }
        if (len == rlen && memcmp(p, role, rlen) == 0) {
            return 1;
        }
        p += seg;
    }
    return 0;
}


/* ---- the first call: everything that needs no body ------------------- */

static int
kit_http_rid_valid(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == KIT_REQUEST_ID_MAX
            || !(strchr("._-", s[i]) != NULL
                 || (s[i] >= '0' && s[i] <= '9')
                 || (s[i] >= 'a' && s[i] <= 'z')
                 || (s[i] >= 'A' && s[i] <= 'Z')))
        {
            return 0;
        }
    }
    return i > 0;
}


/* The client's X-Request-Id when it is sane, else 32 random hex digits. */
static void
kit_http_request_id(kit_req_t *req)
{
    static const char   hex[] = "0123456789abcdef";
    const char         *h;
    uint8_t             r[16];
    size_t              i;

    h = kit_req_header(req, "X-Request-Id");
    if (h != NULL && kit_http_rid_valid(h)) {
        snprintf(req->request_id, sizeof(req->request_id), "%s", h);
        return;
    }
    arc4random_buf(r, sizeof(r));
    for (i = 0; i < sizeof(r); i++) {
        req->request_id[2 * i] = hex[r[i] >> 4];
        req->request_id[2 * i + 1] = hex[r[i] & 0x0f];
    }
    req->request_id[2 * sizeof(r)] = '\0';
}


static int
kit_http_check_path(kit_req_t *req)
{
    if (req->nul_in_path) {
        kit_reply_problem(req, 400, NULL, "path contains a NUL byte");
        return -1;
    }
    if (strnlen(req->path, KIT_PATH_MAX + 1) > KIT_PATH_MAX) {
        kit_reply_problem(req, 414, NULL, "path is longer than "
                          KIT_STR(KIT_PATH_MAX) " bytes");
        return -1;
    }
    return 0;
}


/* Copies the matched parameters out of the path, NUL-terminated. */
static void
kit_http_params(kit_req_t *req, const kit_params_t *p)
{
    size_t  off;
    int     i;

    req->params = *p;
    off = 0;
    for (i = 0; i < p->n; i++) {
        KIT_ASSERT(off + p->value_len[i] < sizeof(req->param_buf));
        memcpy(req->param_buf + off, p->value[i], p->value_len[i]);
        req->param_buf[off + p->value_len[i]] = '\0';
        req->param[i] = req->param_buf + off;
        off += p->value_len[i] + 1;
    }
}


/* Finds the route (the service's first, then the kit's); 404 or 405. */
static int
kit_http_route(kit_req_t *req)
{
    const kit_service_t  *svc = kit_http.svc;
    kit_params_t          p;
    char                  allow[KIT_ALLOW_MAX], detail[KIT_DETAIL_MAX];
    int                   r, b;

    r = kit_route_match(svc->routes, svc->nroutes, req->method, req->path,
                        &p);
    b = r >= 0 ? -1 : kit_route_match(kit_http_own, KIT_HTTP_OWN_N,
                                      req->method, req->path, &p);
    if (r >= 0 || b >= 0) {
        req->route = r >= 0 ? &svc->routes[r] : &kit_http_own[b];
        req->route_name = req->route->pattern;
        kit_http_params(req, &p);
        return 0;
    }
    if (r == -2 || b == -2) {
        allow[0] = '\0';
        kit_route_allow(svc->routes, svc->nroutes, req->path, allow,
                        sizeof(allow));
        kit_route_allow(kit_http_own, KIT_HTTP_OWN_N, req->path, allow,
                        sizeof(allow));
        kit_reply_header(req, "Allow", allow);
        snprintf(detail, sizeof(detail), "method \"%s\" is not allowed "
                 "for \"%s\"", req->method, req->path);
        kit_reply_problem(req, 405, NULL, detail);
        return -1;
    }
    snprintf(detail, sizeof(detail), "no route for \"%s\"", req->path);
    kit_reply_problem(req, 404, NULL, detail);
    return -1;
}


static const char *
kit_http_sig_detail(int rc)
{
    switch (rc) {
    case KIT_SIG_MISSING:
        return "missing identity signature";
    case KIT_SIG_MALFORMED:
        return "malformed identity signature";
    case KIT_SIG_STALE:
        return "stale identity signature";
    default:
        return "invalid identity signature";
    }
}


/* Reads the identity headers and checks the signature; 401 or 431. */
static int
kit_http_identity(kit_req_t *req)
{
    static const char *const  names[] = {
        "X-Kordon-User", "X-Kordon-Roles", "X-Kordon-Session", "X-Request-Id"
    };
    const kit_config_t       *cf = kit_http.cf;
    kit_identity_t            raw;
    const char               *v[4];
    char                      detail[KIT_DETAIL_MAX];
    int                       i, rc;

    for (i = 0; i < 4; i++) {
        v[i] = kit_req_header(req, names[i]);
        v[i] = v[i] != NULL ? v[i] : "";
        if (strnlen(v[i], KIT_HEADER_VALUE_MAX + 1) > KIT_HEADER_VALUE_MAX) {
            snprintf(detail, sizeof(detail), "header \"%s\" is longer than "
                     "%d bytes", names[i], KIT_HEADER_VALUE_MAX);
            kit_reply_problem(req, 431, NULL, detail);
            return -1;
        }
    }
    raw = (kit_identity_t) { v[0], v[1], v[2], v[3], 0 };
    rc = kit_sig_verify(cf->edge_secret, cf->edge_secret_len,
                        kit_req_header(req, "X-Kordon-Signature"),
                        req->method, req->path, &raw, (int64_t) time(NULL),
                        cf->signature_skew_s);
    req->id = (kit_identity_t) { v[0], v[1], v[2], req->request_id,
                                 rc == KIT_SIG_OK };
    if (rc == KIT_SIG_OK || (req->route->flags & KIT_ROUTE_PUBLIC)) {
        return 0;
    }
    kit_reply_header(req, "WWW-Authenticate", "KordonEdge");
    kit_reply_problem(req, 401, NULL, kit_http_sig_detail(rc));
    return -1;
}


int
kit_is_json_type(const char *ct)
{
    static const char  want[] = "application/json";
    size_t             n = sizeof(want) - 1;

    if (ct == NULL) {
        return 0;
    }
    ct += strspn(ct, " \t");
    return strncasecmp(ct, want, n) == 0
           && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '
               || ct[n] == '\t');
}


/* Content type of JSON routes (415) and a declared length (413). */
static int
kit_http_body_head(kit_req_t *req)
{
    const char          *ct, *cl;
    char                 detail[KIT_DETAIL_MAX];
    unsigned long long   len;
    char                *end;

    if (req->route->flags & KIT_ROUTE_JSON) {
        ct = kit_req_header(req, "Content-Type");
        if (!kit_is_json_type(ct)) {
            snprintf(detail, sizeof(detail), "content type \"%s\" is not "
                     "\"application/json\"", ct != NULL ? ct : "");
            kit_reply_problem(req, 415, NULL, detail);
            return -1;
        }
    }
    cl = kit_req_header(req, "Content-Length");
    if (cl == NULL) {
        return 0;
    }
    errno = 0;
    len = strtoull(cl, &end, 10);
    if (errno != 0 || end == cl || len > kit_http.cf->body_max) {
        snprintf(detail, sizeof(detail), "request body is larger than %zu "
                 "bytes", kit_http.cf->body_max);
        kit_reply_problem(req, 413, NULL, detail);
        return -1;
    }
    if (len > 0) {
        req->body = malloc((size_t) len + 1);
        req->body_cap = req->body != NULL ? (size_t) len + 1 : 0;
    }
    return 0;
}


static void
kit_http_begin(kit_req_t *req, const char *url, const char *method)
{
    req->started = 1;
    snprintf(req->method, sizeof(req->method), "%s", method);
    req->path = url;
    kit_http_request_id(req);
    req->id = (kit_identity_t) { "", "", "", req->request_id, 0 };
    /* Each check answers when it fails; the first failure ends it. */
    (void) (kit_http_check_path(req) == 0 && kit_http_route(req) == 0
            && kit_http_identity(req) == 0 && kit_http_body_head(req) == 0);
}


/* ---- the body and the handler ---------------------------------------- */

/*
 * Gathers a piece of the body.  Past body_max the body is dropped and
 * the rest read and thrown away (the answer is 413), up to
 * KIT_BODY_DISCARD_MAX more; beyond that the connection is closed.  The
 * body of a request answered already is thrown away the same way.
 */
static enum MHD_Result
kit_http_upload(kit_req_t *req, const char *data, size_t *size)
{
    size_t   n, want;
    char    *p;

    n = *size;
    *size = 0;
    req->body_seen = n > SIZE_MAX - req->body_seen ? SIZE_MAX
                                                   : req->body_seen + n;
    if (req->dispatched || req->too_large || req->no_memory) {
        return req->body_seen > kit_http.cf->body_max + KIT_BODY_DISCARD_MAX
               ? MHD_NO : MHD_YES;
    }
    if (n > kit_http.cf->body_max - req->body_len) {
        req->too_large = 1;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return MHD_YES;
    }
    if (req->body_len + n + 1 > req->body_cap) {
        want = req->body_cap * 2 > req->body_len + n + 1
               ? req->body_cap * 2 : req->body_len + n + 1;
        want = want < kit_http.cf->body_max + 1 ? want
                                                : kit_http.cf->body_max + 1;
        p = realloc(req->body, want);
        if (p == NULL) {
            req->no_memory = 1;
            return MHD_YES;
        }
        req->body = p;
        req->body_cap = want;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return MHD_YES;
}


/*
 * 0 when the JSON text nests at most KIT_JSON_DEPTH_MAX deep; else -1 and
 * the offset of the bracket that went deeper.  jansson has no knob for
 * this, and checking first spares building a deep tree.
 */
static int
kit_json_depth_check(const char *s, size_t len, size_t *where)
{
    size_t  i;
    int     depth, in_str, esc;

    depth = in_str = esc = 0;
    for (i = 0; i < len; i++) {
        if (in_str) {
            if (esc) {
                esc = 0;
            } else if (s[i] == '\\') {
                esc = 1;
            } else if (s[i] == '"') {
                in_str = 0;
            }
        } else if (s[i] == '"') {
            in_str = 1;
        } else if (s[i] == '[' || s[i] == '{') {
            if (++depth > KIT_JSON_DEPTH_MAX) {
                *where = i;
                return -1;
            }
        } else if (s[i] == ']' || s[i] == '}') {
            depth--;
        }
    }
    return 0;
}


/* Parses the body of a JSON route into req->json; 400 when it cannot. */
static int
kit_http_parse_json(kit_req_t *req)
{
    json_error_t  e;
    char          detail[KIT_DETAIL_MAX];
    size_t        where;

    if (kit_json_depth_check(req->body, req->body_len, &where) != 0) {
        snprintf(detail, sizeof(detail), "request body nests deeper than "
                 "%d levels at byte %zu", KIT_JSON_DEPTH_MAX, where);
        kit_reply_problem(req, 400, NULL, detail);
        return -1;
    }
    req->json = json_loadb(req->body != NULL ? req->body : "",
                           req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (req->json == NULL) {
        snprintf(detail, sizeof(detail), "request body is not valid JSON: "
                 "%s at line %d, column %d", e.text, e.line, e.column);
        kit_reply_problem(req, 400, NULL, detail);
        return -1;
    }
    if (!json_is_object(req->json) && !json_is_array(req->json)) {
        kit_reply_problem(req, 400, NULL, "request body must be a JSON "
                          "object or array");
        return -1;
    }
    return 0;
}


static void
kit_http_dispatch(kit_req_t *req)
{
    char  detail[KIT_DETAIL_MAX];

    req->dispatched = 1;
    if (req->too_large) {
        snprintf(detail, sizeof(detail), "request body is larger than %zu "
                 "bytes", kit_http.cf->body_max);
        kit_reply_problem(req, 413, NULL, detail);
        return;
    }
    if (req->no_memory) {
        kit_log(KIT_LOG_ERROR, "out of memory reading the body of request "
                "\"%s\"", req->request_id);
        kit_reply_problem(req, 503, NULL, "out of memory");
        return;
    }
    if ((req->route->flags & KIT_ROUTE_JSON) && kit_http_parse_json(req) != 0)
    {
        return;
    }
    req->route->handler(req);
}


static enum MHD_Result
kit_http_queue(kit_req_t *req, int status, struct MHD_Response *resp)
{
    enum MHD_Result  rc;

    if (resp == NULL) {
        kit_log(KIT_LOG_ERROR, "out of memory answering request \"%s\", "
                "closing the connection", req->request_id);
        return MHD_NO;
    }
    rc = MHD_queue_response(req->conn, (unsigned int) status, resp);
    MHD_destroy_response(resp);
    if (rc != MHD_YES) {
        kit_log(KIT_LOG_ERROR, "could not queue the answer to request "
                "\"%s\"", req->request_id);
        return MHD_NO;
    }
    req->queued = 1;
    return MHD_YES;
}


/*
 * Suspends the connection, unless the stop is answering suspended
 * requests itself; called with req->mu held.  0, or -1 when stopping.
 */
static int
kit_http_suspend_locked(kit_req_t *req)
{
    pthread_mutex_lock(&kit_http.susp_mu);
    if (kit_http.forcing) {
        pthread_mutex_unlock(&kit_http.susp_mu);
        return -1;
    }
    MHD_suspend_connection(req->conn);
    req->suspended = 1;
    req->refs++;                              /* the list's reference */
    req->in_list = 1;
    req->prev = NULL;
    req->next = kit_http.susp_head;
    if (req->next != NULL) {
        req->next->prev = req;
    }
    kit_http.susp_head = req;
    pthread_mutex_unlock(&kit_http.susp_mu);
    return 0;
}


/*
 * After the handler (or a resume): queue the answer, suspend, or -- when
 * the handler neither answered nor suspended -- answer 500 ourselves.
 */
static enum MHD_Result
kit_http_finish(kit_req_t *req)
{
    struct MHD_Response  *resp;
    int                   round, status;

    for (round = 0; round < 2; round++) {
        pthread_mutex_lock(&req->mu);
        if (req->replied) {
            resp = req->response;
            req->response = NULL;
            status = req->status;
            req->suspended = 0;
            pthread_mutex_unlock(&req->mu);
            return kit_http_queue(req, status, resp);
        }
        if (req->suspend_wanted && kit_http_suspend_locked(req) == 0) {
            pthread_mutex_unlock(&req->mu);
            return MHD_YES;
        }
        pthread_mutex_unlock(&req->mu);
        if (req->suspend_wanted) {
            kit_http_answer(req, 503, kit_http_problem(req,
                kit_problem_new(503, NULL, "service is stopping",
                                req->request_id), 0), 0);
            continue;
        }
        kit_log(KIT_LOG_ERROR, "handler of \"%s %s\" returned without "
                "answering request \"%s\"", req->method, req->route_name,
                req->request_id);
        kit_reply_problem(req, 500, NULL, "the handler did not answer");
    }
    return MHD_NO;
}


/* ---- libmicrohttpd callbacks ----------------------------------------- */

/*
 * A connection counts as in flight from accept until its first request
 * starts, so a stop never drops a request that was accepted but not yet
 * read (its thread may be busy with another).  Idle keep-alive
 * connections do not count.
 */
typedef struct {
    int  fresh;
} kit_conn_t;


static void
kit_http_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
    kit_conn_t  *kc;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        kc = malloc(sizeof(*kc));
        if (kc != NULL) {
            kc->fresh = 1;
            atomic_fetch_add(&kit_http.inflight, 1);
        }
        *socket_context = kc;
        return;
    }
    kc = *socket_context;
    if (kc != NULL && kc->fresh) {
        atomic_fetch_sub(&kit_http.inflight, 1);
    }
    free(kc);
    *socket_context = NULL;
}


/* Called with the raw request line: the request starts here. */
static void *
kit_http_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo  *ci;
    kit_conn_t                      *kc;
    int                              counted;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    kc = ci != NULL ? ci->socket_context : NULL;
    counted = kc != NULL && kc->fresh;
    if (kc != NULL) {
        kc->fresh = 0;
    }
    return kit_req_new(conn, uri, counted);
}


static enum MHD_Result
kit_http_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
    kit_req_t  *req;

    req = *con_cls;
    if (req == NULL) {
        req = kit_req_new(conn, NULL, 0);
        if (req == NULL) {
            return MHD_NO;
        }
        *con_cls = req;
    }
    if (!req->started) {
        kit_http_begin(req, url, method);
        if (!req->replied) {
            return MHD_YES;
        }
        /*
         * Answered without a handler.  Queueing now refuses the body and
         * closes the connection, so only a 413 goes now; the others wait
         * for the last call and keep the connection.
         */
        req->dispatched = 1;
        return req->status == 413 ? kit_http_finish(req) : MHD_YES;
    }
    if (*upload_size != 0) {
        return kit_http_upload(req, upload, upload_size);
    }
    if (!req->dispatched) {
        kit_http_dispatch(req);
    }
    return kit_http_finish(req);
}


static void
kit_http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
    struct timespec   now;
    kit_req_t        *req;
    double            ms;
    int               status;

    req = *con_cls;
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    if (req->started) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (double) (now.tv_sec - req->start.tv_sec) * 1e3
             + (double) (now.tv_nsec - req->start.tv_nsec) / 1e6;
        pthread_mutex_lock(&req->mu);
        /* 499: the client went away before it got an answer. */
        status = req->queued ? req->status : 499;
        pthread_mutex_unlock(&req->mu);
        kit_log_request(req->request_id, req->method, req->route_name,
                        status, ms);
        kit_metrics_observe_method(req->method, req->route_name, status, ms);
    }
    kit_req_unref(req);
    atomic_fetch_sub(&kit_http.inflight, 1);
}


/*
 * libmicrohttpd's own messages.  Those about a client's malformed request
 * are the client's problem, not ours: debug, so garbage cannot flood the
 * log.  The rest (threads, sockets, memory) are warnings.
 */
static void
kit_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static const char  client[] = "Error processing request";
    char               msg[KIT_MHD_LOG_MAX];
    size_t             n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.')) {
        msg[--n] = '\0';
    }
    kit_log(strncmp(msg, client, sizeof(client) - 1) == 0 ? KIT_LOG_DEBUG
                                                          : KIT_LOG_WARN,
            "libmicrohttpd: %s", msg);
}


/* ---- the kit's own routes -------------------------------------------- */

static void
kit_http_healthz(kit_req_t *req)
{
    kit_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}


static void
kit_http_readyz(kit_req_t *req)
{
    if (atomic_load(&kit_http.stopping)) {
        kit_reply_problem(req, 503, NULL, "service is stopping");
        return;
    }
    if (kit_http.svc->schema != NULL && kit_pg_ping(KIT_READY_PING_MS) != 0)
    {
        kit_reply_problem(req, 503, NULL, "database is not available");
        return;
    }
    kit_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}


static void
kit_http_metrics(kit_req_t *req)
{
    char  *text;

    text = kit_metrics_render(kit_http.svc->name);
    if (text == NULL) {
        kit_reply_problem(req, 500, NULL, "could not render metrics");
        return;
    }
    kit_http_answer(req, 200,
                    kit_http_response(req, "text/plain; version=0.0.4; "
                                      "charset=utf-8", text, strlen(text), 1),
                    1);
}


/* ---- start and stop -------------------------------------------------- */

int
kit_http_listen(const kit_config_t *cf, char *err, size_t errlen)
{
    struct sockaddr_in  sa;
    int                 fd, one, saved;

    KIT_ASSERT(kit_http.listen_fd < 0);
    if (kit_http.listen_fd >= 0) {
        snprintf(err, errlen, "the listening socket is open already");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cf->listen_port);
    if (inet_pton(AF_INET, cf->listen_host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "listen address \"%s\" is not an IPv4 address",
                 cf->listen_host);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "could not create a socket: %s",
                 strerror(errno));
        return -1;
    }
    one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(fd, KIT_LISTEN_BACKLOG) != 0)
    {
        saved = errno;
        close(fd);
        snprintf(err, errlen, "could not listen on \"%s:%u\": %s",
                 cf->listen_host, (unsigned) cf->listen_port,
                 strerror(saved));
        return -1;
    }
    kit_http.listen_fd = fd;
    return 0;
}


void
kit_http_unlisten(void)
{
    if (kit_http.daemon == NULL && kit_http.listen_fd >= 0) {
        close(kit_http.listen_fd);
        kit_http.listen_fd = -1;
    }
}


static unsigned int
kit_http_flags(void)
{
    unsigned int  flags;

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME
            | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) {
        return flags | MHD_USE_EPOLL;
    }
    kit_log(KIT_LOG_WARN, "libmicrohttpd has no epoll support, using %s",
            MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES
            ? "poll" : "select");
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES) {
        flags |= MHD_USE_POLL;
    }
    return flags;
}


int
kit_http_start(const kit_service_t *svc, const kit_config_t *cf,
    char *err, size_t errlen)
{
    KIT_ASSERT(kit_http.daemon == NULL && kit_http.listen_fd >= 0);
    if (kit_http.daemon != NULL || kit_http.listen_fd < 0) {
        snprintf(err, errlen, "the HTTP server is already running or not "
                 "bound");
        return -1;
    }
    kit_http.svc = svc;
    kit_http.cf = cf;
    atomic_store(&kit_http.inflight, 0);
    atomic_store(&kit_http.stopping, 0);
    kit_http.forcing = 0;
    kit_http.daemon = MHD_start_daemon(kit_http_flags(), 0, NULL, NULL,
        kit_http_access, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, kit_http_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) kit_http.listen_fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) cf->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) cf->request_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) KIT_CONN_MEMORY_MAX,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) KIT_CONNECTIONS_MAX,
        MHD_OPTION_NOTIFY_CONNECTION, kit_http_conn, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, kit_http_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, kit_http_completed, NULL,
        MHD_OPTION_END);
    if (kit_http.daemon == NULL) {
        snprintf(err, errlen, "could not start the HTTP server on "
                 "\"%s:%u\"", cf->listen_host, (unsigned) cf->listen_port);
        return -1;
    }
    return 0;
}


/* Waits up to ms for the requests in flight; returns how many are left. */
static int
kit_http_drain(int ms)
{
    struct timespec  ts = { 0, KIT_DRAIN_POLL_MS * 1000000L };
    int              i, left;

    for (i = 0; i <= ms / KIT_DRAIN_POLL_MS; i++) {
        left = atomic_load(&kit_http.inflight);
        if (left == 0) {
            return 0;
        }
        nanosleep(&ts, NULL);
    }
    return atomic_load(&kit_http.inflight);
}


/* Answers 503 to every suspended request; none can be suspended after. */
static void
kit_http_force(void)
{
    kit_req_t  *req;
    int         n;

    pthread_mutex_lock(&kit_http.susp_mu);
    kit_http.forcing = 1;
    pthread_mutex_unlock(&kit_http.susp_mu);

    /* Bounded: each round removes one, and none can be added. */
    for (n = 0; n <= KIT_CONNECTIONS_MAX; n++) {
        pthread_mutex_lock(&kit_http.susp_mu);
        req = kit_http.susp_head;
        if (req != NULL) {
            kit_susp_unlink_locked(req);     /* its reference is now ours */
        }
        pthread_mutex_unlock(&kit_http.susp_mu);
        if (req == NULL) {
            break;
        }
        kit_http_answer(req, 503, kit_http_problem(req,
            kit_problem_new(503, NULL, "service is stopping",
                            req->request_id), 0), 0);
        kit_req_unref(req);
    }
}


/*
 * Hands the connections waiting in the listen backlog to the quiesced
 * daemon, then closes the listener.  Those clients connected before the
 * stop and count as in flight: without this, closing the listener would
 * reset them while every pool thread was busy.  Later connects are
 * refused at once.  Bounded by the connection limit.
 */
static void
kit_http_adopt_backlog(void)
{
    struct sockaddr_storage  sa;
    socklen_t                salen;
    int                      fd, n;

    for (n = 0; n < KIT_CONNECTIONS_MAX; n++) {
        salen = sizeof(sa);
        fd = accept4(kit_http.listen_fd, (struct sockaddr *) &sa, &salen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            break;              /* EAGAIN: the backlog is empty */
        }
        if (MHD_add_connection(kit_http.daemon, fd, (struct sockaddr *) &sa,
                               salen) != MHD_YES)
        {
            kit_log(KIT_LOG_WARN, "could not adopt a waiting connection "
                    "while stopping");
        }
    }
    close(kit_http.listen_fd);
    kit_http.listen_fd = -1;
}


void
kit_http_stop(int drain_ms)
{
    int  left;

    if (kit_http.daemon == NULL) {
        return;
    }
    atomic_store(&kit_http.stopping, 1);
    MHD_quiesce_daemon(kit_http.daemon);
    kit_http_adopt_backlog();
    kit_log(KIT_LOG_INFO, "stopped accepting, %d requests in flight",
            atomic_load(&kit_http.inflight));
    left = kit_http_drain(drain_ms);
    if (left > 0) {
        kit_log(KIT_LOG_WARN, "%d requests still in flight after %d ms, "
                "answering the suspended ones", left, drain_ms);
        kit_http_force();
        left = kit_http_drain(KIT_FORCE_WAIT_MS);
        if (left > 0) {
            kit_log(KIT_LOG_ERROR, "%d requests still in flight, stopping "
                    "anyway", left);
        }
    } else {
        /* No new suspensions either: the list must stay empty for stop. */
        kit_http_force();
    }
    MHD_stop_daemon(kit_http.daemon);
    kit_http.daemon = NULL;
    kit_log(KIT_LOG_INFO, "http server stopped");
}
