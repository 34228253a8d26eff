
/*
 * Kordon edge: what the configuration side (ngx_http_kordon_redis_module.c)
 * and the connection side (ngx_http_kordon_redis_client.c) of the Redis
 * client share.  Not for other modules: they see the server as opaque.
 */


#ifndef _NGX_HTTP_KORDON_REDIS_INTERNAL_H_INCLUDED_
#define _NGX_HTTP_KORDON_REDIS_INTERNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_kordon_redis.h"
#include "kordon_redis_core.h"


#define NGX_HTTP_KORDON_REDIS_TIMEOUT_MS          100
#define NGX_HTTP_KORDON_REDIS_CONNECT_TIMEOUT_MS  1000
#define NGX_HTTP_KORDON_REDIS_PENDING_MAX         1024   /* default */
#define NGX_HTTP_KORDON_REDIS_PENDING_LIMIT       65536  /* max_pending= */
#define NGX_HTTP_KORDON_REDIS_DB_MAX              65535
#define NGX_HTTP_KORDON_REDIS_SERVERS_MAX         64     /* per config */
#define NGX_HTTP_KORDON_REDIS_ARGC_MAX            4096   /* per command */


/* the worker's connection to one server */
#define NGX_HTTP_KORDON_REDIS_CLOSED        0  /* none; the timer retries */
#define NGX_HTTP_KORDON_REDIS_CONNECTING    1  /* connect and handshake */
#define NGX_HTTP_KORDON_REDIS_READY         2  /* takes commands */


struct ngx_http_kordon_redis_server_s {

    /* configuration, from the master */

    ngx_str_t                        name;
    ngx_str_t                        addr;          /* as written */
    u_char                          *host;          /* IP, NUL-terminated */
    ngx_int_t                        port;
    ngx_msec_t                       timeout;
    ngx_msec_t                       connect_timeout;
    ngx_int_t                        db;            /* 0: no SELECT */
    ngx_str_t                        password;      /* empty: no AUTH */
    ngx_uint_t                       pending_max;
    u_char                          *file;          /* the first reference */
    ngx_uint_t                       line;
    ngx_http_kordon_redis_stats_t   *stats;         /* shared memory */

    /* run time, each worker its own copy */

    redisAsyncContext               *ac;
    ngx_connection_t                *connection;
    ngx_log_t                       *log;
    ngx_event_t                      timer;         /* handshake deadline in
                                                       CONNECTING, retry in
                                                       CLOSED */
    ngx_queue_t                      busy;          /* commands hiredis
                                                       holds, oldest first */
    ngx_queue_t                      free;          /* recycled commands */
    ngx_uint_t                       pending;       /* length of busy */
    ngx_uint_t                       state;
    ngx_uint_t                       handshake;     /* replies awaited */
    ngx_msec_t                       backoff;       /* next retry delay */
    ngx_msec_t                       ready_time;
    ngx_msec_t                       read_time;     /* last read event */

    /* a subscriber's (ngx_http_kordon_redis_subscribe); else empty */
    ngx_str_t                        channel;
    ngx_http_kordon_redis_message_pt message;
    void                            *message_data;

    unsigned                         defined:1;
    unsigned                         started:1;     /* connected once */
    unsigned                         early:1;       /* commands may wait
                                                       behind a handshake */
    unsigned                         closing:1;     /* hiredis frees it */
    unsigned                         writing:1;     /* in HandleWrite */
    unsigned                         full:1;        /* logged max_pending */
    unsigned                         exiting:1;
};


/* a subscriber: a server of its own, counted apart */
struct ngx_http_kordon_redis_sub_s {
    ngx_http_kordon_redis_server_t   server;
    ngx_http_kordon_redis_stats_t    stats;
};


typedef struct {
    ngx_array_t                      servers;   /* server pointers */
    ngx_shm_zone_t                  *shm_zone;
} ngx_http_kordon_redis_main_conf_t;


/* ngx_http_kordon_redis_client.c */

void ngx_http_kordon_redis_start(ngx_http_kordon_redis_server_t *server,
    ngx_cycle_t *cycle);
void ngx_http_kordon_redis_stop(ngx_http_kordon_redis_server_t *server);


#endif /* _NGX_HTTP_KORDON_REDIS_INTERNAL_H_INCLUDED_ */
