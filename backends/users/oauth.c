/*
 * oauth.c -- OpenID Connect social login; the API, its configuration and
 * how the core calls it are in oauth.h.
 *
 * The one idea: nothing the browser brings back is trusted by itself.
 * The state must equal the cookie set at start (so a callback cannot be
 * forged from another browser) and is taken from the core's store once;
 * the code is worth something only with the PKCE verifier that never
 * left the server; and the id_token counts only when signed by a key in
 * the provider's JWKS, with the alg the key itself names (so "none" and
 * HS256-keyed-by-the-public-key cannot pass), for our client, from the
 * configured issuer, unexpired, with the nonce of this very login.
 *
 * libjwt 1.10 (Debian 12) verifies signatures but knows no JWKS, so a JWK
 * becomes a PEM public key here with OpenSSL; each provider's keys are
 * cached under its own mutex.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "oauth.h"

#define USERS_OAUTH_URL_MAX        512
#define USERS_OAUTH_CLIENT_MAX     256
#define USERS_OAUTH_SECRET_MAX     4096
#define USERS_OAUTH_SCOPES_MAX     256
#define USERS_OAUTH_KID_MAX        128
#define USERS_OAUTH_CODE_MAX       2048
#define USERS_OAUTH_HEADER_MAX     2048
#define USERS_OAUTH_RSA_BITS_MIN   2048
#define USERS_OAUTH_ENV_MAX        96

typedef struct {
    char        kid[USERS_OAUTH_KID_MAX];
    jwt_alg_t   alg;                     /* pinned: RS256 or ES256 */
    char       *pem;
} users_oauth_key_t;

typedef struct {
    char               name[USERS_OAUTH_NAME_MAX];
    char               issuer[USERS_OAUTH_URL_MAX];
    const char        *issuer_alt;       /* NULL, or Google's bare host */
    char               client_id[USERS_OAUTH_CLIENT_MAX];
    char               client_secret[USERS_OAUTH_SECRET_MAX];
    char               redirect_uri[USERS_OAUTH_URL_MAX];
    char               scopes[USERS_OAUTH_SCOPES_MAX];
    const char        *response_mode;    /* NULL or "form_post" */
    int                auth_basic;
    int                trust_email;      /* its email_verified means it */

    pthread_mutex_t    lock;             /* guards everything below */
    char               authorization_endpoint[USERS_OAUTH_URL_MAX];
    char               token_endpoint[USERS_OAUTH_URL_MAX];
    char               jwks_uri[USERS_OAUTH_URL_MAX];
    int                discovered;       /* the three above are set */
    users_oauth_key_t  keys[USERS_OAUTH_JWKS_KEYS_MAX];
    int                nkeys;
    time_t             jwks_fetched;
} users_oauth_provider_t;

struct users_oauth_s {
    users_oauth_provider_t  p[USERS_OAUTH_PROVIDERS_MAX];
    int                     n;
};

typedef struct {
    const char  *name;
    const char  *issuer;
    const char  *issuer_alt;
    const char  *authorization_endpoint;
    const char  *token_endpoint;
    const char  *jwks_uri;
    const char  *scopes;
    const char  *response_mode;
    int          auth_basic;
    int          trust_email;
} users_oauth_preset_t;

static const users_oauth_preset_t  users_oauth_presets[] = {
    /* Google's id_tokens name either form of its issuer */
    { "google", "https://accounts.google.com", "accounts.google.com",
      "https://accounts.google.com/o/oauth2/v2/auth",
      "https://oauth2.googleapis.com/token",
      "https://www.googleapis.com/oauth2/v3/certs",
      "openid email", NULL, 1, 1 },
    { "apple", "https://appleid.apple.com", NULL,
      "https://appleid.apple.com/auth/authorize",
      "https://appleid.apple.com/auth/token",
      "https://appleid.apple.com/auth/keys",
      "openid email", "form_post", 0, 1 },
    { "vk", NULL, NULL,
      "https://id.vk.com/authorize",
      "https://id.vk.com/oauth2/auth",
      NULL,
      "openid email", NULL, 0, 0 },     /* VK's email is masked */
    { "oidc", NULL, NULL, NULL, NULL, NULL, "openid email", NULL, 1, 1 },
};


static void
users_oauth_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


/* ---- base64url ------------------------------------------------------- */

static void
users_oauth_b64url(const unsigned char *in, size_t len, char *out)
{
    char  *p;
    int    n;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);
    for (p = out; p < out + n; p++) {
        if (*p == '+') {
            *p = '-';
        } else if (*p == '/') {
            *p = '_';
        } else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
}


/*
 * Decodes base64url (no padding) into out (outmax bytes); the length, or
 * -1 when malformed or too long.
 */
static int
users_oauth_b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t outmax)
{
    unsigned char  *buf;
    size_t          i, pad;
    int             n;

    if (len % 4 == 1 || (len + 3) / 4 * 3 > outmax) {
        return -1;
    }
    pad = (4 - len % 4) % 4;
    buf = malloc(len + pad + 1);
    if (buf == NULL) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        buf[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
        if (in[i] == '+' || in[i] == '/' || in[i] == '=') {
            free(buf);
            return -1;
        }
    }
    memset(buf + len, '=', pad);
    buf[len + pad] = '\0';
    n = EVP_DecodeBlock(out, buf, (int) (len + pad));
    free(buf);
    return n < 0 ? -1 : n - (int) pad;
}


/* 32 bytes from the CSPRNG, base64url (43 characters); 0 or -1. */
static int
users_oauth_random(char out[USERS_OAUTH_RANDOM_SIZE])
{
    unsigned char  raw[32];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        out[0] = '\0';
        return -1;
    }
    users_oauth_b64url(raw, sizeof(raw), out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}


/* ---- configuration ----------------------------------------------------- */

/* https, or http on a loopback host; 1 when acceptable. */
static int
users_oauth_url_ok(const char *url)
{
    static const char  *loopback[] = {
        "http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:",
        "http://localhost/", "http://[::1]:", "http://[::1]/",
    };
    size_t              i;

    if (strlen(url) >= USERS_OAUTH_URL_MAX) {
        return 0;
    }
    if (strncmp(url, "https://", 8) == 0 && url[8] != '\0') {
        return 1;
    }
    for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        if (strncmp(url, loopback[i], strlen(loopback[i])) == 0) {
            return 1;
        }
    }
    return 0;
}


/* KORDON_OAUTH_<NAME>_<what>, or NULL when unset or empty. */
static const char *
users_oauth_env(const char *name, const char *what, char *var,
    size_t varlen)
{
    const char  *v;
    size_t       i, n;

    n = (size_t) snprintf(var, varlen, "KORDON_OAUTH_");
    for (i = 0; name[i] != '\0' && n + 1 < varlen; i++) {
        var[n++] = (char) (name[i] >= 'a' && name[i] <= 'z'
                           ? name[i] - 'a' + 'A' : name[i]);
    }
    snprintf(var + n, varlen - n, "_%s", what);
    v = getenv(var);
    return v != NULL && v[0] != '\0' ? v : NULL;
}


/*
 * Copies the variable (or def) into dst (dstlen): 0; -1 with err when it
 * is required and missing, too long, or not an acceptable URL.
 */
static int
users_oauth_env_copy(const char *name, const char *what, const char *def,
    int is_url, char *dst, size_t dstlen, char *err, size_t errlen)
{
    const char  *v;
    char         var[USERS_OAUTH_ENV_MAX];

    v = users_oauth_env(name, what, var, sizeof(var));
    if (v == NULL) {
        v = def;
    }
    if (v == NULL) {
        users_oauth_err(err, errlen,
                        "environment variable \"%s\" is required", var);
        return -1;
    }
    if (strlen(v) >= dstlen || (is_url && !users_oauth_url_ok(v))) {
        users_oauth_err(err, errlen, "environment variable \"%s\" is "
                        "malformed: %s", var, is_url
                        ? "expected an https URL (http on loopback only)"
                        : "too long");
        return -1;
    }
    snprintf(dst, dstlen, "%s", v);
    return 0;
}


/* The client secret from _CLIENT_SECRET_FILE or _CLIENT_SECRET; 0/-1. */
static int
users_oauth_secret(users_oauth_provider_t *p, char *err, size_t errlen)
{
    const char  *file;
    size_t       n;
    FILE        *f;
    char         var[USERS_OAUTH_ENV_MAX];

    file = users_oauth_env(p->name, "CLIENT_SECRET_FILE", var, sizeof(var));
    if (file == NULL) {
        return users_oauth_env_copy(p->name, "CLIENT_SECRET", NULL, 0,
                                    p->client_secret,
                                    sizeof(p->client_secret), err, errlen);
    }
    f = fopen(file, "r");
    if (f == NULL) {
        users_oauth_err(err, errlen, "could not open \"%s\" (%s): %s", file,
                        var, strerror(errno));
        return -1;
    }
    n = fread(p->client_secret, 1, sizeof(p->client_secret) - 1, f);
    fclose(f);
    p->client_secret[n] = '\0';
    n = strcspn(p->client_secret, "\r\n");
    p->client_secret[n] = '\0';
    if (n == 0 || n == sizeof(p->client_secret) - 1) {
        users_oauth_err(err, errlen, "file \"%s\" (%s) holds no secret or "
                        "one too long", file, var);
        return -1;
    }
    return 0;
}


static const users_oauth_preset_t *
users_oauth_preset(users_oauth_provider_t *p, char *err, size_t errlen)
{
    const char  *name;
    size_t       i, n;
    char         var[USERS_OAUTH_ENV_MAX];

    n = sizeof(users_oauth_presets) / sizeof(users_oauth_presets[0]);
    name = users_oauth_env(p->name, "PRESET", var, sizeof(var));
    for (i = 0; i < n; i++) {
        if (strcmp(name ? name : p->name, users_oauth_presets[i].name) == 0) {
            return &users_oauth_presets[i];
        }
    }
    if (name != NULL) {
        users_oauth_err(err, errlen, "environment variable \"%s\" is "
                        "malformed: expected google, apple, vk or oidc",
                        var);
        return NULL;
    }
    return &users_oauth_presets[n - 1];
}


/* The endpoints: the preset's, all three given, or none (discovery). */
static int
users_oauth_endpoints(users_oauth_provider_t *p,
    const users_oauth_preset_t *ps, char *err, size_t errlen)
{
    const char  *a, *t, *j;
    char         var[USERS_OAUTH_ENV_MAX];

    a = users_oauth_env(p->name, "AUTHORIZATION_ENDPOINT", var, sizeof(var));
    t = users_oauth_env(p->name, "TOKEN_ENDPOINT", var, sizeof(var));
    j = users_oauth_env(p->name, "JWKS_URI", var, sizeof(var));
    if (a == NULL && t == NULL && j == NULL
        && ps->authorization_endpoint == NULL)
    {
        return 0;                      /* discovered on first use */
    }
    if (users_oauth_env_copy(p->name, "AUTHORIZATION_ENDPOINT",
                             ps->authorization_endpoint, 1,
                             p->authorization_endpoint,
                             USERS_OAUTH_URL_MAX, err, errlen) != 0
        || users_oauth_env_copy(p->name, "TOKEN_ENDPOINT",
                                ps->token_endpoint, 1, p->token_endpoint,
                                USERS_OAUTH_URL_MAX, err, errlen) != 0
        || users_oauth_env_copy(p->name, "JWKS_URI", ps->jwks_uri, 1,
                                p->jwks_uri, USERS_OAUTH_URL_MAX, err,
                                errlen) != 0)
    {
        return -1;
    }
    p->discovered = 1;
    return 0;
}


static int
users_oauth_provider_load(users_oauth_provider_t *p, char *err,
    size_t errlen)
{
    const users_oauth_preset_t  *ps;
    const char                  *base, *auth;
    char                         def[USERS_OAUTH_URL_MAX];
    char                         var[USERS_OAUTH_ENV_MAX];

    ps = users_oauth_preset(p, err, errlen);
    if (ps == NULL) {
        return -1;
    }
    base = getenv("KORDON_OAUTH_REDIRECT_BASE");
    if (base != NULL && base[0] != '\0') {
        snprintf(def, sizeof(def), "%s/v1/auth/oauth/%s/callback", base,
                 p->name);
    }
    if (users_oauth_env_copy(p->name, "CLIENT_ID", NULL, 0, p->client_id,
                             sizeof(p->client_id), err, errlen) != 0
        || users_oauth_secret(p, err, errlen) != 0
        || users_oauth_env_copy(p->name, "REDIRECT_URI",
                                base && base[0] ? def : NULL, 1,
                                p->redirect_uri, sizeof(p->redirect_uri),
                                err, errlen) != 0
        || users_oauth_env_copy(p->name, "ISSUER", ps->issuer, 1, p->issuer,
                                sizeof(p->issuer), err, errlen) != 0
        || users_oauth_env_copy(p->name, "SCOPES", ps->scopes, 0, p->scopes,
                                sizeof(p->scopes), err, errlen) != 0
        || users_oauth_endpoints(p, ps, err, errlen) != 0)
    {
        return -1;
    }
    if (strstr(p->scopes, "openid") == NULL) {
        (void) users_oauth_env(p->name, "SCOPES", var, sizeof(var));
        users_oauth_err(err, errlen, "environment variable \"%s\" is "
                        "malformed: openid is missing", var);
        return -1;
    }
    p->response_mode = ps->response_mode;
    p->auth_basic = ps->auth_basic;
    p->trust_email = ps->trust_email;
    p->issuer_alt = ps->issuer != NULL && strcmp(p->issuer, ps->issuer) == 0
                    ? ps->issuer_alt : NULL;
    auth = users_oauth_env(p->name, "TOKEN_AUTH", var, sizeof(var));
    if (auth != NULL) {
        if (strcmp(auth, "basic") != 0 && strcmp(auth, "post") != 0) {
            users_oauth_err(err, errlen, "environment variable \"%s\" is "
                            "malformed: expected basic or post", var);
            return -1;
        }
        p->auth_basic = strcmp(auth, "basic") == 0;
    }
    return 0;
}


/* The names in KORDON_OAUTH_PROVIDERS into oa; 0 or -1 with err. */
static int
users_oauth_names(users_oauth_t *oa, const char *list, char *err,
    size_t errlen)
{
    size_t  len;
    int     i;

    while (*list != '\0') {
        list += strspn(list, " ,");
        len = strcspn(list, " ,");
        if (len == 0) {
            break;
        }
        if (oa->n == USERS_OAUTH_PROVIDERS_MAX || len >= USERS_OAUTH_NAME_MAX
            || strspn(list, "abcdefghijklmnopqrstuvwxyz0123456789_") < len)
        {
            users_oauth_err(err, errlen, "environment variable "
                            "\"KORDON_OAUTH_PROVIDERS\" is malformed: at "
                            "most %d names of [a-z0-9_], 1..%d long",
                            USERS_OAUTH_PROVIDERS_MAX,
                            USERS_OAUTH_NAME_MAX - 1);
            return -1;
        }
        memcpy(oa->p[oa->n].name, list, len);
        oa->p[oa->n].name[len] = '\0';
        for (i = 0; i < oa->n; i++) {
            if (strcmp(oa->p[i].name, oa->p[oa->n].name) == 0) {
                users_oauth_err(err, errlen, "provider \"%s\" is listed "
                                "twice in KORDON_OAUTH_PROVIDERS",
                                oa->p[i].name);
                return -1;
            }
        }
        oa->n++;
        list += len;
    }
    return 0;
}


users_oauth_t *
users_oauth_new(char *err, size_t errlen)
{
    users_oauth_t  *oa;
    const char     *list;
    int             i;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        users_oauth_err(err, errlen, "could not initialize libcurl");
        return NULL;
    }
    oa = calloc(1, sizeof(*oa));
    if (oa == NULL) {
        curl_global_cleanup();
        users_oauth_err(err, errlen, "out of memory");
        return NULL;
    }
    list = getenv("KORDON_OAUTH_PROVIDERS");
    if (list != NULL && users_oauth_names(oa, list, err, errlen) != 0) {
        oa->n = 0;
        users_oauth_free(oa);
        return NULL;
    }
    for (i = 0; i < oa->n; i++) {
        pthread_mutex_init(&oa->p[i].lock, NULL);
    }
    for (i = 0; i < oa->n; i++) {
        if (users_oauth_provider_load(&oa->p[i], err, errlen) != 0) {
            users_oauth_free(oa);
            return NULL;
        }
    }
    return oa;
}


static void
users_oauth_keys_clear(users_oauth_provider_t *p)
{
    int  i;

    for (i = 0; i < p->nkeys; i++) {
        free(p->keys[i].pem);
    }
    p->nkeys = 0;
}


void
users_oauth_free(users_oauth_t *oa)
{
    int  i;

    if (oa == NULL) {
        return;
    }
    for (i = 0; i < oa->n; i++) {
        users_oauth_keys_clear(&oa->p[i]);
        OPENSSL_cleanse(oa->p[i].client_secret,
                        sizeof(oa->p[i].client_secret));
        pthread_mutex_destroy(&oa->p[i].lock);
    }
    free(oa);
    curl_global_cleanup();
}


static users_oauth_provider_t *
users_oauth_find(users_oauth_t *oa, const char *name)
{
    int  i;

    for (i = 0; oa != NULL && name != NULL && i < oa->n; i++) {
        if (strcmp(oa->p[i].name, name) == 0) {
            return &oa->p[i];
        }
    }
    return NULL;
}


int
users_oauth_has(users_oauth_t *oa, const char *provider)
{
    return users_oauth_find(oa, provider) != NULL;
}


int
users_oauth_form_post(users_oauth_t *oa, const char *provider)
{
    users_oauth_provider_t  *p;

    p = users_oauth_find(oa, provider);
    return p != NULL && p->response_mode != NULL
           && strcmp(p->response_mode, "form_post") == 0;
}


int
users_oauth_http_status(int rc)
{
    switch (rc) {
    case USERS_OAUTH_OK:
        return 200;
    case USERS_OAUTH_UNKNOWN:
        return 404;
    case USERS_OAUTH_STATE:
    case USERS_OAUTH_DENIED:
    case USERS_OAUTH_GRANT:
        return 400;
    case USERS_OAUTH_TOKEN:
        return 401;
    case USERS_OAUTH_UNAVAILABLE:
        return 502;
    default:
        return 500;
    }
}


/* ---- outbound HTTP ------------------------------------------------------ */

typedef struct {
    char    *data;
    size_t   len;
} users_oauth_buf_t;


static size_t
users_oauth_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    users_oauth_buf_t  *b = userdata;
    size_t              n = size * nmemb;
    char               *d;

    if (b->len + n > USERS_OAUTH_HTTP_BODY_MAX) {
        return 0;                      /* curl fails the transfer */
    }
    d = realloc(b->data, b->len + n + 1);
    if (d == NULL) {
        return 0;
    }
    memcpy(d + b->len, ptr, n);
    b->len += n;
    d[b->len] = '\0';
    b->data = d;
    return n;
}


/*
 * GET url, or POST the form when form is not NULL (with HTTP Basic when
 * user is not NULL).  0 with *status and the parsed JSON answer in *body
 * (NULL when the answer is not JSON); -1 with err when no answer came.
 */
static int
users_oauth_http(const char *url, const char *form, const char *user,
    const char *pass, long *status, json_t **body, char *err, size_t errlen)
{
    struct curl_slist  *hdr;
    users_oauth_buf_t   b = { NULL, 0 };
    CURLcode            rc;
    CURL               *h;

    *body = NULL;
    h = curl_easy_init();
    hdr = curl_slist_append(NULL, "Accept: application/json");
    if (h == NULL || hdr == NULL) {
        curl_easy_cleanup(h);
        curl_slist_free_all(hdr);
        users_oauth_err(err, errlen, "could not start a request to \"%s\"",
                        url);
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long) USERS_OAUTH_HTTP_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, users_oauth_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (form != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
    }
    if (user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        *body = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    } else {
        users_oauth_err(err, errlen, "could not reach \"%s\": %s", url,
                        curl_easy_strerror(rc));
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(b.data);
    return rc == CURLE_OK ? 0 : -1;
}


/* ---- discovery ---------------------------------------------------------- */

static int
users_oauth_discovered_url(json_t *doc, const char *field, char *dst,
    char *err, size_t errlen)
{
    const char  *v;

    v = json_string_value(json_object_get(doc, field));
    if (v == NULL || !users_oauth_url_ok(v)) {
        users_oauth_err(err, errlen, "discovery document has no usable "
                        "\"%s\"", field);
        return -1;
    }
    snprintf(dst, USERS_OAUTH_URL_MAX, "%s", v);
    return 0;
}


/* Called with p->lock held: the endpoints, discovered once; 0 or -1. */
static int
users_oauth_discover(users_oauth_provider_t *p, char *err, size_t errlen)
{
    const char  *iss;
    json_t      *doc;
    size_t       len;
    long         status = 0;
    char         url[USERS_OAUTH_URL_MAX + 64];
    int          rc;

    if (p->discovered) {
        return 0;
    }
    len = strlen(p->issuer);
    while (len > 0 && p->issuer[len - 1] == '/') {
        len--;
    }
    snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
             (int) len, p->issuer);
    if (users_oauth_http(url, NULL, NULL, NULL, &status, &doc, err, errlen)
        != 0)
    {
        return -1;
    }
    rc = -1;
    iss = json_string_value(json_object_get(doc, "issuer"));
    if (status != 200 || doc == NULL) {
        users_oauth_err(err, errlen, "discovery at \"%s\" answered %ld",
                        url, status);
    } else if (iss == NULL || strcmp(iss, p->issuer) != 0) {
        /* OpenID Connect Discovery 4.3: the issuer must be ours */
        users_oauth_err(err, errlen, "discovery at \"%s\" names another "
                        "issuer", url);
    } else if (users_oauth_discovered_url(doc, "authorization_endpoint",
                                          p->authorization_endpoint, err,
                                          errlen) == 0
               && users_oauth_discovered_url(doc, "token_endpoint",
                                             p->token_endpoint, err,
                                             errlen) == 0
               && users_oauth_discovered_url(doc, "jwks_uri", p->jwks_uri,
                                             err, errlen) == 0)
    {
        p->discovered = 1;
        rc = 0;
    }
    json_decref(doc);
    return rc;
}


/* ---- JWKS ------------------------------------------------------------- */

/* A base64url JWK member as a BIGNUM; NULL when missing or malformed. */
static BIGNUM *
users_oauth_jwk_bn(json_t *jwk, const char *name)
{
    unsigned char  buf[1024];
    const char    *s;
    int            n;

    s = json_string_value(json_object_get(jwk, name));
    if (s == NULL) {
        return NULL;
    }
    n = users_oauth_b64url_decode(s, strlen(s), buf, sizeof(buf));
    return n > 0 ? BN_bin2bn(buf, n, NULL) : NULL;
}


/*
 * Pushes the public parameters of an RSA or P-256 JWK; its alg, or
 * JWT_ALG_NONE.  The builder keeps pointers, not copies: *bn1, *bn2 and
 * pt (the EC point) must outlive OSSL_PARAM_BLD_to_param().
 */
static jwt_alg_t
users_oauth_jwk_params(json_t *jwk, OSSL_PARAM_BLD *bld, BIGNUM **bn1,
    BIGNUM **bn2, unsigned char pt[65])
{
    const char     *kty, *crv;

    kty = json_string_value(json_object_get(jwk, "kty"));
    crv = json_string_value(json_object_get(jwk, "crv"));
    *bn1 = NULL;
    *bn2 = NULL;
    if (kty != NULL && strcmp(kty, "RSA") == 0) {
        *bn1 = users_oauth_jwk_bn(jwk, "n");
        *bn2 = users_oauth_jwk_bn(jwk, "e");
        if (*bn1 == NULL || *bn2 == NULL
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, *bn1)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, *bn2))
        {
            return JWT_ALG_NONE;
        }
        return JWT_ALG_RS256;
    }
    if (kty != NULL && strcmp(kty, "EC") == 0 && crv != NULL
        && strcmp(crv, "P-256") == 0)
    {
        *bn1 = users_oauth_jwk_bn(jwk, "x");
        *bn2 = users_oauth_jwk_bn(jwk, "y");
        pt[0] = 0x04;                  /* uncompressed point */
        if (*bn1 == NULL || *bn2 == NULL
            || BN_bn2binpad(*bn1, pt + 1, 32) != 32
            || BN_bn2binpad(*bn2, pt + 33, 32) != 32
            || !OSSL_PARAM_BLD_push_utf8_string(bld,
                   OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld,
                   OSSL_PKEY_PARAM_PUB_KEY, pt, 65))
        {
            return JWT_ALG_NONE;
        }
        return JWT_ALG_ES256;
    }
    return JWT_ALG_NONE;
}


static char *
users_oauth_pub_pem(EVP_PKEY *pkey)
{
    BIO   *bio;
    char  *data, *pem;
    long   len;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return NULL;
    }
    pem = NULL;
    if (PEM_write_bio_PUBKEY(bio, pkey)) {
        len = BIO_get_mem_data(bio, &data);
        pem = len > 0 ? strndup(data, (size_t) len) : NULL;
    }
    BIO_free(bio);
    return pem;
}


/*
 * One JWK as a key of ours: 0, or -1 when it is not a signing key we
 * accept (kty RSA of 2048 bits or more for RS256, EC P-256 for ES256).
 */
static int
users_oauth_jwk(json_t *jwk, users_oauth_key_t *k)
{
    OSSL_PARAM_BLD  *bld;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM      *params;
    const char      *kid, *use, *alg;
    EVP_PKEY        *pkey;
    BIGNUM          *a, *b;
    unsigned char    pt[65];
    int              ok;

    kid = json_string_value(json_object_get(jwk, "kid"));
    use = json_string_value(json_object_get(jwk, "use"));
    alg = json_string_value(json_object_get(jwk, "alg"));
    if ((use != NULL && strcmp(use, "sig") != 0)
        || (kid != NULL && strlen(kid) >= USERS_OAUTH_KID_MAX))
    {
        return -1;
    }
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        return -1;
    }
    k->alg = users_oauth_jwk_params(jwk, bld, &a, &b, pt);
    params = k->alg != JWT_ALG_NONE ? OSSL_PARAM_BLD_to_param(bld) : NULL;
    ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, k->alg == JWT_ALG_RS256
                                                    ? "RSA" : "EC", NULL)
                 : NULL;
    pkey = NULL;
    ok = ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1
         && EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1
         && (k->alg != JWT_ALG_RS256
             || EVP_PKEY_get_bits(pkey) >= USERS_OAUTH_RSA_BITS_MIN)
         /* a JWK that names an alg must name the one its key implies */
         && (alg == NULL || jwt_str_alg(alg) == k->alg);
    k->pem = ok ? users_oauth_pub_pem(pkey) : NULL;
    snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(a);
    BN_free(b);
    return k->pem != NULL ? 0 : -1;
}


/* Called with p->lock held: fetches the JWKS into p->keys; 0 or -1. */
static int
users_oauth_jwks_fetch(users_oauth_provider_t *p, time_t now, char *err,
    size_t errlen)
{
    json_t  *doc, *keys, *jwk;
    size_t   i;
    long     status = 0;

    p->jwks_fetched = now;             /* failures too: no hammering */
    if (users_oauth_http(p->jwks_uri, NULL, NULL, NULL, &status, &doc, err,
                         errlen) != 0)
    {
        return -1;
    }
    keys = json_object_get(doc, "keys");
    if (status != 200 || !json_is_array(keys)) {
        users_oauth_err(err, errlen, "JWKS at \"%s\" answered %ld without "
                        "keys", p->jwks_uri, status);
        json_decref(doc);
        return -1;
    }
    users_oauth_keys_clear(p);
    json_array_foreach(keys, i, jwk) {
        if (p->nkeys == USERS_OAUTH_JWKS_KEYS_MAX) {
            break;
        }
        if (users_oauth_jwk(jwk, &p->keys[p->nkeys]) == 0) {
            p->nkeys++;
        }
    }
    json_decref(doc);
    return 0;
}


static users_oauth_key_t *
users_oauth_key_find(users_oauth_provider_t *p, const char *kid)
{
    int  i;

    for (i = 0; i < p->nkeys; i++) {
        if (strcmp(p->keys[i].kid, kid) == 0) {
            return &p->keys[i];
        }
    }
    return NULL;
}


/*
 * The key for kid, its PEM copied into *pem (free it) and its alg into
 * *alg: USERS_OAUTH_OK, _TOKEN (no such key) or _UNAVAILABLE (no JWKS).
 * The cache is refreshed when stale, or for an unknown kid (a rotation)
 * at most every USERS_OAUTH_JWKS_REFETCH_MIN_S.
 */
static int
users_oauth_key(users_oauth_provider_t *p, const char *kid, char **pem,
    jwt_alg_t *alg, char *err, size_t errlen)
{
    users_oauth_key_t  *k;
    time_t              now;
    int                 rc;

    now = time(NULL);
    pthread_mutex_lock(&p->lock);
    k = users_oauth_key_find(p, kid);
    if (p->jwks_fetched == 0 || now - p->jwks_fetched > USERS_OAUTH_JWKS_TTL_S
        || (k == NULL
            && now - p->jwks_fetched >= USERS_OAUTH_JWKS_REFETCH_MIN_S))
    {
        /* on failure the keys we had stay in use */
        (void) users_oauth_jwks_fetch(p, now, err, errlen);
        k = users_oauth_key_find(p, kid);
    }
    if (p->nkeys == 0) {
        pthread_mutex_unlock(&p->lock);
        users_oauth_err(err, errlen, "JWKS at \"%s\" gave no usable key",
                        p->jwks_uri);
        return USERS_OAUTH_UNAVAILABLE;
    }
    rc = USERS_OAUTH_TOKEN;
    *pem = NULL;
    if (k == NULL) {
        users_oauth_err(err, errlen, "id_token key \"%s\" is not in the "
                        "provider's JWKS", kid);
    } else {
        *pem = strdup(k->pem);
        *alg = k->alg;
        rc = *pem != NULL ? USERS_OAUTH_OK : USERS_OAUTH_ERROR;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}


/* ---- id_token --------------------------------------------------------- */

/* The JOSE header's alg (RS256/ES256 only) and kid; OK or _TOKEN. */
static int
users_oauth_jose(const char *idt, jwt_alg_t *alg, char *kid, char *err,
    size_t errlen)
{
    unsigned char   buf[USERS_OAUTH_HEADER_MAX];
    const char     *dot, *a, *k;
    json_t         *h;
    int             n;

    dot = strchr(idt, '.');
    n = dot ? users_oauth_b64url_decode(idt, (size_t) (dot - idt), buf,
                                        sizeof(buf)) : -1;
    h = n > 0 ? json_loadb((const char *) buf, (size_t) n, 0, NULL) : NULL;
    a = json_string_value(json_object_get(h, "alg"));
    k = json_string_value(json_object_get(h, "kid"));
    if (a == NULL) {
        users_oauth_err(err, errlen, "id_token is malformed");
        json_decref(h);
        return USERS_OAUTH_TOKEN;
    }
    *alg = jwt_str_alg(a);
    if (*alg != JWT_ALG_RS256 && *alg != JWT_ALG_ES256) {
        users_oauth_err(err, errlen, "id_token alg \"%.16s\" is not allowed",
                        a);
        json_decref(h);
        return USERS_OAUTH_TOKEN;
    }
    snprintf(kid, USERS_OAUTH_KID_MAX, "%s", k ? k : "");
    json_decref(h);
    return USERS_OAUTH_OK;
}


/* 1 when aud is our client (a string, or an array with azp = us). */
static int
users_oauth_aud_ok(json_t *claims, const char *client_id)
{
    json_t  *aud, *v;
    size_t   i;
    int      found = 0;

    aud = json_object_get(claims, "aud");
    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), client_id) == 0;
    }
    if (!json_is_array(aud)) {
        return 0;
    }
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), client_id) == 0)
        {
            found = 1;
        }
    }
    /* OpenID Connect Core 3.1.3.7: several audiences need azp = us */
    v = json_object_get(claims, "azp");
    return found && (json_array_size(aud) == 1
                     || (json_is_string(v)
                         && strcmp(json_string_value(v), client_id) == 0));
}


/* The claims' verdict: NULL when they hold, else the reason. */
static const char *
users_oauth_claims_check(users_oauth_provider_t *p, json_t *c,
    const char *nonce)
{
    const char  *s;
    time_t       now;

    now = time(NULL);
    s = json_string_value(json_object_get(c, "iss"));
    if (s == NULL || (strcmp(s, p->issuer) != 0
                      && (p->issuer_alt == NULL
                          || strcmp(s, p->issuer_alt) != 0)))
    {
        return "id_token issuer is not the provider's";
    }
    if (!users_oauth_aud_ok(c, p->client_id)) {
        return "id_token audience is not this client";
    }
    if (!json_is_integer(json_object_get(c, "exp"))
        || json_integer_value(json_object_get(c, "exp"))
           < now - USERS_OAUTH_LEEWAY_S)
    {
        return "id_token is expired";
    }
    if (!json_is_integer(json_object_get(c, "iat"))
        || json_integer_value(json_object_get(c, "iat"))
           > now + USERS_OAUTH_LEEWAY_S)
    {
        return "id_token is issued in the future";
    }
    s = json_string_value(json_object_get(c, "nonce"));
    if (s == NULL || strlen(s) != strlen(nonce)
        || CRYPTO_memcmp(s, nonce, strlen(nonce)) != 0)
    {
        return "id_token nonce is not this login's";
    }
    s = json_string_value(json_object_get(c, "sub"));
    if (s == NULL || s[0] == '\0' || strlen(s) >= USERS_OAUTH_SUB_MAX) {
        return "id_token subject is missing or too long";
    }
    return NULL;
}


static void
users_oauth_identity(users_oauth_provider_t *p, json_t *c,
    users_oauth_identity_t *id)
{
    const char  *email;
    json_t      *v;

    snprintf(id->provider, sizeof(id->provider), "%s", p->name);
    snprintf(id->sub, sizeof(id->sub), "%s",
             json_string_value(json_object_get(c, "sub")));
    email = json_string_value(json_object_get(c, "email"));
    if (email != NULL && strlen(email) < sizeof(id->email)) {
        snprintf(id->email, sizeof(id->email), "%s", email);
        v = json_object_get(c, "email_verified");
        /* Apple sends the string "true" */
        id->email_verified = p->trust_email
                             && (json_is_true(v)
                                 || (json_is_string(v)
                                     && strcmp(json_string_value(v),
                                               "true") == 0));
    }
}


/* Verifies idt for this login and fills *id: OK, _TOKEN, _UNAVAILABLE. */
static int
users_oauth_verify(users_oauth_provider_t *p, const char *idt,
    const users_oauth_pending_t *pd, users_oauth_identity_t *id, char *err,
    size_t errlen)
{
    const char  *why;
    jwt_alg_t    alg, key_alg;
    json_t      *claims;
    jwt_t       *jwt;
    char        *pem, *json, kid[USERS_OAUTH_KID_MAX];
    int          rc;

    rc = users_oauth_jose(idt, &alg, kid, err, errlen);
    if (rc == USERS_OAUTH_OK) {
        rc = users_oauth_key(p, kid, &pem, &key_alg, err, errlen);
    }
    if (rc != USERS_OAUTH_OK) {
        return rc;
    }
    if (alg != key_alg) {
        free(pem);
        users_oauth_err(err, errlen, "id_token alg is not its key's");
        return USERS_OAUTH_TOKEN;
    }
    jwt = NULL;
    rc = jwt_decode(&jwt, idt, (const unsigned char *) pem,
                    (int) strlen(pem));
    free(pem);
    if (rc != 0 || jwt == NULL || jwt_get_alg(jwt) != key_alg) {
        jwt_free(jwt);
        users_oauth_err(err, errlen, "id_token signature does not verify");
        return USERS_OAUTH_TOKEN;
    }
    json = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    claims = json ? json_loads(json, 0, NULL) : NULL;
    free(json);
    why = claims ? users_oauth_claims_check(p, claims, pd->nonce)
                 : "id_token claims are malformed";
    if (why == NULL) {
        users_oauth_identity(p, claims, id);
    } else {
        users_oauth_err(err, errlen, "%s", why);
    }
    json_decref(claims);
    return why == NULL ? USERS_OAUTH_OK : USERS_OAUTH_TOKEN;
}


/* ---- start and callback ----------------------------------------------- */

/* Called with nothing held: the endpoints, discovering them if needed. */
static int
users_oauth_ready(users_oauth_provider_t *p, char *auth, char *token,
    char *err, size_t errlen)
{
    int  rc;

    pthread_mutex_lock(&p->lock);
    rc = users_oauth_discover(p, err, errlen);
    if (rc == 0) {
        memcpy(auth, p->authorization_endpoint, USERS_OAUTH_URL_MAX);
        memcpy(token, p->token_endpoint, USERS_OAUTH_URL_MAX);
    }
    pthread_mutex_unlock(&p->lock);
    return rc == 0 ? USERS_OAUTH_OK : USERS_OAUTH_UNAVAILABLE;
}


/* Appends &name=<escaped value> to out (outlen); 0 or -1. */
static int
users_oauth_param(char *out, size_t outlen, const char *name,
    const char *value)
{
    size_t   n;
    char    *e;
    int      rc;

    e = curl_easy_escape(NULL, value, 0);
    if (e == NULL) {
        return -1;
    }
    n = strlen(out);
    rc = snprintf(out + n, outlen - n, "%s%s=%s", n ? "&" : "", name, e);
    curl_free(e);
    return rc < 0 || (size_t) rc >= outlen - n ? -1 : 0;
}


static int
users_oauth_auth_url(users_oauth_provider_t *p, const char *endpoint,
    const users_oauth_pending_t *pd, char *url, size_t urllen)
{
    unsigned char  md[32];
    char           challenge[USERS_OAUTH_RANDOM_SIZE];
    char           q[USERS_OAUTH_AUTH_URL_MAX];
    int            rc;

    if (EVP_Digest(pd->verifier, strlen(pd->verifier), md, NULL,
                   EVP_sha256(), NULL) != 1)
    {
        return -1;
    }
    users_oauth_b64url(md, sizeof(md), challenge);       /* RFC 7636 S256 */
    q[0] = '\0';
    if (users_oauth_param(q, sizeof(q), "response_type", "code")
        || users_oauth_param(q, sizeof(q), "client_id", p->client_id)
        || users_oauth_param(q, sizeof(q), "redirect_uri", p->redirect_uri)
        || users_oauth_param(q, sizeof(q), "scope", p->scopes)
        || users_oauth_param(q, sizeof(q), "state", pd->state)
        || users_oauth_param(q, sizeof(q), "nonce", pd->nonce)
        || users_oauth_param(q, sizeof(q), "code_challenge", challenge)
        || users_oauth_param(q, sizeof(q), "code_challenge_method", "S256")
        || (p->response_mode != NULL
            && users_oauth_param(q, sizeof(q), "response_mode",
                                 p->response_mode)))
    {
        return -1;
    }
    rc = snprintf(url, urllen, "%s%c%s", endpoint,
                  strchr(endpoint, '?') ? '&' : '?', q);
    return rc < 0 || (size_t) rc >= urllen ? -1 : 0;
}


int
users_oauth_start(users_oauth_t *oa, const char *provider,
    const users_oauth_store_t *store, users_oauth_start_t *out, char *err,
    size_t errlen)
{
    users_oauth_provider_t  *p;
    char                     auth[USERS_OAUTH_URL_MAX];
    char                     token[USERS_OAUTH_URL_MAX];
    int                      rc;

    memset(out, 0, sizeof(*out));
    p = users_oauth_find(oa, provider);
    if (p == NULL) {
        users_oauth_err(err, errlen, "provider is not configured");
        return USERS_OAUTH_UNKNOWN;
    }
    rc = users_oauth_ready(p, auth, token, err, errlen);
    if (rc != USERS_OAUTH_OK) {
        return rc;
    }
    if (users_oauth_random(out->pending.state) != 0
        || users_oauth_random(out->pending.nonce) != 0
        || users_oauth_random(out->pending.verifier) != 0)
    {
        users_oauth_err(err, errlen, "could not read random bytes");
        rc = USERS_OAUTH_ERROR;
    } else if (users_oauth_auth_url(p, auth, &out->pending, out->url,
                                    sizeof(out->url)) != 0)
    {
        users_oauth_err(err, errlen, "authorization URL is too long");
        rc = USERS_OAUTH_ERROR;
    } else {
        out->pending.created = time(NULL);
        if (store->put(store->ctx, p->name, &out->pending) != 0) {
            users_oauth_err(err, errlen, "could not keep the login state");
            rc = USERS_OAUTH_ERROR;
        }
    }
    if (rc != USERS_OAUTH_OK) {
        OPENSSL_cleanse(out, sizeof(*out));
    }
    return rc;
}


/* The form for the token endpoint into form (formlen); 0 or -1. */
static int
users_oauth_token_form(users_oauth_provider_t *p,
    const users_oauth_callback_t *cb, const users_oauth_pending_t *pd,
    char *form, size_t formlen)
{
    form[0] = '\0';
    if (users_oauth_param(form, formlen, "grant_type", "authorization_code")
        || users_oauth_param(form, formlen, "code", cb->code)
        || users_oauth_param(form, formlen, "redirect_uri", p->redirect_uri)
        || users_oauth_param(form, formlen, "code_verifier", pd->verifier)
        || (cb->device_id != NULL
            && users_oauth_param(form, formlen, "device_id", cb->device_id)))
    {
        return -1;
    }
    if (!p->auth_basic
        && (users_oauth_param(form, formlen, "client_id", p->client_id)
            || users_oauth_param(form, formlen, "client_secret",
                                 p->client_secret)))
    {
        return -1;
    }
    return 0;
}


/*
 * Exchanges the code: OK with the id_token in *idt (free it), _GRANT when
 * the provider refuses it, _UNAVAILABLE when it does not answer sensibly.
 */
static int
users_oauth_exchange(users_oauth_provider_t *p, const char *endpoint,
    const users_oauth_callback_t *cb, const users_oauth_pending_t *pd,
    char **idt, char *err, size_t errlen)
{
    const char  *e, *t;
    json_t      *body = NULL;
    long         status = 0;
    char        *form, *user, *pass;
    int          rc;

    *idt = NULL;
    form = malloc(USERS_OAUTH_SECRET_MAX * 4);
    user = curl_easy_escape(NULL, p->client_id, 0);
    pass = curl_easy_escape(NULL, p->client_secret, 0);
    rc = USERS_OAUTH_ERROR;
    users_oauth_err(err, errlen, "out of memory, or the token request is "
                    "too long");
    if (form != NULL && user != NULL && pass != NULL
        && users_oauth_token_form(p, cb, pd, form, USERS_OAUTH_SECRET_MAX * 4)
           == 0)
    {
        rc = users_oauth_http(endpoint, form, p->auth_basic ? user : NULL,
                              pass, &status, &body, err, errlen)
             == 0 ? USERS_OAUTH_OK : USERS_OAUTH_UNAVAILABLE;
    }
    if (form != NULL) {
        OPENSSL_cleanse(form, USERS_OAUTH_SECRET_MAX * 4);
    }
    free(form);
    curl_free(user);
    if (pass != NULL) {
        OPENSSL_cleanse(pass, strlen(pass));
    }
    curl_free(pass);
    if (rc != USERS_OAUTH_OK) {
        return rc;
    }
    e = json_string_value(json_object_get(body, "error"));
    t = json_string_value(json_object_get(body, "id_token"));
    if (status == 200 && t != NULL) {
        *idt = strdup(t);
        rc = *idt ? USERS_OAUTH_OK : USERS_OAUTH_ERROR;
    } else if (status >= 400 && status < 500 && e != NULL
               && strcmp(e, "invalid_client") != 0)
    {
        users_oauth_err(err, errlen, "token endpoint refused the code: "
                        "%.64s", e);
        rc = USERS_OAUTH_GRANT;
    } else {
        users_oauth_err(err, errlen, "token endpoint \"%s\" answered "
                        "%ld%s%.64s", endpoint, status,
                        e ? " " : " without id_token", e ? e : "");
        rc = USERS_OAUTH_UNAVAILABLE;
    }
    json_decref(body);
    return rc;
}


/* The state checks: equal to the cookie, known, fresh; OK or _STATE. */
static int
users_oauth_state(users_oauth_provider_t *p, const users_oauth_callback_t *cb,
    const users_oauth_store_t *store, users_oauth_pending_t *pd, char *err,
    size_t errlen)
{
    size_t  len;
    int     rc;

    len = cb->state ? strlen(cb->state) : 0;
    if (len == 0 || len >= USERS_OAUTH_RANDOM_SIZE || cb->state_cookie == NULL
        || strlen(cb->state_cookie) != len
        || CRYPTO_memcmp(cb->state, cb->state_cookie, len) != 0)
    {
        users_oauth_err(err, errlen, "state does not match this browser's");
        return USERS_OAUTH_STATE;
    }
    rc = store->take(store->ctx, p->name, cb->state, pd);
    if (rc < 0) {
        users_oauth_err(err, errlen, "could not read the login state");
        return USERS_OAUTH_ERROR;
    }
    if (rc > 0) {
        users_oauth_err(err, errlen, "state is unknown or already used");
        return USERS_OAUTH_STATE;
    }
    if (time(NULL) - pd->created > USERS_OAUTH_STATE_TTL_S) {
        users_oauth_err(err, errlen, "state is expired");
        return USERS_OAUTH_STATE;
    }
    return USERS_OAUTH_OK;
}


int
users_oauth_callback(users_oauth_t *oa, const char *provider,
    const users_oauth_callback_t *cb, const users_oauth_store_t *store,
    users_oauth_identity_t *id, char *err, size_t errlen)
{
    users_oauth_provider_t  *p;
    users_oauth_pending_t    pd;
    char                     auth[USERS_OAUTH_URL_MAX];
    char                     token[USERS_OAUTH_URL_MAX];
    char                    *idt;
    int                      rc;

    memset(id, 0, sizeof(*id));
    memset(&pd, 0, sizeof(pd));
    p = users_oauth_find(oa, provider);
    if (p == NULL) {
        users_oauth_err(err, errlen, "provider is not configured");
        return USERS_OAUTH_UNKNOWN;
    }
    rc = users_oauth_state(p, cb, store, &pd, err, errlen);
    if (rc != USERS_OAUTH_OK) {
        return rc;
    }
    if (cb->error != NULL) {
        users_oauth_err(err, errlen, "provider answered \"%.32s\"",
                        strspn(cb->error, "abcdefghijklmnopqrstuvwxyz_")
                        == strlen(cb->error) ? cb->error : "(malformed)");
        rc = USERS_OAUTH_DENIED;
    } else if (cb->code == NULL || cb->code[0] == '\0'
               || strlen(cb->code) > USERS_OAUTH_CODE_MAX
               || (cb->device_id && strlen(cb->device_id) > 256))
    {
        users_oauth_err(err, errlen, "callback has no usable code");
        rc = USERS_OAUTH_DENIED;
    } else {
        rc = users_oauth_ready(p, auth, token, err, errlen);
    }
    if (rc == USERS_OAUTH_OK) {
        rc = users_oauth_exchange(p, token, cb, &pd, &idt, err, errlen);
        if (rc == USERS_OAUTH_OK) {
            rc = users_oauth_verify(p, idt, &pd, id, err, errlen);
            free(idt);
        }
    }
    OPENSSL_cleanse(&pd, sizeof(pd));
    if (rc != USERS_OAUTH_OK) {
        memset(id, 0, sizeof(*id));
    }
    return rc;
}
