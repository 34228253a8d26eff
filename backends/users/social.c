/*
 * social.c -- social login: GET /v1/auth/oauth/{provider}/start and
 * /callback, on top of oauth.c (the OpenID Connect client: state, PKCE,
 * nonce, code exchange, id_token verification).
 *
 * This file keeps oauth.c's state store in PostgreSQL (oauth_pending:
 * DELETE ... RETURNING makes a state good for one callback) and turns a
 * verified identity into an account and tokens:
 *
 *   1. (provider, sub) already known: that account;
 *   2. else an account whose email equals the provider's, but only when
 *      the provider says the email is verified.  An unverified account
 *      found this way is activated and loses its password: whoever
 *      registered the address without proving it must not keep a way in
 *      to an account its real owner now uses;
 *   3. else a new account (no password), active.
 *
 * The identity is linked in the same transaction that opens the session
 * (amr ["oidc"]).  Blocked and deleted accounts get no tokens.  Every
 * refusal of oauth.c is problem+json with its status (400 state, 401
 * id_token, 502 provider) and a detail that names the reason, never a
 * secret.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "oauth.h"

#define USERS_OAUTH_COOKIE        "kordon_oauth_state"
#define USERS_OAUTH_COOKIE_ATTRS  "; HttpOnly; Secure; Path=/v1/auth/oauth/"

static users_oauth_t  *users_oa;

typedef struct {
    kit_req_t               *req;
    const char              *provider;
    users_oauth_identity_t   id;
    char                     email[USERS_EMAIL_MAX + 1];
    char                     user_id[40];
    int                      created;
    int                      status;        /* refusal, 0: tokens */
    const char              *detail;
    users_tokens_t           tokens;
} users_social_t;


int
users_social_init(char *err, size_t errlen)
{
    users_oa = users_oauth_new(err, errlen);
    return users_oa != NULL ? 0 : -1;
}


/* ---- the state store (oauth.h's users_oauth_store_t) ------------------ */

static const char  users_oauth_put_sql[] =
    "insert into oauth_pending (state, provider, nonce, verifier, created_at)"
    " values ($1, $2, $3, $4, to_timestamp($5::bigint))";
static const char  users_oauth_purge_sql[] =
    "delete from oauth_pending where created_at < now() - interval '600 s'";
static const char  users_oauth_take_sql[] =
    "delete from oauth_pending where state = $1 and provider = $2"
    " returning nonce, verifier, extract(epoch from created_at)::bigint";

static int
users_oauth_put(void *ctx, const char *provider,
    const users_oauth_pending_t *p)
{
    const char  *v[5];
    kit_pg_t    *pg;
    PGresult    *res;
    char         created[24];
    int          rc;

    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        return -1;
    }
    res = kit_pg_exec(pg, "users_oauth_purge", users_oauth_purge_sql, 0,
                      NULL);
    PQclear(res);
    snprintf(created, sizeof(created), "%lld", (long long) p->created);
    v[0] = p->state;
    v[1] = provider;
    v[2] = p->nonce;
    v[3] = p->verifier;
    v[4] = created;
    res = kit_pg_exec(pg, "users_oauth_put", users_oauth_put_sql, 5, v);
    kit_pg_release(pg);
    rc = users_ok(res, PGRES_COMMAND_OK);
    PQclear(rc == 0 ? res : NULL);
    return rc;
}


static int
users_oauth_take(void *ctx, const char *provider, const char *state,
    users_oauth_pending_t *p)
{
    const char  *v[2];
    kit_pg_t    *pg;
    PGresult    *res;
    int          found;

    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        return -1;
    }
    v[0] = state;
    v[1] = provider;
    res = kit_pg_exec(pg, "users_oauth_take", users_oauth_take_sql, 2, v);
    kit_pg_release(pg);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    found = PQntuples(res) == 1;
    if (found) {
        snprintf(p->state, sizeof(p->state), "%s", state);
        snprintf(p->nonce, sizeof(p->nonce), "%s", PQgetvalue(res, 0, 0));
        snprintf(p->verifier, sizeof(p->verifier), "%s",
                 PQgetvalue(res, 0, 1));
        p->created = (time_t) strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    }
    PQclear(res);
    return found ? 0 : 1;
}


static const users_oauth_store_t  users_oauth_store = {
    users_oauth_put, users_oauth_take, NULL
};


/* ---- start ------------------------------------------------------------ */

void
users_oauth_start_get(kit_req_t *req)
{
    users_oauth_start_t  st;
    const char          *provider;
    char                 err[USERS_ERR_MAX], cookie[256];
    int                  rc;

    provider = kit_req_param(req, "provider");
    rc = users_oauth_start(users_oa, provider, &users_oauth_store, &st, err,
                           sizeof(err));
    if (rc != USERS_OAUTH_OK) {
        kit_log(KIT_LOG_WARN, "oauth start for \"%.32s\" refused: %s",
                provider, err);
        kit_reply_problem(req, users_oauth_http_status(rc), NULL,
                          rc == USERS_OAUTH_UNKNOWN
                          ? "no such login provider" : err);
        return;
    }
    snprintf(cookie, sizeof(cookie), USERS_OAUTH_COOKIE "=%s"
             USERS_OAUTH_COOKIE_ATTRS "; SameSite=%s; Max-Age=%d",
             st.pending.state, users_oauth_form_post(users_oa, provider)
             ? "None" : "Lax", USERS_OAUTH_STATE_TTL_S);
    kit_reply_header(req, "Set-Cookie", cookie);
    kit_reply_header(req, "Location", st.url);
    kit_reply_header(req, "Cache-Control", "no-store");
    kit_reply_json(req, 302, NULL);
    explicit_bzero(&st, sizeof(st));
}


/* ---- callback: the account -------------------------------------------- */

static const char  users_identity_sql[] =
    "select i.user_id, u.status from oauth_identities i"
    " join users u on u.id = i.user_id"
    " where i.provider = $1 and i.sub = $2 for update of u";
static const char  users_by_email_sql[] =
    "select id, status from users where email = $1 for update";
static const char  users_social_insert_sql[] =
    "insert into users (email, status, verified_at)"
    " values ($1, 'active', case when $2::boolean then now() end)"
    " on conflict do nothing returning id";
static const char  users_social_claim_sql[] =
    "update users set status = 'active', verified_at = now(),"
    " password_hash = null, updated_at = now()"
    " where id = $1 and status = 'unverified'";
static const char  users_identity_link_sql[] =
    "insert into oauth_identities (provider, sub, user_id, email,"
    " email_verified) values ($1, $2, $3, nullif($4, ''), $5::boolean)"
    " on conflict (provider, sub) do update set email = excluded.email,"
    " email_verified = excluded.email_verified, last_login_at = now()";
static const char  users_social_session_sql[] =
    "insert into sessions (user_id, ip, user_agent, amr)"
    " values ($1, nullif($2, ''), nullif(left($3, 512), ''), '{oidc}')"
    " returning id";

/* Runs a select of (id, status); 1 found (filled), 0 none, -1 error. */
static int
users_social_find(kit_pg_t *pg, users_social_t *s, const char *name,
    const char *sql, int n, const char *const *p, char *status)
{
    PGresult  *res;
    int        found;

    res = kit_pg_exec(pg, name, sql, n, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    found = PQntuples(res) == 1;
    if (found) {
        snprintf(s->user_id, sizeof(s->user_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(status, 16, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return found;
}


static int
users_social_exec(kit_pg_t *pg, const char *name, const char *sql, int n,
    const char *const *p, ExecStatusType want)
{
    PGresult  *res;

    res = kit_pg_exec(pg, name, sql, n, p);
    if (users_ok(res, want) != 0) {
        return -1;
    }
    if (want == PGRES_TUPLES_OK && PQntuples(res) != 1) {
        PQclear(res);
        return 1;
    }
    PQclear(res);
    return 0;
}


/* Finds or makes the account of s->id; 0 (user_id set, or status set to
 * a refusal), -1 on error. */
static int
users_social_account(kit_pg_t *pg, users_social_t *s)
{
    const char  *p[2];
    PGresult    *res;
    char         status[16];
    int          found;

    p[0] = s->provider;
    p[1] = s->id.sub;
    found = users_social_find(pg, s, "users_identity", users_identity_sql, 2,
                              p, status);
    if (found == 0 && s->email[0] != '\0' && s->id.email_verified) {
        p[0] = s->email;
        found = users_social_find(pg, s, "users_social_by_email",
                                  users_by_email_sql, 1, p, status);
        if (found == 1 && strcmp(status, "unverified") == 0) {
            p[0] = s->user_id;
            if (users_social_exec(pg, "users_social_claim",
                                  users_social_claim_sql, 1, p,
                                  PGRES_COMMAND_OK) != 0)
            {
                return -1;
            }
            strcpy(status, "active");
        }
    }
    if (found < 0) {
        return -1;
    }
    if (found == 1) {
        if (strcmp(status, "active") != 0) {
            s->status = 403;
            s->detail = strcmp(status, "blocked") == 0
                        ? "the account is blocked" : "the account is closed";
        }
        return 0;
    }
    if (s->email[0] == '\0') {
        s->status = 422;
        s->detail = "the provider gave no usable email address";
        return 0;
    }
    p[0] = s->email;
    p[1] = s->id.email_verified ? "true" : "false";
    res = kit_pg_exec(pg, "users_social_insert", users_social_insert_sql, 2,
                      p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        /* The address belongs to an account the provider did not vouch
         * for: no silent link, and no second account either. */
        PQclear(res);
        s->status = 409;
        s->detail = "an account with this email exists; log in with its "
                    "password";
        return 0;
    }
    snprintf(s->user_id, sizeof(s->user_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    s->created = 1;
    return 0;
}


static int
users_social_tx(kit_pg_t *pg, void *arg)
{
    users_social_t  *s = arg;
    const char      *p[5];
    PGresult        *res;
    char             sid[40];
    json_t          *d;

    s->status = 0;
    s->created = 0;
    if (users_social_account(pg, s) != 0) {
        return -1;
    }
    if (s->status != 0) {
        return users_audit(pg, s->req, "login.failed", NULL,
                           s->user_id[0] != '\0' ? s->user_id : NULL,
                           json_pack("{s:s, s:s}", "reason", s->detail,
                                     "provider", s->provider));
    }
    p[0] = s->provider;
    p[1] = s->id.sub;
    p[2] = s->user_id;
    p[3] = s->email;
    p[4] = s->id.email_verified ? "true" : "false";
    if (users_social_exec(pg, "users_identity_link", users_identity_link_sql,
                          5, p, PGRES_COMMAND_OK) != 0)
    {
        return -1;
    }
    p[0] = s->user_id;
    p[1] = users_req_ip(s->req);
    p[2] = users_req_ua(s->req);
    res = kit_pg_exec(pg, "users_social_session", users_social_session_sql,
                      3, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (s->created) {
        d = json_pack("{s:s, s:s, s:s}", "email", s->email, "user_id",
                      s->user_id, "provider", s->provider);
        if (kit_outbox_write(pg, "users.events", "user.registered",
                             s->user_id, kit_req_identity(s->req)->request_id,
                             s->user_id, s->user_id, d) != 0
            || users_audit(pg, s->req, "user.register", s->user_id,
                           s->user_id, json_pack("{s:s}", "provider",
                                                 s->provider)) != 0)
        {
            json_decref(d);
            return -1;
        }
        json_decref(d);
    }
    return users_tokens_issue(pg, s->user_id, sid, &s->tokens)
           || users_audit(pg, s->req, "login.ok", s->user_id, s->user_id,
                          json_pack("{s:s, s:s}", "session", sid,
                                    "provider", s->provider));
}


/* The value of our state cookie in the Cookie header, or NULL. */
static const char *
users_social_cookie(kit_req_t *req, char *out, size_t outlen)
{
    const char  *h, *v;
    size_t       n;

    h = kit_req_header(req, "Cookie");
    for (v = h; v != NULL && (v = strstr(v, USERS_OAUTH_COOKIE "=")) != NULL;
         v++)
    {
        if (v == h || v[-1] == ' ' || v[-1] == ';') {
            v += sizeof(USERS_OAUTH_COOKIE);
            n = strcspn(v, "; ");
            if (n == 0 || n >= outlen) {
                return NULL;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}


static void
users_social_reply(users_social_t *s, int rc)
{
    kit_reply_header(s->req, "Set-Cookie", USERS_OAUTH_COOKIE "="
                     USERS_OAUTH_COOKIE_ATTRS "; Max-Age=0");
    kit_reply_header(s->req, "Cache-Control", "no-store");
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(s->req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(s->req, 500, NULL, "could not open a session");
    } else if (s->status != 0) {
        kit_reply_problem(s->req, s->status, NULL, s->detail);
    } else {
        kit_reply_json(s->req, 200, users_tokens_json(&s->tokens));
    }
}


void
users_oauth_callback_get(kit_req_t *req)
{
    users_oauth_callback_t  cb;
    users_social_t         *s;
    char                    err[USERS_ERR_MAX], cookie[128];
    int                     rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        kit_reply_problem(req, 500, NULL, "out of memory");
        return;
    }
    s->req = req;
    s->provider = kit_req_param(req, "provider");
    cb.state = kit_req_query(req, "state");
    cb.state_cookie = users_social_cookie(req, cookie, sizeof(cookie));
    cb.code = kit_req_query(req, "code");
    cb.error = kit_req_query(req, "error");
    cb.device_id = kit_req_query(req, "device_id");
    rc = users_oauth_callback(users_oa, s->provider, &cb, &users_oauth_store,
                              &s->id, err, sizeof(err));
    if (rc != USERS_OAUTH_OK) {
        kit_log(KIT_LOG_WARN, "oauth callback for \"%.32s\" refused: %s",
                s->provider, err);
        kit_reply_problem(req, users_oauth_http_status(rc), NULL,
                          rc == USERS_OAUTH_UNKNOWN
                          ? "no such login provider" : err);
        free(s);
        return;
    }
    if (s->id.email[0] == '\0'
        || users_email_normalize(s->id.email, strlen(s->id.email), s->email,
                                 sizeof(s->email)) != 0)
    {
        s->email[0] = '\0';
    }
    rc = kit_pg_tx("read committed", users_social_tx, s);
    users_social_reply(s, rc);
    explicit_bzero(s, sizeof(*s));
    free(s);
}
