
/*
 * Kordon edge: what the files of ngx_http_kordon_jwt_module share.
 *
 *     ngx_http_kordon_jwt_module.c     directives, configuration, setup
 *     ngx_http_kordon_jwt_handler.c    the access phase handler
 *     ngx_http_kordon_jwt_identity.c   roles, scopes, signed identity
 *     ngx_http_kordon_jwt_cache.c      the shared cache of verified tokens
 *     ngx_http_kordon_jwt_variables.c  $kordon_jwt_*, $kordon_auth_error,
 *                                      $kordon_api_key_id
 *     ngx_http_kordon_jwt_revoke.c     revocations: Redis stream -> shm
 *     ngx_http_kordon_jwt_apikey.c     X-Api-Key, looked up in Redis
 *
 * The verification itself is kordon_jwt_core.c and the signature
 * kordon_identity_core.c, both free of nginx and unit-tested alone.
 * Other modules may use the last section of this file: the revocation
 * seam.
 */


#ifndef _NGX_HTTP_KORDON_JWT_H_INCLUDED_
#define _NGX_HTTP_KORDON_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon.h"
#include "kordon_jwt_core.h"
#include "kordon_identity_core.h"


/* the credentials "kordon_auth" accepts, a bit each */
#define NGX_HTTP_KORDON_AUTH_OFF          0x0000
#define NGX_HTTP_KORDON_AUTH_JWT          0x0001
#define NGX_HTTP_KORDON_AUTH_APIKEY       0x0002

/* $kordon_jwt_cache_status */
#define NGX_HTTP_KORDON_JWT_CACHE_NONE    0
#define NGX_HTTP_KORDON_JWT_CACHE_HIT     1
#define NGX_HTTP_KORDON_JWT_CACHE_MISS    2
#define NGX_HTTP_KORDON_JWT_CACHE_BYPASS  3

#define NGX_HTTP_KORDON_JWT_FILE_MAX      (1024 * 1024)  /* JWKS bytes */
#define NGX_HTTP_KORDON_JWT_MAX_TTL       600            /* seconds */


/* a JWKS file, loaded once per configuration cycle */

typedef struct {
    ngx_str_t                        file;
    kordon_jwt_keys_t               *keys;
} ngx_http_kordon_jwt_keys_t;


/*
 * One "kordon_require_roles" or "kordon_require_scopes": the methods it
 * covers (0: every method no other rule of its kind names) and the names.
 */

typedef struct {
    ngx_uint_t                       methods;
    ngx_array_t                      names;       /* of ngx_str_t */
    u_char                          *file;
    ngx_uint_t                       line;
} ngx_http_kordon_jwt_rule_t;


/*
 * The identity of a verified token, in request pool memory: what the
 * variables show, what the roles are checked against and what is
 * signed for the upstream.  roles are joined by ",", scope is the
 * token's space-separated "scope" as it came.
 */

typedef struct {
    ngx_str_t                        sub;
    ngx_str_t                        sid;
    ngx_str_t                        roles;
    ngx_str_t                        scope;
    int64_t                          exp;
    int64_t                          iat;
} ngx_http_kordon_jwt_identity_t;


/*
 * The revocation hook: returns NGX_OK when the identity may pass,
 * NGX_DECLINED when it is revoked (a not-before time of its user or
 * session is later than its iat), NGX_ERROR when it cannot tell.  It
 * runs in the access phase for every verified token, from the cache or
 * not, and must not block: it reads shared memory only.
 */

typedef struct ngx_http_kordon_revoke_s        ngx_http_kordon_revoke_t;
typedef struct ngx_http_kordon_apikeys_s       ngx_http_kordon_apikeys_t;
typedef struct ngx_http_kordon_apikey_entry_s  ngx_http_kordon_apikey_entry_t;


typedef ngx_int_t (*ngx_http_kordon_jwt_revoked_pt)(ngx_http_request_t *r,
    ngx_http_kordon_jwt_identity_t *id, void *data);


typedef struct {
    ngx_shm_zone_t                  *cache;
    time_t                           cache_max_ttl;

    ngx_array_t                      keysets;     /* of the _keys_t * */
    ngx_int_t                        request_id_index;

    ngx_http_kordon_jwt_revoked_pt   revoked;
    void                            *revoked_data;

    ngx_http_kordon_revoke_t        *revocations; /* kordon_jwt_revocations */
    ngx_http_kordon_apikeys_t       *apikeys;     /* kordon_apikeys */
} ngx_http_kordon_jwt_main_conf_t;


typedef struct {
    ngx_uint_t                       auth;
    ngx_http_kordon_jwt_keys_t      *keys;

    ngx_str_t                        issuer;
    ngx_str_t                        audience;
    ngx_str_t                        type;
    time_t                           leeway;
    size_t                           max_size;

    kordon_identity_signer_t        *identity;    /* kordon_identity_key */

    ngx_array_t                     *roles;       /* of the _rule_t */
    ngx_array_t                     *scopes;

    /* set by the merge: the core's conf and its fingerprint */
    kordon_jwt_conf_t                verify;
    uint64_t                         verify_fp;

    /* where "kordon_auth" was, for the errors of the merge */
    u_char                          *file;
    ngx_uint_t                       line;
} ngx_http_kordon_jwt_loc_conf_t;


/*
 * Per request; kept in a pool cleanup too, so that the variables still
 * see it in the log phase after an internal redirect cleared r->ctx.
 */

typedef struct {
    ngx_str_t                        token;
    ngx_http_kordon_jwt_identity_t   id;
    kordon_jwt_claims_t             *claims;      /* lazily, for claims */
    ngx_uint_t                       cache_status;

    ngx_str_t                        error;       /* $kordon_auth_error */
    const char                      *reason;      /* the problem's detail */

    ngx_str_t                        apikey_id;   /* $kordon_api_key_id */
    u_char                          *apikey_secret;
    ngx_http_kordon_apikey_entry_t  *apikey;      /* the record */

    unsigned                         verified:1;
    unsigned                         apikey_done:1;  /* record in apikey */
    unsigned                         resume:1;    /* run again by a reply */
} ngx_http_kordon_jwt_ctx_t;


/* ngx_http_kordon_jwt_handler.c */
ngx_int_t ngx_http_kordon_jwt_handler(ngx_http_request_t *r);
ngx_http_kordon_jwt_ctx_t *ngx_http_kordon_jwt_get_ctx(
    ngx_http_request_t *r);

ngx_int_t ngx_http_kordon_jwt_unavailable(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);

/* ngx_http_kordon_jwt_revoke.c */
char *ngx_http_kordon_jwt_revocations(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_kordon_jwt_revoke_init_process(ngx_cycle_t *cycle,
    ngx_http_kordon_revoke_t *rv);

/* ngx_http_kordon_jwt_apikey.c */
char *ngx_http_kordon_jwt_apikeys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_uint_t ngx_http_kordon_jwt_apikey_present(ngx_http_request_t *r);
ngx_int_t ngx_http_kordon_jwt_apikey(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);

/* ngx_http_kordon_jwt_identity.c */
ngx_int_t ngx_http_kordon_jwt_authorize(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *lcf, ngx_http_kordon_jwt_identity_t *id,
    ngx_str_t *detail);
ngx_int_t ngx_http_kordon_jwt_pass_identity(ngx_http_request_t *r,
    ngx_http_kordon_jwt_loc_conf_t *lcf, ngx_http_kordon_jwt_identity_t *id);
ngx_int_t ngx_http_kordon_jwt_init_identity(ngx_conf_t *cf);

/* ngx_http_kordon_jwt_cache.c */
char *ngx_http_kordon_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_kordon_jwt_cache_id(ngx_shm_zone_t *zone, ngx_str_t *token,
    u_char *id);
ngx_int_t ngx_http_kordon_jwt_cache_get(ngx_shm_zone_t *zone, u_char *hash,
    uint64_t fp, kordon_jwt_compact_t *k);
void ngx_http_kordon_jwt_cache_put(ngx_shm_zone_t *zone, u_char *hash,
    uint64_t fp, kordon_jwt_compact_t *k, time_t expire);

/* ngx_http_kordon_jwt_variables.c */
ngx_int_t ngx_http_kordon_jwt_add_variables(ngx_conf_t *cf);


/*
 * The revocation seam, for the module that keeps not-before times of
 * users and sessions in shared memory (fed from Redis): it calls this
 * from its postconfiguration, once; the hook belongs to the cycle being
 * configured.  Returns NGX_ERROR when a hook is already set.
 */

ngx_int_t ngx_http_kordon_jwt_set_revocation(ngx_conf_t *cf,
    ngx_http_kordon_jwt_revoked_pt handler, void *data);


extern ngx_module_t  ngx_http_kordon_jwt_module;


#endif /* _NGX_HTTP_KORDON_JWT_H_INCLUDED_ */
