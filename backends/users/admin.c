/*
 * admin.c -- /v1/admin/users and /v1/admin/audit: operators search,
 * read, correct, block, unblock, confirm and unlock people, set their
 * roles, and read the audit trail.
 *
 * Who may do what is roles.c's matrix (support reads, admin does
 * everything); the edge checks the same first.  Searches build their
 * SQL from the filters actually given (each a parameter, never text
 * spliced in), so every shape gets a plan that uses its index: an email
 * prefix the text_pattern_ops index, a phone prefix likewise, an id
 * prefix the primary key as a range.  Pages are keyset pages in id order
 * (ids are UUIDv7, so newest first): the cursor is the last id shown,
 * and a page costs the same at any depth.
 *
 * Every change is audited with the operator as actor and emits its
 * event through the outbox in the same transaction; a block ends every
 * session and cuts the user's live access tokens at the edge (a "sub"
 * revocation pushed after the commit).  Its not-before is the next
 * second: the edge refuses iat < nbf, and a token signed earlier in the
 * same second must not outlive the block (nobody blocked can get a new
 * one anyway).  Reading one person is audited
 * too (admin.user_read).
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "roles.h"

#define USERS_PAGE_DEFAULT    50
#define USERS_PAGE_MAX        200
#define USERS_SEARCH_MAX      254
#define USERS_REASON_MAX      500
#define USERS_LIST_SQL_MAX    2048
#define USERS_LIST_PARAMS     8

#define USERS_ROW_JSON                                                     \
    "json_build_object('id', u.id, 'email', u.email, 'phone', u.phone,"    \
    " 'name', u.name, 'status', u.status, 'roles', u.roles,"               \
    " 'created_at', ts_text(u.created_at),"                                \
    " 'verified_at', ts_text(u.verified_at),"                              \
    " 'locked_until', case when u.locked_until > now()"                    \
    "  then ts_text(u.locked_until) end,"                                  \
    " 'failed_logins', u.failed_logins,"                                   \
    " 'totp', u.totp_enabled_at is not null,"                              \
    " 'blocked_reason', u.blocked_reason)"

/*
 * The smallest UUIDv7 of the millisecond of a timestamp parameter.  An
 * id is drawn (clock_timestamp()) no earlier than its row's created_at
 * (now(), the transaction's start), so created_at >= t implies id >=
 * this of t: a created range becomes a range of the primary key, which
 * the keyset order walks anyway.  The upper side allows a day for long
 * transactions; the created_at conditions stay and keep it exact.
 */
#define USERS_UUID_FLOOR(t)                                                \
    "encode(substring(int8send(floor(extract(epoch from " t ")"            \
    " * 1000)::bigint) from 3) || '\\x00000000000000000000'::bytea,"       \
    " 'hex')::uuid"

typedef struct {
    kit_req_t       *req;
    const char      *caller;
    const char      *id;
    const char      *reason;
    json_t          *body;
    json_t          *user;          /* the answer, when there is one */
    char             roles_pg[64];
    char             email[USERS_EMAIL_MAX + 1];
    const char      *phone;
    const char      *name;
    int              status;        /* refusal, 0: ok */
    const char      *detail;
    int              cut;           /* a revocation to push */
} users_admin_t;


/* The caller, when act is allowed to them; NULL after 401/403. */
static const char *
users_admin_caller(kit_req_t *req, users_act_e act)
{
    const char  *user;

    user = users_caller(req);
    if (user == NULL) {
        return NULL;
    }
    if (!users_role_may(kit_req_identity(req)->roles, act)) {
        kit_reply_problem(req, 403, NULL, "your roles do not allow this");
        return NULL;
    }
    return user;
}


/* ---- list and search -------------------------------------------------- */

/* 1 when s is an RFC 3339 date or date-time (the shape; PostgreSQL checks
 * the ranges). */
static int
users_time_valid(const char *s)
{
    static const char  date[] = "dddd-dd-dd";
    static const char  time_[] = "Tdd:dd:dd";
    size_t             i;

    for (i = 0; date[i] != '\0'; i++) {
        if (date[i] == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != '-') {
            return 0;
        }
    }
    s += i;
    if (*s == '\0') {
        return 1;
    }
    for (i = 0; time_[i] != '\0'; i++) {
        if (time_[i] == 'd' ? !isdigit((unsigned char) s[i])
                            : toupper((unsigned char) s[i]) != time_[i])
        {
            return 0;
        }
    }
    s += i;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char) *s)) {
            return 0;
        }
        s += strspn(s, "0123456789");
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') {
        return 1;
    }
    return (*s == '+' || *s == '-') && isdigit((unsigned char) s[1])
           && isdigit((unsigned char) s[2]) && s[3] == ':'
           && isdigit((unsigned char) s[4]) && isdigit((unsigned char) s[5])
           && s[6] == '\0';
}


typedef struct {
    char         sql[USERS_LIST_SQL_MAX];
    size_t       len;
    const char  *p[USERS_LIST_PARAMS];
    char         own[4][USERS_SEARCH_MAX + 40];   /* built parameters */
    int          n;
    int          nown;
    json_t      *errors;
} users_query_t;


static void
users_q_add(users_query_t *q, const char *fmt, const char *value)
{
    q->p[q->n++] = value;
    q->len += (size_t) snprintf(q->sql + q->len, sizeof(q->sql) - q->len,
                                fmt, q->n, q->n);
}


/* A parameter made here (lives in q). */
static char *
users_q_own(users_query_t *q)
{
    return q->own[q->nown++];
}


/* "abc%" with LIKE's wildcards in s escaped. */
static void
users_like_prefix(const char *s, char *out, size_t outlen)
{
    size_t  o;

    for (o = 0; *s != '\0' && o + 3 < outlen; s++) {
        if (*s == '%' || *s == '_' || *s == '\\') {
            out[o++] = '\\';
        }
        out[o++] = (char) tolower((unsigned char) *s);
    }
    out[o++] = '%';
    out[o] = '\0';
}


/* The bounds of the ids that start with hex digits h (dashes ignored);
 * 0, or -1 when q is not a hex prefix. */
static int
users_id_bounds(const char *q, char *lo, char *hi)
{
    char    h[33];
    size_t  i, n;

    for (n = 0; *q != '\0'; q++) {
        if (*q == '-') {
            continue;
        }
        if (!isxdigit((unsigned char) *q) || n == 32) {
            return -1;
        }
        h[n++] = (char) tolower((unsigned char) *q);
    }
    if (n == 0) {
        return -1;
    }
    for (i = 0; i < 32; i++) {
        lo[i + (i >= 8) + (i >= 12) + (i >= 16) + (i >= 20)] = i < n ? h[i]
                                                                      : '0';
        hi[i + (i >= 8) + (i >= 12) + (i >= 16) + (i >= 20)] = i < n ? h[i]
                                                                      : 'f';
    }
    lo[8] = lo[13] = lo[18] = lo[23] = '-';
    hi[8] = hi[13] = hi[18] = hi[23] = '-';
    lo[36] = hi[36] = '\0';
    return 0;
}


/* q=: an email, phone or id prefix. */
static void
users_q_search(users_query_t *q, const char *s)
{
    char  *a, *lo, *hi;

    if (strlen(s) > USERS_SEARCH_MAX || s[0] == '\0') {
        users_error(q->errors, "/q", "must be 1..254 characters");
        return;
    }
    a = users_q_own(q);
    users_like_prefix(s, a, USERS_SEARCH_MAX + 40);
    if (s[0] == '+') {
        users_q_add(q, " and u.phone like $%d", a);
        return;
    }
    lo = users_q_own(q);
    hi = users_q_own(q);
    if (strchr(s, '@') == NULL && users_id_bounds(s, lo, hi) == 0) {
        q->p[q->n] = lo;
        q->p[q->n + 1] = hi;
        q->p[q->n + 2] = a;
        q->len += (size_t) snprintf(q->sql + q->len,
                                    sizeof(q->sql) - q->len,
                                    " and (u.id between $%d::uuid and"
                                    " $%d::uuid or u.email like $%d)",
                                    q->n + 1, q->n + 2, q->n + 3);
        q->n += 3;
        return;
    }
    users_q_add(q, " and u.email like $%d", a);
}


static void
users_q_filters(users_query_t *q, kit_req_t *req)
{
    static const char *const  statuses[] = { "unverified", "active",
                                             "blocked", "deleted", NULL };
    const char               *v;
    int                       i;

    v = kit_req_query(req, "q");
    if (v != NULL) {
        users_q_search(q, v);
    }
    v = kit_req_query(req, "status");
    if (v != NULL) {
        for (i = 0; statuses[i] != NULL && strcmp(statuses[i], v) != 0; i++) {
            /* find it */
        }
        if (statuses[i] == NULL) {
            users_error(q->errors, "/status", "must be unverified, active, "
                        "blocked or deleted");
        } else {
            users_q_add(q, " and u.status = $%d", v);
        }
    }
    v = kit_req_query(req, "role");
    if (v != NULL) {
        if (strcmp(v, "user") != 0 && strcmp(v, "support") != 0
            && strcmp(v, "admin") != 0)
        {
            users_error(q->errors, "/role", "must be user, support or admin");
        } else {
            users_q_add(q, " and u.roles @> array[$%d]::text[]", v);
        }
    }
    v = kit_req_query(req, "created_from");
    if (v != NULL) {
        if (!users_time_valid(v)) {
            users_error(q->errors, "/created_from", "must be an RFC 3339 "
                        "date-time");
        } else {
            users_q_add(q, " and u.created_at >= $%d::timestamptz"
                        " and u.id >= " USERS_UUID_FLOOR("$%d::timestamptz"),
                        v);
        }
    }
    v = kit_req_query(req, "created_to");
    if (v != NULL) {
        if (!users_time_valid(v)) {
            users_error(q->errors, "/created_to", "must be an RFC 3339 "
                        "date-time");
        } else {
            users_q_add(q, " and u.created_at < $%d::timestamptz"
                        " and u.id < " USERS_UUID_FLOOR("($%d::timestamptz"
                        " + interval '1 day')"), v);
        }
    }
}


/* limit= (1..USERS_PAGE_MAX); -1 after an error is appended. */
static int
users_page_limit(kit_req_t *req, json_t *errors)
{
    const char  *v;
    char        *end;
    long         n;

    v = kit_req_query(req, "limit");
    if (v == NULL) {
        return USERS_PAGE_DEFAULT;
    }
    n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > USERS_PAGE_MAX) {
        users_error(errors, "/limit", "must be 1..200");
        return -1;
    }
    return (int) n;
}


/*
 * Runs q (its SQL selects the cursor value then a JSON text per row) and
 * answers {items, next_cursor}; answers 422 when PostgreSQL found a value
 * out of range (a 30th of February).
 */
static void
users_page_reply(kit_req_t *req, users_query_t *q, int limit)
{
    json_error_t   e;
    kit_pg_t      *pg;
    PGresult      *res;
    json_t        *items;
    const char    *state;
    int            i, rows;

    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(req, "database is not available");
        return;
    }
    res = PQexecParams(kit_pg_conn(pg), q->sql, q->n, NULL, q->p, NULL, NULL,
                       0);
    kit_pg_release(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state != NULL && strncmp(state, "22", 2) == 0) {
            kit_reply_invalid(req, "a filter value is out of range",
                              json_pack("[{s:s, s:s}]", "pointer", "",
                                        "message", "a date or id is out of "
                                        "range"));
        } else {
            kit_log(KIT_LOG_ERROR, "admin search failed: %s",
                    res != NULL ? PQresultErrorMessage(res) : "no result");
            kit_reply_problem(req, 500, NULL, "could not search");
        }
        PQclear(res);
        return;
    }
    rows = PQntuples(res);
    items = json_array();
    for (i = 0; i < rows && i < limit; i++) {
        json_array_append_new(items, json_loads(PQgetvalue(res, i, 1), 0, &e));
    }
    kit_reply_json(req, 200, json_pack("{s:o, s:o}", "items", items,
                   "next_cursor", rows > limit
                   ? json_string(PQgetvalue(res, limit - 1, 0))
                   : json_null()));
    PQclear(res);
}


/*
 * A query of the list routes: "select" is the statement up to its
 * "where true", to which the filters add "and ..." with parameters.
 * NULL (and 500 answered) when out of memory.
 */
static users_query_t *
users_q_new(kit_req_t *req, const char *select)
{
    users_query_t  *q;

    q = calloc(1, sizeof(*q));
    if (q == NULL || (q->errors = json_array()) == NULL) {
        free(q);
        kit_reply_problem(req, 500, NULL, "out of memory");
        return NULL;
    }
    q->len = (size_t) snprintf(q->sql, sizeof(q->sql), "%s", select);
    return q;
}


/*
 * The end of a list route: 422 naming every bad parameter, or the page
 * ordered by "key" (descending, the keyset cursor's order).  Frees q.
 */
static void
users_q_finish(kit_req_t *req, users_query_t *q, const char *key, int limit)
{
    if (json_array_size(q->errors) > 0) {
        kit_reply_invalid(req, "the query is invalid", q->errors);
        free(q);
        return;
    }
    json_decref(q->errors);
    q->len += (size_t) snprintf(q->sql + q->len, sizeof(q->sql) - q->len,
                                " order by %s desc limit %d", key, limit + 1);
    users_page_reply(req, q, limit);
    free(q);
}


void
users_admin_list(kit_req_t *req)
{
    users_query_t  *q;
    const char     *cursor;
    int             limit;

    if (users_admin_caller(req, USERS_ACT_USERS_LIST) == NULL) {
        return;
    }
    q = users_q_new(req, "select u.id, " USERS_ROW_JSON "::text"
                         " from users u where true");
    if (q == NULL) {
        return;
    }
    users_q_filters(q, req);
    limit = users_page_limit(req, q->errors);
    cursor = kit_req_query(req, "cursor");
    if (cursor != NULL && !users_uuid_valid(cursor)) {
        users_error(q->errors, "/cursor", "is not a cursor of ours");
    } else if (cursor != NULL) {
        users_q_add(q, " and u.id < $%d::uuid", cursor);
    }
    users_q_finish(req, q, "u.id", limit);
}


/* ---- the audit trail -------------------------------------------------- */

void
users_admin_audit(kit_req_t *req)
{
    users_query_t  *q;
    const char     *v;
    int             limit;

    if (users_admin_caller(req, USERS_ACT_AUDIT_READ) == NULL) {
        return;
    }
    q = users_q_new(req,
        "select a.id, json_build_object('id', a.id, 'at', ts_text(a.at),"
        " 'action', a.action, 'actor', a.actor, 'subject', a.subject,"
        " 'ip', a.ip, 'user_agent', a.user_agent, 'request_id',"
        " a.request_id, 'data', a.data)::text from audit a where true");
    if (q == NULL) {
        return;
    }
    if ((v = kit_req_query(req, "user")) != NULL) {
        if (!users_uuid_valid(v)) {
            users_error(q->errors, "/user", "must be a user id");
        } else {
            users_q_add(q, " and a.subject = $%d::uuid", v);
        }
    }
    if ((v = kit_req_query(req, "action")) != NULL) {
        if (v[0] == '\0' || strlen(v) > 64
            || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_.")
               != strlen(v))
        {
            users_error(q->errors, "/action", "must be [a-z0-9_.]{1,64}");
        } else {
            users_q_add(q, " and a.action = $%d", v);
        }
    }
    if ((v = kit_req_query(req, "from")) != NULL) {
        if (!users_time_valid(v)) {
            users_error(q->errors, "/from", "must be an RFC 3339 date-time");
        } else {
            users_q_add(q, " and a.at >= $%d::timestamptz", v);
        }
    }
    if ((v = kit_req_query(req, "to")) != NULL) {
        if (!users_time_valid(v)) {
            users_error(q->errors, "/to", "must be an RFC 3339 date-time");
        } else {
            users_q_add(q, " and a.at < $%d::timestamptz", v);
        }
    }
    if ((v = kit_req_query(req, "cursor")) != NULL) {
        if (v[0] == '\0' || strlen(v) > 19
            || strspn(v, "0123456789") != strlen(v))
        {
            users_error(q->errors, "/cursor", "is not a cursor of ours");
        } else {
            users_q_add(q, " and a.id < $%d::bigint", v);
        }
    }
    limit = users_page_limit(req, q->errors);
    users_q_finish(req, q, "a.id", limit);
}


/* ---- one user --------------------------------------------------------- */

static const char  users_admin_one_sql[] =
    "select " USERS_ROW_JSON "::text,"
    " (select coalesce(json_agg(i.provider order by i.provider), '[]')"
    "  from oauth_identities i where i.user_id = u.id)::text,"
    " (select count(*) from sessions s where s.user_id = u.id"
    "  and s.ended_at is null)"
    " from users u where u.id = $1";

/* Reads the user a->id into a->user; 0 (a->status 404 when none), -1. */
static int
users_admin_read(kit_pg_t *pg, users_admin_t *a)
{
    json_error_t   e;
    const char    *p[1];
    PGresult      *res;

    p[0] = a->id;
    res = kit_pg_exec(pg, "users_admin_one", users_admin_one_sql, 1, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        a->status = 404;
        a->detail = "no such user";
        return 0;
    }
    json_decref(a->user);
    a->user = json_loads(PQgetvalue(res, 0, 0), 0, &e);
    if (a->user != NULL) {
        json_object_set_new(a->user, "providers",
                            json_loads(PQgetvalue(res, 0, 1), 0, &e));
        json_object_set_new(a->user, "active_sessions",
                            json_integer(atoll(PQgetvalue(res, 0, 2))));
    }
    PQclear(res);
    return a->user != NULL ? 0 : -1;
}


static int
users_admin_get_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;

    a->status = 0;
    if (users_admin_read(pg, a) != 0) {
        return -1;
    }
    return a->status != 0 ? 0
           : users_audit(pg, a->req, "admin.user_read", a->caller, a->id,
                         NULL);
}


/* Answers a finished admin transaction: the user, 204, or a refusal. */
static void
users_admin_reply(users_admin_t *a, int rc, int ok_status)
{
    if (rc == 0 && a->cut) {
        users_revoke_kick();
    }
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(a->req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(a->req, 500, NULL, "could not change the user");
    } else if (a->status == 422) {
        kit_reply_invalid(a->req, a->detail, json_pack("[{s:s, s:s}]",
                          "pointer", "", "message", a->detail));
    } else if (a->status != 0) {
        kit_reply_problem(a->req, a->status, NULL, a->detail);
    } else if (ok_status == 204) {
        kit_reply_json(a->req, 204, NULL);
    } else {
        kit_reply_json(a->req, 200, a->user);
        a->user = NULL;
    }
    json_decref(a->user);
}


/* The {id} of the path; 0, or -1 after a 404. */
static int
users_admin_target(kit_req_t *req, users_admin_t *a, users_act_e act)
{
    memset(a, 0, sizeof(*a));
    a->req = req;
    a->caller = users_admin_caller(req, act);
    if (a->caller == NULL) {
        return -1;
    }
    a->id = kit_req_param(req, "id");
    if (a->id == NULL || !users_uuid_valid(a->id)) {
        kit_reply_problem(req, 404, NULL, "no such user");
        return -1;
    }
    return 0;
}


void
users_admin_get(kit_req_t *req)
{
    users_admin_t  a;
    int            rc;

    if (users_admin_target(req, &a, USERS_ACT_USER_READ) != 0) {
        return;
    }
    rc = kit_pg_tx("read committed", users_admin_get_tx, &a);
    users_admin_reply(&a, rc, 200);
}


/* ---- changes ---------------------------------------------------------- */

static int
users_admin_event(kit_pg_t *pg, users_admin_t *a, const char *type,
    json_t *data)
{
    int  rc;

    rc = kit_outbox_write(pg, "users.events", type, a->id,
                          kit_req_identity(a->req)->request_id, a->caller,
                          a->id, data);
    json_decref(data);
    return rc;
}


static const char  users_admin_lock_sql[] =
    "select status, array_to_json(roles)::text from users where id = $1"
    " for update";

/* Locks the target row; its status into status (16), roles (JSON) into
 * roles (64).  0 (a->status 404 when none), -1. */
static int
users_admin_lock(kit_pg_t *pg, users_admin_t *a, char *status, char *roles)
{
    const char  *p[1];
    PGresult    *res;

    p[0] = a->id;
    res = kit_pg_exec(pg, "users_admin_lock", users_admin_lock_sql, 1, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    a->status = 0;
    if (PQntuples(res) != 1) {
        a->status = 404;
        a->detail = "no such user";
    } else {
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
        snprintf(roles, 64, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return 0;
}


static int
users_admin_exec(kit_pg_t *pg, const char *name, const char *sql, int n,
    const char *const *p)
{
    PGresult  *res;

    res = kit_pg_exec(pg, name, sql, n, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return 0;
}


/* -- block -- */

static const char  users_block_sql[] =
    "update users set status = 'blocked', blocked_reason = $2,"
    " updated_at = now() where id = $1";

static int
users_block_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    const char     *p[2];
    char            status[16], roles[64];

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    if (strcmp(status, "deleted") == 0) {
        a->status = 409;
        a->detail = "the account is deleted";
        return 0;
    }
    p[0] = a->id;
    p[1] = a->reason;
    a->cut = 1;
    return users_admin_exec(pg, "users_block", users_block_sql, 2, p)
           || users_sessions_end(pg, a->id, NULL, "blocked")
           || users_revoke_add(pg, "sub", a->id, users_now() + 1)
           || users_audit(pg, a->req, "user.block", a->caller, a->id,
                          json_pack("{s:s, s:s}", "reason", a->reason,
                                    "was", status))
           || users_admin_event(pg, a, "user.blocked",
                                json_pack("{s:s}", "reason", a->reason));
}


/* The reason of a body ({"reason": ...}) into a->reason; 0, or -1
 * after a 422. */
static int
users_admin_reason(users_admin_t *a, json_t *body, int required)
{
    static const char *const  keys[] = { "reason", NULL };
    json_t                   *errors;

    errors = json_array();
    if (body != NULL) {
        users_body_only(body, keys, errors);
        a->reason = users_body_string(body, "reason", USERS_REASON_MAX,
                                      required, NULL, errors);
    } else if (required) {
        users_error(errors, "/reason", "is required");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(a->req, "the request body is invalid", errors);
        return -1;
    }
    json_decref(errors);
    return 0;
}


void
users_admin_block(kit_req_t *req)
{
    users_admin_t  a;
    json_t        *body;

    if (users_admin_target(req, &a, USERS_ACT_BLOCK) != 0
        || (body = users_json_object(req)) == NULL
        || users_admin_reason(&a, body, 1) != 0)
    {
        return;
    }
    if (strcmp(a.id, a.caller) == 0) {
        kit_reply_problem(req, 409, NULL, "you cannot block yourself");
        return;
    }
    users_admin_reply(&a, kit_pg_tx("read committed", users_block_tx, &a),
                      204);
}


/* -- unblock -- */

static const char  users_unblock_sql[] =
    "update users set status = case when verified_at is null"
    " then 'unverified' else 'active' end, blocked_reason = null,"
    " updated_at = now() where id = $1";

static int
users_unblock_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    const char     *p[1];
    char            status[16], roles[64];
    json_t         *d;

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    if (strcmp(status, "blocked") != 0) {
        a->status = 409;
        a->detail = "the account is not blocked";
        return 0;
    }
    p[0] = a->id;
    d = a->reason != NULL ? json_pack("{s:s}", "reason", a->reason) : NULL;
    return users_admin_exec(pg, "users_unblock", users_unblock_sql, 1, p)
           || users_audit(pg, a->req, "user.unblock", a->caller, a->id,
                          json_incref(d))
           || users_admin_event(pg, a, "user.unblocked", d);
}


/* An optional JSON body (routes whose body may be empty); 0, or -1
 * after a 422. */
static int
users_admin_optional_body(users_admin_t *a, json_t **body)
{
    json_error_t   e;
    const char    *raw;
    size_t         len;

    *body = NULL;
    raw = kit_req_body(a->req, &len);
    if (len == 0) {
        return 0;
    }
    *body = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(*body)) {
        json_decref(*body);
        *body = NULL;
        kit_reply_invalid(a->req, "the body must be a JSON object",
                          json_pack("[{s:s, s:s}]", "pointer", "",
                                    "message", "must be an object"));
        return -1;
    }
    return 0;
}


void
users_admin_unblock(kit_req_t *req)
{
    users_admin_t  a;
    json_t        *body;
    int            rc;

    if (users_admin_target(req, &a, USERS_ACT_UNBLOCK) != 0
        || users_admin_optional_body(&a, &body) != 0)
    {
        return;
    }
    rc = users_admin_reason(&a, body, 0);
    if (rc == 0) {
        users_admin_reply(&a, kit_pg_tx("read committed", users_unblock_tx,
                                        &a), 204);
    }
    json_decref(body);
}


/* -- confirm and unlock -- */

static const char  users_confirm_sql[] =
    "update users set status = 'active', verified_at = now(),"
    " updated_at = now() where id = $1";
static const char  users_unlock_sql[] =
    "update users set failed_logins = 0, locked_until = null where id = $1";

static int
users_confirm_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    const char     *p[1];
    char            status[16], roles[64];

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    if (strcmp(status, "active") == 0) {
        return 0;
    }
    if (strcmp(status, "unverified") != 0) {
        a->status = 409;
        a->detail = strcmp(status, "blocked") == 0 ? "the account is blocked"
                                                  : "the account is deleted";
        return 0;
    }
    p[0] = a->id;
    return users_admin_exec(pg, "users_confirm", users_confirm_sql, 1, p)
           || users_audit(pg, a->req, "user.confirm", a->caller, a->id, NULL)
           || users_admin_event(pg, a, "user.verified",
                                json_pack("{s:s}", "by", "admin"));
}


static int
users_unlock_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    const char     *p[1];
    char            status[16], roles[64];

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    p[0] = a->id;
    return users_admin_exec(pg, "users_unlock", users_unlock_sql, 1, p)
           || users_audit(pg, a->req, "user.unlock", a->caller, a->id, NULL);
}


void
users_admin_confirm(kit_req_t *req)
{
    users_admin_t  a;

    if (users_admin_target(req, &a, USERS_ACT_CONFIRM) == 0) {
        users_admin_reply(&a, kit_pg_tx("read committed", users_confirm_tx,
                                        &a), 204);
    }
}


void
users_admin_unlock(kit_req_t *req)
{
    users_admin_t  a;

    if (users_admin_target(req, &a, USERS_ACT_UNLOCK) == 0) {
        users_admin_reply(&a, kit_pg_tx("read committed", users_unlock_tx,
                                        &a), 204);
    }
}


/* -- roles -- */

static const char  users_roles_set_sql[] =
    "update users set roles = $2::text[], updated_at = now() where id = $1";

/* 1 when a role in was (JSON array text) is not in now (JSON array). */
static int
users_roles_lost(const char *was, json_t *now)
{
    json_error_t   e;
    json_t        *old, *v, *w;
    size_t         i, j;
    int            kept, lost;

    old = json_loads(was, 0, &e);
    lost = !json_is_array(old);
    json_array_foreach(old, i, v) {
        kept = 0;
        json_array_foreach(now, j, w) {
            kept |= json_equal(v, w);
        }
        lost |= !kept;
    }
    json_decref(old);
    return lost;
}


static int
users_roles_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    json_error_t    e;
    const char     *p[2];
    char            status[16], roles[64];

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    p[0] = a->id;
    p[1] = a->roles_pg;
    /* Tokens carry roles: a role taken away cuts the live ones (a refresh
     * gives the new set); a role added needs no cut, a refresh shows it. */
    a->cut = users_roles_lost(roles, json_object_get(a->body, "roles"));
    if (users_admin_exec(pg, "users_roles_set", users_roles_set_sql, 2, p)
        || (a->cut && users_revoke_add(pg, "sub", a->id, users_now() + 1))
        || users_audit(pg, a->req, "role.change", a->caller, a->id,
                       json_pack("{s:o, s:O}", "was",
                                 json_loads(roles, 0, &e), "now",
                                 json_object_get(a->body, "roles")))
        || users_admin_event(pg, a, "user.roles_changed",
                             json_pack("{s:o, s:O}", "previous",
                                       json_loads(roles, 0, &e), "roles",
                                       json_object_get(a->body, "roles"))))
    {
        return -1;
    }
    return users_admin_read(pg, a);
}


/* roles: 1..3 distinct known names, into a->roles_pg ("{user,admin}"). */
static int
users_roles_parse(users_admin_t *a, json_t *errors)
{
    json_t  *roles, *v;
    size_t   i, j, off;

    roles = json_object_get(a->body, "roles");
    if (!json_is_array(roles) || json_array_size(roles) < 1
        || json_array_size(roles) > 3)
    {
        return users_error(errors, "/roles", "must be an array of 1..3 "
                           "roles");
    }
    off = 0;
    a->roles_pg[off++] = '{';
    json_array_foreach(roles, i, v) {
        if (!json_is_string(v)
            || (strcmp(json_string_value(v), "user") != 0
                && strcmp(json_string_value(v), "support") != 0
                && strcmp(json_string_value(v), "admin") != 0))
        {
            return users_error(errors, "/roles", "each must be user, "
                               "support or admin");
        }
        for (j = 0; j < i; j++) {
            if (json_equal(v, json_array_get(roles, j))) {
                return users_error(errors, "/roles", "must not repeat a "
                                   "role");
            }
        }
        off += (size_t) snprintf(a->roles_pg + off, sizeof(a->roles_pg) - off,
                                 "%s%s", i > 0 ? "," : "",
                                 json_string_value(v));
    }
    snprintf(a->roles_pg + off, sizeof(a->roles_pg) - off, "}");
    return 0;
}


void
users_admin_roles(kit_req_t *req)
{
    static const char *const  keys[] = { "roles", NULL };
    users_admin_t             a;
    json_t                   *errors;

    if (users_admin_target(req, &a, USERS_ACT_ROLES_SET) != 0
        || (a.body = users_json_object(req)) == NULL)
    {
        return;
    }
    errors = json_array();
    if (users_body_only(a.body, keys, errors) == 0) {
        users_roles_parse(&a, errors);
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        return;
    }
    json_decref(errors);
    if (strcmp(a.id, a.caller) == 0) {
        kit_reply_problem(req, 409, NULL, "you cannot change your own roles");
        return;
    }
    users_admin_reply(&a, kit_pg_tx("read committed", users_roles_tx, &a),
                      200);
}


/* -- patch -- */

static const char  users_admin_patch_sql[] =
    "update users set email = coalesce(nullif($2, ''), email),"
    " phone = coalesce(nullif($3, ''), phone),"
    " name = case when $4::boolean then $5 else name end,"
    " updated_at = now() where id = $1 and status <> 'deleted'"
    " and not exists (select 1 from users o where o.id <> $1"
    "  and ((nullif($2, '') is not null and o.email = $2)"
    "   or (nullif($3, '') is not null and o.phone = $3)))";

static int
users_admin_patch_tx(kit_pg_t *pg, void *arg)
{
    users_admin_t  *a = arg;
    const char     *p[5];
    PGresult       *res;
    char            status[16], roles[64];
    int             one;

    if (users_admin_lock(pg, a, status, roles) != 0 || a->status != 0) {
        return a->status != 0 ? 0 : -1;
    }
    p[0] = a->id;
    p[1] = a->email;
    p[2] = a->phone != NULL ? a->phone : "";
    p[3] = a->name != NULL ? "true" : "false";
    p[4] = a->name;
    res = kit_pg_exec(pg, "users_admin_patch", users_admin_patch_sql, 5, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    one = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!one) {
        a->status = 409;
        a->detail = strcmp(status, "deleted") == 0 ? "the account is deleted"
                    : "the email or phone belongs to another account";
        return 0;
    }
    return users_audit(pg, a->req, "admin.user_update", a->caller, a->id,
                       json_pack("{s:b, s:b, s:b}", "email",
                                 a->email[0] != '\0', "phone",
                                 a->phone != NULL, "name", a->name != NULL))
           || users_admin_read(pg, a);
}


void
users_admin_patch(kit_req_t *req)
{
    static const char *const  keys[] = { "email", "phone", "name",
                                         "display_name", NULL };
    users_admin_t             a;
    const char               *email;
    json_t                   *errors;
    size_t                    len;

    if (users_admin_target(req, &a, USERS_ACT_USER_UPDATE) != 0
        || (a.body = users_json_object(req)) == NULL)
    {
        return;
    }
    errors = json_array();
    users_body_only(a.body, keys, errors);
    email = users_body_string(a.body, "email", USERS_EMAIL_MAX, 0, &len,
                              errors);
    if (email != NULL && users_email_normalize(email, len, a.email,
                                               sizeof(a.email)) != 0)
    {
        users_error(errors, "/email", "is not an email address");
    }
    a.phone = users_body_string(a.body, "phone", USERS_PHONE_MAX, 0, &len,
                                errors);
    if (a.phone != NULL && !users_phone_valid(a.phone, len)) {
        users_error(errors, "/phone", "must be E.164, like +14155550100");
    }
    a.name = users_body_string(a.body, "name", USERS_NAME_MAX, 0, NULL,
                               errors);
    if (a.name == NULL) {
        a.name = users_body_string(a.body, "display_name", USERS_NAME_MAX, 0,
                                   NULL, errors);
    }
    if (json_array_size(errors) == 0 && json_object_size(a.body) == 0) {
        users_error(errors, "", "give at least one of email, phone, name");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        return;
    }
    json_decref(errors);
    users_admin_reply(&a, kit_pg_tx("read committed", users_admin_patch_tx,
                                    &a), 200);
}
