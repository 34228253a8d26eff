/*
 * users.h -- how the files of the users service fit.
 *
 *   main.c      route table, settings (KORDON_USERS_*), start-up
 *   pool.c      the bounded pool of threads that runs password work
 *   password.c  argon2id hashes, the password rules, the common list
 *   secret.c    random codes and tokens, their HMAC and SHA-256
 *   jwt.c       the signing key (ES256 or RS256), tokens, the JWKS file
 *   revoke.c    pending revocations pushed to the Redis stream
 *   db.c        what every handler does with the database: audit rows,
 *               sessions, token pairs, events
 *   auth.c      register, verify, resend, login, password forgot/reset
 *   session.c   refresh, logout, logout-all, sessions, password change
 *   me.c        GET/PATCH/DELETE /v1/users/me
 *   social.c    GET /v1/auth/oauth/{provider}/start, /callback (oauth.c
 *               is the OpenID Connect client)
 *   admin.c     /v1/admin/users and /v1/admin/audit
 *   roles.c     the role matrix (who may do what)
 *   mfa.c       TOTP setup/enable/disable, login/mfa (totp.c does the
 *               arithmetic)
 *   seed.c      the first admin
 *
 * Password work (argon2id, about 20 MiB and tens of milliseconds each)
 * never runs on an HTTP thread: a handler that hashes or verifies
 * suspends its request and queues a job; a pool thread does the hashing
 * and the database work of that request and answers it.
 */

#ifndef KORDON_USERS_H
#define KORDON_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "kit.h"

#define USERS_EMAIL_MAX          254
#define USERS_PHONE_MAX          16
#define USERS_PASSWORD_MIN       8        /* characters */
#define USERS_PASSWORD_MAX       128      /* characters */
#define USERS_HASH_MAX           192      /* encoded argon2id */
#define USERS_CODE_LEN           6
#define USERS_CODE_TTL_S         600
#define USERS_CODE_TRIES_MAX     5
#define USERS_CODE_KEY_MAX       64
#define USERS_RESEND_PER_HOUR    5
#define USERS_RESEND_GAP_S       30
#define USERS_TOKEN_LEN          43       /* 256 bits, base64url */
#define USERS_ACCESS_TTL_S       900
#define USERS_REFRESH_TTL_S      (30 * 24 * 3600)
#define USERS_REFRESH_GRACE_S    10
#define USERS_LOCK_AFTER         5
#define USERS_LOCK_MAX_S         900
#define USERS_ISSUER             "kordon-users"
#define USERS_AUDIENCE           "kordon"
#define USERS_DB_ACQUIRE_MS      2000
#define USERS_RETRY_AFTER_S      "1"
#define USERS_NAME_MAX           200
#define USERS_DEVICE_MAX         200
#define USERS_UA_MAX             512
#define USERS_SESSIONS_MAX       100
#define USERS_ERR_MAX            256

typedef struct {
    int          hash_threads;
    int          hash_queue_max;
    uint32_t     argon2_m_kib;
    uint32_t     argon2_t;
    uint32_t     argon2_p;
    const char  *common_passwords;     /* file, one password a line */
    uint8_t      code_key[USERS_CODE_KEY_MAX];
    size_t       code_key_len;
    const char  *keys_dir;
    const char  *redis_addr;           /* host:port */
    int          lockout_base_s;
    const char  *admin_email;          /* "" when no admin is seeded */
    const char  *admin_password_file;
} users_config_t;

extern users_config_t  users_cf;


/* ---- pool.c ------------------------------------------------------------ */

typedef void (*users_job_pt)(void *arg);

int users_pool_start(int threads, int queue_max);
/* Queues fn(arg); -1 when the queue is full (the caller answers 503). */
int users_pool_submit(users_job_pt fn, void *arg);


/* ---- password.c -------------------------------------------------------- */

/* NULL when pw (len bytes of UTF-8) is acceptable, else why not. */
const char *users_password_rule(const char *pw, size_t len);
/* Loads the common list; 0, or -1 with err. */
int users_password_common_load(const char *path, char *err, size_t errlen);
int users_password_is_common(const char *pw, size_t len);
/* Hashes with the configured cost into out; 0 or -1. */
int users_password_hash(const char *pw, size_t len, char *out,
    size_t outlen);
/* 1 when pw matches encoded, 0 when not (or encoded is NULL/bad). */
int users_password_verify(const char *encoded, const char *pw, size_t len);
/* 1 when encoded was made with less than the configured cost. */
int users_password_needs_rehash(const char *encoded);
/* Same cost as a verify, for accounts that do not exist. */
void users_password_dummy(const char *pw, size_t len);
int users_password_init(char *err, size_t errlen);


/* ---- secret.c ---------------------------------------------------------- */

/* Random bytes from OpenSSL; 0 or -1. */
int users_random(uint8_t *out, size_t len);
/* A uniform 6-digit code, NUL-terminated; 0 or -1. */
int users_code_new(char out[USERS_CODE_LEN + 1]);
/* HMAC-SHA256(key, user_id "\n" purpose "\n" code). */
void users_code_hmac(const uint8_t *key, size_t keylen, const char *user_id,
    const char *purpose, const char *code, uint8_t out[32]);
/* A new opaque token: 43 base64url chars of 256 random bits; 0 or -1. */
int users_token_new(char out[USERS_TOKEN_LEN + 1]);
/* 1 when s looks like one of ours (43 base64url chars). */
int users_token_valid(const char *s);
void users_sha256(const void *data, size_t len, uint8_t out[32]);
void users_hex(const uint8_t *in, size_t len, char *out);
/* Constant-time comparison of two 32-byte values: 1 when equal. */
int users_equal32(const uint8_t *a, const uint8_t *b);

/*
 * Sealing a small secret at rest (the TOTP secrets): AES-256-GCM under
 * HMAC-SHA256(key, label), a random 96-bit nonce, ad as associated data
 * (the row's id: a sealed value copied to another row does not open).
 * users_seal writes hex(nonce || ciphertext || tag) into hex; 0 or -1
 * (text empty or over USERS_SEAL_TEXT_MAX bytes, hex too small).
 * users_unseal reverses it into text; -1 when anything differs (key,
 * label, ad, a bit of hex), text then "".
 */
#define USERS_SEAL_NONCE      12
#define USERS_SEAL_TAG        16
#define USERS_SEAL_TEXT_MAX   64
#define USERS_SEAL_HEX_MAX    (2 * (USERS_SEAL_NONCE + USERS_SEAL_TEXT_MAX  \
                                    + USERS_SEAL_TAG) + 1)
int users_seal(const uint8_t *key, size_t keylen, const char *label,
    const char *ad, const char *text, char *hex, size_t hexlen);
int users_unseal(const uint8_t *key, size_t keylen, const char *label,
    const char *ad, const char *hex, char *text, size_t textlen);


/* ---- jwt.c ------------------------------------------------------------- */

/* Loads $dir/current and the key it names; 0, or -1 with err. */
int users_keys_load(const char *dir, char *err, size_t errlen);
/*
 * A signed access token (malloc()ed), or NULL.  roles and amr are JSON
 * arrays of strings.  Re-reads the key when $dir/current changed (at most
 * once a second), so a rotation needs no restart.
 */
char *users_access_token(const char *sub, json_t *roles, const char *sid,
    json_t *amr, int64_t iat);
/* The JWKS document (malloc()ed), or NULL. */
char *users_jwks(size_t *len);


/* ---- revoke.c ---------------------------------------------------------- */

int users_revoke_start(const char *redis_addr);
/* Records a cut in the caller's transaction; kind "sub" or "sid". */
int users_revoke_add(kit_pg_t *pg, const char *kind, const char *value,
    int64_t nbf);
/* Wakes the pusher after a commit that added cuts. */
void users_revoke_kick(void);


/* ---- validate (db.c) --------------------------------------------------- */

/* Lower-cases a syntactically valid email into out; 0 or -1. */
int users_email_normalize(const char *in, size_t len, char *out,
    size_t outlen);
int users_phone_valid(const char *s, size_t len);
/* Counts the UTF-8 characters of s (jansson strings are valid UTF-8). */
size_t users_utf8_chars(const char *s, size_t len);

/*
 * The address a body names: exactly one of "email" or "phone".  Fills
 * email or phone (the other ""), or appends {pointer, message} to errors
 * and returns -1.
 */
int users_body_address(json_t *body, char *email, char *phone,
    json_t *errors);
/* A string member 1..max characters; NULL when absent or bad (error). */
const char *users_body_string(json_t *body, const char *key, size_t max,
    int required, size_t *len, json_t *errors);
int users_error(json_t *errors, const char *pointer, const char *message);
/* Refuses members beyond the allowed ones, each named. */
int users_body_only(json_t *body, const char *const *allowed,
    json_t *errors);


/* ---- db.c -------------------------------------------------------------- */

typedef struct {
    char  access[2048];
    char  refresh[USERS_TOKEN_LEN + 1];
    char  refresh_sha256[65];           /* hex, what the table keeps */
    char  session[40];
} users_tokens_t;

/* 0 when res is a success of the expected kind (logs and clears it
 * otherwise: the caller then has no result to clear). */
int users_ok(PGresult *res, ExecStatusType want);
/* Appends one audit row in the caller's transaction; 0 or -1.  Steals
 * data (may be NULL). */
int users_audit(kit_pg_t *pg, kit_req_t *req, const char *action,
    const char *actor, const char *subject, json_t *data);
/* Signs an access token and draws a refresh token for sid; roles and
 * amr as PostgreSQL text[] ("{user,admin}").  Touches no table. */
int users_tokens_make(const char *user_id, const char *sid,
    const char *roles_pg, const char *amr_pg, users_tokens_t *out);
/* Issues a refresh token in session sid and signs an access token. */
int users_tokens_issue(kit_pg_t *pg, const char *user_id, const char *sid,
    users_tokens_t *out);
/* {access_token, refresh_token, token_type, expires_in} */
json_t *users_tokens_json(const users_tokens_t *t);
/* Ends sessions of user (all, or all but keep_sid); each a "sid" cut. */
int users_sessions_end(kit_pg_t *pg, const char *user_id,
    const char *keep_sid, const char *reason);
/* A new code for user and purpose (older ones retired); 0 or -1. */
int users_code_issue(kit_pg_t *pg, const char *user_id, const char *purpose,
    char code[USERS_CODE_LEN + 1]);
/*
 * Checks code against the live code of user and purpose, counting the
 * try; marks it used on success.  1 ok, 0 wrong/expired/none, -1 error.
 */
int users_code_check(kit_pg_t *pg, const char *user_id, const char *purpose,
    const char *code);
/* The caller's X-Forwarded-For (the edge sets it) and User-Agent. */
const char *users_req_ip(kit_req_t *req);
const char *users_req_ua(kit_req_t *req);
int64_t users_now(void);
void users_reply_unavailable(kit_req_t *req, const char *detail);
/* A JSON body route's body; NULL after answering 422. */
json_t *users_json_object(kit_req_t *req);
/* 1 when s is a canonical lowercase UUID. */
int users_uuid_valid(const char *s);
/* The signed caller, or NULL after answering 401. */
const char *users_caller(kit_req_t *req);


/* ---- handlers ---------------------------------------------------------- */

void users_register(kit_req_t *req);
void users_verify(kit_req_t *req);
void users_verify_resend(kit_req_t *req);
void users_login(kit_req_t *req);
void users_password_forgot(kit_req_t *req);
void users_password_reset(kit_req_t *req);
void users_password_change(kit_req_t *req);
void users_refresh(kit_req_t *req);
void users_logout(kit_req_t *req);
void users_logout_all(kit_req_t *req);
void users_sessions_list(kit_req_t *req);
void users_sessions_delete(kit_req_t *req);
void users_me_get(kit_req_t *req);
void users_me_patch(kit_req_t *req);
void users_me_delete(kit_req_t *req);
void users_jwks_get(kit_req_t *req);
void users_totp_setup(kit_req_t *req);
void users_totp_enable(kit_req_t *req);
void users_totp_disable(kit_req_t *req);
void users_recovery_renew(kit_req_t *req);
void users_login_mfa(kit_req_t *req);
void users_oauth_start_get(kit_req_t *req);
void users_admin_list(kit_req_t *req);
void users_admin_get(kit_req_t *req);
void users_admin_patch(kit_req_t *req);
void users_admin_roles(kit_req_t *req);
void users_admin_block(kit_req_t *req);
void users_admin_unblock(kit_req_t *req);
void users_admin_confirm(kit_req_t *req);
void users_admin_unlock(kit_req_t *req);
void users_admin_audit(kit_req_t *req);
void users_oauth_callback_get(kit_req_t *req);
/* The providers from KORDON_OAUTH_* (social.c); 0, or -1 with err. */
int users_social_init(char *err, size_t errlen);

/* A failed login or second factor on an account: counts it, locks after
 * USERS_LOCK_AFTER (auth.c); 0 or -1. */
int users_account_failed(kit_pg_t *pg, const char *user_id);
/* Answers a login whose password checked out on an account with TOTP on:
 * an MFA ticket instead of tokens (mfa.c).  rehash: a new password hash
 * to store, or "". */
void users_mfa_challenge(kit_req_t *req, const char *user_id,
    const char *device, const char *rehash);

int users_seed_admin(void);

#endif /* KORDON_USERS_H */
