/*
 * session.c -- what a signed-in person does with sessions and tokens:
 * refresh (public: the refresh token is the credential), logout,
 * logout-all, the session list, ending one session, changing the
 * password.
 *
 * Refresh rotates: each use marks the token rotated and issues a new one
 * in the same session (the family).  A rotated token used again within
 * USERS_REFRESH_GRACE_S (a client that retried, or two tabs racing) gets
 * a fresh pair as well; used after that, it is taken for stolen: the
 * session ends, its refresh tokens die with it and the edge is told to
 * refuse the session's access tokens (a "sid" cut).
 *
 * A rotation commits without waiting for the WAL flush (the hot path:
 * about 2.5x the requests/s on this machine); ending a family does wait.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

typedef struct {
    kit_req_t       *req;
    const char      *user;
    const char      *sid;
    const char      *token;
    const char      *current;       /* password change */
    size_t           current_len;
    const char      *password;
    size_t           password_len;
    char             stored[USERS_HASH_MAX];
    char             hash[USERS_HASH_MAX];
    char             found_user[40];
    int              outcome;       /* HTTP status to answer, 0: tokens */
    const char      *detail;
    users_tokens_t   tokens;
} users_sess_t;


static void
users_sess_reply(users_sess_t *s, int rc, int ok_status)
{
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(s->req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(s->req, 500, NULL, "could not change the session");
    } else if (s->outcome != 0) {
        kit_reply_problem(s->req, s->outcome, NULL, s->detail);
    } else if (ok_status == 204) {
        kit_reply_json(s->req, 204, NULL);
    } else {
        kit_reply_json(s->req, 200, users_tokens_json(&s->tokens));
    }
}


/* ---- refresh ---------------------------------------------------------- */

/*
 * The token, its session and user, locked.  set_config() makes this
 * transaction's commit asynchronous in the same round trip (see below).
 */
static const char  users_refresh_find_sql[] =
    "select t.id, t.session_id, s.user_id,"
    " coalesce(extract(epoch from now() - t.rotated_at), -1),"
    " t.expires_at > now(), s.ended_at is null, u.status, u.roles, s.amr,"
    " set_config('synchronous_commit', 'off', true)"
    " from refresh_tokens t join sessions s on s.id = t.session_id"
    " join users u on u.id = s.user_id"
    " where t.token_sha256 = decode($1, 'hex')"
    " for update of t, s";
static const char  users_sync_commit_sql[] =
    "set local synchronous_commit = on";
static const char  users_refresh_rotate_sql[] =
    "with r as (update refresh_tokens set rotated_at = now()"
    "  where id = $1 and rotated_at is null),"
    " s as (update sessions set last_used_at = now() where id = $2)"
    " insert into refresh_tokens (session_id, token_sha256, expires_at)"
    " values ($2, decode($3, 'hex'), now() + interval '2592000 seconds')";
static const char  users_session_reuse_sql[] =
    "update sessions set ended_at = now(), end_reason = 'refresh_reuse'"
    " where id = $1 and ended_at is null";

/* A rotated token came back after the grace: ends its session. */
static int
users_refresh_reused(kit_pg_t *pg, users_sess_t *s, const char *user,
    const char *sid)
{
    const char  *p[1];
    PGresult    *res;
    int          rc;

    p[0] = sid;
    res = kit_pg_exec(pg, "users_session_reuse", users_session_reuse_sql, 1,
                      p);
    rc = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);
    /* Ending a family is durable before anyone hears of it. */
    res = kit_pg_exec(pg, "users_sync_commit", users_sync_commit_sql, 0,
                      NULL);
    rc = rc || res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK;
    PQclear(res);
    return rc || users_revoke_add(pg, "sid", sid, users_now())
           || users_audit(pg, s->req, "refresh.reuse", NULL, user,
                          json_pack("{s:s}", "session", sid));
}


static int
users_refresh_tx(kit_pg_t *pg, void *arg)
{
    users_sess_t  *s = arg;
    const char    *p[3];
    PGresult      *res, *upd;
    uint8_t        h[32];
    char           hex[65], sid[40], user[40];
    double         age;
    int            rc;

    /*
     * The commit does not wait for the WAL flush: a crash may forget the
     * last few hundred milliseconds of rotations, and their clients then
     * log in again.  No reuse goes unseen and no token is made valid.
     */
    users_sha256(s->token, USERS_TOKEN_LEN, h);
    users_hex(h, sizeof(h), hex);
    p[0] = hex;
    res = kit_pg_exec(pg, "users_refresh_find", users_refresh_find_sql, 1, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    s->outcome = 401;
    s->detail = "invalid refresh token";
    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 4)[0] != 't'
        || PQgetvalue(res, 0, 5)[0] != 't'
        || strcmp(PQgetvalue(res, 0, 6), "active") != 0)
    {
        PQclear(res);
        return 0;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(res, 0, 1));
    snprintf(user, sizeof(user), "%s", PQgetvalue(res, 0, 2));
    age = atof(PQgetvalue(res, 0, 3));
    p[0] = PQgetvalue(res, 0, 0);
    p[1] = sid;
    if (age > USERS_REFRESH_GRACE_S) {
        PQclear(res);
        s->detail = "refresh token reused; the session is ended";
        return users_refresh_reused(pg, s, user, sid);
    }
    rc = users_tokens_make(user, sid, PQgetvalue(res, 0, 7),
                           PQgetvalue(res, 0, 8), &s->tokens);
    p[2] = s->tokens.refresh_sha256;
    upd = rc != 0 ? NULL
          : kit_pg_exec(pg, "users_refresh_rotate", users_refresh_rotate_sql,
                        3, p);
    PQclear(res);
    rc = upd != NULL && PQresultStatus(upd) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(upd);
    if (rc != 0) {
        return -1;
    }
    s->outcome = 0;
    return 0;
}


void
users_refresh(kit_req_t *req)
{
    static const char *const  keys[] = { "refresh_token", NULL };
    users_sess_t              s;
    json_t                   *body, *errors;
    int                       rc;

    body = users_json_object(req);
    if (body == NULL) {
        return;
    }
    memset(&s, 0, sizeof(s));
    s.req = req;
    errors = json_array();
    users_body_only(body, keys, errors);
    s.token = users_body_string(body, "refresh_token", 64, 1, NULL, errors);
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        return;
    }
    json_decref(errors);
    if (!users_token_valid(s.token)) {
        kit_reply_problem(req, 401, NULL, "invalid refresh token");
        return;
    }
    rc = kit_pg_tx("read committed", users_refresh_tx, &s);
    if (rc == 0 && s.outcome == 401 && strstr(s.detail, "reused") != NULL) {
        users_revoke_kick();
    }
    users_sess_reply(&s, rc, 200);
    explicit_bzero(&s.tokens, sizeof(s.tokens));
}


/* ---- logout, logout-all, sessions ------------------------------------- */

static const char  users_session_end_sql[] =
    "update sessions set ended_at = now(), end_reason = $3"
    " where id = $1 and user_id = $2 and ended_at is null returning id";

static int
users_session_end_tx(kit_pg_t *pg, void *arg)
{
    users_sess_t  *s = arg;
    const char    *p[3];
    PGresult      *res;
    int            n;

    p[0] = s->sid;
    p[1] = s->user;
    p[2] = s->detail;
    res = kit_pg_exec(pg, "users_session_end", users_session_end_sql, 3, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        s->outcome = 404;
        s->detail = "no such session";
        return 0;
    }
    return users_revoke_add(pg, "sid", s->sid, users_now())
           || users_audit(pg, s->req, "session.end", s->user, s->user,
                          json_pack("{s:s, s:s}", "session", s->sid,
                                    "reason", s->detail));
}


/* Ends session sid of the caller; reason goes to the audit row. */
static void
users_session_end_reply(kit_req_t *req, const char *user, const char *sid,
    const char *reason)
{
    users_sess_t  s;
    int           rc;

    memset(&s, 0, sizeof(s));
    s.req = req;
    s.user = user;
    s.sid = sid;
    s.detail = reason;
    rc = kit_pg_tx("read committed", users_session_end_tx, &s);
    if (rc == 0 && s.outcome == 0) {
        users_revoke_kick();
    }
    users_sess_reply(&s, rc, 204);
}


void
users_logout(kit_req_t *req)
{
    const char  *user, *sid;

    user = users_caller(req);
    if (user == NULL) {
        return;
    }
    sid = kit_req_identity(req)->session;
    if (!users_uuid_valid(sid)) {
        kit_reply_problem(req, 400, NULL, "the token names no session");
        return;
    }
    users_session_end_reply(req, user, sid, "logout");
}


void
users_sessions_delete(kit_req_t *req)
{
    const char  *user, *sid;

    user = users_caller(req);
    if (user == NULL) {
        return;
    }
    sid = kit_req_param(req, "id");
    if (sid == NULL || !users_uuid_valid(sid)) {
        kit_reply_problem(req, 400, NULL, "the session id is not a UUID");
        return;
    }
    users_session_end_reply(req, user, sid, "ended_by_user");
}


static int
users_logout_all_tx(kit_pg_t *pg, void *arg)
{
    users_sess_t  *s = arg;

    return users_sessions_end(pg, s->user, NULL, "logout_all")
           || users_revoke_add(pg, "sub", s->user, users_now())
           || users_audit(pg, s->req, "logout.all", s->user, s->user, NULL);
}


void
users_logout_all(kit_req_t *req)
{
    users_sess_t  s;
    int           rc;

    memset(&s, 0, sizeof(s));
    s.req = req;
    s.user = users_caller(req);
    if (s.user == NULL) {
        return;
    }
    rc = kit_pg_tx("read committed", users_logout_all_tx, &s);
    if (rc == 0) {
        users_revoke_kick();
    }
    users_sess_reply(&s, rc, 204);
}


static const char  users_sessions_list_sql[] =
    "select id, device, ip, user_agent, ts_text(created_at),"
    " ts_text(last_used_at) from sessions"
    " where user_id = $1 and ended_at is null"
    " order by last_used_at desc limit 100";

void
users_sessions_list(kit_req_t *req)
{
    const char  *p[1], *user, *mine;
    PGresult    *res;
    kit_pg_t    *pg;
    json_t      *list, *o;
    int          i, c;

    user = users_caller(req);
    if (user == NULL) {
        return;
    }
    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(req, "database is not available");
        return;
    }
    p[0] = user;
    res = kit_pg_exec(pg, "users_sessions_list", users_sessions_list_sql, 1,
                      p);
    kit_pg_release(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        kit_reply_problem(req, 500, NULL, "could not list sessions");
        return;
    }
    mine = kit_req_identity(req)->session;
    list = json_array();
    for (i = 0; i < PQntuples(res); i++) {
        o = json_object();
        json_object_set_new(o, "id", json_string(PQgetvalue(res, i, 0)));
        for (c = 1; c <= 3; c++) {
            json_object_set_new(o, PQfname(res, c), PQgetisnull(res, i, c)
                                ? json_null()
                                : json_string(PQgetvalue(res, i, c)));
        }
        json_object_set_new(o, "created_at",
                            json_string(PQgetvalue(res, i, 4)));
        json_object_set_new(o, "last_used_at",
                            json_string(PQgetvalue(res, i, 5)));
        json_object_set_new(o, "current", json_boolean(
                                strcmp(PQgetvalue(res, i, 0), mine) == 0));
        json_array_append_new(list, o);
    }
    PQclear(res);
    kit_reply_json(req, 200, json_pack("{s:o}", "sessions", list));
}


/* ---- password change -------------------------------------------------- */

static const char  users_hash_of_sql[] =
    "select password_hash from users where id = $1 and status = 'active'";
static const char  users_change_sql[] =
    "update users set password_hash = $2, updated_at = now() where id = $1";

static int
users_change_tx(kit_pg_t *pg, void *arg)
{
    users_sess_t  *s = arg;
    const char    *p[2];
    PGresult      *res;
    int            ok;

    p[0] = s->user;
    p[1] = s->hash;
    res = kit_pg_exec(pg, "users_change", users_change_sql, 2, p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || users_sessions_end(pg, s->user, s->sid, "password_change") != 0
        || users_revoke_add(pg, "sub", s->user, users_now()) != 0
        || users_tokens_issue(pg, s->user, s->sid, &s->tokens) != 0
        || users_audit(pg, s->req, "password.change", s->user, s->user,
                       NULL) != 0)
    {
        return -1;
    }
    return kit_outbox_write(pg, "users.events", "user.password_changed",
                            s->user, kit_req_identity(s->req)->request_id,
                            s->user, s->user, NULL);
}


static int
users_change_failed_tx(kit_pg_t *pg, void *arg)
{
    users_sess_t  *s = arg;

    return users_audit(pg, s->req, "password.change_failed", s->user,
                       s->user, NULL);
}


/* Reads the stored hash of the caller; 0, or -1 after answering. */
static int
users_change_stored(users_sess_t *s)
{
    const char  *p[1];
    PGresult    *res;
    kit_pg_t    *pg;

    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(s->req, "database is not available");
        return -1;
    }
    p[0] = s->user;
    res = kit_pg_exec(pg, "users_hash_of", users_hash_of_sql, 1, p);
    kit_pg_release(pg);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        PQclear(res);
        kit_reply_problem(s->req, 404, NULL, "no such active user");
        return -1;
    }
    snprintf(s->stored, sizeof(s->stored), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}


static void
users_change_job(void *arg)
{
    users_sess_t  *s = arg;
    int            rc;

    if (users_change_stored(s) != 0) {
        goto done;
    }
    if (!users_password_verify(s->stored, s->current, s->current_len)) {
        (void) kit_pg_tx("read committed", users_change_failed_tx, s);
        kit_reply_invalid(s->req, "the current password is wrong",
                          json_pack("[{s:s, s:s}]", "pointer",
                                    "/current_password", "message",
                                    "is wrong"));
        goto done;
    }
    if (users_password_hash(s->password, s->password_len, s->hash,
                            sizeof(s->hash)) != 0)
    {
        kit_reply_problem(s->req, 500, NULL, "could not hash the password");
        goto done;
    }
    rc = kit_pg_tx("read committed", users_change_tx, s);
    if (rc == 0) {
        users_revoke_kick();
    }
    users_sess_reply(s, rc, 200);
done:
    explicit_bzero(s, sizeof(*s));
    free(s);
}


void
users_password_change(kit_req_t *req)
{
    static const char *const  keys[] = { "current_password", "new_password",
                                         NULL };
    users_sess_t             *s;
    const char               *why;
    json_t                   *body, *errors;

    body = users_json_object(req);
    if (body == NULL || users_caller(req) == NULL) {
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        kit_reply_problem(req, 500, NULL, "out of memory");
        return;
    }
    s->req = req;
    s->user = users_caller(req);
    s->sid = kit_req_identity(req)->session;
    errors = json_array();
    users_body_only(body, keys, errors);
    s->current = users_body_string(body, "current_password",
                                   USERS_PASSWORD_MAX, 1, &s->current_len,
                                   errors);
    s->password = users_body_string(body, "new_password", USERS_PASSWORD_MAX
                                    + 1, 1, &s->password_len, errors);
    why = s->password != NULL
          ? users_password_rule(s->password, s->password_len) : NULL;
    if (why != NULL) {
        users_error(errors, "/new_password", why);
    }
    if (!users_uuid_valid(s->sid)) {
        users_error(errors, "", "the token names no session");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        free(s);
        return;
    }
    json_decref(errors);
    kit_suspend(req);
    if (users_pool_submit(users_change_job, s) != 0) {
        users_reply_unavailable(req, "too many password checks at once");
        free(s);
    }
}
