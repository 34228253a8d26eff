
/*
 * Kordon edge: the shared non-blocking Redis client.
 *
 * ngx_http_kordon_redis_module.so keeps one connection per worker to each
 * Redis that a "kordon_redis" directive names, drives hiredis from the
 * nginx event loop, pipelines the commands of every caller on it and
 * bounds each one with a timer.  Other Kordon modules look a server up
 * while nginx reads its configuration and send commands while it runs,
 * through the functions below.  nginx loads dynamic modules with
 * RTLD_GLOBAL, so they resolve these symbols against this .so: load it
 * after ngx_http_kordon_module.so and before them.  README.md has the
 * whole contract.
 */


#ifndef _NGX_HTTP_KORDON_REDIS_H_INCLUDED_
#define _NGX_HTTP_KORDON_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>


/*
 * How a command ended: the status a handler gets.  The senders return
 * NGX_HTTP_KORDON_REDIS_OK when the command is on its way (the handler
 * will run), or DOWN or ERROR when it could not be sent (it never will).
 */
#define NGX_HTTP_KORDON_REDIS_OK       0  /* a reply, not an error reply */
#define NGX_HTTP_KORDON_REDIS_TIMEOUT  1  /* no reply in time; reply NULL */
#define NGX_HTTP_KORDON_REDIS_ERROR    2  /* an error reply ("-ERR ...",
                                             "-NOSCRIPT ..."), or refused
                                             here: bad arguments, no
                                             memory; see the log */
#define NGX_HTTP_KORDON_REDIS_DOWN     3  /* not connected, too many in
                                             flight, or the connection was
                                             lost; reply NULL */


typedef struct ngx_http_kordon_redis_server_s  ngx_http_kordon_redis_server_t;
typedef struct ngx_http_kordon_redis_cmd_s     ngx_http_kordon_redis_cmd_t;
typedef struct ngx_http_kordon_redis_sub_s     ngx_http_kordon_redis_sub_t;


/*
 * A command's handler: called exactly once per command sent, never from
 * inside the call that sent it.  reply is valid only during the call
 * (copy what you keep); it is NULL for TIMEOUT and DOWN.
 */
typedef void (*ngx_http_kordon_redis_handler_pt)(redisReply *reply,
    ngx_uint_t status, void *data);

/* the same for a request-bound command; r is alive when it runs */
typedef void (*ngx_http_kordon_redis_request_pt)(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);


/*
 * A message published on a subscribed channel: its payload, valid only
 * during the call (copy what you keep).  It may send commands.
 */
typedef void (*ngx_http_kordon_redis_message_pt)(ngx_str_t *message,
    void *data);


/*
 * Counters of one named server, summed over the workers in shared memory
 * and kept across reloads.  Read them with plain loads.
 */
typedef struct {
    ngx_atomic_t  commands;          /* sent */
    ngx_atomic_t  errors;            /* ended with ERROR */
    ngx_atomic_t  timeouts;          /* ended with TIMEOUT */
    ngx_atomic_t  down;              /* ended with DOWN, or refused DOWN */
    ngx_atomic_t  connects;          /* connections that became ready */
    ngx_atomic_t  reconnects;        /* attempts after a worker's first */
    ngx_atomic_t  connect_failures;  /* attempts that never became ready */
} ngx_http_kordon_redis_stats_t;


/*
 * At configuration time, from a directive handler or a create/merge conf
 * function inside http{} (not from a postconfiguration handler): the
 * server called name, to keep in your conf.  kordon_redis may come later
 * in the file; nginx -t fails if it never does.  NULL when out of memory.
 */
ngx_http_kordon_redis_server_t *ngx_http_kordon_redis_lookup(ngx_conf_t *cf,
    ngx_str_t *name);

/*
 * Sends a command (argv and argvlen as for redisAsyncCommandArgv;
 * argvlen NULL means NUL-terminated strings; both may be freed on
 * return).  timeout 0 means the server's timeout=.  Returns
 * NGX_HTTP_KORDON_REDIS_OK and sets *cmdp (if cmdp is not NULL): the
 * handler will run exactly once.  Returns DOWN (no usable connection,
 * or max_pending commands in flight) or ERROR (bad arguments, a command
 * that a shared connection refuses, no memory): the handler will not
 * run.  Never calls a handler itself.
 */
ngx_int_t ngx_http_kordon_redis_send(ngx_http_kordon_redis_server_t *server,
    ngx_uint_t argc, const char **argv, const size_t *argvlen,
    ngx_msec_t timeout, ngx_http_kordon_redis_handler_pt handler,
    void *data, ngx_http_kordon_redis_cmd_t **cmdp);

/*
 * Orphans a command: its handler will not run, its timer is gone, and
 * its reply, when it comes, is dropped.  Only before the handler ran:
 * afterwards the pointer belongs to the client again.
 */
void ngx_http_kordon_redis_cancel(ngx_http_kordon_redis_cmd_t *cmd);

/*
 * A command bound to a request: a cleanup on r->pool orphans it if the
 * request is freed first, and the handler runs only for a live request.
 * On NGX_HTTP_KORDON_REDIS_OK it has done r->main->count++, as
 * ngx_http_read_client_request_body() does: a content handler returns
 * NGX_DONE; a phase handler calls ngx_http_finalize_request(r, NGX_DONE)
 * and returns NGX_DONE.  Until the reply, a client that closes its
 * connection finalizes the request (and so orphans the command).  Then
 * the handler runs with r->write_event_handler set to
 * ngx_http_core_run_phases, and must either finalize the request
 * (ngx_http_finalize_request(r, rc)) or resume its phases
 * (ngx_http_core_run_phases(r)); the posted requests run after it.  DOWN
 * and ERROR as for ngx_http_kordon_redis_send(), with the count left as
 * it was.
 */
ngx_int_t ngx_http_kordon_redis_request(ngx_http_request_t *r,
    ngx_http_kordon_redis_server_t *server, ngx_uint_t argc,
    const char **argv, const size_t *argvlen, ngx_msec_t timeout,
    ngx_http_kordon_redis_request_pt handler, void *data);

/*
 * In a worker, from init_process: a connection of its own to server
 * (its address, password and db), in subscribe mode on channel; handler
 * runs for each message.  It reconnects with the server's backoff and
 * subscribes again after every reconnect (a Redis restart), and TCP
 * keepalive notices a peer that vanished.  Messages published while it
 * is not subscribed are lost, as Redis pub/sub is.  The shared
 * connection never subscribes (it refuses SUBSCRIBE).  Returns NULL
 * when out of memory (logged).  Its connection counts are its own, not
 * the server's.
 */
ngx_http_kordon_redis_sub_t *ngx_http_kordon_redis_subscribe(
    ngx_cycle_t *cycle, ngx_http_kordon_redis_server_t *server,
    ngx_str_t *channel, ngx_http_kordon_redis_message_pt handler,
    void *data);

/* from exit_process: closes it; no handler runs any more */
void ngx_http_kordon_redis_unsubscribe(ngx_http_kordon_redis_sub_t *sub);

/* 1 if this worker's connection to the server is ready for commands */
ngx_uint_t ngx_http_kordon_redis_ready(
    ngx_http_kordon_redis_server_t *server);

ngx_str_t *ngx_http_kordon_redis_name(ngx_http_kordon_redis_server_t *server);

/* the counters, or NULL with no shared memory (nginx -t) */
ngx_http_kordon_redis_stats_t *ngx_http_kordon_redis_stats(
    ngx_http_kordon_redis_server_t *server);

/* every server of a cycle's configuration, for exporters; *n set */
ngx_http_kordon_redis_server_t **ngx_http_kordon_redis_servers(
    ngx_cycle_t *cycle, ngx_uint_t *n);

/* "ok", "timeout", "error", "down" */
ngx_str_t *ngx_http_kordon_redis_status_text(ngx_uint_t status);


extern ngx_module_t  ngx_http_kordon_redis_module;
extern ngx_module_t  ngx_http_kordon_redis_health_module;


#endif /* _NGX_HTTP_KORDON_REDIS_H_INCLUDED_ */
