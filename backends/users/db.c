/*
 * db.c -- what every users handler does the same way: read the caller
 * and the body, check addresses, and the database steps shared by the
 * routes (audit rows, one-time codes, sessions and token pairs).
 *
 * Every function that takes a kit_pg_t runs inside the caller's
 * transaction and returns -1 on an SQL error (logged by the caller's
 * rollback); none of them answers the request.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "users.h"


/* ---- input ------------------------------------------------------------ */

int
users_error(json_t *errors, const char *pointer, const char *message)
{
    return json_array_append_new(errors, json_pack("{s:s, s:s}", "pointer",
                                 pointer, "message", message));
}


int
users_email_normalize(const char *in, size_t len, char *out, size_t outlen)
{
    const char  *at;
    size_t       i;

    if (len < 3 || len > USERS_EMAIL_MAX || len >= outlen
        || memchr(in, '\0', len) != NULL)
    {
        return -1;
    }
    at = memchr(in, '@', len);
    if (at == NULL || at == in || at == in + len - 1
        || memchr(at + 1, '@', (size_t) (in + len - at - 1)) != NULL
        || memchr(at + 1, '.', (size_t) (in + len - at - 1)) == NULL
        || at[1] == '.' || in[len - 1] == '.')
    {
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char  c = (unsigned char) in[i];

        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ','
            || c == ';' || c == '"' || c == '\\')
        {
            return -1;
        }
        out[i] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[len] = '\0';
    return 0;
}


int
users_phone_valid(const char *s, size_t len)
{
    size_t  i;

    /* E.164: "+", a country code not starting with 0, 7..15 digits. */
    if (len < 8 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9') {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}


int
users_body_address(json_t *body, char *email, char *phone, json_t *errors)
{
    json_t  *e, *p;

    email[0] = phone[0] = '\0';
    e = json_object_get(body, "email");
    p = json_object_get(body, "phone");
    if (e != NULL && p != NULL) {
        users_error(errors, "/phone", "give either email or phone, not both");
        return -1;
    }
    if (e == NULL && p == NULL) {
        users_error(errors, "/email", "email or phone is required");
        return -1;
    }
    if (e != NULL) {
        if (!json_is_string(e)
            || users_email_normalize(json_string_value(e),
                                     json_string_length(e), email,
                                     USERS_EMAIL_MAX + 1) != 0)
        {
            users_error(errors, "/email", "must be an email address");
            return -1;
        }
        return 0;
    }
    if (!json_is_string(p)
        || !users_phone_valid(json_string_value(p), json_string_length(p)))
    {
        users_error(errors, "/phone",
                    "must be a phone number in E.164 form (+15551234567)");
        return -1;
    }
    strcpy(phone, json_string_value(p));
    return 0;
}


const char *
users_body_string(json_t *body, const char *key, size_t max, int required,
    size_t *len, json_t *errors)
{
    char     pointer[64], msg[96];
    json_t  *v;
    size_t   n;

    snprintf(pointer, sizeof(pointer), "/%s", key);
    v = json_object_get(body, key);
    if (v == NULL || json_is_null(v)) {
        if (required) {
            users_error(errors, pointer, "is required");
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        users_error(errors, pointer, "must be a string");
        return NULL;
    }
    n = users_utf8_chars(json_string_value(v), json_string_length(v));
    if (n == 0 || n > max) {
        snprintf(msg, sizeof(msg), "must be 1 to %zu characters", max);
        users_error(errors, pointer, msg);
        return NULL;
    }
    if (len != NULL) {
        *len = json_string_length(v);
    }
    return json_string_value(v);
}


int
users_body_only(json_t *body, const char *const *allowed, json_t *errors)
{
    const char  *key;
    json_t      *v;
    char         pointer[80];
    int          i, ok, bad;

    bad = 0;
    json_object_foreach(body, key, v) {
        for (i = 0, ok = 0; allowed[i] != NULL && !ok; i++) {
            ok = strcmp(key, allowed[i]) == 0;
        }
        if (!ok) {
            snprintf(pointer, sizeof(pointer), "/%.64s", key);
            users_error(errors, pointer, "is not a known field");
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}


json_t *
users_json_object(kit_req_t *req)
{
    json_t  *body;

    body = kit_req_json(req);
    if (!json_is_object(body)) {
        kit_reply_invalid(req, "the body must be a JSON object",
                          json_pack("[{s:s, s:s}]", "pointer", "",
                                    "message", "must be an object"));
        return NULL;
    }
    return body;
}


int
users_uuid_valid(const char *s)
{
    int  i;

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }
        } else if (!((s[i] >= '0' && s[i] <= '9')
                     || (s[i] >= 'a' && s[i] <= 'f')))
        {
            return 0;
        }
    }
    return s[36] == '\0';
}


const char *
users_caller(kit_req_t *req)
{
    const kit_identity_t  *id;

    id = kit_req_identity(req);
    if (!id->verified || !users_uuid_valid(id->user)) {
        kit_reply_problem(req, 401, NULL, "the signed identity names no user");
        return NULL;
    }
    return id->user;
}


const char *
users_req_ip(kit_req_t *req)
{
    const char  *ip;

    ip = kit_req_header(req, "X-Forwarded-For");
    return ip != NULL ? ip : "";
}


const char *
users_req_ua(kit_req_t *req)
{
    const char  *ua;

    ua = kit_req_header(req, "User-Agent");
    return ua != NULL ? ua : "";
}


int64_t
users_now(void)
{
    return (int64_t) time(NULL);
}


void
users_reply_unavailable(kit_req_t *req, const char *detail)
{
    kit_reply_header(req, "Retry-After", USERS_RETRY_AFTER_S);
    kit_reply_problem(req, 503, NULL, detail);
}


/* ---- the database ----------------------------------------------------- */

int
users_ok(PGresult *res, ExecStatusType want)
{
    if (res != NULL && PQresultStatus(res) == want) {
        return 0;
    }
    if (res != NULL) {
        kit_log(KIT_LOG_ERROR, "users query failed: %s",
                PQresultErrorMessage(res));
    }
    PQclear(res);
    return -1;
}


static const char  users_audit_sql[] =
    "insert into audit (action, actor, subject, ip, user_agent, request_id,"
    " data) values ($1, nullif($2, '')::uuid, nullif($3, '')::uuid,"
    " nullif($4, ''), nullif(left($5, 512), ''), $6, $7::jsonb)";

int
users_audit(kit_pg_t *pg, kit_req_t *req, const char *action,
    const char *actor, const char *subject, json_t *data)
{
    const char  *p[7];
    PGresult    *res;
    char        *d;
    int          rc;

    d = data != NULL ? json_dumps(data, JSON_COMPACT) : NULL;
    p[0] = action;
    p[1] = actor != NULL ? actor : "";
    p[2] = subject != NULL ? subject : "";
    p[3] = users_req_ip(req);
    p[4] = users_req_ua(req);
    p[5] = kit_req_identity(req)->request_id;
    p[6] = d != NULL ? d : "{}";
    res = kit_pg_exec(pg, "users_audit", users_audit_sql, 7, p);
    free(d);
    json_decref(data);
    rc = users_ok(res, PGRES_COMMAND_OK);
    PQclear(rc == 0 ? res : NULL);
    return rc;
}


/* "{user,admin}" (a text[] of plain words) as a JSON array. */
static json_t *
users_pg_array(const char *s)
{
    json_t  *a;
    size_t   n;

    a = json_array();
    if (a == NULL || *s++ != '{') {
        return a;
    }
    while (*s != '\0' && *s != '}') {
        n = strcspn(s, ",}");
        json_array_append_new(a, json_stringn(s, n));
        s += n;
        s += *s == ',';
    }
    return a;
}


static const char  users_session_claims_sql[] =
    "select u.roles, s.amr from sessions s join users u on u.id = s.user_id"
    " where s.id = $1 and u.id = $2";
static const char  users_refresh_insert_sql[] =
    "insert into refresh_tokens (session_id, token_sha256, expires_at)"
    " values ($1, decode($2, 'hex'), now() + interval '"
    "2592000 seconds')";

int
users_tokens_make(const char *user_id, const char *sid, const char *roles_pg,
    const char *amr_pg, users_tokens_t *out)
{
    json_t   *roles, *amr;
    uint8_t   h[32];
    char     *at;

    roles = users_pg_array(roles_pg);
    amr = users_pg_array(amr_pg);
    at = users_access_token(user_id, roles, sid, amr, users_now());
    json_decref(roles);
    json_decref(amr);
    if (at == NULL || strlen(at) >= sizeof(out->access)
        || users_token_new(out->refresh) != 0)
    {
        kit_log(KIT_LOG_ERROR, "could not sign an access token");
        free(at);
        return -1;
    }
    strcpy(out->access, at);
    free(at);
    snprintf(out->session, sizeof(out->session), "%s", sid);
    users_sha256(out->refresh, USERS_TOKEN_LEN, h);
    users_hex(h, sizeof(h), out->refresh_sha256);
    return 0;
}


int
users_tokens_issue(kit_pg_t *pg, const char *user_id, const char *sid,
    users_tokens_t *out)
{
    const char  *p[2];
    PGresult    *res;
    int          rc;

    p[0] = sid;
    p[1] = user_id;
    res = kit_pg_exec(pg, "users_session_claims", users_session_claims_sql,
                      2, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0 || PQntuples(res) != 1) {
        PQclear(res);
        return -1;
    }
    rc = users_tokens_make(user_id, sid, PQgetvalue(res, 0, 0),
                           PQgetvalue(res, 0, 1), out);
    PQclear(res);
    if (rc != 0) {
        return -1;
    }
    p[0] = sid;
    p[1] = out->refresh_sha256;
    res = kit_pg_exec(pg, "users_refresh_insert", users_refresh_insert_sql,
                      2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return 0;
}


json_t *
users_tokens_json(const users_tokens_t *t)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "access_token", t->access,
                     "refresh_token", t->refresh, "token_type", "Bearer",
                     "expires_in", USERS_ACCESS_TTL_S);
}


static const char  users_sessions_end_sql[] =
    "update sessions set ended_at = now(), end_reason = $3"
    " where user_id = $1 and ended_at is null"
    " and ($2 = '' or id <> $2::uuid) returning id";

int
users_sessions_end(kit_pg_t *pg, const char *user_id, const char *keep_sid,
    const char *reason)
{
    const char  *p[3];
    PGresult    *res;
    int          i, rc;

    p[0] = user_id;
    p[1] = keep_sid != NULL ? keep_sid : "";
    p[2] = reason;
    res = kit_pg_exec(pg, "users_sessions_end", users_sessions_end_sql, 3,
                      p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    rc = 0;
    for (i = 0; i < PQntuples(res) && rc == 0; i++) {
        rc = users_revoke_add(pg, "sid", PQgetvalue(res, i, 0), users_now());
    }
    PQclear(res);
    return rc;
}


static const char  users_code_retire_sql[] =
    "update codes set used_at = now()"
    " where user_id = $1 and purpose = $2 and used_at is null";
static const char  users_code_insert_sql[] =
    "insert into codes (user_id, purpose, code_hmac, expires_at)"
    " values ($1, $2, decode($3, 'hex'), now() + interval '600 seconds')";

int
users_code_issue(kit_pg_t *pg, const char *user_id, const char *purpose,
    char code[USERS_CODE_LEN + 1])
{
    const char  *p[3];
    PGresult    *res;
    uint8_t      h[32];
    char         hex[65];

    if (users_code_new(code) != 0) {
        return -1;
    }
    users_code_hmac(users_cf.code_key, users_cf.code_key_len, user_id,
                    purpose, code, h);
    users_hex(h, sizeof(h), hex);
    p[0] = user_id;
    p[1] = purpose;
    p[2] = hex;
    res = kit_pg_exec(pg, "users_code_retire", users_code_retire_sql, 2, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    res = kit_pg_exec(pg, "users_code_insert", users_code_insert_sql, 3, p);
    if (users_ok(res, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(res);
    return 0;
}


static const char  users_code_live_sql[] =
    "select id, encode(code_hmac, 'hex') from codes"
    " where user_id = $1 and purpose = $2 and used_at is null"
    " and expires_at > now() and tries < 5"
    " order by created_at desc limit 1 for update";
static const char  users_code_used_sql[] =
    "update codes set used_at = now(), tries = tries + 1 where id = $1";
static const char  users_code_try_sql[] =
    "update codes set tries = tries + 1 where id = $1";

int
users_code_check(kit_pg_t *pg, const char *user_id, const char *purpose,
    const char *code)
{
    const char  *p[2];
    PGresult    *res, *upd;
    uint8_t      want[32], have[32];
    int          ok;

    p[0] = user_id;
    p[1] = purpose;
    res = kit_pg_exec(pg, "users_code_live", users_code_live_sql, 2, p);
    if (users_ok(res, PGRES_TUPLES_OK) != 0) {
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    users_code_hmac(users_cf.code_key, users_cf.code_key_len, user_id,
                    purpose, code, want);
    ok = kit_hex_decode(PQgetvalue(res, 0, 1), have, sizeof(have)) == 32
         && users_equal32(want, have);
    p[0] = PQgetvalue(res, 0, 0);
    upd = kit_pg_exec(pg, ok ? "users_code_used" : "users_code_try",
                      ok ? users_code_used_sql : users_code_try_sql, 1, p);
    PQclear(res);
    if (users_ok(upd, PGRES_COMMAND_OK) != 0) {
        return -1;
    }
    PQclear(upd);
    return ok;
}
