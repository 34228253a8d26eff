/*
 * mfa.c -- the second factor: TOTP setup, enable and disable for the
 * signed-in person, new recovery codes (POST /v1/auth/2fa/recovery-codes),
 * and the second step of a login (POST /v1/auth/login/mfa) with a TOTP or
 * a recovery code.
 *
 * totp.c does the arithmetic; this file keeps its state in the users
 * row.  The secret is sealed at rest (AES-256-GCM, key derived from the
 * code key, the user id as associated data: a sealed secret copied to
 * another row does not open).  "A code is accepted once" is
 * totp_last_step, moved forward only by an UPDATE that requires it to
 * be older than the matched step.
 *
 * A login whose password checks out on an account with TOTP on gets an
 * MFA ticket instead of tokens: 256 random bits, kept as SHA-256, good
 * for USERS_MFA_TICKET_TTL_S and USERS_MFA_TICKET_TRIES wrong codes, used
 * once.  Every wrong second factor (login/mfa, disable) also counts as a
 * failed login of the account, so the doubling lockout of auth.c bounds
 * guesses across tickets: 5 free tries, then 1 s, 2 s, ... up to 15
 * minutes between them.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "totp.h"

#define USERS_MFA_TICKET_TTL_S   300
#define USERS_MFA_TICKET_TRIES   5

enum {
    USERS_MFA_OK = 0,
    USERS_MFA_BAD,              /* wrong code or password: 401/422 */
    USERS_MFA_STATE,            /* 2FA not in the state asked for: 409 */
    USERS_MFA_LOCKED,           /* too many failures: 429 */
    USERS_MFA_TICKET,           /* unknown, expired or used ticket: 401 */
};

typedef struct {
    kit_req_t             *req;
    const char            *caller;
    const char            *code;
    const char            *recovery;
    const char            *password;
    size_t                 password_len;
    int                    password_ok;
    char                   user_id[40];
    char                   device[USERS_DEVICE_MAX + 1];
    char                   rehash[USERS_HASH_MAX];
    char                   account[USERS_EMAIL_MAX + 1];
    char                   b32[USERS_TOTP_SECRET_B32_SIZE];
    char                   uri[USERS_TOTP_URI_SIZE];
    char                   stored[USERS_HASH_MAX];
    char                   ticket[USERS_TOKEN_LEN + 1];
    char                   ticket_sha256[65];
    long long              locked_s;
    int                    outcome;
    const char             *detail;
    users_recovery_code_t  codes[USERS_RECOVERY_CODES];
    users_tokens_t         tokens;
} users_mfa_t;


static users_mfa_t *
users_mfa_new(kit_req_t *req)
{
    users_mfa_t  *m;

    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        kit_reply_problem(req, 500, NULL, "out of memory");
        return NULL;
    }
    m->req = req;
    return m;
}


static void
users_mfa_free(users_mfa_t *m)
{
    explicit_bzero(m, sizeof(*m));
    free(m);
}


/* ---- sealing the secret ----------------------------------------------- */

#define USERS_TOTP_SEAL_LABEL  "kordon users totp seal v1"

static int
users_totp_seal(const char *user_id, const char *b32, char *hex)
{
    return users_seal(users_cf.code_key, users_cf.code_key_len,
                      USERS_TOTP_SEAL_LABEL, user_id, b32, hex,
                      USERS_SEAL_HEX_MAX);
}


static int
users_totp_unseal(const char *user_id, const char *hex,
    char b32[USERS_TOTP_SECRET_B32_SIZE])
{
    return users_unseal(users_cf.code_key, users_cf.code_key_len,
                        USERS_TOTP_SEAL_LABEL, user_id, hex, b32,
                        USERS_TOTP_SECRET_B32_SIZE);
}


/* ---- shared pieces ---------------------------------------------------- */

static int
users_mfa_event(kit_pg_t *pg, users_mfa_t *m, const char *type)
{
    return kit_outbox_write(pg, "users.events", type, m->user_id,
                            kit_req_identity(m->req)->request_id,
                            m->caller, m->user_id, NULL);
}


/* A failed second factor: counted on the account (lockout) and audited. */
static int
users_mfa_failed(kit_pg_t *pg, users_mfa_t *m, const char *action,
    const char *reason)
{
    m->outcome = USERS_MFA_BAD;
    if (m->locked_s <= 0 && users_account_failed(pg, m->user_id) != 0) {
        return -1;
    }
    return users_audit(pg, m->req, action, m->caller, m->user_id,
                       json_pack("{s:s}", "reason", reason));
}


/* The 6-digit "code" of body, or NULL (error appended when bad). */
static const char *
users_mfa_code(json_t *body, int required, json_t *errors)
{
    const char  *code;

    code = users_body_string(body, "code", USERS_TOTP_DIGITS, required, NULL,
                             errors);
    if (code != NULL && (strlen(code) != USERS_TOTP_DIGITS
                         || strspn(code, "0123456789") != USERS_TOTP_DIGITS))
    {
        users_error(errors, "/code", "must be 6 digits");
        return NULL;
    }
    return code;
}


/*
 * The start of a signed-in person's 2FA route with a JSON body: the
 * caller, the body (only keys allowed) and the errors array to fill.
 * NULL when already answered (no identity, not a JSON object, memory).
 */
static users_mfa_t *
users_mfa_body(kit_req_t *req, const char *const *keys, json_t **body,
    json_t **errors)
{
    users_mfa_t  *m;
    const char   *user;

    user = users_caller(req);
    *body = user != NULL ? users_json_object(req) : NULL;
    if (*body == NULL || (m = users_mfa_new(req)) == NULL) {
        return NULL;
    }
    m->caller = user;
    snprintf(m->user_id, sizeof(m->user_id), "%s", user);
    *errors = json_array();
    users_body_only(*body, keys, *errors);
    return m;
}


static void
users_mfa_reply(users_mfa_t *m, int rc, json_t *ok_body, int ok_status)
{
    if (rc == KIT_TX_UNAVAILABLE) {
        json_decref(ok_body);
        users_reply_unavailable(m->req, "database is not available");
    } else if (rc != 0) {
        json_decref(ok_body);
        kit_reply_problem(m->req, 500, NULL, "could not change the second "
                          "factor");
    } else if (m->outcome == USERS_MFA_BAD) {
        json_decref(ok_body);
        kit_reply_invalid(m->req, m->detail, json_pack("[{s:s, s:s}]",
                          "pointer", m->password != NULL ? "/password"
                          : "/code", "message", "is wrong or was used "
                          "already"));
    } else if (m->outcome == USERS_MFA_STATE) {
        json_decref(ok_body);
        kit_reply_problem(m->req, 409, NULL, m->detail);
    } else if (m->outcome == USERS_MFA_LOCKED) {
        char  s[24];

        json_decref(ok_body);
        snprintf(s, sizeof(s), "%lld", m->locked_s);
        kit_reply_header(m->req, "Retry-After", s);
        kit_reply_problem(m->req, 429, NULL, "too many failed tries; try "
                          "again later");
    } else {
        kit_reply_json(m->req, ok_status, ok_body);
    }
}


static const char  users_totp_state_sql[] =
    "select coalesce(email, phone, id::text), totp_enabled_at is not null,"
    " encode(totp_pending, 'hex'), encode(totp_secret, 'hex'),"
    " coalesce(totp_last_step, -1), password_hash,"
    " coalesce(ceil(extract(epoch from locked_until - now())), 0)::bigint"
    " from users where id = $1 and status = 'active' for update";

/*
 * Reads the caller's 2FA state (row locked); 1 when enabled, 0 when not,
 * -1 on error, -2 when the account is not active (outcome set).
 */
static int
users_totp_state(kit_pg_t *pg, users_mfa_t *m, char *pending,
    char *secret, int64_t *last_step)
{
    const char  *p[1];
    PGresult    *res;
    int          on;

    p[0] = m->user_id;
    res = kit_pg_exec(pg, "users_totp_state", users_totp_state_sql, 1, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        m->outcome = USERS_MFA_STATE;
        m->detail = "the account is not active";
        return -2;
    }
    snprintf(m->account, sizeof(m->account), "%s", PQgetvalue(res, 0, 0));
    on = PQgetvalue(res, 0, 1)[0] == 't';
    snprintf(pending, USERS_SEAL_HEX_MAX, "%s", PQgetvalue(res, 0, 2));
    snprintf(secret, USERS_SEAL_HEX_MAX, "%s", PQgetvalue(res, 0, 3));
    *last_step = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    snprintf(m->stored, sizeof(m->stored), "%s", PQgetvalue(res, 0, 5));
    m->locked_s = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    PQclear(res);
    return on;
}


/* ---- setup ------------------------------------------------------------ */

static const char  users_totp_pending_sql[] =
    "update users set totp_pending = decode($2, 'hex'), updated_at = now()"
    " where id = $1";

static int
users_totp_setup_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[2];
    PGresult     *res;
    int64_t       last;
    char          pending[USERS_SEAL_HEX_MAX], secret[USERS_SEAL_HEX_MAX];
    char          sealed[USERS_SEAL_HEX_MAX];
    int           on;

    on = users_totp_state(pg, m, pending, secret, &last);
    if (on != 0) {
        if (on == 1) {
            m->outcome = USERS_MFA_STATE;
            m->detail = "two-factor authentication is on already; disable "
                        "it first";
        }
        return on == -1 ? -1 : 0;
    }
    if (users_totp_secret_new(m->b32) != USERS_TOTP_OK
        || users_totp_uri(m->b32, m->account, m->uri, sizeof(m->uri)) < 0
        || users_totp_seal(m->user_id, m->b32, sealed) != 0)
    {
        return -1;
    }
    p[0] = m->user_id;
    p[1] = sealed;
    res = kit_pg_exec(pg, "users_totp_pending", users_totp_pending_sql, 2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return users_audit(pg, m->req, "2fa.setup", m->caller, m->user_id, NULL);
}


void
users_totp_setup(kit_req_t *req)
{
    users_mfa_t  *m;
    const char   *user;
    int           rc;

    user = users_caller(req);
    if (user == NULL || (m = users_mfa_new(req)) == NULL) {
        return;
    }
    m->caller = user;
    snprintf(m->user_id, sizeof(m->user_id), "%s", user);
    rc = kit_pg_tx("read committed", users_totp_setup_tx, m);
    users_mfa_reply(m, rc, rc != 0 || m->outcome != USERS_MFA_OK ? NULL
                    : json_pack("{s:s, s:s}", "secret", m->b32,
                                "otpauth_uri", m->uri), 200);
    users_mfa_free(m);
}


/* ---- enable ----------------------------------------------------------- */

static const char  users_totp_enable_sql[] =
    "update users set totp_secret = totp_pending, totp_pending = null,"
    " totp_enabled_at = now(), totp_last_step = $2::bigint,"
    " updated_at = now() where id = $1";
static const char  users_recovery_clear_sql[] =
    "delete from recovery_codes where user_id = $1";
static const char  users_recovery_insert_sql[] =
    "insert into recovery_codes (user_id, code_hash)"
    " select $1, unnest($2::text[])";

/* Replaces the recovery codes of m->user_id by ten new ones (m->codes). */
static int
users_recovery_store(kit_pg_t *pg, users_mfa_t *m)
{
    users_recovery_hash_t  hashes[USERS_RECOVERY_CODES];
    const char            *p[2];
    PGresult              *res;
    char                   arr[USERS_RECOVERY_CODES * USERS_RECOVERY_HASH_SIZE
                               + 8];
    size_t                 off;
    int                    i;

    if (users_recovery_new(m->codes, hashes) != USERS_TOTP_OK) {
        return -1;
    }
    off = 0;
    arr[off++] = '{';
    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        off += (size_t) snprintf(arr + off, sizeof(arr) - off, "%s%s",
                                 i > 0 ? "," : "", hashes[i]);
    }
    snprintf(arr + off, sizeof(arr) - off, "}");
    p[0] = m->user_id;
    p[1] = arr;
    res = kit_pg_exec(pg, "users_recovery_clear", users_recovery_clear_sql,
                      1, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    res = kit_pg_exec(pg, "users_recovery_insert", users_recovery_insert_sql,
                      2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return 0;
}


static int
users_totp_enable_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[2];
    PGresult     *res;
    int64_t       last, step;
    char          pending[USERS_SEAL_HEX_MAX], secret[USERS_SEAL_HEX_MAX];
    char          s[24];
    int           on;

    on = users_totp_state(pg, m, pending, secret, &last);
    if (on != 0 || pending[0] == '\0') {
        if (on >= 0) {
            m->outcome = USERS_MFA_STATE;
            m->detail = on == 1 ? "two-factor authentication is on already"
                        : "no TOTP secret was set up; call setup first";
        }
        return on == -1 ? -1 : 0;
    }
    if (users_totp_unseal(m->user_id, pending, m->b32) != 0) {
        return -1;
    }
    if (users_totp_verify(m->b32, m->code, time(NULL), -1, &step)
        != USERS_TOTP_OK)
    {
        m->outcome = USERS_MFA_BAD;
        m->detail = "the code does not match the secret";
        return users_audit(pg, m->req, "2fa.enable_failed", m->caller,
                           m->user_id, NULL);
    }
    snprintf(s, sizeof(s), "%lld", (long long) step);
    p[0] = m->user_id;
    p[1] = s;
    res = kit_pg_exec(pg, "users_totp_enable", users_totp_enable_sql, 2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return users_recovery_store(pg, m)
           || users_audit(pg, m->req, "2fa.enabled", m->caller, m->user_id,
                          NULL)
           || users_mfa_event(pg, m, "user.2fa_enabled");
}


/* {"status": status, "recovery_codes": [the ten new codes of m]} */
static json_t *
users_recovery_json(users_mfa_t *m, const char *status)
{
    json_t  *codes;
    int      i;

    codes = json_array();
    for (i = 0; i < USERS_RECOVERY_CODES; i++) {
        json_array_append_new(codes, json_string(m->codes[i]));
    }
    return json_pack("{s:s, s:o}", "status", status, "recovery_codes",
                     codes);
}


/*
 * The routes that prove a TOTP code and answer ten new recovery codes
 * (enable, recovery-codes): body {"code"}, then tx, then
 * {"status": status, "recovery_codes": [...]}.
 */
static void
users_recovery_route(kit_req_t *req, kit_tx_pt tx, const char *status)
{
    static const char *const  keys[] = { "code", NULL };
    users_mfa_t              *m;
    json_t                   *body, *errors;
    int                       rc;

    m = users_mfa_body(req, keys, &body, &errors);
    if (m == NULL) {
        return;
    }
    m->code = users_mfa_code(body, 1, errors);
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        users_mfa_free(m);
        return;
    }
    json_decref(errors);
    rc = kit_pg_tx("read committed", tx, m);
    users_mfa_reply(m, rc, rc == 0 && m->outcome == USERS_MFA_OK
                    ? users_recovery_json(m, status) : NULL, 200);
    users_mfa_free(m);
}


void
users_totp_enable(kit_req_t *req)
{
    users_recovery_route(req, users_totp_enable_tx, "enabled");
}


/* ---- disable ---------------------------------------------------------- */

static const char  users_totp_disable_sql[] =
    "update users set totp_secret = null, totp_pending = null,"
    " totp_enabled_at = null, totp_last_step = null, updated_at = now()"
    " where id = $1";

static int
users_totp_disable_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[1];
    PGresult     *res;
    int64_t       last, step;
    char          pending[USERS_SEAL_HEX_MAX], secret[USERS_SEAL_HEX_MAX];
    int           on, ok;

    on = users_totp_state(pg, m, pending, secret, &last);
    if (on != 1) {
        if (on == 0) {
            m->outcome = USERS_MFA_STATE;
            m->detail = "two-factor authentication is off";
        }
        return on == -1 ? -1 : 0;
    }
    if (m->locked_s > 0) {
        ok = users_mfa_failed(pg, m, "2fa.disable_failed", "locked");
        m->outcome = USERS_MFA_LOCKED;
        return ok;
    }
    if (m->password != NULL) {
        ok = m->password_ok;
    } else {
        ok = users_totp_unseal(m->user_id, secret, m->b32) == 0
             && users_totp_verify(m->b32, m->code, time(NULL), last, &step)
                == USERS_TOTP_OK;
    }
    if (!ok) {
        m->detail = m->password != NULL ? "the password is wrong"
                    : "the code is wrong or was used already";
        return users_mfa_failed(pg, m, "2fa.disable_failed",
                                m->password != NULL ? "password" : "code");
    }
    p[0] = m->user_id;
    res = kit_pg_exec(pg, "users_totp_disable", users_totp_disable_sql, 1, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    res = kit_pg_exec(pg, "users_recovery_clear", users_recovery_clear_sql,
                      1, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return users_audit(pg, m->req, "2fa.disabled", m->caller, m->user_id,
                       json_pack("{s:s}", "with", m->password != NULL
                                 ? "password" : "code"))
           || users_mfa_event(pg, m, "user.2fa_disabled");
}


static const char  users_password_of_sql[] =
    "select password_hash from users where id = $1";

/* On the password pool: argon2 outside the transaction, then the tx. */
static void
users_totp_disable_job(void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[1];
    kit_pg_t     *pg;
    PGresult     *res;
    int           rc;

    pg = kit_pg_acquire(USERS_DB_ACQUIRE_MS);
    if (pg == NULL) {
        users_reply_unavailable(m->req, "database is not available");
        users_mfa_free(m);
        return;
    }
    p[0] = m->user_id;
    res = kit_pg_exec(pg, "users_password_of", users_password_of_sql, 1, p);
    kit_pg_release(pg);
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK
        && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
    {
        m->password_ok = users_password_verify(PQgetvalue(res, 0, 0),
                                               m->password,
                                               m->password_len);
    } else {
        users_password_dummy(m->password, m->password_len);
    }
    PQclear(res);
    rc = kit_pg_tx("read committed", users_totp_disable_tx, m);
    users_mfa_reply(m, rc, NULL, 204);
    users_mfa_free(m);
}


void
users_totp_disable(kit_req_t *req)
{
    static const char *const  keys[] = { "code", "password", NULL };
    users_mfa_t              *m;
    json_t                   *body, *errors;
    int                       rc;

    m = users_mfa_body(req, keys, &body, &errors);
    if (m == NULL) {
        return;
    }
    m->code = users_mfa_code(body, 0, errors);
    m->password = users_body_string(body, "password", USERS_PASSWORD_MAX, 0,
                                    &m->password_len, errors);
    if (json_array_size(errors) == 0
        && (m->code == NULL) == (m->password == NULL))
    {
        users_error(errors, "", "give exactly one of code or password");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        users_mfa_free(m);
        return;
    }
    json_decref(errors);
    if (m->password != NULL) {
        kit_suspend(req);
        if (users_pool_submit(users_totp_disable_job, m) != 0) {
            users_reply_unavailable(req, "too many password checks at once");
            users_mfa_free(m);
        }
        return;
    }
    rc = kit_pg_tx("read committed", users_totp_disable_tx, m);
    users_mfa_reply(m, rc, NULL, 204);
    users_mfa_free(m);
}


/* ---- login: the ticket ------------------------------------------------ */

static const char  users_mfa_ticket_sql[] =
    "insert into mfa_tickets (ticket_sha256, user_id, device, expires_at)"
    " values (decode($1, 'hex'), $2, nullif(left($3, 200), ''),"
    " now() + interval '300 seconds')";
static const char  users_mfa_expired_sql[] =
    "delete from mfa_tickets where user_id = $1 and expires_at < now()";
static const char  users_mfa_rehash_sql[] =
    "update users set password_hash = $2 where id = $1";

static int
users_mfa_challenge_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[3];
    PGresult     *res;

    if (m->rehash[0] != '\0') {
        p[0] = m->user_id;
        p[1] = m->rehash;
        res = kit_pg_exec(pg, "users_mfa_rehash", users_mfa_rehash_sql, 2, p);
        if (users_ok(res, PGRES_COMMAND_OK) != 0) {
            return -1;
        }
        PQclear(res);
    }
    p[0] = m->user_id;
    res = kit_pg_exec(pg, "users_mfa_expired", users_mfa_expired_sql, 1, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    p[0] = m->ticket_sha256;
    p[1] = m->user_id;
    p[2] = m->device;
    res = kit_pg_exec(pg, "users_mfa_ticket", users_mfa_ticket_sql, 3, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return users_audit(pg, m->req, "login.mfa_required", m->user_id,
                       m->user_id, NULL);
}


void
users_mfa_challenge(kit_req_t *req, const char *user_id, const char *device,
    const char *rehash)
{
    users_mfa_t  *m;
    uint8_t       h[32];
    int           rc;

    m = users_mfa_new(req);
    if (m == NULL) {
        return;
    }
    snprintf(m->user_id, sizeof(m->user_id), "%s", user_id);
    snprintf(m->device, sizeof(m->device), "%s", device != NULL ? device
                                                                : "");
    snprintf(m->rehash, sizeof(m->rehash), "%s", rehash);
    if (users_token_new(m->ticket) != 0) {
        kit_reply_problem(req, 500, NULL, "could not draw a ticket");
        users_mfa_free(m);
        return;
    }
    users_sha256(m->ticket, USERS_TOKEN_LEN, h);
    users_hex(h, sizeof(h), m->ticket_sha256);
    rc = kit_pg_tx("read committed", users_mfa_challenge_tx, m);
    if (rc == KIT_TX_UNAVAILABLE) {
        users_reply_unavailable(req, "database is not available");
    } else if (rc != 0) {
        kit_reply_problem(req, 500, NULL, "could not open a login");
    } else {
        kit_reply_json(req, 200, json_pack("{s:s, s:s, s:i, s:[s, s]}",
                       "status", "mfa_required", "mfa_ticket", m->ticket,
                       "expires_in", USERS_MFA_TICKET_TTL_S, "methods",
                       "totp", "recovery_code"));
    }
    users_mfa_free(m);
}


/* ---- login/mfa -------------------------------------------------------- */

static const char  users_mfa_take_sql[] =
    "select t.user_id, coalesce(t.device, ''), encode(u.totp_secret, 'hex'),"
    " coalesce(u.totp_last_step, -1),"
    " coalesce(ceil(extract(epoch from u.locked_until - now())), 0)::bigint"
    " from mfa_tickets t join users u on u.id = t.user_id"
    " where t.ticket_sha256 = decode($1, 'hex') and t.used_at is null"
    " and t.expires_at > now() and t.tries < 5 and u.status = 'active'"
    " and u.totp_secret is not null for update";
static const char  users_mfa_try_sql[] =
    "update mfa_tickets set tries = tries + 1 where ticket_sha256 ="
    " decode($1, 'hex')";
static const char  users_mfa_used_sql[] =
    "update mfa_tickets set used_at = now(), tries = tries + 1"
    " where ticket_sha256 = decode($1, 'hex')";
static const char  users_mfa_step_sql[] =
    "update users set totp_last_step = $2::bigint, failed_logins = 0,"
    " locked_until = null where id = $1"
    " and coalesce(totp_last_step, -1) < $2::bigint";
static const char  users_recovery_live_sql[] =
    "select code_hash from recovery_codes where user_id = $1"
    " and used_at is null";
static const char  users_recovery_use_sql[] =
    "update recovery_codes set used_at = now() where user_id = $1"
    " and code_hash = $2 and used_at is null";
static const char  users_mfa_reset_sql[] =
    "update users set failed_logins = 0, locked_until = null where id = $1";
static const char  users_mfa_session_sql[] =
    "insert into sessions (user_id, device, ip, user_agent, amr)"
    " values ($1, nullif($2, ''), nullif($3, ''), nullif(left($4, 512), ''),"
    " '{pwd,otp}') returning id";

/* Runs one statement expecting to change exactly one row: 1, 0, -1. */
static int
users_mfa_one_row(kit_pg_t *pg, const char *name, const char *sql,
    int n, const char *const *p)
{
    PGresult  *res;
    int        one;

    res = kit_pg_exec(pg, name, sql, n, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    one = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return one;
}


/* Checks the TOTP code and moves totp_last_step: 1 ok, 0 not, -1 error. */
static int
users_mfa_totp(kit_pg_t *pg, users_mfa_t *m, const char *sealed,
    int64_t last)
{
    const char  *p[2];
    int64_t      step;
    char         s[24];

    if (users_totp_unseal(m->user_id, sealed, m->b32) != 0
        || users_totp_verify(m->b32, m->code, time(NULL), last, &step)
           != USERS_TOTP_OK)
    {
        return 0;
    }
    snprintf(s, sizeof(s), "%lld", (long long) step);
    p[0] = m->user_id;
    p[1] = s;
    return users_mfa_one_row(pg, "users_mfa_step", users_mfa_step_sql, 2, p);
}


/* Checks a recovery code and spends it: 1 ok, 0 not, -1 error. */
static int
users_mfa_recovery(kit_pg_t *pg, users_mfa_t *m)
{
    const char  *hashes[USERS_RECOVERY_CODES];
    const char  *p[2];
    PGresult    *res;
    int          i, n, rc;

    p[0] = m->user_id;
    res = kit_pg_exec(pg, "users_recovery_live", users_recovery_live_sql, 1,
                      p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    n = PQntuples(res) < USERS_RECOVERY_CODES ? PQntuples(res)
                                              : USERS_RECOVERY_CODES;
    for (i = 0; i < n; i++) {
        hashes[i] = PQgetvalue(res, i, 0);
    }
    i = users_recovery_match(m->recovery, hashes, n);
    rc = 0;
    if (i >= 0) {
        p[1] = hashes[i];
        rc = users_mfa_one_row(pg, "users_recovery_use",
                               users_recovery_use_sql, 2, p);
        if (rc == 1) {
            rc = users_mfa_one_row(pg, "users_mfa_reset",
                                   users_mfa_reset_sql, 1, p) < 0 ? -1 : 1;
        }
    }
    PQclear(res);
    return rc;
}


/* The ticket's login, row-locked; 0 found, 1 not (outcome set), -1. */
static int
users_mfa_take(kit_pg_t *pg, users_mfa_t *m, char *sealed, int64_t *last)
{
    const char  *p[1];
    PGresult    *res;

    p[0] = m->ticket_sha256;
    res = kit_pg_exec(pg, "users_mfa_take", users_mfa_take_sql, 1, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        m->outcome = USERS_MFA_TICKET;
        return 1;
    }
    snprintf(m->user_id, sizeof(m->user_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(m->device, sizeof(m->device), "%s", PQgetvalue(res, 0, 1));
    snprintf(sealed, USERS_SEAL_HEX_MAX, "%s", PQgetvalue(res, 0, 2));
    *last = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    m->locked_s = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    return 0;
}


static int
users_mfa_login_ok(kit_pg_t *pg, users_mfa_t *m)
{
    const char  *p[4];
    PGresult    *res;
    char         sid[40];

    p[0] = m->ticket_sha256;
    if (users_mfa_one_row(pg, "users_mfa_used", users_mfa_used_sql, 1, p)
        != 1)
    {
        return -1;
    }
    p[0] = m->user_id;
    p[1] = m->device;
    p[2] = users_req_ip(m->req);
    p[3] = users_req_ua(m->req);
    res = kit_pg_exec(pg, "users_mfa_session", users_mfa_session_sql, 4, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return users_tokens_issue(pg, m->user_id, sid, &m->tokens)
           || users_audit(pg, m->req, "login.ok", m->user_id, m->user_id,
                          json_pack("{s:s, s:s}", "session", sid, "mfa",
                                    m->code != NULL ? "totp" : "recovery"));
}


static int
users_mfa_login_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    const char   *p[1];
    int64_t       last;
    char          sealed[USERS_SEAL_HEX_MAX];
    int           rc, ok;

    m->outcome = USERS_MFA_OK;
    rc = users_mfa_take(pg, m, sealed, &last);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    p[0] = m->ticket_sha256;
    if (m->locked_s > 0) {
        ok = 0;
    } else {
        ok = m->code != NULL ? users_mfa_totp(pg, m, sealed, last)
                             : users_mfa_recovery(pg, m);
    }
    if (ok < 0) {
        return -1;
    }
    if (ok) {
        return users_mfa_login_ok(pg, m);
    }
    if (users_mfa_one_row(pg, "users_mfa_try", users_mfa_try_sql, 1, p) < 0
        || users_mfa_failed(pg, m, "login.mfa_failed", m->locked_s > 0
                            ? "locked" : m->code != NULL ? "totp"
                            : "recovery_code") != 0)
    {
        return -1;
    }
    if (m->locked_s > 0) {
        m->outcome = USERS_MFA_LOCKED;
    }
    return 0;
}


void
users_login_mfa(kit_req_t *req)
{
    static const char *const  keys[] = { "mfa_ticket", "code",
                                         "recovery_code", NULL };
    users_mfa_t              *m;
    const char               *ticket;
    json_t                   *body, *errors;
    uint8_t                   h[32];
    int                       rc;

    body = users_json_object(req);
    if (body == NULL || (m = users_mfa_new(req)) == NULL) {
        return;
    }
    errors = json_array();
    users_body_only(body, keys, errors);
    ticket = users_body_string(body, "mfa_ticket", 512, 1, NULL, errors);
    if (ticket != NULL && !users_token_valid(ticket)) {
        users_error(errors, "/mfa_ticket", "is not a ticket of ours");
    }
    m->code = users_mfa_code(body, 0, errors);
    m->recovery = users_body_string(body, "recovery_code",
                                    USERS_RECOVERY_INPUT_MAX, 0, NULL,
                                    errors);
    if (json_array_size(errors) == 0
        && (m->code == NULL) == (m->recovery == NULL))
    {
        users_error(errors, "", "give exactly one of code or recovery_code");
    }
    if (json_array_size(errors) > 0) {
        kit_reply_invalid(req, "the request body is invalid", errors);
        users_mfa_free(m);
        return;
    }
    json_decref(errors);
    users_sha256(ticket, USERS_TOKEN_LEN, h);
    users_hex(h, sizeof(h), m->ticket_sha256);
    rc = kit_pg_tx("read committed", users_mfa_login_tx, m);
    if (rc == 0 && m->outcome == USERS_MFA_TICKET) {
        kit_reply_problem(req, 401, NULL, "the MFA ticket is unknown, "
                          "expired or used up; log in again");
    } else if (rc == 0 && m->outcome == USERS_MFA_BAD) {
        kit_reply_problem(req, 401, NULL, m->code != NULL
                          ? "the code is wrong or was used already"
                          : "the recovery code is wrong or was used already");
    } else {
        users_mfa_reply(m, rc, rc == 0 && m->outcome == USERS_MFA_OK
                        ? users_tokens_json(&m->tokens) : NULL, 200);
    }
    users_mfa_free(m);
}


/* ---- new recovery codes ----------------------------------------------- */

/*
 * POST /v1/auth/2fa/recovery-codes {"code"}: ten new recovery codes for
 * the signed-in person with 2FA on, proved by a current TOTP code (used
 * up like any other); the old codes, used or not, stop working.  A wrong
 * code counts as a failed login of the account, as everywhere else.
 */
static int
users_recovery_renew_tx(kit_pg_t *pg, void *arg)
{
    users_mfa_t  *m = arg;
    int64_t       last;
    char          pending[USERS_SEAL_HEX_MAX], secret[USERS_SEAL_HEX_MAX];
    int           on, ok;

    on = users_totp_state(pg, m, pending, secret, &last);
    if (on != 1) {
        if (on == 0) {
            m->outcome = USERS_MFA_STATE;
            m->detail = "two-factor authentication is off";
        }
        return on == -1 ? -1 : 0;
    }
    if (m->locked_s > 0) {
        ok = users_mfa_failed(pg, m, "2fa.recovery_failed", "locked");
        m->outcome = USERS_MFA_LOCKED;
        return ok;
    }
    ok = users_mfa_totp(pg, m, secret, last);
    if (ok != 1) {
        m->detail = "the code is wrong or was used already";
        return ok == -1 ? -1 : users_mfa_failed(pg, m, "2fa.recovery_failed",
                                                "code");
    }
    return users_recovery_store(pg, m)
           || users_audit(pg, m->req, "2fa.recovery_renewed", m->caller,
                          m->user_id, NULL)
           || users_mfa_event(pg, m, "user.2fa_recovery_renewed");
}


void
users_recovery_renew(kit_req_t *req)
{
    users_recovery_route(req, users_recovery_renew_tx, "renewed");
}
