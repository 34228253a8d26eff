/*
 * kit.h -- the Kordon service kit: everything a backend links instead of
 * writing it again.
 *
 * A backend is a table of routes and a call to kit_main().  The kit owns
 * the process: it reads and validates the environment, opens the
 * PostgreSQL pool, starts the outbox relay, serves HTTP with
 * libmicrohttpd's internal thread pool, checks the edge's signed identity,
 * renders every error as RFC 9457 problem+json, logs one JSON line per
 * request and stops gracefully on SIGTERM.
 *
 * Threading: handlers run on libmicrohttpd's pool threads, many at once.
 * Everything a handler reaches through this header is thread-safe unless
 * its comment says otherwise.  A kit_req_t belongs to one handler at a
 * time; after kit_suspend() it may be answered from any thread, once.
 */

#ifndef KORDON_KIT_H
#define KORDON_KIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>


/* Limits.  Every buffer, queue and retry loop in the kit has one. */
#define KIT_ROUTE_PARAMS_MAX       8
#define KIT_ROUTE_SEGMENTS_MAX     16
#define KIT_PATH_MAX               2048
#define KIT_HEADER_VALUE_MAX       1024
#define KIT_JSON_DEPTH_MAX         32
#define KIT_TX_RETRIES_MAX         8
#define KIT_OUTBOX_BATCH_MAX       256


/* ---- configuration (kit_config.c) -------------------------------------
 *
 * Environment variables, read once at start.  A missing required variable
 * or a malformed value stops the service with a message naming it:
 *
 *   kordon-users: environment variable "KORDON_LISTEN" is malformed:
 *   expected host:port
 *
 * Variables every service reads:
 *
 *   KORDON_LISTEN            host:port to listen on (required)
 *   KORDON_DATABASE_URL      libpq conninfo (required when the service
 *                            declares a schema)
 *   KORDON_EDGE_SECRET_FILE  file holding the shared HMAC key, hex, at
 *                            least 32 bytes once decoded (required)
 *   KAFKA_BOOTSTRAP          host:port[,host:port] (required when the
 *                            service has an outbox)
 *   KORDON_THREADS           HTTP pool threads, 1..64, default 4
 *   KORDON_DB_POOL_SIZE      connections, 1..64, default 4
 *   KORDON_BODY_MAX          request body bytes, 1..16777216, default 65536
 *   KORDON_REQUEST_TIMEOUT_S idle connection timeout, 1..300, default 30
 *   KORDON_SIGNATURE_SKEW_S  signature freshness, 1..600, default 60
 *   KORDON_LOG_LEVEL         debug|info|warn|error, default info
 */

typedef struct {
    char        listen_host[64];
    uint16_t    listen_port;
    char       *database_url;          /* NULL when not configured */
    uint8_t     edge_secret[64];
    size_t      edge_secret_len;
    char       *kafka_bootstrap;       /* NULL when not configured */
    int         threads;
    int         db_pool_size;
    size_t      body_max;
    int         request_timeout_s;
    int         signature_skew_s;
    int         log_level;
} kit_config_t;

/*
 * Helpers for a service's own variables.  Each returns 0 and sets *out, or
 * returns -1 after writing a message that names the variable into err
 * (errlen bytes).  A NULL def makes the variable required.
 */
int kit_env_str(const char *name, const char *def, const char **out,
    char *err, size_t errlen);
int kit_env_int(const char *name, const char *def, long min, long max,
    long *out, char *err, size_t errlen);

/* Loads the common variables above; same contract as kit_env_*. */
int kit_config_load(kit_config_t *cf, int need_db, int need_kafka,
    char *err, size_t errlen);


/* ---- logging (kit_log.c) ----------------------------------------------
 *
 * One JSON object per line on stderr:
 *   {"ts":"...","level":"info","svc":"users","msg":"...", ...}
 * Messages follow PostgreSQL's manner: lowercase, no final period, the
 * failing thing quoted.  Never pass a secret, a token or a password.
 */

enum { KIT_LOG_DEBUG, KIT_LOG_INFO, KIT_LOG_WARN, KIT_LOG_ERROR };

void kit_log_init(const char *service, int level);
void kit_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A request line: level info, msg "request", plus the given fields. */
void kit_log_request(const char *request_id, const char *method,
    const char *route, int status, double ms);


/* ---- requests and routes (kit_http.c, kit_route.c) -------------------- */

typedef struct kit_req_s  kit_req_t;

typedef void (*kit_handler_pt)(kit_req_t *req);

/* Route flags. */
#define KIT_ROUTE_PUBLIC  0x01   /* no signed identity needed */
#define KIT_ROUTE_JSON    0x02   /* body must be application/json */

typedef struct {
    const char      *method;    /* "GET", "POST", ... */
    const char      *pattern;   /* "/v1/accounts/{id}/statement" */
    kit_handler_pt   handler;
    unsigned         flags;
} kit_route_t;

/* The identity the edge signed; every field "" when absent. */
typedef struct {
    const char  *user;          /* X-Kordon-User */
    const char  *roles;         /* X-Kordon-Roles, comma separated */
    const char  *session;       /* X-Kordon-Session */
    const char  *request_id;    /* X-Request-Id, or one the kit made */
    int          verified;      /* 1 when the signature checked out */
} kit_identity_t;

const char *kit_req_method(const kit_req_t *req);
const char *kit_req_path(const kit_req_t *req);
/* The route pattern that matched, for logs and metrics. */
const char *kit_req_route(const kit_req_t *req);
/* Path parameter {name}, or NULL. */
const char *kit_req_param(const kit_req_t *req, const char *name);
/* Query argument, or NULL. */
const char *kit_req_query(const kit_req_t *req, const char *name);
/* Request header (case-insensitive), or NULL. */
const char *kit_req_header(const kit_req_t *req, const char *name);
/* Raw body; len 0 when none. */
const char *kit_req_body(const kit_req_t *req, size_t *len);
/* Parsed body of a KIT_ROUTE_JSON route; borrowed, never NULL there. */
json_t *kit_req_json(const kit_req_t *req);
const kit_identity_t *kit_req_identity(const kit_req_t *req);
/* 1 when content_type is application/json (any case, parameters allowed). */
int kit_is_json_type(const char *content_type);
/* 1 when the comma-separated roles contain role. */
int kit_req_has_role(const kit_req_t *req, const char *role);

/*
 * Answers.  Exactly one per request.  kit_reply_json steals body (may be
 * NULL for an empty body).  kit_reply_problem renders RFC 9457
 * problem+json with type, title, status, detail and request_id.
 */
void kit_reply_json(kit_req_t *req, int status, json_t *body);
void kit_reply_problem(kit_req_t *req, int status, const char *title,
    const char *detail);
/* Validation failure: errors is an array of {pointer, message}; stolen. */
void kit_reply_invalid(kit_req_t *req, const char *detail, json_t *errors);
void kit_reply_header(kit_req_t *req, const char *name, const char *value);

/*
 * Suspension: a handler that cannot answer now calls kit_suspend() and
 * returns.  Later, any thread calls one kit_reply_* on req; the kit then
 * resumes the connection and sends the answer.  A suspended request still
 * counts as in flight for graceful stop.
 */
void kit_suspend(kit_req_t *req);


/* ---- router, pure logic (kit_route.c) ---------------------------------
 *
 * Exposed for unit tests.  Patterns are split on '/'; a segment "{name}"
 * matches any one non-empty segment.  Literal segments win over
 * parameters.  Returns the index of the matching route, -1 when no route
 * matches the path (404), -2 when the path matches with another method
 * only (405).
 */

typedef struct {
    const char  *name[KIT_ROUTE_PARAMS_MAX];
    const char  *value[KIT_ROUTE_PARAMS_MAX];
    size_t       value_len[KIT_ROUTE_PARAMS_MAX];
    int          n;
} kit_params_t;

int kit_route_match(const kit_route_t *routes, size_t nroutes,
    const char *method, const char *path, kit_params_t *params);


/* ---- problem rendering (kit_problem.c) --------------------------------
 *
 * Returns a new JSON object; type is "about:blank" unless given.
 */
json_t *kit_problem_new(int status, const char *title, const char *detail,
    const char *request_id);
/* The HTTP reason phrase, "Unknown" when unknown. */
const char *kit_status_title(int status);


/* ---- edge identity signature (kit_identity.c) -------------------------
 *
 * X-Kordon-Signature: t=<unix seconds>,v1=<64 lowercase hex>
 *
 * v1 = HMAC-SHA256(secret, "kordon-v1" LF method LF path LF user LF roles
 *                  LF session LF request_id LF t)
 *
 * path is the request path without the query string, as the service sees
 * it.  Absent headers sign as "".  The signature is fresh when
 * |now - t| <= skew_s.  Comparison is constant time.
 */

#define KIT_SIG_OK         0
#define KIT_SIG_MISSING   -1
#define KIT_SIG_MALFORMED -2
#define KIT_SIG_STALE     -3
#define KIT_SIG_BAD       -4

int kit_sig_sign(const uint8_t *key, size_t keylen, const char *method,
    const char *path, const kit_identity_t *id, int64_t t,
    char *out, size_t outlen);
int kit_sig_verify(const uint8_t *key, size_t keylen, const char *header,
    const char *method, const char *path, const kit_identity_t *id,
    int64_t now, int skew_s);
/* Hex decoding for keys: returns bytes written or -1. */
int kit_hex_decode(const char *hex, uint8_t *out, size_t outlen);


/* Milliseconds of CLOCK_MONOTONIC, for deadlines and intervals (kit_pg.c). */
int64_t kit_now_ms(void);


/* ---- PostgreSQL (kit_pg.c) --------------------------------------------
 *
 * A fixed pool of connections.  A connection that broke is reset on its
 * next acquire, so the service recovers by itself when the server
 * restarts.  Statements are prepared once per connection, by name.
 */

typedef struct kit_pg_s  kit_pg_t;

int kit_pg_pool_start(const char *conninfo, int size);
void kit_pg_pool_stop(void);
/* NULL when no healthy connection came within timeout_ms. */
kit_pg_t *kit_pg_acquire(int timeout_ms);
void kit_pg_release(kit_pg_t *pg);
/* 0 when the database answers "select 1". */
int kit_pg_ping(int timeout_ms);
/*
 * Runs a named prepared statement (preparing it on this connection first
 * if needed).  Returns the result (caller PQclear()s it), or NULL when the
 * connection failed.  Check PQresultStatus() for SQL errors.
 */
PGresult *kit_pg_exec(kit_pg_t *pg, const char *name, const char *sql,
    int nparams, const char *const *params);
PGconn *kit_pg_conn(kit_pg_t *pg);

/*
 * Transactions: runs fn between BEGIN (at the given isolation, e.g.
 * "serializable") and COMMIT.  fn returns 0 to commit, anything else to
 * roll back.  On serialization failure or deadlock (40001, 40P01) the
 * whole transaction is retried, up to KIT_TX_RETRIES_MAX times with
 * backoff.  Returns 0 after a commit, fn's value after a rollback it asked
 * for, KIT_TX_CONFLICT when retries ran out, KIT_TX_UNAVAILABLE when no
 * connection could be had.
 */

#define KIT_TX_CONFLICT     -1001
#define KIT_TX_UNAVAILABLE  -1002
/* Rolled back by the server on an error fn did not report (fn returned 0
 * after a failed statement), or an unknown isolation level. */
#define KIT_TX_FAILED       -1003

typedef int (*kit_tx_pt)(kit_pg_t *pg, void *arg);

int kit_pg_tx(const char *isolation, kit_tx_pt fn, void *arg);


/* ---- transactional outbox (kit_outbox.c) ------------------------------
 *
 * kit_outbox_write() inserts an event into <schema>.outbox inside the
 * caller's transaction.  The relay thread publishes unsent rows to Kafka
 * with an idempotent producer, in id order, keyed by key, and marks them
 * sent once the broker acknowledged them.  Rows survive broker outages
 * and restarts; a row is published at least once, and exactly once
 * unless an acknowledgement is lost.
 *
 * The envelope: {id, type, occurred_at, request_id, actor, subject, data}.
 */

int kit_outbox_write(kit_pg_t *pg, const char *topic, const char *type,
    const char *key, const char *request_id, const char *actor,
    const char *subject, json_t *data);
int kit_outbox_start(const char *schema, const char *conninfo,
    const char *bootstrap);
void kit_outbox_stop(void);


/* ---- metrics (kit_metrics.c) ------------------------------------------
 *
 * Counters of requests by route and status and a latency histogram, in
 * Prometheus text format at /metrics.
 */

void kit_metrics_observe(const char *route, int status, double ms);
/* Returns a malloc()ed Prometheus text page. */
char *kit_metrics_render(const char *service);


/* ---- the service (kit_main.c) ----------------------------------------- */

typedef struct {
    const char          *name;       /* "users": logs, metrics */
    const char          *schema;     /* PostgreSQL schema, or NULL */
    int                  outbox;     /* 1: run the relay for schema */
    const kit_route_t   *routes;
    size_t               nroutes;
    /* Optional: called after config and pool, before serving. */
    int                (*init)(const kit_config_t *cf);
} kit_service_t;

/*
 * Runs the service until SIGTERM or SIGINT, then stops accepting,
 * finishes requests in flight and returns 0.  Returns 1 when the
 * configuration is invalid or the listener cannot be opened.  The kit
 * serves GET /healthz, /readyz and /metrics itself.
 */
int kit_main(const kit_service_t *svc);

#endif /* KORDON_KIT_H */
