
/*
 * Kordon edge: the shared cache of verified tokens.
 *
 * A token a worker verified once is remembered in shared memory, so that
 * the next request with it, in any worker, pays a keyed hash and a tree
 * lookup instead of a signature check.  The design is limit_req's: one
 * slab pool per zone, a red-black tree for the lookup and a queue in
 * least-recently-used order for eviction, both under the zone's
 * ngx_shmtx.
 *
 * The key is the token's id, SipHash-2-4-128 of the whole token keyed by
 * 16 random bytes drawn when the zone is made (they live in the zone, so
 * every worker and every reload that keeps the zone names a token alike,
 * and never leave it), together with the fingerprint of the checks it
 * passed (issuer, audience, type), so that a token verified for one
 * location is not taken as verified where other checks apply. Nobody
 * without the key can compute an id, so a different token hits a cached
 * one's entry only by a 2^-128 chance per cached token: the id stands for
 * the token's bytes as the SHA-256 of the token did, for less (valgrind,
 * which hides SHA-NI: 21,400 instructions became 4,500; with SHA-NI, 650
 * ns became 370 ns).  The tree is ordered by 64 bits of both and ties are
 * broken by the full key.  An entry is one fixed 512-byte slab slot (the
 * node, the queue link, the key, the expiry and the core's compact form
 * of the token), so 64 MiB hold about 130,000 tokens.  It lives until
 * min(exp, stored + max_ttl); a full zone evicts the least recently used
 * entries, and when even that fails the token is just not cached: the
 * cache never fails a request.
 *
 * Entries hold no pointers into the configuration, so a zone survives a
 * reload; what an entry says is checked against the new configuration on
 * each hit (the key that verified the token must still be loaded, see
 * the handler).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon_jwt.h"


#define NGX_HTTP_KORDON_JWT_CACHE_EVICT_MAX   16   /* entries per insert */
#define NGX_HTTP_KORDON_JWT_CACHE_EXPIRE_MAX  2    /* stale ones per insert */
#define NGX_HTTP_KORDON_JWT_CACHE_SLOT        512  /* bytes, a slab slot */


typedef struct {
    ngx_rbtree_node_t                 node;
    ngx_queue_t                       queue;
    time_t                            expire;
    uint64_t                          fp;
    u_char                            hash[KORDON_JWT_TOKEN_ID_LEN];
    kordon_jwt_compact_t              compact;
} ngx_http_kordon_jwt_cache_node_t;


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       queue;
    u_char                            key[KORDON_JWT_TOKEN_KEY_LEN];
} ngx_http_kordon_jwt_cache_sh_t;


typedef struct {
    ngx_http_kordon_jwt_cache_sh_t   *sh;
    ngx_slab_pool_t                  *shpool;
    kordon_jwt_hasher_t              *hasher;    /* keyed by sh->key */
} ngx_http_kordon_jwt_cache_t;


/* 100,000 tokens in 64 MiB: an entry must fit one 512-byte slab slot */

typedef char  ngx_http_kordon_jwt_cache_node_fits[
    sizeof(ngx_http_kordon_jwt_cache_node_t)
    <= NGX_HTTP_KORDON_JWT_CACHE_SLOT ? 1 : -1];


static ngx_http_kordon_jwt_cache_node_t *ngx_http_kordon_jwt_cache_lookup(
    ngx_http_kordon_jwt_cache_t *cache, u_char *hash, uint64_t fp);
static ngx_int_t ngx_http_kordon_jwt_cache_cmp(u_char *hash, uint64_t fp,
    ngx_http_kordon_jwt_cache_node_t *cn);
static ngx_rbtree_key_t ngx_http_kordon_jwt_cache_key(u_char *hash,
    uint64_t fp);
static void ngx_http_kordon_jwt_cache_expire(
    ngx_http_kordon_jwt_cache_t *cache, time_t now);
static ngx_uint_t ngx_http_kordon_jwt_cache_evict(
    ngx_http_kordon_jwt_cache_t *cache);
static void ngx_http_kordon_jwt_cache_delete(
    ngx_http_kordon_jwt_cache_t *cache, ngx_http_kordon_jwt_cache_node_t *cn);
static void ngx_http_kordon_jwt_cache_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_kordon_jwt_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_kordon_jwt_cache_init_sh(ngx_shm_zone_t *shm_zone,
    ngx_http_kordon_jwt_cache_t *cache);
static void ngx_http_kordon_jwt_cache_cleanup(void *data);
static ngx_int_t ngx_http_kordon_jwt_cache_params(ngx_conf_t *cf,
    ngx_http_kordon_jwt_main_conf_t *kmcf, ngx_str_t *name, ssize_t *size);
static ngx_int_t ngx_http_kordon_jwt_cache_zone(ngx_conf_t *cf,
    ngx_str_t *value, ngx_str_t *name, ssize_t *size);


/*
 * The token's id in this zone (KORDON_JWT_TOKEN_ID_LEN bytes), for
 * ngx_http_kordon_jwt_cache_get() and _put().  NGX_ERROR when OpenSSL
 * failed: the token is then verified without the cache.
 */

ngx_int_t
ngx_http_kordon_jwt_cache_id(ngx_shm_zone_t *zone, ngx_str_t *token,
    u_char *id)
{
    ngx_http_kordon_jwt_cache_t  *cache;

    cache = zone->data;

    if (kordon_jwt_hasher_sum(cache->hasher, (char *) token->data,
                              token->len, id)
        != KORDON_JWT_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Copies the entry for (hash, fp) into k and returns NGX_OK, or returns
 * NGX_DECLINED when there is none or it expired (it is then dropped).
 * A hit becomes the most recently used entry.
 */

ngx_int_t
ngx_http_kordon_jwt_cache_get(ngx_shm_zone_t *zone, u_char *hash,
    uint64_t fp, kordon_jwt_compact_t *k)
{
    time_t                             now;
    ngx_int_t                          rc;
    ngx_http_kordon_jwt_cache_t       *cache;
    ngx_http_kordon_jwt_cache_node_t  *cn;

    cache = zone->data;
    now = ngx_time();
    rc = NGX_DECLINED;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_kordon_jwt_cache_lookup(cache, hash, fp);

    if (cn != NULL) {

        if (cn->expire <= now) {
            ngx_http_kordon_jwt_cache_delete(cache, cn);

        } else {
            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

            *k = cn->compact;
            rc = NGX_OK;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


/*
 * Stores k for (hash, fp) until expire, replacing an entry another
 * worker stored meanwhile.  Makes room by dropping expired entries and
 * then the least recently used ones; when there is still no room the
 * token is not stored.  Never fails the caller.
 */

void
ngx_http_kordon_jwt_cache_put(ngx_shm_zone_t *zone, u_char *hash,
    uint64_t fp, kordon_jwt_compact_t *k, time_t expire)
{
    ngx_uint_t                         i;
    ngx_http_kordon_jwt_cache_t       *cache;
    ngx_http_kordon_jwt_cache_node_t  *cn;

    cache = zone->data;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_kordon_jwt_cache_lookup(cache, hash, fp);

    if (cn != NULL) {
        cn->expire = expire;
        cn->compact = *k;

        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

        ngx_shmtx_unlock(&cache->shpool->mutex);
        return;
    }

    ngx_http_kordon_jwt_cache_expire(cache, ngx_time());

    for (i = 0; /* void */ ; i++) {
        cn = ngx_slab_alloc_locked(cache->shpool,
                                   sizeof(ngx_http_kordon_jwt_cache_node_t));
        if (cn != NULL) {
            break;
        }

        if (i == NGX_HTTP_KORDON_JWT_CACHE_EVICT_MAX
            || !ngx_http_kordon_jwt_cache_evict(cache))
        {
            ngx_shmtx_unlock(&cache->shpool->mutex);

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "kordon jwt cache: no room in zone \"%V\"",
                           &zone->shm.name);
            return;
        }
    }

    cn->node.key = ngx_http_kordon_jwt_cache_key(hash, fp);
    cn->expire = expire;
    cn->fp = fp;
    ngx_memcpy(cn->hash, hash, KORDON_JWT_TOKEN_ID_LEN);
    cn->compact = *k;

    ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/* the entry for (hash, fp) or NULL; the caller holds the mutex */

static ngx_http_kordon_jwt_cache_node_t *
ngx_http_kordon_jwt_cache_lookup(ngx_http_kordon_jwt_cache_t *cache,
    u_char *hash, uint64_t fp)
{
    ngx_int_t                          rc;
    ngx_rbtree_key_t                   key;
    ngx_rbtree_node_t                 *node, *sentinel;
    ngx_http_kordon_jwt_cache_node_t  *cn;

    key = ngx_http_kordon_jwt_cache_key(hash, fp);

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        /* key == node->key */

        cn = (ngx_http_kordon_jwt_cache_node_t *) node;

        rc = ngx_http_kordon_jwt_cache_cmp(hash, fp, cn);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_int_t
ngx_http_kordon_jwt_cache_cmp(u_char *hash, uint64_t fp,
    ngx_http_kordon_jwt_cache_node_t *cn)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(hash, cn->hash, KORDON_JWT_TOKEN_ID_LEN);

    if (rc != 0) {
        return rc;
    }

    return (fp < cn->fp) ? -1 : (fp > cn->fp) ? 1 : 0;
}


static ngx_rbtree_key_t
ngx_http_kordon_jwt_cache_key(u_char *hash, uint64_t fp)
{
    uint64_t  h;

    ngx_memcpy(&h, hash, sizeof(uint64_t));

    return (ngx_rbtree_key_t) (h ^ fp);
}


/* drops a few expired entries from the old end of the queue */

static void
ngx_http_kordon_jwt_cache_expire(ngx_http_kordon_jwt_cache_t *cache,
    time_t now)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_http_kordon_jwt_cache_node_t  *cn;

    for (n = 0; n < NGX_HTTP_KORDON_JWT_CACHE_EXPIRE_MAX; n++) {

        if (ngx_queue_empty(&cache->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_http_kordon_jwt_cache_node_t, queue);

        if (cn->expire > now) {
            return;
        }

        ngx_http_kordon_jwt_cache_delete(cache, cn);
    }
}


/* drops the least recently used entry; 0 when there was none */

static ngx_uint_t
ngx_http_kordon_jwt_cache_evict(ngx_http_kordon_jwt_cache_t *cache)
{
    ngx_queue_t                       *q;
    ngx_http_kordon_jwt_cache_node_t  *cn;

    if (ngx_queue_empty(&cache->sh->queue)) {
        return 0;
    }

    q = ngx_queue_last(&cache->sh->queue);
    cn = ngx_queue_data(q, ngx_http_kordon_jwt_cache_node_t, queue);

    ngx_http_kordon_jwt_cache_delete(cache, cn);

    return 1;
}


static void
ngx_http_kordon_jwt_cache_delete(ngx_http_kordon_jwt_cache_t *cache,
    ngx_http_kordon_jwt_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_slab_free_locked(cache->shpool, cn);
}


static void
ngx_http_kordon_jwt_cache_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                 **p;
    ngx_http_kordon_jwt_cache_node_t   *cn;

    cn = (ngx_http_kordon_jwt_cache_node_t *) node;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            p = (ngx_http_kordon_jwt_cache_cmp(cn->hash, cn->fp,
                     (ngx_http_kordon_jwt_cache_node_t *) temp) < 0)
                ? &temp->left : &temp->right;
        }

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


/*
 * The zone of this cycle: the old cycle's, a zone that survived a binary
 * upgrade, or a new one with a fresh hasher key.  Each cycle makes its
 * own hasher from the key in the zone (freed with the cycle's pool).
 */

static ngx_int_t
ngx_http_kordon_jwt_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_kordon_jwt_cache_t *ocache = data;

    ngx_http_kordon_jwt_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;

    } else {
        cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

        if (shm_zone->shm.exists) {
            cache->sh = cache->shpool->data;

        } else if (ngx_http_kordon_jwt_cache_init_sh(shm_zone, cache)
                   != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    cache->hasher = kordon_jwt_hasher_new(cache->sh->key);

    if (cache->hasher == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "kordon_jwt_cache zone \"%V\": could not set up "
                      "SipHash (OpenSSL)", &shm_zone->shm.name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_jwt_cache_init_sh(ngx_shm_zone_t *shm_zone,
    ngx_http_kordon_jwt_cache_t *cache)
{
    size_t  len;

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_kordon_jwt_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_kordon_jwt_cache_insert_value);

    ngx_queue_init(&cache->sh->queue);

    if (kordon_jwt_hasher_key(cache->sh->key) != KORDON_JWT_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "kordon_jwt_cache zone \"%V\": could not draw "
                      "a random key (OpenSSL)", &shm_zone->shm.name);
        return NGX_ERROR;
    }

    len = sizeof(" in kordon_jwt_cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in kordon_jwt_cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal: the LRU entry goes, nothing is logged */
    cache->shpool->log_nomem = 0;

    ngx_log_error(NGX_LOG_INFO, shm_zone->shm.log, 0,
                  "kordon_jwt_cache zone \"%V\" has room for %ui tokens",
                  &shm_zone->shm.name,
                  cache->shpool->pfree
                  * (ngx_pagesize / NGX_HTTP_KORDON_JWT_CACHE_SLOT));

    return NGX_OK;
}


static void
ngx_http_kordon_jwt_cache_cleanup(void *data)
{
    ngx_http_kordon_jwt_cache_t  *cache = data;

    kordon_jwt_hasher_free(cache->hasher);
    cache->hasher = NULL;
}


/*
 * "kordon_jwt_cache zone=name:size [max_ttl=time]", in the http block:
 * one zone for every location of the configuration.
 */

char *
ngx_http_kordon_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_jwt_main_conf_t *kmcf = conf;

    ssize_t                       size;
    ngx_str_t                     name;
    ngx_shm_zone_t               *shm_zone;
    ngx_pool_cleanup_t           *cln;
    ngx_http_kordon_jwt_cache_t  *cache;

    if (kmcf->cache != NULL) {
        return "is duplicate";
    }

    if (ngx_http_kordon_jwt_cache_params(cf, kmcf, &name, &size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_jwt_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_kordon_jwt_cache_cleanup;
    cln->data = cache;

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_kordon_jwt_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_kordon_jwt_cache_init_zone;
    shm_zone->data = cache;

    kmcf->cache = shm_zone;

    return NGX_CONF_OK;
}


/* the directive's parameters; name->len is 0 when there was no zone= */

static ngx_int_t
ngx_http_kordon_jwt_cache_params(ngx_conf_t *cf,
    ngx_http_kordon_jwt_main_conf_t *kmcf, ngx_str_t *name, ssize_t *size)
{
    time_t       ttl;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    value = cf->args->elts;
    name->len = 0;
    *size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            if (ngx_http_kordon_jwt_cache_zone(cf, &value[i], name, size)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_ttl=", 8) == 0) {

            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ttl = ngx_parse_time(&s, 1);

            if (ttl == (time_t) NGX_ERROR || ttl == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_ttl \"%V\"", &value[i]);
                return NGX_ERROR;
            }

            kmcf->cache_max_ttl = ttl;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "zone=name:size", at least 8 pages */

static ngx_int_t
ngx_http_kordon_jwt_cache_zone(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    name->data = value->data + 5;

    p = (u_char *) ngx_strchr(name->data, ':');

    if (p == NULL || p == name->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\"", value);
        return NGX_ERROR;
    }

    name->len = p - name->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", value);
        return NGX_ERROR;
    }

    return NGX_OK;
}
