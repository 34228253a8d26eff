/*
 * test_users_oauth.c -- backends/users/oauth.c against build/t/fixture-oidc,
 * a real OpenID Connect provider on a free loopback port: the whole
 * authorization code flow with PKCE (start, the provider's /authorize
 * fetched like a browser would, callback, code exchange, id_token checked
 * against the JWKS), with client_secret_basic and _post, discovered and
 * configured endpoints.  Refused: a state that is not the browser's, one
 * never issued or already used, an error from the provider, a replayed
 * code, a wrong PKCE verifier, an id_token signed by another key, with alg
 * none or HS256 keyed by the public key, with a wrong nonce, audience or
 * issuer, or expired.  The JWKS is fetched once and again on rotation.
 * The person logging in is chosen by query or header.  Configuration:
 * presets, required variables, https only.
 *
 * oauth.c is compiled into the test itself, as the ledger's tests do.
 */

#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backends/users/oauth.c"

#define CLIENT_ID      "kordon-test"
#define CLIENT_SECRET  "s3cr:t+/&= x"     /* form-encoded in Basic auth */
#define REDIRECT       "http://127.0.0.1:9/v1/auth/oauth/local/callback"
#define STORE_MAX      32

static char            fixture_path[512];
static char            issuer[64];
static pid_t           fixture_pid;
static users_oauth_t  *oa;
static char            err[512];
static char            secret_file[] = "/tmp/kordon-oauth-secret.XXXXXX";

/* ---- the core's state store, in memory ---------------------------------- */

typedef struct {
    int                    used;
    char                   provider[USERS_OAUTH_NAME_MAX];
    users_oauth_pending_t  p;
} store_entry_t;

static store_entry_t    store_entries[STORE_MAX];
static pthread_mutex_t  store_lock = PTHREAD_MUTEX_INITIALIZER;


static int
store_put(void *ctx, const char *provider, const users_oauth_pending_t *p)
{
    int  i, rc = -1;

    pthread_mutex_lock(&store_lock);
    for (i = 0; i < STORE_MAX; i++) {
        if (!store_entries[i].used) {
            store_entries[i].used = 1;
            snprintf(store_entries[i].provider, USERS_OAUTH_NAME_MAX, "%s",
                     provider);
            store_entries[i].p = *p;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&store_lock);
    return rc;
}


static int
store_take(void *ctx, const char *provider, const char *state,
    users_oauth_pending_t *p)
{
    int  i, rc = 1;

    pthread_mutex_lock(&store_lock);
    for (i = 0; i < STORE_MAX; i++) {
        if (store_entries[i].used
            && strcmp(store_entries[i].provider, provider) == 0
            && strcmp(store_entries[i].p.state, state) == 0)
        {
            *p = store_entries[i].p;
            store_entries[i].used = 0;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&store_lock);
    return rc;
}


static const users_oauth_store_t  store = { store_put, store_take, NULL };


static int
store_count(void)
{
    int  i, n = 0;

    for (i = 0; i < STORE_MAX; i++) {
        n += store_entries[i].used;
    }
    return n;
}


static users_oauth_pending_t *
store_find(const char *state)
{
    int  i;

    for (i = 0; i < STORE_MAX; i++) {
        if (store_entries[i].used
            && strcmp(store_entries[i].p.state, state) == 0)
        {
            return &store_entries[i].p;
        }
    }
    return NULL;
}


/* ---- a browser and the fixture's control route -------------------------- */

/* The value of name in url's query, decoded, into out; 0 or -1. */
static int
query_get(const char *url, const char *name, char *out, size_t outlen)
{
    const char  *q;
    size_t       n;
    char        *v;

    q = strchr(url, '?');
    n = strlen(name);
    while (q != NULL) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            v = curl_easy_unescape(NULL, q + n + 1,
                                   (int) strcspn(q + n + 1, "&"), NULL);
            snprintf(out, outlen, "%s", v ? v : "");
            curl_free(v);
            return 0;
        }
        q = strchr(q, '&');
    }
    return -1;
}


/* The request header authorize() sends, NULL for none. */
static const char  *browser_header;


/* GETs url; the status, and the Location (if any) into loc. */
static long
http_get(const char *url, char *loc, size_t loclen, users_oauth_buf_t *b)
{
    struct curl_slist  *hdr = NULL;
    char               *redirect = NULL;
    long                status = 0;
    CURL               *h;

    h = curl_easy_init();
    assert_non_null(h);
    if (browser_header != NULL) {
        hdr = curl_slist_append(NULL, browser_header);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, users_oauth_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect);
    if (loc != NULL) {
        snprintf(loc, loclen, "%s", redirect ? redirect : "");
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    return status;
}


/* Sets the fixture's switches ("sig=other&..."); its answer's counter. */
static long
control(const char *query, const char *counter)
{
    users_oauth_buf_t   b = { NULL, 0 };
    json_t             *j;
    long                v;
    char                url[256];

    snprintf(url, sizeof(url), "%s/_control?%s", issuer, query);
    assert_int_equal(http_get(url, NULL, 0, &b), 200);
    j = json_loads(b.data, 0, NULL);
    free(b.data);
    assert_non_null(j);
    v = counter ? (long) json_integer_value(json_object_get(j, counter)) : 0;
    json_decref(j);
    return v;
}


/*
 * Logs in through provider as the browser would, up to the callback:
 * start, then the authorization URL (plus extra, the fixture's test user)
 * answered by a redirect to our callback with code and state.
 */
static void
authorize(const char *provider, const char *extra, users_oauth_start_t *st,
    char *code, char *state)
{
    users_oauth_buf_t  b = { NULL, 0 };
    char               url[USERS_OAUTH_AUTH_URL_MAX + 256];
    char               loc[USERS_OAUTH_AUTH_URL_MAX];

    assert_int_equal(users_oauth_start(oa, provider, &store, st, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    snprintf(url, sizeof(url), "%s%s", st->url, extra ? extra : "");
    assert_int_equal(http_get(url, loc, sizeof(loc), &b), 302);
    free(b.data);
    assert_int_equal(strncmp(loc, REDIRECT "?", strlen(REDIRECT) + 1), 0);
    assert_int_equal(query_get(loc, "code", code, 128), 0);
    assert_int_equal(query_get(loc, "state", state, 128), 0);
}


/* A whole login through provider; the callback's verdict. */
static int
login(const char *provider, const char *extra, users_oauth_identity_t *id)
{
    users_oauth_callback_t  cb;
    users_oauth_start_t     st;
    char                    code[128], state[128];

    authorize(provider, extra, &st, code, state);
    memset(&cb, 0, sizeof(cb));
    cb.state = state;
    cb.state_cookie = st.pending.state;
    cb.code = code;
    err[0] = '\0';
    return users_oauth_callback(oa, provider, &cb, &store, id, err,
                                sizeof(err));
}


/* ---- the fixture ------------------------------------------------------ */

static void
fixture_start(void)
{
    FILE  *out;
    int    fd[2];

    assert_int_equal(pipe(fd), 0);
    fixture_pid = fork();
    assert_true(fixture_pid >= 0);
    if (fixture_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execl(fixture_path, fixture_path, "--port", "0", "--client-id",
              CLIENT_ID, "--client-secret", CLIENT_SECRET, (char *) NULL);
        _exit(127);
    }
    close(fd[1]);
    out = fdopen(fd[0], "r");
    assert_non_null(out);
    assert_non_null(fgets(issuer, sizeof(issuer), out));
    fclose(out);
    issuer[strcspn(issuer, "\n")] = '\0';
    assert_int_equal(strncmp(issuer, "http://127.0.0.1:", 17), 0);
}


static int
group_setup(void **state)
{
    char   url[128];
    FILE  *f;
    int    fd;

    fixture_start();
    /* "local": generic, discovered, client_secret_basic */
    setenv("KORDON_OAUTH_PROVIDERS", "local, localpost,down", 1);
    setenv("KORDON_OAUTH_LOCAL_ISSUER", issuer, 1);
    setenv("KORDON_OAUTH_LOCAL_CLIENT_ID", CLIENT_ID, 1);
    setenv("KORDON_OAUTH_LOCAL_CLIENT_SECRET", CLIENT_SECRET, 1);
    setenv("KORDON_OAUTH_REDIRECT_BASE", "http://127.0.0.1:9", 1);
    /* "localpost": endpoints given, client_secret_post, secret in a file */
    setenv("KORDON_OAUTH_LOCALPOST_PRESET", "oidc", 1);
    setenv("KORDON_OAUTH_LOCALPOST_ISSUER", issuer, 1);
    setenv("KORDON_OAUTH_LOCALPOST_CLIENT_ID", CLIENT_ID, 1);
    fd = mkstemp(secret_file);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", CLIENT_SECRET);
    fclose(f);
    setenv("KORDON_OAUTH_LOCALPOST_CLIENT_SECRET_FILE", secret_file, 1);
    setenv("KORDON_OAUTH_LOCALPOST_REDIRECT_URI", REDIRECT, 1);
    snprintf(url, sizeof(url), "%s/authorize", issuer);
    setenv("KORDON_OAUTH_LOCALPOST_AUTHORIZATION_ENDPOINT", url, 1);
    snprintf(url, sizeof(url), "%s/token", issuer);
    setenv("KORDON_OAUTH_LOCALPOST_TOKEN_ENDPOINT", url, 1);
    snprintf(url, sizeof(url), "%s/jwks", issuer);
    setenv("KORDON_OAUTH_LOCALPOST_JWKS_URI", url, 1);
    setenv("KORDON_OAUTH_LOCALPOST_TOKEN_AUTH", "post", 1);
    /* "down": nothing listens on port 1 */
    setenv("KORDON_OAUTH_DOWN_ISSUER", "http://127.0.0.1:1", 1);
    setenv("KORDON_OAUTH_DOWN_CLIENT_ID", CLIENT_ID, 1);
    setenv("KORDON_OAUTH_DOWN_CLIENT_SECRET", CLIENT_SECRET, 1);

    oa = users_oauth_new(err, sizeof(err));
    if (oa == NULL) {
        fail_msg("users_oauth_new: %s", err);
    }
    return 0;
}


static int
group_teardown(void **state)
{
    int  status;

    users_oauth_free(oa);
    if (fixture_pid > 0) {
        kill(fixture_pid, SIGTERM);
        waitpid(fixture_pid, &status, 0);
    }
    unlink(secret_file);
    return 0;
}


/* Every switch back to good, and no pending login left over. */
static int
reset(void **state)
{
    control("reset=1", NULL);
    memset(store_entries, 0, sizeof(store_entries));
    return 0;
}


/* ---- the flow --------------------------------------------------------- */

static void
test_full_flow(void **state)
{
    users_oauth_identity_t   id;
    users_oauth_pending_t   *p;
    users_oauth_start_t      st;
    unsigned char            md[32];
    char                     v[512], challenge[64];

    assert_int_equal(users_oauth_start(oa, "local", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    p = store_find(st.pending.state);
    assert_non_null(p);
    assert_int_equal(strlen(p->state), 43);
    assert_int_equal(strlen(p->nonce), 43);
    assert_int_equal(strlen(p->verifier), 43);
    assert_string_not_equal(p->state, p->nonce);

    /* the URL carries the discovered endpoint and S256 of the verifier */
    snprintf(v, sizeof(v), "%s/authorize?", issuer);
    assert_int_equal(strncmp(st.url, v, strlen(v)), 0);
    SHA256((const unsigned char *) p->verifier, 43, md);
    users_oauth_b64url(md, sizeof(md), challenge);
    assert_int_equal(query_get(st.url, "code_challenge", v, sizeof(v)), 0);
    assert_string_equal(v, challenge);
    assert_int_equal(query_get(st.url, "code_challenge_method", v,
                               sizeof(v)), 0);
    assert_string_equal(v, "S256");
    assert_int_equal(query_get(st.url, "state", v, sizeof(v)), 0);
    assert_string_equal(v, p->state);
    assert_int_equal(query_get(st.url, "redirect_uri", v, sizeof(v)), 0);
    assert_string_equal(v, REDIRECT);
    assert_int_equal(query_get(st.url, "scope", v, sizeof(v)), 0);
    assert_string_equal(v, "openid email");
    /* the verifier itself never leaves the server */
    assert_null(strstr(st.url, p->verifier));

    assert_int_equal(login("local", "&test_sub=u-42&test_email="
                           "jane%40example.com", &id), USERS_OAUTH_OK);
    assert_string_equal(id.provider, "local");
    assert_string_equal(id.sub, "u-42");
    assert_string_equal(id.email, "jane@example.com");
    assert_int_equal(id.email_verified, 1);
    /* two starts: one left pending (the first), the login's consumed */
    assert_int_equal(store_count(), 1);
}


static void
test_unverified_email(void **state)
{
    users_oauth_identity_t  id;

    assert_int_equal(login("local", "&test_sub=u-7&test_email=x%40y.z"
                           "&test_email_verified=false", &id),
                     USERS_OAUTH_OK);
    assert_string_equal(id.email, "x@y.z");
    assert_int_equal(id.email_verified, 0);
}


static void
test_user_from_header(void **state)
{
    users_oauth_identity_t  id;
    int                     rc;

    browser_header = "X-Test-User: apple-000123 bob@example.org false";
    rc = login("local", NULL, &id);
    browser_header = NULL;
    assert_int_equal(rc, USERS_OAUTH_OK);
    assert_string_equal(id.sub, "apple-000123");
    assert_string_equal(id.email, "bob@example.org");
    assert_int_equal(id.email_verified, 0);
}


static void
test_client_secret_post(void **state)
{
    users_oauth_identity_t  id;

    assert_int_equal(login("localpost", NULL, &id), USERS_OAUTH_OK);
    assert_string_equal(id.provider, "localpost");
    assert_string_equal(id.email, "jane@example.com");
}


/* ---- state ---------------------------------------------------------- */

static void
test_state_mismatch(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st, other;
    char                    code[128], st_q[128];
    long                    hits;

    authorize("local", NULL, &st, code, st_q);
    assert_int_equal(users_oauth_start(oa, "local", &store, &other, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    hits = control("", "token_hits");
    memset(&cb, 0, sizeof(cb));
    cb.code = code;
    cb.state = st_q;

    /* another browser's cookie, no cookie, a cookie one char short */
    cb.state_cookie = other.pending.state;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
    assert_non_null(strstr(err, "state"));
    assert_string_equal(id.sub, "");
    cb.state_cookie = NULL;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
    st.pending.state[42] = '\0';
    cb.state_cookie = st.pending.state;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
    /* the code never reached the provider */
    assert_int_equal(control("", "token_hits"), hits);
    assert_int_equal(users_oauth_http_status(USERS_OAUTH_STATE), 400);
}


static void
test_state_unknown_or_used(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st;
    char                    code[128], st_q[128], forged[44];

    /* a state we never issued, even with a matching cookie */
    assert_int_equal(users_oauth_random(forged), 0);
    memset(&cb, 0, sizeof(cb));
    cb.state = forged;
    cb.state_cookie = forged;
    cb.code = "whatever";
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
    assert_non_null(strstr(err, "unknown"));

    /* a state for another provider */
    authorize("local", NULL, &st, code, st_q);
    cb.state = st_q;
    cb.state_cookie = st.pending.state;
    cb.code = code;
    assert_int_equal(users_oauth_callback(oa, "localpost", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);

    /* the right one works once */
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)), USERS_OAUTH_OK);
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
}


static void
test_state_expired(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st;
    char                    code[128], st_q[128];

    authorize("local", NULL, &st, code, st_q);
    store_find(st_q)->created -= USERS_OAUTH_STATE_TTL_S + 1;
    memset(&cb, 0, sizeof(cb));
    cb.state = st_q;
    cb.state_cookie = st.pending.state;
    cb.code = code;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_STATE);
    assert_non_null(strstr(err, "expired"));
}


static void
test_provider_error(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st;

    assert_int_equal(users_oauth_start(oa, "local", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    memset(&cb, 0, sizeof(cb));
    cb.state = st.pending.state;
    cb.state_cookie = st.pending.state;
    cb.error = "access_denied";
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_DENIED);
    assert_non_null(strstr(err, "access_denied"));
    /* the state is spent all the same */
    assert_int_equal(store_count(), 0);
}


/* ---- the code --------------------------------------------------------- */

static void
test_replayed_code(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_pending_t   saved;
    users_oauth_start_t     st;
    char                    code[128], st_q[128];

    authorize("local", NULL, &st, code, st_q);
    saved = *store_find(st_q);
    memset(&cb, 0, sizeof(cb));
    cb.state = st_q;
    cb.state_cookie = st.pending.state;
    cb.code = code;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)), USERS_OAUTH_OK);

    /* the same code again, even with its state and verifier restored */
    assert_int_equal(store_put(NULL, "local", &saved), 0);
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_GRANT);
    assert_non_null(strstr(err, "invalid_grant"));
    assert_string_equal(id.sub, "");
}


static void
test_wrong_verifier(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st;
    char                    code[128], st_q[128];

    authorize("local", NULL, &st, code, st_q);
    /* an attacker holding the code but not the verifier */
    assert_int_equal(users_oauth_random(store_find(st_q)->verifier), 0);
    memset(&cb, 0, sizeof(cb));
    cb.state = st_q;
    cb.state_cookie = st.pending.state;
    cb.code = code;
    assert_int_equal(users_oauth_callback(oa, "local", &cb, &store, &id,
                                          err, sizeof(err)),
                     USERS_OAUTH_GRANT);
}


/* ---- the id_token ------------------------------------------------------ */

static void
refused(const char *sw, const char *why)
{
    users_oauth_identity_t  id;

    control(sw, NULL);
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_TOKEN);
    if (strstr(err, why) == NULL) {
        fail_msg("%s: \"%s\" lacks \"%s\"", sw, err, why);
    }
    assert_string_equal(id.sub, "");
    assert_string_equal(id.email, "");
    control("reset=1", NULL);
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
}


static void
test_bad_signature(void **state)
{
    refused("sig=other", "signature does not verify");
}


static void
test_alg_none(void **state)
{
    refused("sig=none", "alg \"none\" is not allowed");
}


static void
test_alg_hs256_with_public_key(void **state)
{
    refused("sig=hs256", "alg \"HS256\" is not allowed");
}


static void
test_wrong_nonce(void **state)
{
    refused("nonce=wrong", "nonce");
}


static void
test_wrong_audience(void **state)
{
    refused("aud=wrong", "audience");
}


static void
test_wrong_issuer(void **state)
{
    refused("iss=wrong", "issuer");
}


static void
test_expired_token(void **state)
{
    refused("exp=past", "expired");
    assert_int_equal(users_oauth_http_status(USERS_OAUTH_TOKEN), 401);
}


static void
test_jwks_cached_and_rotated(void **state)
{
    users_oauth_identity_t  id;
    long                    hits;

    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
    hits = control("", "jwks_hits");
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
    assert_int_equal(control("", "jwks_hits"), hits);

    /* a new kid: fetched once more, then cached again */
    control("rotate=1", NULL);
    oa->p[0].jwks_fetched -= USERS_OAUTH_JWKS_REFETCH_MIN_S;
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
    assert_int_equal(login("local", NULL, &id), USERS_OAUTH_OK);
    assert_int_equal(control("", "jwks_hits"), hits + 1);
}


/*
 * One of several threads logging in at once, as the kit's pool would:
 * no cmocka assertion here (they are not thread-safe), only a count of
 * logins that ended with the right person.
 */
static void *
concurrent_logins(void *arg)
{
    users_oauth_callback_t   cb;
    users_oauth_identity_t   id;
    users_oauth_start_t      st;
    users_oauth_buf_t        b = { NULL, 0 };
    char                     e[256], loc[USERS_OAUTH_AUTH_URL_MAX];
    char                     code[128], st_q[128], *redirect;
    CURL                    *h;
    int                      i, *ok = arg;

    for (i = 0; i < 5; i++) {
        if (users_oauth_start(oa, "local", &store, &st, e, sizeof(e))
            != USERS_OAUTH_OK || (h = curl_easy_init()) == NULL)
        {
            continue;
        }
        redirect = NULL;
        curl_easy_setopt(h, CURLOPT_URL, st.url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, users_oauth_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        if (curl_easy_perform(h) == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect);
        }
        snprintf(loc, sizeof(loc), "%s", redirect ? redirect : "");
        curl_easy_cleanup(h);
        free(b.data);
        b.data = NULL;
        b.len = 0;
        memset(&cb, 0, sizeof(cb));
        cb.state = st_q;
        cb.state_cookie = st.pending.state;
        cb.code = code;
        if (query_get(loc, "code", code, sizeof(code)) == 0
            && query_get(loc, "state", st_q, sizeof(st_q)) == 0
            && users_oauth_callback(oa, "local", &cb, &store, &id, e,
                                    sizeof(e)) == USERS_OAUTH_OK
            && strcmp(id.sub, "248289761001") == 0)
        {
            (*ok)++;
        }
    }
    return NULL;
}


static void
test_concurrent_logins(void **state)
{
    pthread_t  t[4];
    int        ok[4] = { 0 }, i;

    /* a stale cache: the threads meet at the refetch, under the lock */
    oa->p[0].jwks_fetched -= USERS_OAUTH_JWKS_TTL_S + 1;
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, concurrent_logins,
                                        &ok[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ok[i], 5);
    }
    assert_int_equal(store_count(), 0);
}


/* ---- providers -------------------------------------------------------- */

static void
test_unknown_and_unreachable(void **state)
{
    users_oauth_callback_t  cb;
    users_oauth_identity_t  id;
    users_oauth_start_t     st;

    assert_int_equal(users_oauth_start(oa, "nope", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_UNKNOWN);
    assert_int_equal(users_oauth_http_status(USERS_OAUTH_UNKNOWN), 404);
    memset(&cb, 0, sizeof(cb));
    assert_int_equal(users_oauth_callback(oa, "nope", &cb, &store, &id, err,
                                          sizeof(err)), USERS_OAUTH_UNKNOWN);
    assert_false(users_oauth_has(oa, "nope"));
    assert_true(users_oauth_has(oa, "local"));

    assert_int_equal(users_oauth_start(oa, "down", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_UNAVAILABLE);
    assert_non_null(strstr(err, "could not reach"));
    assert_int_equal(users_oauth_http_status(USERS_OAUTH_UNAVAILABLE), 502);
    assert_int_equal(store_count(), 0);
}


/* users_oauth_new() with KORDON_OAUTH_PROVIDERS=name and vars "K=V;..." */
static users_oauth_t *
config(const char *name, const char *vars)
{
    users_oauth_t  *o;
    char            buf[1024], *kv, *save, *eq;

    setenv("KORDON_OAUTH_PROVIDERS", name, 1);
    snprintf(buf, sizeof(buf), "%s", vars);
    for (kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save))
    {
        eq = strchr(kv, '=');
        *eq = '\0';
        setenv(kv, eq + 1, 1);
    }
    err[0] = '\0';
    o = users_oauth_new(err, sizeof(err));
    snprintf(buf, sizeof(buf), "%s", vars);
    for (kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save))
    {
        *strchr(kv, '=') = '\0';
        unsetenv(kv);
    }
    return o;
}


static void
test_config(void **state)
{
    users_oauth_identity_t   id;
    users_oauth_start_t      st;
    users_oauth_t           *o;
    const char              *want;
    json_t                  *c;
    char                     v[256];

    /* google: the preset's endpoints, no network needed to start */
    o = config("google", "KORDON_OAUTH_GOOGLE_CLIENT_ID=g-1;"
               "KORDON_OAUTH_GOOGLE_CLIENT_SECRET=x");
    assert_non_null(o);
    assert_int_equal(users_oauth_start(o, "google", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    want = "https://accounts.google.com/o/oauth2/v2/auth?"
           "response_type=code&client_id=g-1&";
    assert_int_equal(strncmp(st.url, want, strlen(want)), 0);
    assert_int_equal(query_get(st.url, "redirect_uri", v, sizeof(v)), 0);
    assert_string_equal(v, "http://127.0.0.1:9/v1/auth/oauth/google/"
                        "callback");
    /* Google's id_tokens may name its issuer without the scheme */
    c = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}",
                  "iss", "accounts.google.com", "aud", "g-1",
                  "exp", (json_int_t) time(NULL) + 60,
                  "iat", (json_int_t) time(NULL), "nonce", "n", "sub", "1");
    assert_null(users_oauth_claims_check(&o->p[0], c, "n"));
    json_object_set_new(c, "iss", json_string("https://accounts.google.com"));
    assert_null(users_oauth_claims_check(&o->p[0], c, "n"));
    json_object_set_new(c, "iss", json_string("accounts.google.com.evil"));
    assert_non_null(users_oauth_claims_check(&o->p[0], c, "n"));
    json_decref(c);
    users_oauth_free(o);

    /* apple asks for form_post */
    o = config("apple", "KORDON_OAUTH_APPLE_CLIENT_ID=a;"
               "KORDON_OAUTH_APPLE_CLIENT_SECRET=x");
    assert_non_null(o);
    assert_int_equal(users_oauth_start(o, "apple", &store, &st, err,
                                       sizeof(err)), USERS_OAUTH_OK);
    assert_int_equal(query_get(st.url, "response_mode", v, sizeof(v)), 0);
    assert_string_equal(v, "form_post");
    assert_true(users_oauth_form_post(o, "apple"));
    /* Apple's email_verified is a string */
    c = json_pack("{s:s, s:s, s:s}", "sub", "000123.abc", "email",
                  "a@privaterelay.appleid.com", "email_verified", "true");
    users_oauth_identity(&o->p[0], c, &id);
    assert_int_equal(id.email_verified, 1);
    json_decref(c);
    users_oauth_free(o);

    /* vk: its email is masked, never reported verified */
    o = config("vk", "KORDON_OAUTH_VK_CLIENT_ID=c;"
               "KORDON_OAUTH_VK_CLIENT_SECRET=x;"
               "KORDON_OAUTH_VK_ISSUER=https://id.vk.com;"
               "KORDON_OAUTH_VK_JWKS_URI=https://id.vk.com/jwks");
    assert_non_null(o);
    assert_false(users_oauth_form_post(o, "vk"));
    c = json_pack("{s:s, s:s, s:b}", "sub", "1", "email", "i***@mail.ru",
                  "email_verified", 1);
    users_oauth_identity(&o->p[0], c, &id);
    assert_string_equal(id.email, "i***@mail.ru");
    assert_int_equal(id.email_verified, 0);
    json_decref(c);
    users_oauth_free(o);

    /* refused, each naming its variable */
    assert_null(config("acme", "KORDON_OAUTH_ACME_CLIENT_SECRET=x;"
                       "KORDON_OAUTH_ACME_ISSUER=https://acme.example"));
    assert_non_null(strstr(err, "\"KORDON_OAUTH_ACME_CLIENT_ID\""));
    assert_null(config("acme", "KORDON_OAUTH_ACME_CLIENT_ID=c;"
                       "KORDON_OAUTH_ACME_CLIENT_SECRET=x;"
                       "KORDON_OAUTH_ACME_ISSUER=http://acme.example"));
    assert_non_null(strstr(err, "\"KORDON_OAUTH_ACME_ISSUER\" is malformed"));
    assert_null(config("vk", "KORDON_OAUTH_VK_CLIENT_ID=c;"
                       "KORDON_OAUTH_VK_CLIENT_SECRET=x"));
    assert_non_null(strstr(err, "\"KORDON_OAUTH_VK_ISSUER\""));
    assert_null(config("acme", "KORDON_OAUTH_ACME_CLIENT_ID=c;"
                       "KORDON_OAUTH_ACME_CLIENT_SECRET=x;"
                       "KORDON_OAUTH_ACME_ISSUER=https://a.example;"
                       "KORDON_OAUTH_ACME_TOKEN_ENDPOINT=https://a.example/t"
                       ));
    assert_non_null(strstr(err, "AUTHORIZATION_ENDPOINT"));
    assert_null(config("acme", "KORDON_OAUTH_ACME_CLIENT_ID=c;"
                       "KORDON_OAUTH_ACME_CLIENT_SECRET=x;"
                       "KORDON_OAUTH_ACME_ISSUER=https://a.example;"
                       "KORDON_OAUTH_ACME_SCOPES=email profile"));
    assert_non_null(strstr(err, "\"KORDON_OAUTH_ACME_SCOPES\" is malformed"));
    assert_null(config("Acme", ""));
    assert_non_null(strstr(err, "KORDON_OAUTH_PROVIDERS"));
    assert_null(config("acme,acme", ""));

    /* none configured: social login off, every provider unknown */
    o = config("", "");
    assert_non_null(o);
    assert_false(users_oauth_has(o, "google"));
    users_oauth_free(o);
}


/* An ES256 JWK (P-256) verifies a token libjwt signed with its key. */
static void
test_es256_jwk(void **state)
{
    users_oauth_key_t   k;
    unsigned char       x[32], y[32];
    EVP_PKEY           *pkey;
    BIGNUM             *bx = NULL, *by = NULL;
    json_t             *jwk;
    jwt_t              *jwt, *out;
    char               *priv, *tok, bx64[64], by64[64];
    BIO                *bio;
    long                len;

    pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    assert_true(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx));
    assert_true(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by));
    BN_bn2binpad(bx, x, 32);
    BN_bn2binpad(by, y, 32);
    users_oauth_b64url(x, 32, bx64);
    users_oauth_b64url(y, 32, by64);
    jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256",
                    "kid", "ec1", "x", bx64, "y", by64);
    assert_int_equal(users_oauth_jwk(jwk, &k), 0);
    assert_int_equal(k.alg, JWT_ALG_ES256);

    /* an RS256 alg on an EC key is refused */
    json_object_set_new(jwk, "alg", json_string("RS256"));
    assert_int_equal(users_oauth_jwk(jwk, &(users_oauth_key_t) { 0 }), -1);
    json_decref(jwk);

    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    len = BIO_get_mem_data(bio, &priv);
    assert_int_equal(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "sub", "s");
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256,
                                 (unsigned char *) priv, (int) len), 0);
    tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    assert_int_equal(jwt_decode(&out, tok, (unsigned char *) k.pem,
                                (int) strlen(k.pem)), 0);
    jwt_free(out);
    free(tok);
    jwt_free(jwt);
    BIO_free(bio);
    free(k.pem);
    BN_free(bx);
    BN_free(by);
    EVP_PKEY_free(pkey);
}


int
main(int argc, char **argv)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(test_full_flow, reset),
        cmocka_unit_test_setup(test_unverified_email, reset),
        cmocka_unit_test_setup(test_user_from_header, reset),
        cmocka_unit_test_setup(test_client_secret_post, reset),
        cmocka_unit_test_setup(test_state_mismatch, reset),
        cmocka_unit_test_setup(test_state_unknown_or_used, reset),
        cmocka_unit_test_setup(test_state_expired, reset),
        cmocka_unit_test_setup(test_provider_error, reset),
        cmocka_unit_test_setup(test_replayed_code, reset),
        cmocka_unit_test_setup(test_wrong_verifier, reset),
        cmocka_unit_test_setup(test_bad_signature, reset),
        cmocka_unit_test_setup(test_alg_none, reset),
        cmocka_unit_test_setup(test_alg_hs256_with_public_key, reset),
        cmocka_unit_test_setup(test_wrong_nonce, reset),
        cmocka_unit_test_setup(test_wrong_audience, reset),
        cmocka_unit_test_setup(test_wrong_issuer, reset),
        cmocka_unit_test_setup(test_expired_token, reset),
        cmocka_unit_test_setup(test_jwks_cached_and_rotated, reset),
        cmocka_unit_test_setup(test_concurrent_logins, reset),
        cmocka_unit_test_setup(test_unknown_and_unreachable, reset),
        cmocka_unit_test_setup(test_config, reset),
        cmocka_unit_test(test_es256_jwk),
    };
    char                     self[512];

    /* the fixture is built beside this binary (build/t or build/asan/t) */
    snprintf(self, sizeof(self), "%s", argv[0]);
    snprintf(fixture_path, sizeof(fixture_path), "%s/fixture-oidc",
             dirname(self));
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
