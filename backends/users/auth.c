/*
 * auth.c -- the public routes that name an account by its address:
 * register, verify, verify/resend, login, password/forgot and
 * password/reset.
 *
 * No enumeration: for an address that has no account, an account of any
 * status, or a locked-out one, register, resend and forgot answer the
 * same 202 with the same body, and login the same 401 -- and the same
 * 429 after 5 failures, since an address without an account locks too
 * (table login_throttle).  Register and
 * login always pay one argon2id computation (register hashes the password
 * before looking the address up; login verifies against a dummy hash for
 * an unknown address), so they also take about the same time.  What
 * differs goes to the address's owner only, as an event: a code, or for
 * an address already registered, `user.registration_attempted`.
 *
 * Register, login and reset hash: they suspend the request and finish on
 * the password pool (pool.c).  Their context lives on the heap until the
 * answer; the body it points into lives as long as the request.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

#define USERS_ADDRESS_SELECT(col)                                          \
    "select id, status, password_hash, coalesce(ceil(extract(epoch from"   \
    " locked_until - now())), 0)::bigint, failed_logins, roles,"            \
    " totp_enabled_at is not null from users where " col " = $1 for update"

typedef struct {
    kit_req_t    *req;
    char          email[USERS_EMAIL_MAX + 1];
    char          phone[USERS_PHONE_MAX + 1];
    const char   *password;
    size_t        password_len;
    const char   *code;
    const char   *device;
    char          hash[USERS_HASH_MAX];
    char          user_id[40];
    char          status_text[16];
    char          stored[USERS_HASH_MAX];
    long long     locked_s;
    int           failures;
    int           found;
    int           mfa;                /* TOTP is on */
    int           outcome;            /* USERS_OUT_* */
    users_tokens_t tokens;
} users_auth_t;

enum {
    USERS_OUT_NONE = 0,
    USERS_OUT_OK,
    USERS_OUT_BAD_CODE,
    USERS_OUT_FAILED,
};

static const char *const  users_address_keys[] = { "email", "phone", NULL };


static users_auth_t *
users_auth_new(kit_req_t *req)
{
    users_auth_t  *a;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        kit_reply_problem(req, 500, NULL, "out of memory");
        return NULL;
    }
    a->req = req;
    return a;
}


static void
users_auth_free(users_auth_t *a)
{
    explicit_bzero(a, sizeof(*a));
    free(a);
}


/* Suspends the request and queues fn; answers 503 when the pool is full. */
static void
users_auth_submit(users_auth_t *a, users_job_pt fn)
{
    kit_suspend(a->req);
    if (users_pool_submit(fn, a) != 0) {
        users_reply_unavailable(a->req, "too many password checks at once");
        users_auth_free(a);
    }
}


/* Reads the body's address and the extra keys; NULL after a 422. */
static users_auth_t *
users_auth_parse(kit_req_t *req, const char *const *extra, int password,
    int code)
{
    const char   *keys[8];
    users_auth_t *a;
    json_t       *body, *errors;
    int           i, n;

    body = users_json_object(req);
    if (body == NULL) {
        return NULL;
    }
    for (n = 0; users_address_keys[n] != NULL; n++) {
        keys[n] = users_address_keys[n];
    }
    for (i = 0; extra != NULL && extra[i] != NULL && n < 7; i++) {
        keys[n++] = extra[i];
    }
    keys[n] = NULL;
    a = users_auth_new(req);
    if (a == NULL) {
        return NULL;
    }
    errors = json_array();
    users_body_only(body, keys, errors);
    users_body_address(body, a->email, a->phone, errors);
    if (password) {
        a->password = users_body_string(body, "password", USERS_PASSWORD_MAX, 1,
                                        &a->password_len, errors);
    }
    if (code) {
        a->code = users_body_string(body, "code", 6, 1, NULL, errors);
        if (a->code != NULL && (strlen(a->code) != USERS_CODE_LEN
                                || strspn(a->code, "0123456789")
                                   != USERS_CODE_LEN))
        {
            users_error(errors, "/code", "must be 6 digits");
        }
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        users_auth_free(a);
        return NULL;
    }
    json_decref(errors);
    return a;
}


/* A new password must follow the rules; 0, or -1 after a 422. */
static int
users_auth_new_password(users_auth_t *a, const char *pointer)
{
    const char  *why;
    char         msg[128];

    why = users_password_rule(a->password, a->password_len);
    if (why == NULL) {
        return 0;
    }
    snprintf(msg, sizeof(msg), "password %s", why);
    kit_reply_invalid(a->req, msg, json_pack("[{s:s, s:s}]", "pointer",
                      pointer, "message", why));
    users_auth_free(a);
    return -1;
}


static const char *
users_auth_address(const users_auth_t *a)
{
    return a->email[0] != '\0' ? a->email : a->phone;
}


/* Looks the address up (FOR UPDATE); fills found, id, status, hash. */
static int
users_auth_lookup(kit_pg_t *pg, users_auth_t *a)
{
    const char  *p[1];
    PGresult    *res;

    p[0] = users_auth_address(a);
    res = a->email[0] != '\0'
          ? kit_pg_exec(pg, "users_by_email", USERS_ADDRESS_SELECT("email"),
                        1, p)
          : kit_pg_exec(pg, "users_by_phone", USERS_ADDRESS_SELECT("phone"),
                        1, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    a->found = PQntuples(res) == 1;
    if (a->found) {
        snprintf(a->user_id, sizeof(a->user_id), "%s", PQgetvalue(res, 0, 0));
        snprintf(a->status_text, sizeof(a->status_text), "%s",
                 PQgetvalue(res, 0, 1));
        snprintf(a->stored, sizeof(a->stored), "%s", PQgetvalue(res, 0, 2));
        a->locked_s = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        a->failures = atoi(PQgetvalue(res, 0, 4));
        a->mfa = PQgetvalue(res, 0, 6)[0] == 't';
    }
    PQclear(res);
    return 0;
}


/* {"email": ...} or {"phone": ...}, plus code when given. */
static json_t *
users_auth_event(const users_auth_t *a, const char *code)
{
    json_t  *d;

    d = json_object();
    json_object_set_new(d, a->email[0] != '\0' ? "email" : "phone",
                        json_string(a->email[0] != '\0' ? a->email
                                                        : a->phone));
    json_object_set_new(d, "user_id", json_string(a->user_id));
    if (code != NULL) {
        json_object_set_new(d, "code", json_string(code));
    }
    return d;
}


static int
users_auth_emit(kit_pg_t *pg, users_auth_t *a, const char *type,
    const char *code)
{
    json_t  *d;
    int      rc;

    d = users_auth_event(a, code);
    rc = d == NULL ? -1
         : kit_outbox_write(pg, "users.events", type, a->user_id,
                            kit_req_identity(a->req)->request_id, a->user_id,
                            a->user_id, d);
    json_decref(d);
    return rc;
}


static int
users_is(const users_auth_t *a, const char *status)
{
    return strcmp(a->status_text, status) == 0;
}


/* ---- register --------------------------------------------------------- */

static const char  users_insert_sql[] =
    "insert into users (email, phone, password_hash)"
    " values (nullif($1, ''), nullif($2, ''), $3)"
    " on conflict do nothing returning id";
static const char  users_set_hash_sql[] =
    "update users set password_hash = $2, updated_at = now() where id = $1";

static int
users_register_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[3];
    PGresult      *res;
    char           code[USERS_CODE_LEN + 1];
    int            fresh;

    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    fresh = 0;
    if (!a->found) {
        p[0] = a->email;
        p[1] = a->phone;
        p[2] = a->hash;
        res = kit_pg_exec(pg, "users_insert", users_insert_sql, 3, p);
        if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
            PQclear(res);
            return -1;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            return 0;           /* a concurrent registration won */
        }
        snprintf(a->user_id, sizeof(a->user_id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        fresh = 1;
        strcpy(a->status_text, "unverified");
    } else if (users_is(a, "unverified")) {
        /* Nobody proved the address yet: the last registration counts. */
        p[0] = a->user_id;
        p[1] = a->hash;
        res = kit_pg_exec(pg, "users_set_hash", users_set_hash_sql, 2, p);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            return -1;
        }
        PQclear(res);
    } else {
        return users_auth_emit(pg, a, "user.registration_attempted", NULL)
               || users_audit(pg, a->req, "user.register_existing", NULL,
                              a->user_id, NULL);
    }
    if (users_code_issue(pg, a->user_id, "verify", code) != 0
        || (fresh && users_auth_emit(pg, a, "user.registered", NULL) != 0)
        || users_auth_emit(pg, a, "user.verification_requested", code) != 0
        || users_audit(pg, a->req, "user.register", a->user_id, a->user_id,
                       NULL) != 0)
    {
        return -1;
    }
    return 0;
}


static void
users_reply_pending(kit_req_t *req)
{
    kit_reply_json(req, 202, json_pack("{s:s, s:s}", "status",
                   "verification_pending", "detail", "if the address can be "
                   "registered, a verification code was sent to it"));
}


static void
users_register_job(void *arg)
{
    users_auth_t  *a = arg;
    int            rc;

    if (users_password_hash(a->password, a->password_len, a->hash,
                            sizeof(a->hash)) != 0)
    {
        kit_reply_problem(a->req, 500, NULL, "could not hash the password");
        users_auth_free(a);
        return;
    }
    rc = kit_pg_tx("read committed", users_register_tx, a);
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(a->req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(a->req, 500, NULL, "could not register");
    } else {
        users_reply_pending(a->req);
    }
    users_auth_free(a);
}


void
users_register(kit_req_t *req)
{
    static const char *const  extra[] = { "password", NULL };
    users_auth_t             *a;

    a = users_auth_parse(req, extra, 1, 0);
    if (a == NULL || users_auth_new_password(a, "/password") != 0) {
        return;
    }
    users_auth_submit(a, users_register_job);
}


/* ---- verify and resend ------------------------------------------------ */

static const char  users_activate_sql[] =
    "update users set status = 'active', verified_at = now(),"
    " updated_at = now() where id = $1";

static int
users_verify_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[1];
    PGresult      *res;
    int            ok;

    a->outcome = USERS_OUT_BAD_CODE;
    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    if (!a->found || !users_is(a, "unverified")) {
        return 0;
    }
    ok = users_code_check(pg, a->user_id, "verify", a->code);
    if (ok <= 0) {
        return ok < 0 ? -1
               : users_audit(pg, a->req, "user.verify_failed", NULL,
                             a->user_id, NULL);
    }
    p[0] = a->user_id;
    res = kit_pg_exec(pg, "users_activate", users_activate_sql, 1, p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || users_auth_emit(pg, a, "user.verified", NULL) != 0
        || users_audit(pg, a->req, "user.verify", a->user_id, a->user_id,
                       NULL) != 0)
    {
        return -1;
    }
    a->outcome = USERS_OUT_OK;
    return 0;
}


/* The answer to a transaction that checked a code. */
static void
users_reply_code(users_auth_t *a, int rc, json_t *ok_body)
{
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(a->req, "database is not available");
        json_decref(ok_body);
    } else if (rc != 0) {
        kit_reply_problem(a->req, 500, NULL, "could not check the code");
        json_decref(ok_body);
    } else if (a->outcome != USERS_OUT_OK) {
        json_decref(ok_body);
        kit_reply_invalid(a->req, "the code is wrong, expired or used up",
                          json_pack("[{s:s, s:s}]", "pointer", "/code",
                                    "message", "is wrong, expired or used "
                                    "up; ask for a new one"));
    } else {
        kit_reply_json(a->req, 200, ok_body);
    }
}


void
users_verify(kit_req_t *req)
{
    static const char *const  extra[] = { "code", NULL };
    users_auth_t             *a;
    int                       rc;

    a = users_auth_parse(req, extra, 0, 1);
    if (a == NULL) {
        return;
    }
    rc = kit_pg_tx("read committed", users_verify_tx, a);
    users_reply_code(a, rc, json_pack("{s:s}", "status", "active"));
    users_auth_free(a);
}


static const char  users_recent_codes_sql[] =
    "select count(*), coalesce(extract(epoch from now() - max(created_at)),"
    " 1e9)::bigint from codes where user_id = $1 and purpose = $2"
    " and created_at > now() - interval '1 hour'";

/* 1 when another code of purpose may be sent now, 0 if not, -1 error. */
static int
users_code_allowed(kit_pg_t *pg, const char *user_id, const char *purpose)
{
    const char  *p[2];
    PGresult    *res;
    int          ok;

    p[0] = user_id;
    p[1] = purpose;
    res = kit_pg_exec(pg, "users_recent_codes", users_recent_codes_sql, 2, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    ok = atoi(PQgetvalue(res, 0, 0)) < USERS_RESEND_PER_HOUR
         && atoll(PQgetvalue(res, 0, 1)) >= USERS_RESEND_GAP_S;
    PQclear(res);
    return ok;
}


static int
users_resend_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    char           code[USERS_CODE_LEN + 1];
    int            ok;

    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    if (!a->found || !users_is(a, "unverified")) {
        return 0;
    }
    ok = users_code_allowed(pg, a->user_id, "verify");
    if (ok <= 0) {
        return ok;
    }
    return users_code_issue(pg, a->user_id, "verify", code)
           || users_auth_emit(pg, a, "user.verification_requested", code)
           || users_audit(pg, a->req, "user.verify_resend", NULL, a->user_id,
                          NULL);
}


/* The same 202 whatever happened, except when nothing could be done. */
static void
users_reply_accepted(kit_req_t *req, int rc, const char *status)
{
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(req, 500, NULL, "could not send a code");
    } else if (strcmp(status, "verification_pending") == 0) {
        users_reply_pending(req);
    } else {
        kit_reply_json(req, 202, json_pack("{s:s, s:s}", "status", status,
                       "detail", "if an account has this address, a code "
                       "was sent to it"));
    }
}


void
users_verify_resend(kit_req_t *req)
{
    users_auth_t  *a;

    a = users_auth_parse(req, NULL, 0, 0);
    if (a == NULL) {
        return;
    }
    users_reply_accepted(req, kit_pg_tx("read committed", users_resend_tx,
                                        a), "verification_pending");
    users_auth_free(a);
}


/* ---- login ------------------------------------------------------------ */

static const char  users_login_failed_sql[] =
    "update users set failed_logins = failed_logins + 1,"
    " locked_until = case when failed_logins + 1 >= 5"
    "  then now() + make_interval(secs => least(900,"
    "   $2::bigint * power(2, least(failed_logins + 1 - 5, 20))))"
    "  else locked_until end"
    " where id = $1";
static const char  users_login_ok_sql[] =
    "update users set failed_logins = 0, locked_until = null,"
    " password_hash = coalesce(nullif($2, ''), password_hash)"
    " where id = $1";
static const char  users_session_insert_sql[] =
    "insert into sessions (user_id, device, ip, user_agent, amr)"
    " values ($1, nullif(left($2, 200), ''), nullif($3, ''),"
    " nullif(left($4, 512), ''), '{pwd}') returning id";

static const char  users_throttle_get_sql[] =
    "select coalesce(ceil(extract(epoch from locked_until - now())), 0)"
    "::bigint from login_throttle where address = $1";
static const char  users_throttle_fail_sql[] =
    "insert into login_throttle as t (address, failures) values ($1, 1)"
    " on conflict (address) do update set failures = t.failures + 1,"
    " updated_at = now(),"
    " locked_until = case when t.failures + 1 >= 5"
    "  then now() + make_interval(secs => least(900,"
    "   $2::bigint * power(2, least(t.failures + 1 - 5, 20))))"
    "  else t.locked_until end";

/* The account, or for an address without one, its throttle. */
static int
users_login_lookup_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[1];
    PGresult      *res;

    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    if (a->found) {
        return 0;
    }
    p[0] = users_auth_address(a);
    res = kit_pg_exec(pg, "users_throttle_get", users_throttle_get_sql, 1,
                      p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    a->locked_s = PQntuples(res) == 1
                  ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}


int
users_account_failed(kit_pg_t *pg, const char *user_id)
{
    const char  *p[2];
    PGresult    *res;
    char         base[16];

    snprintf(base, sizeof(base), "%d", users_cf.lockout_base_s);
    p[0] = user_id;
    p[1] = base;
    res = kit_pg_exec(pg, "users_login_failed", users_login_failed_sql, 2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return 0;
}


static int
users_login_failed_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[2];
    PGresult      *res;
    char           base[16];
    int            ok;

    if (a->locked_s <= 0) {
        /* A try while locked is refused unseen: it does not lock longer. */
        snprintf(base, sizeof(base), "%d", users_cf.lockout_base_s);
        p[0] = a->found ? a->user_id : users_auth_address(a);
        p[1] = base;
        res = a->found
              ? kit_pg_exec(pg, "users_login_failed", users_login_failed_sql,
                            2, p)
              : kit_pg_exec(pg, "users_throttle_fail",
                            users_throttle_fail_sql, 2, p);
        ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            return -1;
        }
    }
    return users_audit(pg, a->req, "login.failed", NULL,
                       a->found ? a->user_id : NULL,
                       json_pack("{s:s}", "reason", a->locked_s > 0
                                 ? "locked" : a->found ? "password"
                                 : "unknown_account"));
}


static int
users_login_ok_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[4];
    PGresult      *res;
    char           sid[40];
    int            ok;

    p[0] = a->user_id;
    p[1] = a->hash;             /* "" unless re-hashed */
    res = kit_pg_exec(pg, "users_login_ok", users_login_ok_sql, 2, p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        return -1;
    }
    p[1] = a->device != NULL ? a->device : "";
    p[2] = users_req_ip(a->req);
    p[3] = users_req_ua(a->req);
    res = kit_pg_exec(pg, "users_session_insert", users_session_insert_sql,
                      4, p);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return users_tokens_issue(pg, a->user_id, sid, &a->tokens)
           || users_audit(pg, a->req, "login.ok", a->user_id, a->user_id,
                          json_pack("{s:s}", "session", sid));
}


static void
users_reply_bad_login(users_auth_t *a)
{
    int  rc;

    rc = kit_pg_tx("read committed", users_login_failed_tx, a);
    if (rc != 0) {
        kit_log(KIT_LOG_ERROR, "could not record a failed login");
    }
    if (a->locked_s > 0) {
        char  s[24];

        snprintf(s, sizeof(s), "%lld", a->locked_s);
        kit_reply_header(a->req, "Retry-After", s);
        kit_reply_problem(a->req, 429, NULL, "too many failed logins; try "
                          "again later");
        return;
    }
    kit_reply_problem(a->req, 401, NULL, "invalid credentials");
}


static void
users_login_job(void *arg)
{
    users_auth_t  *a = arg;
    int            rc, ok;

    rc = kit_pg_tx("read committed", users_login_lookup_tx, a);
    if (rc != 0) {
        users_reply_unavailable(a->req, "database is not available");
        users_auth_free(a);
        return;
    }
    if (!a->found || users_is(a, "deleted") || a->locked_s > 0) {
        /* The same argon2 work as a real check, then the same refusal. */
        users_password_dummy(a->password, a->password_len);
        a->found = a->found && !users_is(a, "deleted");
        users_reply_bad_login(a);
        users_auth_free(a);
        return;
    }
    ok = users_password_verify(a->stored, a->password, a->password_len);
    if (!ok) {
        users_reply_bad_login(a);
        users_auth_free(a);
        return;
    }
    if (!users_is(a, "active")) {
        /* Only someone who knows the password learns the status. */
        kit_reply_problem(a->req, 403, NULL, users_is(a, "blocked")
                          ? "the account is blocked"
                          : "the account is not verified yet");
        users_auth_free(a);
        return;
    }
    if (users_password_needs_rehash(a->stored)
        && users_password_hash(a->password, a->password_len, a->hash,
                               sizeof(a->hash)) != 0)
    {
        a->hash[0] = '\0';
    }
    if (a->mfa) {
        /* The failure count stays until the second factor checks out:
         * knowing the password must not buy fresh guesses at codes. */
        users_mfa_challenge(a->req, a->user_id, a->device, a->hash);
        users_auth_free(a);
        return;
    }
    rc = kit_pg_tx("read committed", users_login_ok_tx, a);
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(a->req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(a->req, 500, NULL, "could not open a session");
    } else {
        kit_reply_json(a->req, 200, users_tokens_json(&a->tokens));
    }
    users_auth_free(a);
}


void
users_login(kit_req_t *req)
{
    static const char *const  extra[] = { "password", "device", NULL };
    users_auth_t             *a;
    json_t                   *errors;

    a = users_auth_parse(req, extra, 1, 0);
    if (a == NULL) {
        return;
    }
    errors = json_array();
    a->device = users_body_string(kit_req_json(req), "device",
                                  USERS_DEVICE_MAX, 0, NULL, errors);
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        users_auth_free(a);
        return;
    }
    json_decref(errors);
    users_auth_submit(a, users_login_job);
}


/* ---- password forgot and reset ---------------------------------------- */

static int
users_forgot_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    char           code[USERS_CODE_LEN + 1];
    int            ok;

    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    if (!a->found || !(users_is(a, "active") || users_is(a, "unverified"))) {
        return users_audit(pg, a->req, "password.forgot", NULL,
                           a->found ? a->user_id : NULL,
                           json_pack("{s:b}", "sent", 0));
    }
    ok = users_code_allowed(pg, a->user_id, "reset");
    if (ok < 0) {
        return -1;
    }
    if (ok && (users_code_issue(pg, a->user_id, "reset", code) != 0
               || users_auth_emit(pg, a, "user.password_reset_requested",
                                  code) != 0))
    {
        return -1;
    }
    return users_audit(pg, a->req, "password.forgot", NULL, a->user_id,
                       json_pack("{s:b}", "sent", ok));
}


void
users_password_forgot(kit_req_t *req)
{
    users_auth_t  *a;

    a = users_auth_parse(req, NULL, 0, 0);
    if (a == NULL) {
        return;
    }
    users_reply_accepted(req, kit_pg_tx("read committed", users_forgot_tx,
                                        a), "reset_code_sent");
    users_auth_free(a);
}


static const char  users_reset_sql[] =
    "update users set password_hash = $2, failed_logins = 0,"
    " locked_until = null, updated_at = now(),"
    " status = case when status = 'unverified' then 'active' else status end,"
    " verified_at = coalesce(verified_at, now())"
    " where id = $1";

static int
users_reset_tx(kit_pg_t *pg, void *arg)
{
    users_auth_t  *a = arg;
    const char    *p[2];
    PGresult      *res;
    int            ok;

    a->outcome = USERS_OUT_BAD_CODE;
    if (users_auth_lookup(pg, a) != 0) {
        return -1;
    }
    if (!a->found || !(users_is(a, "active") || users_is(a, "unverified"))) {
        return 0;
    }
    ok = users_code_check(pg, a->user_id, "reset", a->code);
    if (ok <= 0) {
        return ok < 0 ? -1
               : users_audit(pg, a->req, "password.reset_failed", NULL,
                             a->user_id, NULL);
    }
    p[0] = a->user_id;
    p[1] = a->hash;
    res = kit_pg_exec(pg, "users_reset", users_reset_sql, 2, p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || users_sessions_end(pg, a->user_id, NULL, "password_reset") != 0
        || users_revoke_add(pg, "sub", a->user_id, users_now()) != 0
        || users_auth_emit(pg, a, "user.password_reset", NULL) != 0
        || users_audit(pg, a->req, "password.reset", a->user_id, a->user_id,
                       NULL) != 0)
    {
        return -1;
    }
    a->outcome = USERS_OUT_OK;
    return 0;
}


static void
users_reset_job(void *arg)
{
    users_auth_t  *a = arg;
    int            rc;

    if (users_password_hash(a->password, a->password_len, a->hash,
                            sizeof(a->hash)) != 0)
    {
        kit_reply_problem(a->req, 500, NULL, "could not hash the password");
        users_auth_free(a);
        return;
    }
    rc = kit_pg_tx("read committed", users_reset_tx, a);
    if (rc == 0 && a->outcome == USERS_OUT_OK) {
        users_revoke_kick();
    }
    users_reply_code(a, rc, json_pack("{s:s}", "status", "password_reset"));
    users_auth_free(a);
}


void
users_password_reset(kit_req_t *req)
{
    static const char *const  extra[] = { "code", "password", NULL };
    users_auth_t             *a;

    a = users_auth_parse(req, extra, 1, 1);
    if (a == NULL || users_auth_new_password(a, "/password") != 0) {
        return;
    }
    users_auth_submit(a, users_reset_job);
}
