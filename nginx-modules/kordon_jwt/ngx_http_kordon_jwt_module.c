
/*
 * Kordon edge: the JWT module's directives and configuration.
 *
 * Everything that can be wrong with the configuration is found here, at
 * "nginx -t" time, not on the first request: the JWKS file is read and
 * every key in it validated by kordon_jwt_keys_load() when the directive
 * is parsed, the identity key is decoded, and the merge refuses a
 * location that turns "kordon_auth jwt" on without keys, audience or
 * identity key.  Each configuration cycle loads its own key sets (a
 * reload picks up a rotated JWKS) and frees them with the cycle's pool;
 * a file named twice in one cycle is loaded once.
 *
 * The merge also builds what the handler needs per location: the core's
 * kordon_jwt_conf_t (its strings point into the configuration, which
 * outlives every request) and a fingerprint of the checks that a cached
 * token must have passed (issuer, audience, type).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"


typedef struct {
    ngx_str_t                 name;
    ngx_uint_t                method;
} ngx_http_kordon_jwt_method_t;


static char *ngx_http_kordon_jwt_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static kordon_jwt_keys_t *ngx_http_kordon_jwt_keys_load(ngx_conf_t *cf,
    ngx_str_t *name);
static void ngx_http_kordon_jwt_keys_cleanup(void *data);
static char *ngx_http_kordon_jwt_identity_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_kordon_jwt_signer_cleanup(void *data);
static char *ngx_http_kordon_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_jwt_methods(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *methods);
static char *ngx_http_kordon_jwt_rule_names(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_kordon_jwt_rule_t *rule, ngx_uint_t first);
static ngx_int_t ngx_http_kordon_jwt_read_file(ngx_conf_t *cf,
    const char *what, ngx_str_t *name, size_t max, ngx_str_t *text);
static char *ngx_http_kordon_jwt_check_leeway(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_kordon_jwt_check_max_size(ngx_conf_t *cf, void *post,
    void *data);
static void *ngx_http_kordon_jwt_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_kordon_jwt_check_loc_conf(ngx_conf_t *cf,
    ngx_http_kordon_jwt_loc_conf_t *conf);
static ngx_int_t ngx_http_kordon_jwt_verify_conf(ngx_conf_t *cf,
    ngx_http_kordon_jwt_loc_conf_t *conf);
static ngx_int_t ngx_http_kordon_jwt_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_jwt_init_process(ngx_cycle_t *cycle);


static ngx_conf_post_handler_pt  ngx_http_kordon_jwt_leeway_post =
    ngx_http_kordon_jwt_check_leeway;

static ngx_conf_post_handler_pt  ngx_http_kordon_jwt_max_size_post =
    ngx_http_kordon_jwt_check_max_size;


static ngx_command_t  ngx_http_kordon_jwt_commands[] = {

    { ngx_string("kordon_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_jwt_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_jwt_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_jwt_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, issuer),
      NULL },

    { ngx_string("kordon_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, audience),
      NULL },

    { ngx_string("kordon_jwt_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, type),
      NULL },

    { ngx_string("kordon_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, leeway),
      &ngx_http_kordon_jwt_leeway_post },

    { ngx_string("kordon_jwt_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, max_size),
      &ngx_http_kordon_jwt_max_size_post },

    { ngx_string("kordon_require_roles"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_jwt_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, roles),
      NULL },

    { ngx_string("kordon_require_scopes"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_jwt_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, scopes),
      NULL },

    { ngx_string("kordon_identity_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_kordon_jwt_identity_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_kordon_jwt_loc_conf_t, identity),
      NULL },

    { ngx_string("kordon_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_kordon_jwt_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_jwt_revocations"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_jwt_revocations,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("kordon_apikeys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_jwt_apikeys,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_jwt_module_ctx = {
    ngx_http_kordon_jwt_add_variables,     /* preconfiguration */
    ngx_http_kordon_jwt_init,              /* postconfiguration */

    ngx_http_kordon_jwt_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_jwt_create_loc_conf,   /* create location configuration */
    ngx_http_kordon_jwt_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_jwt_module_ctx,       /* module context */
    ngx_http_kordon_jwt_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kordon_jwt_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_kordon_jwt_method_t  ngx_http_kordon_jwt_methods_names[] = {
    { ngx_string("GET"), NGX_HTTP_GET },
    { ngx_string("HEAD"), NGX_HTTP_HEAD },
    { ngx_string("POST"), NGX_HTTP_POST },
    { ngx_string("PUT"), NGX_HTTP_PUT },
    { ngx_string("DELETE"), NGX_HTTP_DELETE },
    { ngx_string("PATCH"), NGX_HTTP_PATCH },
    { ngx_string("OPTIONS"), NGX_HTTP_OPTIONS },
    { ngx_string("TRACE"), NGX_HTTP_TRACE },
    { ngx_string("MKCOL"), NGX_HTTP_MKCOL },
    { ngx_string("COPY"), NGX_HTTP_COPY },
    { ngx_string("MOVE"), NGX_HTTP_MOVE },
    { ngx_string("PROPFIND"), NGX_HTTP_PROPFIND },
    { ngx_string("PROPPATCH"), NGX_HTTP_PROPPATCH },
    { ngx_string("LOCK"), NGX_HTTP_LOCK },
    { ngx_string("UNLOCK"), NGX_HTTP_UNLOCK },
    { ngx_null_string, 0 }
};


/*
 * "kordon_auth jwt | apikey | jwt apikey | off": the credentials a
 * location accepts.  With both, a request with "Authorization: Bearer"
 * is judged by its token alone (X-Api-Key is then ignored); one without
 * it by its X-Api-Key.
 */

static char *
ngx_http_kordon_jwt_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_jwt_loc_conf_t *klcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, bit, auth;

    if (klcf->auth != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    auth = NGX_HTTP_KORDON_AUTH_OFF;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "off") == 0 && cf->args->nelts == 2) {
            break;
        }

        if (ngx_strcmp(value[i].data, "jwt") == 0) {
            bit = NGX_HTTP_KORDON_AUTH_JWT;

        } else if (ngx_strcmp(value[i].data, "apikey") == 0) {
            bit = NGX_HTTP_KORDON_AUTH_APIKEY;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\", expected \"jwt\", "
                               "\"apikey\" or \"off\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (auth & bit) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is listed twice", &value[i]);
            return NGX_CONF_ERROR;
        }

        auth |= bit;
    }

    klcf->auth = auth;
    klcf->file = cf->conf_file->file.name.data;
    klcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_jwt_loc_conf_t *klcf = conf;

    ngx_str_t                         *value, name;
    ngx_uint_t                         i;
    ngx_http_kordon_jwt_keys_t        *ks, **ksp;
    ngx_http_kordon_jwt_main_conf_t   *kmcf;

    if (klcf->keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_jwt_module);

    ksp = kmcf->keysets.elts;

    for (i = 0; i < kmcf->keysets.nelts; i++) {
        if (ksp[i]->file.len == name.len
            && ngx_strncmp(ksp[i]->file.data, name.data, name.len) == 0)
        {
            klcf->keys = ksp[i];
            return NGX_CONF_OK;
        }
    }

    ks = ngx_palloc(cf->pool, sizeof(ngx_http_kordon_jwt_keys_t));
    if (ks == NULL) {
        return NGX_CONF_ERROR;
    }

    ks->file = name;
    ks->keys = ngx_http_kordon_jwt_keys_load(cf, &name);

    if (ks->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    ksp = ngx_array_push(&kmcf->keysets);
    if (ksp == NULL) {
        return NGX_CONF_ERROR;
    }

    *ksp = ks;
    klcf->keys = ks;

    return NGX_CONF_OK;
}


/*
 * Reads and loads a JWKS file; the keys are freed with the cycle's pool.
 * Returns NULL after logging what is wrong with the file.
 */

static kordon_jwt_keys_t *
ngx_http_kordon_jwt_keys_load(ngx_conf_t *cf, ngx_str_t *name)
{
    char                 err[KORDON_JWT_ERR_MAX];
    ngx_str_t            text;
    kordon_jwt_keys_t   *keys;
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_kordon_jwt_read_file(cf, "JWKS", name,
                                      NGX_HTTP_KORDON_JWT_FILE_MAX, &text)
        != NGX_OK)
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    err[0] = '\0';

    keys = kordon_jwt_keys_load((char *) text.data, text.len, err,
                                sizeof(err));
    if (keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid JWKS file \"%V\": %s", name, err);
        return NULL;
    }

    cln->handler = ngx_http_kordon_jwt_keys_cleanup;
    cln->data = keys;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "kordon jwt: %uz keys loaded from \"%V\"",
                   kordon_jwt_keys_count(keys), name);

    return keys;
}


static void
ngx_http_kordon_jwt_keys_cleanup(void *data)
{
    kordon_jwt_keys_free(data);
}


/*
 * "kordon_identity_key file": the hex key shared with the services,
 * turned into a signer (the key lives on only inside OpenSSL's HMAC
 * state, which is freed with the cycle's pool).  The file's text and the
 * decoded bytes are wiped at once; messages name the file, never a byte
 * of it.
 */

static char *
ngx_http_kordon_jwt_identity_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_kordon_jwt_loc_conf_t *klcf = conf;

    int                  n;
    u_char               key[KORDON_IDENTITY_KEY_MAX];
    ngx_str_t           *value, name, text;
    ngx_pool_cleanup_t  *cln;

    if (klcf->identity != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kordon_jwt_read_file(cf, "identity key", &name,
                                      KORDON_IDENTITY_KEY_TEXT_MAX, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    n = kordon_identity_key_decode((char *) text.data, text.len, key,
                                   sizeof(key));

    ngx_explicit_memzero(text.data, text.len);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid identity key file \"%V\": %s", &name,
                           n == KORDON_IDENTITY_ESHORT
                           ? "shorter than 32 bytes (64 hex digits)"
                           : n == KORDON_IDENTITY_ELONG
                           ? "longer than 64 bytes (128 hex digits)"
                           : "expected hex digits only");
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_explicit_memzero(key, sizeof(key));
        return NGX_CONF_ERROR;
    }

    klcf->identity = kordon_identity_signer_new(key, n);

    ngx_explicit_memzero(key, sizeof(key));

    if (klcf->identity == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "could not set up HMAC-SHA256 for identity key "
                           "file \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_kordon_jwt_signer_cleanup;
    cln->data = klcf->identity;

    return NGX_CONF_OK;
}


static void
ngx_http_kordon_jwt_signer_cleanup(void *data)
{
    kordon_identity_signer_free(data);
}


/*
 * "kordon_require_roles [methods=GET,HEAD] role ...", and the same for
 * scopes.  A rule with methods= covers those methods; the one without
 * covers every method that no rule of its kind names.  A method named
 * twice, or two rules without methods=, are errors.
 */

static char *
ngx_http_kordon_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                    *value;
    ngx_uint_t                    i, first, methods;
    ngx_array_t                 **rules;
    ngx_http_kordon_jwt_rule_t   *rule;

    rules = (ngx_array_t **) ((char *) conf + cmd->offset);

    if (*rules == NULL) {
        *rules = ngx_array_create(cf->pool, 2,
                                  sizeof(ngx_http_kordon_jwt_rule_t));
        if (*rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;
    methods = 0;
    first = 1;

    if (ngx_strncmp(value[1].data, "methods=", 8) == 0) {
        if (ngx_http_kordon_jwt_methods(cf, &value[1], &methods)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        first = 2;
    }

    if (first == cf->args->nelts) {
        return "needs at least one name";
    }

    rule = (*rules)->elts;

    for (i = 0; i < (*rules)->nelts; i++) {
        if (methods == 0 && rule[i].methods == 0) {
            return "without \"methods=\" is duplicate";
        }

        if (methods & rule[i].methods) {
            return "names a method that another one names";
        }
    }

    rule = ngx_array_push(*rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->methods = methods;
    rule->file = cf->conf_file->file.name.data;
    rule->line = cf->conf_file->line;

    return ngx_http_kordon_jwt_rule_names(cf, cmd, rule, first);
}


static char *
ngx_http_kordon_jwt_methods(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *methods)
{
    u_char                        *p, *last, *comma;
    ngx_str_t                      m;
    ngx_http_kordon_jwt_method_t  *name;

    p = value->data + 8;
    last = value->data + value->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');

        m.data = p;
        m.len = (comma ? comma : last) - p;

        for (name = ngx_http_kordon_jwt_methods_names; name->name.len;
             name++)
        {
            if (name->name.len == m.len
                && ngx_strncmp(name->name.data, m.data, m.len) == 0)
            {
                break;
            }
        }

        if (name->name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown method \"%V\" in \"%V\"", &m, value);
            return NGX_CONF_ERROR;
        }

        *methods |= name->method;

        p = comma ? comma + 1 : last;
    }

    if (*methods == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no method in \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Copies the names of a rule.  A role holding "," and a scope holding a
 * space could never match a token (the core refuses such roles, and the
 * scope claim is split on spaces), so they are refused here.
 */

static char *
ngx_http_kordon_jwt_rule_names(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_kordon_jwt_rule_t *rule, ngx_uint_t first)
{
    u_char       sep;
    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    sep = (cmd->offset == offsetof(ngx_http_kordon_jwt_loc_conf_t, roles))
          ? ',' : ' ';

    if (ngx_array_init(&rule->names, cf->pool, cf->args->nelts - first,
                       sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = first; i < cf->args->nelts; i++) {

        if (value[i].len == 0
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, sep)
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, ',')
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '"'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid name \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(&rule->names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * Reads a whole file of at most max bytes into cf->temp_pool memory.
 * Returns NGX_ERROR after an "nginx -t" message that names the file.
 */

static ngx_int_t
ngx_http_kordon_jwt_read_file(ngx_conf_t *cf, const char *what,
    ngx_str_t *name, size_t max, ngx_str_t *text)
{
    off_t            size;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "could not open %s file \"%V\"", what, name);
        return NGX_ERROR;
    }

    n = NGX_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "could not read %s file \"%V\"", what, name);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (size <= 0 || (size_t) size > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s file \"%V\" is empty or larger than %uz "
                           "bytes", what, name, max);
        goto done;
    }

    text->data = ngx_pnalloc(cf->temp_pool, (size_t) size);
    if (text->data == NULL) {
        goto done;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.fd = fd;
    file.name = *name;
    file.log = cf->log;

    n = ngx_read_file(&file, text->data, (size_t) size, 0);

    if (n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, n == NGX_ERROR ? ngx_errno : 0,
                           "could not read %s file \"%V\"", what, name);
        n = NGX_ERROR;
    }

    text->len = (n == NGX_ERROR) ? 0 : (size_t) n;

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", name);
    }

    return (n == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


static char *
ngx_http_kordon_jwt_check_leeway(ngx_conf_t *cf, void *post, void *data)
{
    time_t  *sp = data;

    if (*sp > KORDON_JWT_LEEWAY_MAX_S) {
        return "must be at most 1h";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_jwt_check_max_size(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp == 0 || *sp > KORDON_JWT_SIZE_MAX) {
        return "must be between 1 and 16k";
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_kordon_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    kmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_jwt_main_conf_t));
    if (kmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     kmcf->cache = NULL;
     *     kmcf->revoked = NULL;
     *     kmcf->revoked_data = NULL;
     */

    if (ngx_array_init(&kmcf->keysets, cf->pool, 2,
                       sizeof(ngx_http_kordon_jwt_keys_t *))
        != NGX_OK)
    {
        return NULL;
    }

    kmcf->cache_max_ttl = NGX_CONF_UNSET;
    kmcf->request_id_index = NGX_ERROR;

    return kmcf;
}


static void *
ngx_http_kordon_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_jwt_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_jwt_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->issuer = { 0, NULL };
     *     conf->audience = { 0, NULL };
     *     conf->type = { 0, NULL };
     *     conf->roles = NULL;
     *     conf->scopes = NULL;
     *     conf->verify_fp = 0;
     *     conf->file = NULL;
     *     conf->line = 0;
     */

    conf->auth = NGX_CONF_UNSET_UINT;
    conf->keys = NGX_CONF_UNSET_PTR;
    conf->leeway = NGX_CONF_UNSET;
    conf->max_size = NGX_CONF_UNSET_SIZE;
    conf->identity = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_kordon_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_jwt_loc_conf_t *prev = parent;
    ngx_http_kordon_jwt_loc_conf_t *conf = child;

    if (conf->auth == NGX_CONF_UNSET_UINT) {
        conf->file = prev->file;
        conf->line = prev->line;
    }

    ngx_conf_merge_uint_value(conf->auth, prev->auth,
                              NGX_HTTP_KORDON_AUTH_OFF);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_str_value(conf->type, prev->type, "");
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 30);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size,
                              KORDON_JWT_SIZE_DEFAULT);
    ngx_conf_merge_ptr_value(conf->identity, prev->identity, NULL);

    if (conf->roles == NULL) {
        conf->roles = prev->roles;
    }

    if (conf->scopes == NULL) {
        conf->scopes = prev->scopes;
    }

    if (ngx_http_kordon_jwt_check_loc_conf(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_kordon_jwt_verify_conf(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * What a location with "kordon_auth jwt" needs, and roles or scopes only
 * where a token is checked.  Named with the place of the directive, as
 * the merge itself runs at the end of the http block.
 */

static char *
ngx_http_kordon_jwt_check_loc_conf(ngx_conf_t *cf,
    ngx_http_kordon_jwt_loc_conf_t *conf)
{
    char                             *need;
    ngx_array_t                      *rules;
    ngx_http_kordon_jwt_rule_t       *rule;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    if (conf->auth == NGX_HTTP_KORDON_AUTH_OFF) {
        rules = conf->roles ? conf->roles : conf->scopes;

        if (rules == NULL) {
            return NGX_CONF_OK;
        }

        rule = rules->elts;

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" needs \"kordon_auth\" in %s:%ui",
                      rules == conf->roles ? "kordon_require_roles"
                                           : "kordon_require_scopes",
                      rule->file, rule->line);
        return NGX_CONF_ERROR;
    }

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_jwt_module);

    need = conf->identity == NULL ? "kordon_identity_key" : NULL;

    if (conf->auth & NGX_HTTP_KORDON_AUTH_JWT) {
        need = conf->keys == NULL ? "kordon_jwt_keys"
               : conf->audience.len == 0 ? "kordon_jwt_audience"
               : need;
    }

    if ((conf->auth & NGX_HTTP_KORDON_AUTH_APIKEY) && kmcf->apikeys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"kordon_auth apikey\" needs \"kordon_apikeys\" "
                      "in %s:%ui", conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    if (need) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"kordon_auth %s\" needs \"%s\" in %s:%ui",
                      (conf->auth & NGX_HTTP_KORDON_AUTH_JWT) ? "jwt"
                                                              : "apikey",
                      need, conf->file, conf->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The core's conf for the location, and the fingerprint of the checks a
 * cached token passed: a token verified for one audience must not be a
 * cache hit where another audience is required.  The leeway and the size
 * are checked again on every hit, so they need not be part of it.
 */

static ngx_int_t
ngx_http_kordon_jwt_verify_conf(ngx_conf_t *cf,
    ngx_http_kordon_jwt_loc_conf_t *conf)
{
    u_char             *p, *text;
    size_t              len;
    unsigned char       md[32];
    kordon_jwt_conf_t  *v;

    v = &conf->verify;

    kordon_jwt_conf_init(v);

    /* config strings end in a NUL: ngx_conf_read_token() puts one */

    v->max_size = conf->max_size;
    v->leeway_s = conf->leeway;
    v->iss = conf->issuer.len ? (char *) conf->issuer.data : NULL;
    v->aud = conf->audience.len ? (char *) conf->audience.data : NULL;
    v->typ = conf->type.len ? (char *) conf->type.data : NULL;

    len = 3 * (NGX_SIZE_T_LEN + 1) + conf->issuer.len + conf->audience.len
          + conf->type.len;

    text = ngx_pnalloc(cf->temp_pool, len);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(text, "%uz:%V%uz:%V%uz:%V",
                    conf->issuer.len, &conf->issuer,
                    conf->audience.len, &conf->audience,
                    conf->type.len, &conf->type);

    if (kordon_jwt_token_hash((char *) text, p - text, md) != KORDON_JWT_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(&conf->verify_fp, md, sizeof(uint64_t));

    return NGX_OK;
}


ngx_int_t
ngx_http_kordon_jwt_set_revocation(ngx_conf_t *cf,
    ngx_http_kordon_jwt_revoked_pt handler, void *data)
{
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_jwt_module);

    if (kmcf->revoked != NULL) {
        return NGX_ERROR;
    }

    kmcf->revoked = handler;
    kmcf->revoked_data = data;

    return NGX_OK;
}


/*
 * The handler goes into the access phase, nginx's phase for
 * authentication: after the rewrites (so the final location decides)
 * and after limit_req and limit_conn of the preaccess phase (so floods
 * are throttled before any signature is checked), with "satisfy" and the
 * other access modules.  Dynamic modules initialize after the built-in
 * ones and a phase runs its handlers last pushed first, so it runs
 * before allow/deny, auth_basic and auth_request.
 */

static ngx_int_t
ngx_http_kordon_jwt_init(ngx_conf_t *cf)
{
    ngx_str_t                         name;
    ngx_http_handler_pt              *h;
    ngx_http_core_main_conf_t        *cmcf;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_jwt_handler;

    kmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_kordon_jwt_module);

    ngx_str_set(&name, "request_id");

    kmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (kmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (kmcf->cache_max_ttl == NGX_CONF_UNSET) {
        kmcf->cache_max_ttl = NGX_HTTP_KORDON_JWT_MAX_TTL;
    }

    return ngx_http_kordon_jwt_init_identity(cf);
}


static ngx_int_t
ngx_http_kordon_jwt_init_process(ngx_cycle_t *cycle)
{
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_jwt_module);

    if (kmcf == NULL || kmcf->revocations == NULL) {
        return NGX_OK;
    }

    return ngx_http_kordon_jwt_revoke_init_process(cycle, kmcf->revocations);
}
