/*
 * oauth.h -- social login for users: OpenID Connect authorization code
 * flow with PKCE (S256), state and nonce, providers as configuration.
 *
 * How the core calls it:
 *
 *   at start, before threads:
 *       oa = users_oauth_new(err, sizeof(err));     NULL: stop, print err
 *       ... users_oauth_free(oa) at exit
 *
 *   GET /v1/auth/oauth/{provider}/start:
 *       rc = users_oauth_start(oa, provider, &store, &st, err, errlen);
 *       OK: Set-Cookie: kordon_oauth_state=<st.pending.state>; HttpOnly;
 *           Secure; SameSite=Lax; Path=/v1/auth/oauth/; Max-Age=600
 *           and 302 Location: st.url.  When users_oauth_form_post() is 1
 *           (Apple) the cookie needs SameSite=None instead: the provider's
 *           page POSTs to the callback cross-site, and a Lax cookie does
 *           not travel with a cross-site POST
 *
 *   GET /v1/auth/oauth/{provider}/callback (POST with a form body too,
 *   for Apple, whose callback is form_post when email is asked for):
 *       cb.state = query "state", cb.state_cookie = the cookie above,
 *       cb.code = query "code", cb.error = query "error" (or NULL),
 *       cb.device_id = query "device_id" (VK ID; NULL elsewhere)
 *       rc = users_oauth_callback(oa, provider, &cb, &store, &id, err,
 *                                 errlen);
 *       OK: id.sub (stable per provider), id.email, id.email_verified;
 *           find the identity (provider, sub), else link to the account
 *           with that email only when email_verified, else create one;
 *           then issue tokens with amr ["oidc"].  Clear the cookie.
 *       not OK: answer users_oauth_http_status(rc) as problem+json;
 *           err names the reason (never a secret) for the log and detail
 *
 *   The state store is the core's (PostgreSQL): put() keeps a pending
 *   login for USERS_OAUTH_STATE_TTL_S, take() returns it once and deletes
 *   it (DELETE ... RETURNING), so a state, and with it a nonce and a PKCE
 *   verifier, is good for one callback.  Both are called on HTTP pool
 *   threads and must be thread-safe.
 *
 * Configuration (environment, read by users_oauth_new):
 *
 *   KORDON_OAUTH_PROVIDERS      comma-separated names, [a-z0-9_]{1,31};
 *                               unset or empty: social login off
 *   KORDON_OAUTH_REDIRECT_BASE  public base URL; a provider's redirect URI
 *                               defaults to <base>/v1/auth/oauth/<name>/
 *                               callback
 *   per provider, KORDON_OAUTH_<NAME>_ + :
 *     PRESET          google | apple | vk | oidc; default: the name when it
 *                     is a preset, else oidc (generic)
 *     CLIENT_ID       required
 *     CLIENT_SECRET_FILE or CLIENT_SECRET   one required (the file wins;
 *                     Apple's is the ES256 client-secret JWT the operator
 *                     makes from the .p8 key and renews within 6 months)
 *     REDIRECT_URI    overrides the default above
 *     ISSUER          preset's; required for oidc
 *     AUTHORIZATION_ENDPOINT, TOKEN_ENDPOINT, JWKS_URI
 *                     preset's; for oidc give all three or none (then
 *                     they are discovered from <issuer>/.well-known/
 *                     openid-configuration on first use)
 *     SCOPES          default "openid email" (must contain openid)
 *     TOKEN_AUTH      basic | post (client authentication at the token
 *                     endpoint); preset's, else basic
 *   Every URL is https, or http on a loopback host (tests).
 *
 * Presets: google (accounts.google.com; its id_tokens' iss may also be
 * the bare host name), apple (appleid.apple.com;
 * response_mode=form_post, email_verified arrives as the string "true"),
 * vk (VK ID, id.vk.com, OAuth 2.1 with PKCE; VK's id_token carries masked
 * contact data and VK publishes no JWKS address we could pin, so
 * KORDON_OAUTH_VK_ISSUER and _JWKS_URI must be given; its email is never
 * reported verified, so a VK identity never links by email).
 *
 * Outbound HTTP is libcurl, blocking, on the calling pool thread, with
 * USERS_OAUTH_HTTP_TIMEOUT_MS per request and USERS_OAUTH_HTTP_BODY_MAX
 * per answer; no redirects are followed.
 */

#ifndef KORDON_USERS_OAUTH_H
#define KORDON_USERS_OAUTH_H

#include <stddef.h>
#include <time.h>

#define USERS_OAUTH_PROVIDERS_MAX        8
#define USERS_OAUTH_NAME_MAX             32
#define USERS_OAUTH_RANDOM_SIZE          44    /* 256 bits base64url + NUL */
#define USERS_OAUTH_AUTH_URL_MAX         4096
#define USERS_OAUTH_SUB_MAX              256
#define USERS_OAUTH_EMAIL_MAX            256
#define USERS_OAUTH_STATE_TTL_S          600
#define USERS_OAUTH_HTTP_TIMEOUT_MS      5000
#define USERS_OAUTH_HTTP_BODY_MAX        65536
#define USERS_OAUTH_JWKS_TTL_S           3600
#define USERS_OAUTH_JWKS_REFETCH_MIN_S   30    /* unknown kid: refetch at
                                                  most this often */
#define USERS_OAUTH_JWKS_KEYS_MAX        16
#define USERS_OAUTH_LEEWAY_S             60    /* clock skew on exp, iat */

#define USERS_OAUTH_OK            0
#define USERS_OAUTH_UNKNOWN      -1    /* provider not configured: 404 */
#define USERS_OAUTH_STATE        -2    /* state missing, mismatched,
                                          unknown, used or expired: 400 */
#define USERS_OAUTH_DENIED       -3    /* provider answered an error or no
                                          code: 400 */
#define USERS_OAUTH_GRANT        -4    /* token endpoint refused the code
                                          (replayed, PKCE): 400 */
#define USERS_OAUTH_TOKEN        -5    /* id_token refused (signature,
                                          alg, iss, aud, exp, nonce): 401 */
#define USERS_OAUTH_UNAVAILABLE  -6    /* provider unreachable or
                                          answering nonsense: 502 */
#define USERS_OAUTH_ERROR        -7    /* ours: RNG, memory, store: 500 */

typedef struct users_oauth_s  users_oauth_t;

/* A login between start and callback, as the store keeps it. */
typedef struct {
    char    state[USERS_OAUTH_RANDOM_SIZE];
    char    nonce[USERS_OAUTH_RANDOM_SIZE];
    char    verifier[USERS_OAUTH_RANDOM_SIZE];   /* PKCE code_verifier */
    time_t  created;
} users_oauth_pending_t;

typedef struct {
    /* Keeps p for provider; 0, or -1 on failure. */
    int    (*put)(void *ctx, const char *provider,
                  const users_oauth_pending_t *p);
    /*
     * Finds the pending login with this state for provider, deletes it
     * and copies it into *p: 0; 1 when there is none; -1 on failure.
     */
    int    (*take)(void *ctx, const char *provider, const char *state,
                   users_oauth_pending_t *p);
    void   *ctx;
} users_oauth_store_t;

typedef struct {
    users_oauth_pending_t  pending;
    char                   url[USERS_OAUTH_AUTH_URL_MAX];
} users_oauth_start_t;

/* What came back to the callback; any field may be NULL. */
typedef struct {
    const char  *state;
    const char  *state_cookie;
    const char  *code;
    const char  *error;
    const char  *device_id;
} users_oauth_callback_t;

typedef struct {
    char  provider[USERS_OAUTH_NAME_MAX];
    char  sub[USERS_OAUTH_SUB_MAX];
    char  email[USERS_OAUTH_EMAIL_MAX];     /* "" when not given */
    int   email_verified;
} users_oauth_identity_t;

/*
 * The providers from the environment (and curl_global_init); NULL after
 * writing a message naming the bad variable into err.
 */
users_oauth_t *users_oauth_new(char *err, size_t errlen);
void users_oauth_free(users_oauth_t *oa);

/* 1 when the provider is configured. */
int users_oauth_has(users_oauth_t *oa, const char *provider);

/* 1 when the provider answers the callback with a POST (form_post). */
int users_oauth_form_post(users_oauth_t *oa, const char *provider);

/*
 * A new login: state, nonce and PKCE verifier from the CSPRNG, kept by
 * store->put, and the provider's authorization URL in out->url.
 * USERS_OAUTH_OK, _UNKNOWN, _UNAVAILABLE (discovery failed) or _ERROR.
 */
int users_oauth_start(users_oauth_t *oa, const char *provider,
    const users_oauth_store_t *store, users_oauth_start_t *out, char *err,
    size_t errlen);

/*
 * Finishes a login: the state equals the cookie (constant time) and is
 * taken from the store, the code is exchanged with the verifier, and the
 * id_token is verified against the provider's JWKS (cached; fetched again
 * for an unknown kid) with its alg pinned to the key, then iss, aud (and
 * azp), exp, iat and nonce.  On USERS_OAUTH_OK fills *id; otherwise *id
 * is zeroed and err says why.
 */
int users_oauth_callback(users_oauth_t *oa, const char *provider,
    const users_oauth_callback_t *cb, const users_oauth_store_t *store,
    users_oauth_identity_t *id, char *err, size_t errlen);

/* The HTTP status the core answers for a USERS_OAUTH_* code. */
int users_oauth_http_status(int rc);

#endif /* KORDON_USERS_OAUTH_H */
