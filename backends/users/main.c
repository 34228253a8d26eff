/*
 * users -- people's accounts: credentials, sessions, the signing side of
 * tokens (JWKS), and (later steps) 2FA, social login, the admin API.
 *
 * The service is its route table, its settings and its schema
 * (sql/users/).  users.h shows how the files fit; the one idea is that
 * password work runs on a bounded pool of its own (pool.c), never on the
 * HTTP threads, so a burst of logins cannot starve refreshes.
 *
 * Settings (besides the kit's):
 *
 *   KORDON_USERS_KEYS_DIR          signing keys and jwks.json (required)
 *   KORDON_USERS_CODE_KEY_FILE     hex secret keying the code HMAC
 *                                  (required, at least 32 bytes)
 *   KORDON_USERS_REDIS             host:port for revocations
 *                                  (default 127.0.0.1:6379)
 *   KORDON_USERS_HASH_THREADS      password threads, 1..16, default 2
 *   KORDON_USERS_HASH_QUEUE        waiting password jobs, default 256
 *   KORDON_USERS_ARGON2_MEMORY_KIB argon2id memory, default 19456
 *   KORDON_USERS_ARGON2_TIME       argon2id passes, default 2
 *   KORDON_USERS_ARGON2_LANES      argon2id lanes, default 1
 *   KORDON_USERS_COMMON_PASSWORDS  common password list, default
 *                                  /usr/share/john/password.lst
 *   KORDON_USERS_LOCKOUT_BASE_S    first lockout delay, default 1
 *   KORDON_ADMIN_EMAIL             the admin seeded on start (optional)
 *   KORDON_ADMIN_PASSWORD_FILE     its password (with the above)
 *   KORDON_OAUTH_*                 social login providers (oauth.h)
 */

#include <stdio.h>
#include <string.h>

#include "users.h"
#include "totp.h"

users_config_t  users_cf;


static const kit_route_t users_routes[] = {
    { "POST", "/v1/auth/register", users_register,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/verify", users_verify,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/verify/resend", users_verify_resend,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/login", users_login,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/login/mfa", users_login_mfa,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/2fa/totp/setup", users_totp_setup, 0 },
    { "POST", "/v1/auth/2fa/totp/enable", users_totp_enable, KIT_ROUTE_JSON },
    { "POST", "/v1/auth/2fa/totp/disable", users_totp_disable,
      KIT_ROUTE_JSON },
    { "POST", "/v1/auth/2fa/recovery-codes", users_recovery_renew,
      KIT_ROUTE_JSON },
    { "POST", "/v1/auth/refresh", users_refresh,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/password/forgot", users_password_forgot,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/password/reset", users_password_reset,
      KIT_ROUTE_PUBLIC | KIT_ROUTE_JSON },
    { "POST", "/v1/auth/password/change", users_password_change,
      KIT_ROUTE_JSON },
    { "POST", "/v1/auth/logout", users_logout, 0 },
    { "POST", "/v1/auth/logout-all", users_logout_all, 0 },
    { "GET", "/v1/users/me", users_me_get, 0 },
    { "PATCH", "/v1/users/me", users_me_patch, KIT_ROUTE_JSON },
    { "DELETE", "/v1/users/me", users_me_delete, 0 },
    { "GET", "/v1/users/me/sessions", users_sessions_list, 0 },
    { "DELETE", "/v1/users/me/sessions/{id}", users_sessions_delete, 0 },
    { "GET", "/v1/auth/oauth/{provider}/start", users_oauth_start_get,
      KIT_ROUTE_PUBLIC },
    { "GET", "/v1/auth/oauth/{provider}/callback", users_oauth_callback_get,
      KIT_ROUTE_PUBLIC },
    { "GET", "/v1/admin/users", users_admin_list, 0 },
    { "GET", "/v1/admin/users/{id}", users_admin_get, 0 },
    { "PATCH", "/v1/admin/users/{id}", users_admin_patch, KIT_ROUTE_JSON },
    { "PUT", "/v1/admin/users/{id}/roles", users_admin_roles,
      KIT_ROUTE_JSON },
    { "POST", "/v1/admin/users/{id}/block", users_admin_block,
      KIT_ROUTE_JSON },
    { "POST", "/v1/admin/users/{id}/unblock", users_admin_unblock, 0 },
    { "POST", "/v1/admin/users/{id}/confirm", users_admin_confirm, 0 },
    { "POST", "/v1/admin/users/{id}/unlock", users_admin_unlock, 0 },
    { "GET", "/v1/admin/audit", users_admin_audit, 0 },
    { "GET", "/.well-known/jwks.json", users_jwks_get, KIT_ROUTE_PUBLIC },
};


/* Reads the code HMAC key (hex) from file; 0, or -1 with err. */
static int
users_code_key_load(const char *file, char *err, size_t errlen)
{
    char   hex[2 * USERS_CODE_KEY_MAX + 8];
    FILE  *f;
    size_t n;
    int    len;

    f = fopen(file, "r");
    n = f != NULL ? fread(hex, 1, sizeof(hex) - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    hex[n] = '\0';
    hex[strcspn(hex, " \t\r\n")] = '\0';
    len = kit_hex_decode(hex, users_cf.code_key, sizeof(users_cf.code_key));
    explicit_bzero(hex, sizeof(hex));
    if (len < 32) {
        snprintf(err, errlen, "could not read a key of at least 32 bytes "
                 "(hex) from \"%s\"", file);
        return -1;
    }
    users_cf.code_key_len = (size_t) len;
    return 0;
}


static int
users_config_load(char *err, size_t errlen)
{
    const char  *code_key;
    long         threads, queue, m, t, p, base;

    if (kit_env_str("KORDON_USERS_KEYS_DIR", NULL, &users_cf.keys_dir, err,
                    errlen) != 0
        || kit_env_str("KORDON_USERS_CODE_KEY_FILE", NULL, &code_key, err,
                       errlen) != 0
        || kit_env_str("KORDON_USERS_REDIS", "127.0.0.1:6379",
                       &users_cf.redis_addr, err, errlen) != 0
        || kit_env_int("KORDON_USERS_HASH_THREADS", "2", 1, 16, &threads,
                       err, errlen) != 0
        || kit_env_int("KORDON_USERS_HASH_QUEUE", "256", 1, 65536, &queue,
                       err, errlen) != 0
        || kit_env_int("KORDON_USERS_ARGON2_MEMORY_KIB", "19456", 8,
                       4194304, &m, err, errlen) != 0
        || kit_env_int("KORDON_USERS_ARGON2_TIME", "2", 1, 100, &t, err,
                       errlen) != 0
        || kit_env_int("KORDON_USERS_ARGON2_LANES", "1", 1, 16, &p, err,
                       errlen) != 0
        || kit_env_str("KORDON_USERS_COMMON_PASSWORDS",
                       "/usr/share/john/password.lst",
                       &users_cf.common_passwords, err, errlen) != 0
        || kit_env_int("KORDON_USERS_LOCKOUT_BASE_S", "1", 1, 900, &base,
                       err, errlen) != 0
        || kit_env_str("KORDON_ADMIN_EMAIL", "", &users_cf.admin_email, err,
                       errlen) != 0
        || kit_env_str("KORDON_ADMIN_PASSWORD_FILE", "",
                       &users_cf.admin_password_file, err, errlen) != 0)
    {
        return -1;
    }
    if (m < 8 * p) {
        snprintf(err, errlen, "environment variable "
                 "\"KORDON_USERS_ARGON2_MEMORY_KIB\" is malformed: at least "
                 "8 KiB per lane");
        return -1;
    }
    users_cf.hash_threads = (int) threads;
    users_cf.hash_queue_max = (int) queue;
    users_cf.argon2_m_kib = (uint32_t) m;
    users_cf.argon2_t = (uint32_t) t;
    users_cf.argon2_p = (uint32_t) p;
    users_cf.lockout_base_s = (int) base;
    return users_code_key_load(code_key, err, errlen);
}


static int
users_init(const kit_config_t *cf)
{
    char  err[USERS_ERR_MAX];

    if (users_totp_init() != USERS_TOTP_OK) {
        kit_log(KIT_LOG_ERROR, "could not initialize liboath");
        return -1;
    }
    if (users_config_load(err, sizeof(err)) != 0
        || users_password_init(err, sizeof(err)) != 0
        || users_keys_load(users_cf.keys_dir, err, sizeof(err)) != 0
        || users_social_init(err, sizeof(err)) != 0)
    {
        kit_log(KIT_LOG_ERROR, "%s", err);
        return -1;
    }
    if (users_pool_start(users_cf.hash_threads, users_cf.hash_queue_max)
        != 0 || users_revoke_start(users_cf.redis_addr) != 0)
    {
        kit_log(KIT_LOG_ERROR, "could not start the users threads");
        return -1;
    }
    if (users_seed_admin() != 0) {
        return -1;
    }
    kit_log(KIT_LOG_INFO, "argon2id at m=%u KiB, t=%u, p=%u on %d threads",
            users_cf.argon2_m_kib, users_cf.argon2_t, users_cf.argon2_p,
            users_cf.hash_threads);
    return 0;
}


int
main(void)
{
    static const kit_service_t  svc = {
        .name = "users",
        .schema = "users",
        .outbox = 1,
        .routes = users_routes,
        .nroutes = sizeof(users_routes) / sizeof(users_routes[0]),
        .init = users_init,
    };

    return kit_main(&svc);
}
