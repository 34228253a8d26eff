
/*
 * Kordon edge: the shared non-blocking Redis client.
 *
 * "kordon_redis <name> <ip>:<port> ..." declares a Redis.  Each worker
 * keeps one connection to it, and every Kordon module that talks to
 * Redis (API keys, revocations, rate limits, the response cache) sends
 * its commands on that connection through ngx_http_kordon_redis.h.
 *
 * The one idea: a command is a slot that hiredis owns from the moment it
 * is queued until its reply arrives or its connection ends, whatever
 * became of the sender; the sender's handler is a separate, one-shot
 * claim on the slot, consumed by the first of reply, timer and lost
 * connection, and withdrawn by a request that is freed first.  A late
 * reply, a timed-out command and a vanished request all end the same
 * way, in hiredis's own callback, with nothing left dangling and no
 * handler run twice.
 *
 * This file reads the configuration, binds each server to its counters
 * in shared memory and starts and stops the connections with the
 * workers; ngx_http_kordon_redis_client.c drives hiredis from the nginx
 * event loop (the adapter, the handshake, timeouts, reconnects).
 *
 * Connections open in init_process, not on first use: a worker's first
 * requests find Redis ready instead of failing or waiting for a connect,
 * and a wrong address or password shows in the log as nginx starts.
 * Addresses are IP literals; a worker never resolves a name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon_redis_internal.h"


/* the counters of the servers, shared by the workers, by name */

typedef struct {
    u_char                          name[KORDON_REDIS_NAME_MAX];
    size_t                          len;           /* 0: a free slot */
    ngx_http_kordon_redis_stats_t   stats;
} ngx_http_kordon_redis_slot_t;

typedef struct {
    ngx_http_kordon_redis_slot_t    slots[NGX_HTTP_KORDON_REDIS_SERVERS_MAX];
} ngx_http_kordon_redis_shctx_t;


/* init_zone() marks the slots in use in one 64-bit word */
#if (NGX_HTTP_KORDON_REDIS_SERVERS_MAX > 64)
#error NGX_HTTP_KORDON_REDIS_SERVERS_MAX is over 64
#endif


static char *ngx_http_kordon_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_kordon_redis_server_t *ngx_http_kordon_redis_add(
    ngx_conf_t *cf, ngx_http_kordon_redis_main_conf_t *kmcf,
    ngx_str_t *name);
static ngx_int_t ngx_http_kordon_redis_parse_addr(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *text);
static ngx_int_t ngx_http_kordon_redis_parse_param(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *param);
static ngx_uint_t ngx_http_kordon_redis_param(ngx_str_t *param,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_kordon_redis_password_file(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *name);

static void *ngx_http_kordon_redis_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_redis_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_kordon_redis_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_kordon_redis_init_process(ngx_cycle_t *cycle);
static void ngx_http_kordon_redis_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_kordon_redis_commands[] = {

    { ngx_string("kordon_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_kordon_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_redis_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_kordon_redis_init,            /* postconfiguration */

    ngx_http_kordon_redis_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_redis_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_redis_module_ctx,     /* module context */
    ngx_http_kordon_redis_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kordon_redis_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_kordon_redis_exit_process,    /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_kordon_redis_zone_name =
    ngx_string("kordon_redis");


/* kordon_redis <name> <ip>:<port> [timeout=] [connect_timeout=] [db=]
 *              [password_file=] [max_pending=]
 */
static char *
ngx_http_kordon_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_redis_main_conf_t  *kmcf = conf;

    ngx_int_t                        rc;
    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_kordon_redis_server_t  *srv;

    value = cf->args->elts;

    rc = kordon_redis_name_check(value[1].data, value[1].len);
    if (rc != KORDON_REDIS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "kordon_redis name \"%V\" %s: use 1 to %d "
                           "letters, digits, \"_\", \".\" or \"-\"",
                           &value[1], kordon_redis_strerror(rc),
                           KORDON_REDIS_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    srv = ngx_http_kordon_redis_add(cf, kmcf, &value[1]);
    if (srv == NULL) {
        return NGX_CONF_ERROR;
    }

    if (srv->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate kordon_redis \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    srv->timeout = NGX_HTTP_KORDON_REDIS_TIMEOUT_MS;
    srv->connect_timeout = NGX_HTTP_KORDON_REDIS_CONNECT_TIMEOUT_MS;
    srv->pending_max = NGX_HTTP_KORDON_REDIS_PENDING_MAX;

    if (ngx_http_kordon_redis_parse_addr(cf, srv, &value[2]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {
        if (ngx_http_kordon_redis_parse_param(cf, srv, &value[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    srv->defined = 1;

    return NGX_CONF_OK;
}


/* the server called name: found, or a new undefined one; NULL on error */
static ngx_http_kordon_redis_server_t *
ngx_http_kordon_redis_add(ngx_conf_t *cf,
    ngx_http_kordon_redis_main_conf_t *kmcf, ngx_str_t *name)
{
    ngx_uint_t                        i;
    ngx_http_kordon_redis_server_t   *srv, **servers, **srvp;

    servers = kmcf->servers.elts;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        if (servers[i]->name.len == name->len
            && ngx_strncmp(servers[i]->name.data, name->data, name->len) == 0)
        {
            return servers[i];
        }
    }

    if (kmcf->servers.nelts == NGX_HTTP_KORDON_REDIS_SERVERS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many kordon_redis servers, at most %d",
                           NGX_HTTP_KORDON_REDIS_SERVERS_MAX);
        return NULL;
    }

    srv = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_redis_server_t));
    if (srv == NULL) {
        return NULL;
    }

    srv->name.data = ngx_pstrdup(cf->pool, name);
    if (srv->name.data == NULL) {
        return NULL;
    }

    srv->name.len = name->len;
    srv->file = cf->conf_file->file.name.data;
    srv->line = cf->conf_file->line;

    srvp = ngx_array_push(&kmcf->servers);
    if (srvp == NULL) {
        return NULL;
    }

    *srvp = srv;

    return srv;
}


/*
 * "ip:port" or "[ipv6]:port".  A name is refused here, at nginx -t: a
 * worker that resolved it would block in getaddrinfo().
 */
static ngx_int_t
ngx_http_kordon_redis_parse_addr(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *text)
{
    size_t      len;
    u_char     *host;
    ngx_int_t   rc;
    ngx_addr_t  addr;

    ngx_memzero(&addr, sizeof(ngx_addr_t));

    rc = ngx_parse_addr_port(cf->pool, &addr, text->data, text->len);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED || ngx_inet_get_port(addr.sockaddr) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "kordon_redis \"%V\": \"%V\" is not an IP address "
                           "with a port, such as \"127.0.0.1:6379\" or "
                           "\"[::1]:6379\" (a worker resolves no names)",
                           &srv->name, text);
        return NGX_ERROR;
    }

    host = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (host == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(addr.sockaddr, addr.socklen, host,
                        NGX_SOCKADDR_STRLEN, 0);
    host[len] = '\0';

    srv->host = host;
    srv->port = ngx_inet_get_port(addr.sockaddr);
    srv->addr = *text;

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_redis_parse_param(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *param)
{
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_msec_t  ms;

    if (ngx_http_kordon_redis_param(param, "timeout=", &v)) {
        ms = ngx_parse_time(&v, 0);
        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
            goto invalid;
        }

        srv->timeout = ms;
        return NGX_OK;
    }

    if (ngx_http_kordon_redis_param(param, "connect_timeout=", &v)) {
        ms = ngx_parse_time(&v, 0);
        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
            goto invalid;
        }

        srv->connect_timeout = ms;
        return NGX_OK;
    }

    if (ngx_http_kordon_redis_param(param, "db=", &v)) {
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR || n > NGX_HTTP_KORDON_REDIS_DB_MAX) {
            goto invalid;
        }

        srv->db = n;
        return NGX_OK;
    }

    if (ngx_http_kordon_redis_param(param, "max_pending=", &v)) {
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR || n == 0
            || n > NGX_HTTP_KORDON_REDIS_PENDING_LIMIT)
        {
            goto invalid;
        }

        srv->pending_max = n;
        return NGX_OK;
    }

    if (ngx_http_kordon_redis_param(param, "password_file=", &v)
        && v.len)
    {
        return ngx_http_kordon_redis_password_file(cf, srv, &v);
    }

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "kordon_redis \"%V\": invalid parameter \"%V\"",
                       &srv->name, param);

    return NGX_ERROR;
}


/* 1 and the value if param is "name=value", 0 otherwise */
static ngx_uint_t
ngx_http_kordon_redis_param(ngx_str_t *param, const char *name,
    ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(name);

    if (param->len < len || ngx_strncmp(param->data, name, len) != 0) {
        return 0;
    }

    value->data = param->data + len;
    value->len = param->len - len;

    return 1;
}


/*
 * Reads the password at configuration time, in the master, which can
 * read files the workers cannot.  The file holds the password alone,
 * optionally followed by a newline.
 */
static ngx_int_t
ngx_http_kordon_redis_password_file(ngx_conf_t *cf,
    ngx_http_kordon_redis_server_t *srv, ngx_str_t *name)
{
    int         rc;
    u_char      buf[KORDON_REDIS_PASSWORD_MAX + 3];
    size_t      len;
    ssize_t     n;
    ngx_file_t  file;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "kordon_redis \"%V\": could not open password "
                           "file \"%s\"", &srv->name, name->data);
        return NGX_ERROR;
    }

    /* one byte over the longest accepted text tells "too long" apart */

    n = ngx_read_file(&file, buf, sizeof(buf), 0);

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name->data);
    }

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    rc = kordon_redis_password(buf, (size_t) n, &len);

    if (rc != KORDON_REDIS_OK) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "kordon_redis \"%V\": the password in \"%s\" %s",
                           &srv->name, name->data, kordon_redis_strerror(rc));
        return NGX_ERROR;
    }

    srv->password.data = ngx_pnalloc(cf->pool, len);
    if (srv->password.data == NULL) {
        ngx_explicit_memzero(buf, sizeof(buf));
        return NGX_ERROR;
    }

    ngx_memcpy(srv->password.data, buf, len);
    srv->password.len = len;

    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_OK;
}


static void *
ngx_http_kordon_redis_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_redis_main_conf_t));
    if (kmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&kmcf->servers, cf->pool, 4,
                       sizeof(ngx_http_kordon_redis_server_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return kmcf;
}


/*
 * After every directive and merge: each server referenced is defined,
 * and the counters get their zone.  A module that looks a server up in
 * its own postconfiguration would come too late for this check.
 */
static ngx_int_t
ngx_http_kordon_redis_init(ngx_conf_t *cf)
{
    ngx_uint_t                          i;
    ngx_http_kordon_redis_server_t    **servers;
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_redis_module);

    servers = kmcf->servers.elts;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        if (!servers[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no kordon_redis \"%V\" is defined, "
                          "referenced in %s:%ui", &servers[i]->name,
                          servers[i]->file, servers[i]->line);
            return NGX_ERROR;
        }
    }

    if (kmcf->servers.nelts == 0) {
        return NGX_OK;
    }

    /* a fixed size, so that a reload keeps the zone and the counters */

    kmcf->shm_zone = ngx_shared_memory_add(cf,
                                           &ngx_http_kordon_redis_zone_name,
                                           16 * ngx_pagesize,
                                           &ngx_http_kordon_redis_module);
    if (kmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    kmcf->shm_zone->init = ngx_http_kordon_redis_init_zone;
    kmcf->shm_zone->data = kmcf;

    return NGX_OK;
}


/*
 * Binds each server to the slot of its name: the same slot across
 * reloads (counters only grow), a slot no server of this configuration
 * uses for a new name.
 */
static ngx_int_t
ngx_http_kordon_redis_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    uint64_t                            taken;
    ngx_uint_t                          i, j;
    ngx_slab_pool_t                    *shpool;
    ngx_http_kordon_redis_slot_t       *slot;
    ngx_http_kordon_redis_shctx_t      *sh;
    ngx_http_kordon_redis_server_t    **servers;
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data || shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_kordon_redis_shctx_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    servers = kmcf->servers.elts;
    taken = 0;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        for (j = 0; j < NGX_HTTP_KORDON_REDIS_SERVERS_MAX; j++) {
            slot = &sh->slots[j];

            if (slot->len == servers[i]->name.len
                && ngx_memcmp(slot->name, servers[i]->name.data, slot->len)
                   == 0)
            {
                servers[i]->stats = &slot->stats;
                taken |= (uint64_t) 1 << j;
                break;
            }
        }
    }

    for (i = 0; i < kmcf->servers.nelts; i++) {
        if (servers[i]->stats) {
            continue;
        }

        for (j = 0; taken & ((uint64_t) 1 << j); j++) { /* void */ }

        /* at most SERVERS_MAX servers, so a slot is always left */

        slot = &sh->slots[j];
        ngx_memzero(slot, sizeof(ngx_http_kordon_redis_slot_t));
        ngx_memcpy(slot->name, servers[i]->name.data, servers[i]->name.len);
        slot->len = servers[i]->name.len;

        servers[i]->stats = &slot->stats;
        taken |= (uint64_t) 1 << j;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_kordon_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                          i;
    ngx_http_kordon_redis_server_t    **servers;
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_redis_module);
    if (kmcf == NULL) {
        return NGX_OK;
    }

    servers = kmcf->servers.elts;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        ngx_http_kordon_redis_start(servers[i], cycle);
    }

    return NGX_OK;
}


static void
ngx_http_kordon_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                          i;
    ngx_http_kordon_redis_server_t    **servers;
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_redis_module);
    if (kmcf == NULL) {
        return;
    }

    servers = kmcf->servers.elts;

    for (i = 0; i < kmcf->servers.nelts; i++) {
        ngx_http_kordon_redis_stop(servers[i]);
    }
}


/* the C interface's configuration side */

ngx_http_kordon_redis_server_t *
ngx_http_kordon_redis_lookup(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_redis_module);

    return ngx_http_kordon_redis_add(cf, kmcf, name);
}


ngx_str_t *
ngx_http_kordon_redis_name(ngx_http_kordon_redis_server_t *srv)
{
    return &srv->name;
}


ngx_http_kordon_redis_stats_t *
ngx_http_kordon_redis_stats(ngx_http_kordon_redis_server_t *srv)
{
    return srv->stats;
}


ngx_http_kordon_redis_server_t **
ngx_http_kordon_redis_servers(ngx_cycle_t *cycle, ngx_uint_t *n)
{
    ngx_http_kordon_redis_main_conf_t  *kmcf;

    kmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_redis_module);
    if (kmcf == NULL) {
        *n = 0;
        return NULL;
    }

    *n = kmcf->servers.nelts;

    return kmcf->servers.elts;
}
