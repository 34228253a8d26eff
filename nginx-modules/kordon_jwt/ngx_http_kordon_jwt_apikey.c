
/*
 * Kordon edge: API keys for machine clients.
 *
 * "X-Api-Key: kdk_<id>_<secret>" (id: 16 hex digits, secret: 43
 * base64url characters, 256 bits).  The record lives in the Redis hash
 * kordon:apikey:<id> (secret_sha256 in hex, owner, roles, scopes, name,
 * created_at, revoked "0"/"1"); only the SHA-256 of the secret is ever
 * stored, and it is compared in constant time.
 *
 * The record is looked up through the shared Redis client without
 * blocking: the access handler sends HGETALL, parks the request
 * (NGX_DONE) and is run again by the reply, which it then finds in its
 * ctx.  A reply (a record, or none: an unknown id) is kept in a shared
 * cache for ttl= (default 5s), so a revoked key stops within that time
 * and a flood of made-up ids costs Redis one lookup per id and ttl.  No
 * answer in time, or no Redis: 503, never a hang.
 *
 * The cache is an rbtree keyed by the 64 bits of the id, with a queue in
 * insertion order for eviction (entries all live ttl), in one fixed-size
 * slab slot each.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "ngx_http_kordon_jwt.h"
#include "kordon_auth_core.h"
#include "ngx_http_kordon_redis.h"


#define NGX_HTTP_KORDON_APIKEY_ZONE        "kordon_apikeys"
#define NGX_HTTP_KORDON_APIKEY_EVICT_MAX   16     /* entries per insert */
#define NGX_HTTP_KORDON_APIKEY_OWNER_MAX   128
#define NGX_HTTP_KORDON_APIKEY_SCOPES_MAX  512

#define NGX_HTTP_KORDON_APIKEY_UNKNOWN     0
#define NGX_HTTP_KORDON_APIKEY_VALID       1
#define NGX_HTTP_KORDON_APIKEY_REVOKED     2
#define NGX_HTTP_KORDON_APIKEY_BROKEN      3      /* a record not as agreed */


struct ngx_http_kordon_apikey_entry_s {
    uint64_t                          id;
    time_t                            expire;
    u_char                            state;
    u_char                            hash[32];
    u_short                           owner_len;
    u_short                           roles_len;
    u_short                           scopes_len;
    u_char                            owner[NGX_HTTP_KORDON_APIKEY_OWNER_MAX];
    u_char                            roles[KORDON_AUTH_ROLES_MAX];
    u_char                          scopes[NGX_HTTP_KORDON_APIKEY_SCOPES_MAX];
};


typedef struct {
    ngx_rbtree_node_t                 node;
    ngx_queue_t                       queue;
    ngx_http_kordon_apikey_entry_t    entry;
} ngx_http_kordon_apikey_node_t;


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       queue;
} ngx_http_kordon_apikey_sh_t;


struct ngx_http_kordon_apikeys_s {
    ngx_http_kordon_apikey_sh_t      *sh;
    ngx_slab_pool_t                  *shpool;
    ngx_shm_zone_t                   *zone;

    ngx_http_kordon_redis_server_t   *redis;
    ngx_str_t                         prefix;
    time_t                            ttl;
    ngx_msec_t                        timeout;
};


static ngx_int_t ngx_http_kordon_apikey_header(ngx_http_request_t *r,
    ngx_str_t *value);
static ngx_int_t ngx_http_kordon_apikey_lookup(ngx_http_request_t *r,
    ngx_http_kordon_apikeys_t *ak, ngx_http_kordon_jwt_ctx_t *ctx);
static void ngx_http_kordon_apikey_reply(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static void ngx_http_kordon_apikey_record(ngx_http_kordon_apikey_entry_t *e,
    redisReply *reply);
static ngx_int_t ngx_http_kordon_apikey_check(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_apikey_identity(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx);
static ngx_int_t ngx_http_kordon_apikey_cache_get(
    ngx_http_kordon_apikeys_t *ak, uint64_t id,
    ngx_http_kordon_apikey_entry_t *e);
static void ngx_http_kordon_apikey_cache_put(ngx_http_kordon_apikeys_t *ak,
    ngx_http_kordon_apikey_entry_t *e);
static ngx_http_kordon_apikey_node_t *ngx_http_kordon_apikey_find(
    ngx_http_kordon_apikeys_t *ak, uint64_t id);
static ngx_int_t ngx_http_kordon_apikey_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/*
 * "kordon_apikeys redis=<name> [ttl=5s] [timeout=] [size=4m]
 * [prefix=kordon:apikey:]"
 */

char *
ngx_http_kordon_jwt_apikeys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_jwt_main_conf_t *kmcf = conf;

    ssize_t                     size;
    ngx_int_t                   n;
    ngx_str_t                  *value, s, zname;
    ngx_uint_t                  i;
    ngx_http_kordon_apikeys_t  *ak;

    if (kmcf->apikeys != NULL) {
        return "is duplicate";
    }

    ak = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_apikeys_t));
    if (ak == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&ak->prefix, "kordon:apikey:");
    ak->ttl = 5;
    size = 4 * 1024 * 1024;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "redis=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            ak->redis = ngx_http_kordon_redis_lookup(cf, &s);
            if (ak->redis == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0
            && value[i].len > 7)
        {
            ak->prefix.data = value[i].data + 7;
            ak->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR || n < 1 || n > 300) {
                goto invalid;
            }

            ak->ttl = (time_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 1 || n > 60000) {
                goto invalid;
            }

            ak->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (ak->redis == NULL) {
        return "needs \"redis=\"";
    }

    ngx_str_set(&zname, NGX_HTTP_KORDON_APIKEY_ZONE);

    ak->zone = ngx_shared_memory_add(cf, &zname, size,
                                     &ngx_http_kordon_jwt_module);
    if (ak->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    ak->zone->init = ngx_http_kordon_apikey_init_zone;
    ak->zone->data = ak;

    kmcf->apikeys = ak;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * 1 if the request carries an X-Api-Key header at all (well-formed or
 * not), for the handler's choice of credential.
 */

ngx_uint_t
ngx_http_kordon_jwt_apikey_present(ngx_http_request_t *r)
{
    ngx_str_t  value;

    return ngx_http_kordon_apikey_header(r, &value) != NGX_DECLINED;
}


/*
 * Authenticates with X-Api-Key.  Returns NGX_OK with ctx->id set,
 * NGX_AGAIN when the lookup went out (the request is parked and will
 * be run again), NGX_DECLINED with ctx->error and ctx->reason set when
 * the key is refused (401), NGX_BUSY when the key store could not answer
 * (503), or NGX_ERROR.
 */

ngx_int_t
ngx_http_kordon_jwt_apikey(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    u_char                           *id;
    ngx_int_t                         rc;
    ngx_str_t                         value;
    ngx_http_kordon_apikeys_t        *ak;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    if (ctx->apikey != NULL && ctx->apikey_done) {
        return ngx_http_kordon_apikey_check(r, ctx);  /* the reply is in */
    }

    ngx_str_set(&ctx->error, "bad_api_key");

    rc = ngx_http_kordon_apikey_header(r, &value);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&ctx->error, "missing");
        ctx->reason = "missing api key";
        return NGX_DECLINED;
    }

    if (rc != NGX_OK
        || kordon_apikey_parse((char *) value.data, value.len,
                               (const char **) &id,
                               (const char **) &ctx->apikey_secret)
           != 0)
    {
        ctx->reason = "malformed api key";
        return NGX_DECLINED;
    }

    ctx->apikey_id.data = id;
    ctx->apikey_id.len = KORDON_APIKEY_ID_LEN;

    ctx->apikey = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_apikey_entry_t));
    if (ctx->apikey == NULL) {
        return NGX_ERROR;
    }

    ctx->apikey->id = (uint64_t) ngx_hextoi(id, KORDON_APIKEY_ID_LEN / 2)
                      << 32
                      | (uint64_t) ngx_hextoi(id + KORDON_APIKEY_ID_LEN / 2,
                                              KORDON_APIKEY_ID_LEN / 2);

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_jwt_module);
    ak = kmcf->apikeys;

    if (ngx_http_kordon_apikey_cache_get(ak, ctx->apikey->id, ctx->apikey)
        == NGX_OK)
    {
        ctx->apikey_done = 1;
        ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_HIT;
        return ngx_http_kordon_apikey_check(r, ctx);
    }

    ctx->cache_status = NGX_HTTP_KORDON_JWT_CACHE_MISS;

    return ngx_http_kordon_apikey_lookup(r, ak, ctx);
}


/*
 * The X-Api-Key value: NGX_OK, NGX_DECLINED when there is none, NGX_ERROR
 * when there are several.
 */

static ngx_int_t
ngx_http_kordon_apikey_header(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;
    n = 0;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("X-Api-Key") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-Api-Key",
                               sizeof("X-Api-Key") - 1) == 0)
        {
            *value = h[i].value;
            n++;
        }
    }

    return (n == 0) ? NGX_DECLINED : (n == 1) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_kordon_apikey_lookup(ngx_http_request_t *r,
    ngx_http_kordon_apikeys_t *ak, ngx_http_kordon_jwt_ctx_t *ctx)
{
    u_char      *p, key[64];
    ngx_int_t    rc;
    const char  *argv[2];
    size_t       argvlen[2];

    if (ak->prefix.len + KORDON_APIKEY_ID_LEN > sizeof(key)) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key, ak->prefix.data, ak->prefix.len);
    p = ngx_cpymem(p, ctx->apikey_id.data, KORDON_APIKEY_ID_LEN);

    argv[0] = "HGETALL";
    argvlen[0] = sizeof("HGETALL") - 1;
    argv[1] = (const char *) key;
    argvlen[1] = p - key;

    rc = ngx_http_kordon_redis_request(r, ak->redis, 2, argv, argvlen,
                                       ak->timeout,
                                       ngx_http_kordon_apikey_reply, ctx);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_str_set(&ctx->error, "unavailable");
        ctx->reason = "api key store is not reachable";
        return NGX_BUSY;
    }

    return NGX_AGAIN;
}


/* the record, or an error: either way the request goes on from here */

static void
ngx_http_kordon_apikey_reply(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_http_kordon_jwt_ctx_t *ctx = data;

    ngx_http_kordon_apikeys_t        *ak;
    ngx_http_kordon_jwt_main_conf_t  *kmcf;

    if (status != NGX_HTTP_KORDON_REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon jwt: api key lookup failed: redis %V",
                      ngx_http_kordon_redis_status_text(status));

        ngx_str_set(&ctx->error, "unavailable");
        ctx->reason = (status == NGX_HTTP_KORDON_REDIS_TIMEOUT)
                      ? "api key lookup timed out"
                      : "api key store is not reachable";

        ngx_http_finalize_request(r,
                                ngx_http_kordon_jwt_unavailable(r, ctx));
        return;
    }

    kmcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_jwt_module);
    ak = kmcf->apikeys;

    ngx_http_kordon_apikey_record(ctx->apikey, reply);

    if (ctx->apikey->state == NGX_HTTP_KORDON_APIKEY_BROKEN) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon jwt: api key record \"%V%V\" is not as "
                      "agreed (secret_sha256, owner, roles, scopes, "
                      "revoked)", &ak->prefix, &ctx->apikey_id);
    }

    ctx->apikey->expire = ngx_time() + ak->ttl;
    ngx_http_kordon_apikey_cache_put(ak, ctx->apikey);

    ctx->apikey_done = 1;

    ngx_http_core_run_phases(r);
}


/*
 * HGETALL's [field, value, ...] into e: UNKNOWN for an empty hash,
 * BROKEN for a record with a missing or invalid field, else VALID or
 * REVOKED.
 */

static void
ngx_http_kordon_apikey_record(ngx_http_kordon_apikey_entry_t *e,
    redisReply *reply)
{
    int          n;
    size_t       i;
    ngx_uint_t   have;
    redisReply  *k, *v;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        e->state = NGX_HTTP_KORDON_APIKEY_UNKNOWN;
        return;
    }

    e->state = NGX_HTTP_KORDON_APIKEY_BROKEN;
    have = 0;

    for (i = 0; i + 1 < reply->elements; i += 2) {
        k = reply->element[i];
        v = reply->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            return;
        }

        if (ngx_strcmp(k->str, "secret_sha256") == 0) {
            if (kordon_auth_hex32(v->str, v->len, e->hash) != 0) {
                return;
            }

            have |= 1;

        } else if (ngx_strcmp(k->str, "owner") == 0) {
            if (kordon_auth_owner_check(v->str, v->len) != 0) {
                return;
            }

            ngx_memcpy(e->owner, v->str, v->len);
            e->owner_len = (u_short) v->len;
            have |= 2;

        } else if (ngx_strcmp(k->str, "roles") == 0) {
            n = kordon_auth_roles_join(v->str, v->len, (char *) e->roles,
                                       KORDON_AUTH_ROLES_MAX);
            if (n < 0) {
                return;
            }

            e->roles_len = (u_short) n;

        } else if (ngx_strcmp(k->str, "scopes") == 0) {
            if (v->len > NGX_HTTP_KORDON_APIKEY_SCOPES_MAX
                || kordon_auth_scopes_check(v->str, v->len) != 0)
            {
                return;
            }

            ngx_memcpy(e->scopes, v->str, v->len);
            e->scopes_len = (u_short) v->len;

        } else if (ngx_strcmp(k->str, "revoked") == 0) {
            if (v->len != 1 || (v->str[0] != '0' && v->str[0] != '1')) {
                return;
            }

            have |= (v->str[0] == '1') ? 4 : 0;
        }
    }

    if ((have & 3) != 3) {
        return;
    }

    e->state = (have & 4) ? NGX_HTTP_KORDON_APIKEY_REVOKED
                          : NGX_HTTP_KORDON_APIKEY_VALID;
}


/*
 * The record against the key presented.  The secret is compared before
 * the revoked flag is told, so that only its holder learns it; unknown,
 * broken and wrong secret read alike to the client.
 */

static ngx_int_t
ngx_http_kordon_apikey_check(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    u_char                           md[32];
    unsigned int                     len;
    ngx_http_kordon_apikey_entry_t  *e;

    e = ctx->apikey;
    ngx_str_set(&ctx->error, "bad_api_key");
    ctx->reason = "invalid api key";

    if (e->state == NGX_HTTP_KORDON_APIKEY_UNKNOWN
        || e->state == NGX_HTTP_KORDON_APIKEY_BROKEN)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon jwt: api key \"%V\" %s", &ctx->apikey_id,
                      e->state == NGX_HTTP_KORDON_APIKEY_UNKNOWN
                      ? "is unknown" : "has a broken record");
        return NGX_DECLINED;
    }

    if (EVP_Digest(ctx->apikey_secret, KORDON_APIKEY_SECRET_LEN, md, &len,
                   EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    if (CRYPTO_memcmp(md, e->hash, 32) != 0) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon jwt: api key \"%V\": wrong secret",
                      &ctx->apikey_id);
        return NGX_DECLINED;
    }

    if (e->state == NGX_HTTP_KORDON_APIKEY_REVOKED) {
        ctx->reason = "api key revoked";
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon jwt: api key \"%V\" is revoked",
                      &ctx->apikey_id);
        return NGX_DECLINED;
    }

    return ngx_http_kordon_apikey_identity(r, ctx);
}


/* user = owner, the key's roles and scopes, session "apikey:<id>" */

static ngx_int_t
ngx_http_kordon_apikey_identity(ngx_http_request_t *r,
    ngx_http_kordon_jwt_ctx_t *ctx)
{
    u_char                          *p;
    ngx_http_kordon_jwt_identity_t  *id;
    ngx_http_kordon_apikey_entry_t  *e;

    e = ctx->apikey;
    id = &ctx->id;

    id->sub.data = e->owner;
    id->sub.len = e->owner_len;
    id->roles.data = e->roles;
    id->roles.len = e->roles_len;
    id->scope.data = e->scopes;
    id->scope.len = e->scopes_len;
    id->iat = 0;
    id->exp = 0;

    p = ngx_pnalloc(r->pool, sizeof("apikey:") - 1 + KORDON_APIKEY_ID_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    id->sid.data = p;
    p = ngx_cpymem(p, "apikey:", sizeof("apikey:") - 1);
    p = ngx_cpymem(p, ctx->apikey_id.data, KORDON_APIKEY_ID_LEN);
    id->sid.len = p - id->sid.data;

    ctx->error.len = 0;
    ctx->reason = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_apikey_cache_get(ngx_http_kordon_apikeys_t *ak, uint64_t id,
    ngx_http_kordon_apikey_entry_t *e)
{
    ngx_int_t                       rc;
    ngx_http_kordon_apikey_node_t  *an;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ak->shpool->mutex);

    an = ngx_http_kordon_apikey_find(ak, id);

    if (an != NULL) {
        if (an->entry.expire <= ngx_time()) {
            ngx_queue_remove(&an->queue);
            ngx_rbtree_delete(&ak->sh->rbtree, &an->node);
            ngx_slab_free_locked(ak->shpool, an);

        } else {
            *e = an->entry;
            rc = NGX_OK;
        }
    }

    ngx_shmtx_unlock(&ak->shpool->mutex);

    return rc;
}


/* never fails the caller: without room the record is just not kept */

static void
ngx_http_kordon_apikey_cache_put(ngx_http_kordon_apikeys_t *ak,
    ngx_http_kordon_apikey_entry_t *e)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_http_kordon_apikey_node_t  *an;

    ngx_shmtx_lock(&ak->shpool->mutex);

    an = ngx_http_kordon_apikey_find(ak, e->id);

    if (an != NULL) {
        an->entry = *e;
        ngx_queue_remove(&an->queue);
        ngx_queue_insert_head(&ak->sh->queue, &an->queue);
        ngx_shmtx_unlock(&ak->shpool->mutex);
        return;
    }

    for (i = 0; i < NGX_HTTP_KORDON_APIKEY_EVICT_MAX; i++) {
        an = ngx_slab_alloc_locked(ak->shpool,
                                   sizeof(ngx_http_kordon_apikey_node_t));
        if (an != NULL || ngx_queue_empty(&ak->sh->queue)) {
            break;
        }

        /* the oldest first: every entry lives ttl, so it expires first */

        q = ngx_queue_last(&ak->sh->queue);
        an = ngx_queue_data(q, ngx_http_kordon_apikey_node_t, queue);

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ak->sh->rbtree, &an->node);
        ngx_slab_free_locked(ak->shpool, an);
        an = NULL;
    }

    if (an != NULL) {
        an->node.key = (ngx_rbtree_key_t) e->id;
        an->entry = *e;
        ngx_rbtree_insert(&ak->sh->rbtree, &an->node);
        ngx_queue_insert_head(&ak->sh->queue, &an->queue);
    }

    ngx_shmtx_unlock(&ak->shpool->mutex);
}


static ngx_http_kordon_apikey_node_t *
ngx_http_kordon_apikey_find(ngx_http_kordon_apikeys_t *ak, uint64_t id)
{
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_kordon_apikey_node_t  *an;

    node = ak->sh->rbtree.root;
    sentinel = ak->sh->rbtree.sentinel;

    while (node != sentinel) {
        an = (ngx_http_kordon_apikey_node_t *) node;

        if (an->entry.id == id) {
            return an;
        }

        node = (id < an->entry.id) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_kordon_apikey_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    uint64_t            id;
    ngx_rbtree_node_t **p;

    id = ((ngx_http_kordon_apikey_node_t *) node)->entry.id;

    for ( ;; ) {
        p = (id < ((ngx_http_kordon_apikey_node_t *) temp)->entry.id)
            ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_kordon_apikey_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kordon_apikeys_t  *oak = data;

    ngx_http_kordon_apikeys_t  *ak;

    ak = shm_zone->data;

    if (oak) {
        ak->sh = oak->sh;
        ak->shpool = oak->shpool;
        return NGX_OK;
    }

    ak->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ak->sh = ak->shpool->data;
        return NGX_OK;
    }

    ak->sh = ngx_slab_calloc(ak->shpool, sizeof(ngx_http_kordon_apikey_sh_t));
    if (ak->sh == NULL) {
        return NGX_ERROR;
    }

    ak->shpool->data = ak->sh;

    ngx_rbtree_init(&ak->sh->rbtree, &ak->sh->sentinel,
                    ngx_http_kordon_apikey_insert_value);
    ngx_queue_init(&ak->sh->queue);

    ak->shpool->log_nomem = 0;

    return NGX_OK;
}
