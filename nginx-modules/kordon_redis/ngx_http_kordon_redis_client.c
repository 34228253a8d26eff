
/*
 * Kordon edge: one worker's connection to one Redis, hiredis driven by
 * the nginx event loop.
 *
 * hiredis's async context does the protocol; nginx does the waiting.
 * The socket hiredis opens becomes an ngx_connection_t, registered once
 * for both directions, edge-triggered under epoll as every nginx
 * connection is.  hiredis's hooks only say what it wants:
 *
 *   addWrite  a command was appended: post the write event, so that one
 *             write() at the end of this loop iteration carries every
 *             command issued in it (the pipelining); from inside a
 *             write, the socket is full: wait for the kernel's edge;
 *   delWrite  the buffer is empty: nothing to do when edge-triggered;
 *   addRead   already registered;
 *   cleanup   the context is going: close the nginx connection, take
 *             the descriptor away from hiredis, schedule the retry.
 *
 * Edge-triggered events fire once per arrival, and hiredis reads at most
 * 16 KiB per call without saying whether it met EAGAIN; so the read
 * handler calls it until a one-byte MSG_PEEK says the socket is empty,
 * at most NGX_HTTP_KORDON_REDIS_READ_ROUNDS times before it yields.
 *
 * Commands are formatted here (kordon_redis_format(), lengths and
 * memcpy into one buffer of the worker) and queued with
 * redisAsyncFormattedCommand(): hiredis's own argv formatting builds
 * the same bytes with sds and sdscatfmt at ~4,700 instructions a
 * command.
 *
 * Each command is a slot that hiredis holds until its reply or the end
 * of the context; the caller's handler runs at most once, for whichever
 * of reply, timer and lost connection comes first; the others only free
 * the slot.
 *
 * A subscriber (ngx_http_kordon_redis_subscribe) is a server of its
 * own whose handshake ends with SUBSCRIBE: hiredis then hands every
 * message of the channel to one callback, so the reconnect above
 * re-subscribes for free.  It sends nothing else.
 *
 * A connection is ready once Redis has answered AUTH, SELECT (when
 * configured) and a PING, queued ahead of everything else.  While there
 * is no sign of trouble (a worker's first attempt, or the first one
 * after Redis closed a ready connection) commands sent during the setup
 * wait behind it, so that a new worker's first requests and those
 * during a quick Redis restart are served, not refused.  After a failed
 * attempt, or a stuck connection dropped, they are refused DOWN at
 * once, until a connection is ready.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_kordon_redis_internal.h"


/* hiredis reads 16 KiB at a time: at most 512 KiB per read event */
#define NGX_HTTP_KORDON_REDIS_READ_ROUNDS  32

/* a command up to this size is formatted in the worker's one buffer */
#define NGX_HTTP_KORDON_REDIS_FORMAT_BUF   8192


struct ngx_http_kordon_redis_cmd_s {
    ngx_queue_t                        queue;    /* in busy or free */
    ngx_http_kordon_redis_server_t    *server;
    ngx_http_kordon_redis_handler_pt   handler;  /* NULL: ran or orphaned */
    void                              *data;
    ngx_event_t                        timer;
    ngx_msec_t                         start;
    ngx_msec_t                         timeout;
};


/* a request-bound command, in r->pool */
typedef struct {
    ngx_http_request_t                *request;
    ngx_http_kordon_redis_cmd_t       *cmd;      /* NULL once done */
    ngx_http_kordon_redis_request_pt   handler;
    void                              *data;
    unsigned                           test_reading:1;
} ngx_http_kordon_redis_wait_t;


static void ngx_http_kordon_redis_connect(
    ngx_http_kordon_redis_server_t *srv);
static void ngx_http_kordon_redis_connect_failed(
    ngx_http_kordon_redis_server_t *srv, const char *err);
static ngx_int_t ngx_http_kordon_redis_attach(
    ngx_http_kordon_redis_server_t *srv, redisAsyncContext *ac);
static ngx_int_t ngx_http_kordon_redis_handshake(
    ngx_http_kordon_redis_server_t *srv);
static void ngx_http_kordon_redis_handshake_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static ngx_int_t ngx_http_kordon_redis_subscribe_cmd(
    ngx_http_kordon_redis_server_t *srv);
static void ngx_http_kordon_redis_message_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_kordon_redis_drop(ngx_http_kordon_redis_server_t *srv);
static ngx_msec_t ngx_http_kordon_redis_retry(
    ngx_http_kordon_redis_server_t *srv, ngx_uint_t was_ready);
static void ngx_http_kordon_redis_timer_handler(ngx_event_t *ev);

static void ngx_http_kordon_redis_read_handler(ngx_event_t *rev);
static void ngx_http_kordon_redis_write_handler(ngx_event_t *wev);
static void ngx_http_kordon_redis_add_read(void *data);
static void ngx_http_kordon_redis_del_read(void *data);
static void ngx_http_kordon_redis_add_write(void *data);
static void ngx_http_kordon_redis_del_write(void *data);
static void ngx_http_kordon_redis_cleanup(void *data);

static ngx_int_t ngx_http_kordon_redis_queue(
    ngx_http_kordon_redis_server_t *srv, ngx_http_kordon_redis_cmd_t *cmd,
    ngx_uint_t argc, const char **argv, const size_t *argvlen);
static ngx_int_t ngx_http_kordon_redis_refuse(
    ngx_http_kordon_redis_server_t *srv, ngx_uint_t argc, const char **argv,
    const size_t *argvlen);
static ngx_http_kordon_redis_cmd_t *ngx_http_kordon_redis_cmd_get(
    ngx_http_kordon_redis_server_t *srv);
static void ngx_http_kordon_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_kordon_redis_timeout_handler(ngx_event_t *ev);

static void ngx_http_kordon_redis_request_done(redisReply *reply,
    ngx_uint_t status, void *data);
static void ngx_http_kordon_redis_request_cleanup(void *data);


static ngx_str_t  ngx_http_kordon_redis_status_texts[] = {
    ngx_string("ok"),
    ngx_string("timeout"),
    ngx_string("error"),
    ngx_string("down")
};


/* connection life: start, connect, handshake, drop, retry, stop */

void
ngx_http_kordon_redis_start(ngx_http_kordon_redis_server_t *srv,
    ngx_cycle_t *cycle)
{
    srv->log = cycle->log;
    srv->state = NGX_HTTP_KORDON_REDIS_CLOSED;
    srv->backoff = KORDON_REDIS_BACKOFF_MIN_MS;
    srv->early = 1;

    ngx_queue_init(&srv->busy);
    ngx_queue_init(&srv->free);

    srv->timer.handler = ngx_http_kordon_redis_timer_handler;
    srv->timer.data = srv;
    srv->timer.log = srv->log;

    /* a retry or a handshake deadline must not delay a worker's exit */
    srv->timer.cancelable = 1;

    ngx_http_kordon_redis_connect(srv);
}


/*
 * Starts a connection attempt.  On any failure the retry timer is set
 * (by the cleanup hook once hiredis has our hooks); it never retries
 * synchronously.
 */
static void
ngx_http_kordon_redis_connect(ngx_http_kordon_redis_server_t *srv)
{
    redisAsyncContext  *ac;

    if (srv->started) {
        (void) ngx_atomic_fetch_add(&srv->stats->reconnects, 1);
    }

    srv->started = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, srv->log, 0,
                   "redis \"%V\" connect to %V", &srv->name, &srv->addr);

    /* an IP literal: getaddrinfo() parses it, no lookup, no blocking */

    ac = redisAsyncConnect((const char *) srv->host, (int) srv->port);

    if (ac == NULL) {
        ngx_http_kordon_redis_connect_failed(srv, "out of memory");
        return;
    }

    if (ac->err) {
        ngx_http_kordon_redis_connect_failed(srv, ac->errstr);
        redisAsyncFree(ac);
        return;
    }

    if (ngx_http_kordon_redis_attach(srv, ac) != NGX_OK) {

        if (srv->ac == NULL) {
            /* no nginx connection: hiredis owns the descriptor still */
            redisAsyncFree(ac);
            ngx_http_kordon_redis_connect_failed(srv, "no free connection");
            return;
        }

        ngx_http_kordon_redis_drop(srv);
        return;
    }

    if (ngx_http_kordon_redis_handshake(srv) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "could not queue the handshake for redis \"%V\" (%V)",
                      &srv->name, &srv->addr);
        ngx_http_kordon_redis_drop(srv);
        return;
    }

    ngx_add_timer(&srv->timer, srv->connect_timeout);
}


/* an attempt that failed before hiredis had our hooks */
static void
ngx_http_kordon_redis_connect_failed(ngx_http_kordon_redis_server_t *srv,
    const char *err)
{
    ngx_msec_t  delay;

    srv->early = 0;

    (void) ngx_atomic_fetch_add(&srv->stats->connect_failures, 1);

    delay = ngx_http_kordon_redis_retry(srv, 0);

    ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                  "could not connect to redis \"%V\" (%V): %s, "
                  "retrying in %M ms", &srv->name, &srv->addr, err, delay);
}


/*
 * Wraps the context's descriptor in an nginx connection and installs the
 * hooks.  NGX_ERROR with srv->ac NULL: nothing was attached, the caller
 * frees the context; with srv->ac set: drop it, the cleanup hook closes
 * the connection.
 */
static ngx_int_t
ngx_http_kordon_redis_attach(ngx_http_kordon_redis_server_t *srv,
    redisAsyncContext *ac)
{
    ngx_int_t          event;
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, srv->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = srv;
    c->type = SOCK_STREAM;
    c->log_error = NGX_ERROR_ERR;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->start_time = ngx_current_msec;

    c->read->handler = ngx_http_kordon_redis_read_handler;
    c->write->handler = ngx_http_kordon_redis_write_handler;
    c->read->log = c->log;
    c->write->log = c->log;

    ac->data = srv;
    ac->ev.data = srv;
    ac->ev.addRead = ngx_http_kordon_redis_add_read;
    ac->ev.delRead = ngx_http_kordon_redis_del_read;
    ac->ev.addWrite = ngx_http_kordon_redis_add_write;
    ac->ev.delWrite = ngx_http_kordon_redis_del_write;
    ac->ev.cleanup = ngx_http_kordon_redis_cleanup;

    srv->ac = ac;
    srv->connection = c;
    srv->state = NGX_HTTP_KORDON_REDIS_CONNECTING;
    srv->handshake = 0;
    srv->read_time = ngx_current_msec;

    /* as ngx_event_connect_peer() does: both directions, once */

    if (ngx_add_conn) {
        return ngx_add_conn(c);
    }

    event = (ngx_event_flags & NGX_USE_CLEAR_EVENT) ? NGX_CLEAR_EVENT
                                                    : NGX_LEVEL_EVENT;

    if (ngx_add_event(c->read, NGX_READ_EVENT, event) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_add_event(c->write, NGX_WRITE_EVENT, event);
}


/*
 * Queues AUTH, SELECT (when configured) and PING ahead of everything:
 * hiredis sends them once the connection is up, and the connection is
 * ready when all three have answered.
 */
static ngx_int_t
ngx_http_kordon_redis_handshake(ngx_http_kordon_redis_server_t *srv)
{
    u_char       db[NGX_INT_T_LEN];
    size_t       argvlen[2];
    const char  *argv[2];

    if (srv->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (const char *) srv->password.data;
        argvlen[1] = srv->password.len;

        if (redisAsyncCommandArgv(srv->ac,
                                  ngx_http_kordon_redis_handshake_reply, srv,
                                  2, argv, argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        srv->handshake++;
    }

    if (srv->db > 0) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", srv->db) - db;

        if (redisAsyncCommandArgv(srv->ac,
                                  ngx_http_kordon_redis_handshake_reply, srv,
                                  2, argv, argvlen)
            != REDIS_OK)
        {
            return NGX_ERROR;
        }

        srv->handshake++;
    }

    argv[0] = "PING";
    argvlen[0] = 4;

    if (redisAsyncCommandArgv(srv->ac, ngx_http_kordon_redis_handshake_reply,
                              srv, 1, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    srv->handshake++;

    return srv->channel.len ? ngx_http_kordon_redis_subscribe_cmd(srv)
                            : NGX_OK;
}


/* a subscriber's last handshake command: hiredis keeps its callback */
static ngx_int_t
ngx_http_kordon_redis_subscribe_cmd(ngx_http_kordon_redis_server_t *srv)
{
    size_t       argvlen[2];
    const char  *argv[2];

    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    argv[1] = (const char *) srv->channel.data;
    argvlen[1] = srv->channel.len;

    if (redisAsyncCommandArgv(srv->ac, ngx_http_kordon_redis_message_reply,
                              srv, 2, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    /* nothing is sent on it: only the kernel can tell that Redis is gone */
    (void) redisEnableKeepAlive(&srv->ac->c);

    return NGX_OK;
}


/*
 * A subscriber's callback: the SUBSCRIBE confirmation, then one call per
 * message ["message", channel, payload]; NULL as the context goes.
 */
static void
ngx_http_kordon_redis_message_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_str_t                        msg;
    redisReply                      *reply, *kind;
    ngx_http_kordon_redis_server_t  *srv;

    reply = r;
    srv = privdata;

    if (reply == NULL || srv->closing || srv->exiting
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind = reply->element[0];

    if (kind->len == sizeof("subscribe") - 1
        && ngx_strncasecmp((u_char *) kind->str, (u_char *) "subscribe",
                           kind->len) == 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, srv->log, 0,
                      "redis \"%V\" (%V) subscribed to channel \"%V\"",
                      &srv->name, &srv->addr, &srv->channel);
        return;
    }

    if (kind->len == sizeof("message") - 1
        && ngx_strncasecmp((u_char *) kind->str, (u_char *) "message",
                           kind->len) == 0
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        msg.data = (u_char *) reply->element[2]->str;
        msg.len = reply->element[2]->len;

        srv->message(&msg, srv->message_data);
    }
}


static void
ngx_http_kordon_redis_handshake_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                      *reply;
    ngx_http_kordon_redis_server_t  *srv;

    reply = r;
    srv = privdata;

    if (reply == NULL || srv->closing) {
        /* the context is being freed; the cleanup hook reports it */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "redis \"%V\" (%V) refused the connection setup: %*s",
                      &srv->name, &srv->addr, reply->len, reply->str);

        /* in a hiredis callback: hiredis frees the context after it */
        ngx_http_kordon_redis_drop(srv);
        return;
    }

    if (--srv->handshake) {
        return;
    }

    if (srv->timer.timer_set) {
        ngx_del_timer(&srv->timer);
    }

    srv->state = NGX_HTTP_KORDON_REDIS_READY;
    srv->backoff = KORDON_REDIS_BACKOFF_MIN_MS;
    srv->ready_time = ngx_current_msec;

    (void) ngx_atomic_fetch_add(&srv->stats->connects, 1);

    ngx_log_error(NGX_LOG_NOTICE, srv->log, 0,
                  "redis \"%V\" (%V) connected, connection *%uA",
                  &srv->name, &srv->addr, srv->connection->number);
}


/*
 * Ends the connection: hiredis runs every pending callback with a NULL
 * reply (DOWN for the live ones), then the cleanup hook.  From inside a
 * hiredis callback it only marks the context; hiredis frees it when the
 * callback returns.
 */
static void
ngx_http_kordon_redis_drop(ngx_http_kordon_redis_server_t *srv)
{
    if (srv->ac == NULL || srv->closing) {
        return;
    }

    srv->closing = 1;

    redisAsyncFree(srv->ac);
}


/* sets the retry timer; returns its delay */
static ngx_msec_t
ngx_http_kordon_redis_retry(ngx_http_kordon_redis_server_t *srv,
    ngx_uint_t was_ready)
{
    uintptr_t   backoff;
    ngx_msec_t  delay;

    backoff = srv->backoff;
    delay = kordon_redis_retry_delay(was_ready,
                                     ngx_current_msec - srv->ready_time,
                                     &backoff);
    srv->backoff = backoff;

    if (srv->timer.timer_set) {
        ngx_del_timer(&srv->timer);
    }

    ngx_add_timer(&srv->timer, delay);

    return delay;
}


static void
ngx_http_kordon_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_kordon_redis_server_t  *srv;

    srv = ev->data;

    if (srv->exiting) {
        return;
    }

    if (srv->state == NGX_HTTP_KORDON_REDIS_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "redis \"%V\" (%V) did not complete the connection "
                      "setup in %M ms", &srv->name, &srv->addr,
                      srv->connect_timeout);
        ngx_http_kordon_redis_drop(srv);
        return;
    }

    ngx_http_kordon_redis_connect(srv);
}


/*
 * At worker exit: no handler runs any more (the requests are going too),
 * the connection is closed before nginx looks for open sockets, and
 * nothing is retried.
 */
void
ngx_http_kordon_redis_stop(ngx_http_kordon_redis_server_t *srv)
{
    ngx_queue_t                  *q;
    ngx_http_kordon_redis_cmd_t  *cmd;

    srv->exiting = 1;

    if (srv->timer.timer_set) {
        ngx_del_timer(&srv->timer);
    }

    if (srv->busy.next == NULL) {
        /* never started: not a worker */
        return;
    }

    for (q = ngx_queue_head(&srv->busy);
         q != ngx_queue_sentinel(&srv->busy);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_kordon_redis_cmd_t, queue);
        ngx_http_kordon_redis_cancel(cmd);
    }

    ngx_http_kordon_redis_drop(srv);
}


/* the event side: nginx events in, hiredis calls out */

static void
ngx_http_kordon_redis_read_handler(ngx_event_t *rev)
{
    char                             buf[1];
    ssize_t                          n;
    ngx_err_t                        err;
    ngx_uint_t                       i;
    ngx_connection_t                *c;
    ngx_http_kordon_redis_server_t  *srv;

    c = rev->data;
    srv = c->data;

    for (i = 0; i < NGX_HTTP_KORDON_REDIS_READ_ROUNDS; i++) {

        srv->read_time = ngx_current_msec;

        redisAsyncHandleRead(srv->ac);

        if (srv->connection != c) {
            /* hiredis freed the context: the connection is closed */
            return;
        }

        if (!(srv->ac->c.flags & REDIS_CONNECTED)) {
            /* connect() still under way: the write event completes it */
            return;
        }

        n = recv(c->fd, buf, 1, MSG_PEEK);

        if (n == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN) {
                rev->ready = 0;

                if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                    ngx_http_kordon_redis_drop(srv);
                }

                return;
            }
        }

        /* more bytes, the end of the stream or an error: hiredis sees it */
    }

    /* let the other connections have their turn */

    ngx_post_event(rev, &ngx_posted_events);
}


static void
ngx_http_kordon_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t                *c;
    ngx_http_kordon_redis_server_t  *srv;

    c = wev->data;
    srv = c->data;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, srv->log, 0,
                   "redis \"%V\" write, in flight: %ui",
                   &srv->name, srv->pending);

    srv->writing = 1;

    redisAsyncHandleWrite(srv->ac);

    srv->writing = 0;
}


static void
ngx_http_kordon_redis_add_read(void *data)
{
    ngx_http_kordon_redis_server_t  *srv = data;

    if (ngx_handle_read_event(srv->connection->read, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, srv->log, 0,
                      "redis \"%V\": could not add the read event",
                      &srv->name);
    }
}


static void
ngx_http_kordon_redis_del_read(void *data)
{
    /*
     * hiredis 0.14 never asks; a connection reads for its whole life,
     * and edge-triggered events cost nothing while it is idle
     */
}


static void
ngx_http_kordon_redis_add_write(void *data)
{
    ngx_event_t                     *wev;
    ngx_http_kordon_redis_server_t  *srv = data;

    wev = srv->connection->write;

    if (srv->writing) {
        /* hiredis wrote part of its buffer: the socket buffer is full */
        wev->ready = 0;

    } else if (wev->ready) {
        /* one write() at the end of this loop iteration for all */
        ngx_post_event(wev, &ngx_posted_events);
        return;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, srv->log, 0,
                      "redis \"%V\": could not add the write event",
                      &srv->name);
    }
}


static void
ngx_http_kordon_redis_del_write(void *data)
{
    ngx_http_kordon_redis_server_t  *srv = data;

    /* edge-triggered: nothing; level-triggered: stop the events */

    if (ngx_handle_write_event(srv->connection->write, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, srv->log, 0,
                      "redis \"%V\": could not delete the write event",
                      &srv->name);
    }
}


/*
 * hiredis is freeing the context: every pending callback has run.
 * nginx closes the descriptor (deleting its events, timers and posted
 * events) and hiredis must not close it again.
 */
static void
ngx_http_kordon_redis_cleanup(void *data)
{
    ngx_msec_t                       delay;
    ngx_uint_t                       was_ready;
    redisAsyncContext               *ac;
    ngx_http_kordon_redis_server_t  *srv = data;

    ac = srv->ac;
    was_ready = (srv->state == NGX_HTTP_KORDON_REDIS_READY);

    ngx_close_connection(srv->connection);
    ac->c.fd = -1;

    srv->ac = NULL;
    srv->connection = NULL;
    srv->state = NGX_HTTP_KORDON_REDIS_CLOSED;
    srv->closing = 0;
    srv->writing = 0;
    srv->full = 0;

    /*
     * Redis closed a good connection (a restart, an idle timeout): let
     * commands wait for the next one.  A failed attempt, or a connection
     * dropped here because Redis stopped answering: fail fast.
     */

    srv->early = (was_ready && ac->c.err != 0);

    if (!was_ready) {
        (void) ngx_atomic_fetch_add(&srv->stats->connect_failures, 1);
    }

    if (srv->exiting) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, srv->log, 0,
                       "redis \"%V\" closed at exit", &srv->name);
        return;
    }

    delay = ngx_http_kordon_redis_retry(srv, was_ready);

    if (ac->c.err == 0) {
        /* dropped here; the reason is logged already */
        ngx_log_error(NGX_LOG_NOTICE, srv->log, 0,
                      "closed the connection to redis \"%V\" (%V), "
                      "retrying in %M ms", &srv->name, &srv->addr, delay);

    } else if (was_ready) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "lost the connection to redis \"%V\" (%V): %s, "
                      "retrying in %M ms",
                      &srv->name, &srv->addr, ac->c.errstr, delay);

    } else {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "could not connect to redis \"%V\" (%V): %s, "
                      "retrying in %M ms",
                      &srv->name, &srv->addr, ac->c.errstr, delay);
    }
}


/* commands */

ngx_int_t
ngx_http_kordon_redis_send(ngx_http_kordon_redis_server_t *srv,
    ngx_uint_t argc, const char **argv, const size_t *argvlen,
    ngx_msec_t timeout, ngx_http_kordon_redis_handler_pt handler,
    void *data, ngx_http_kordon_redis_cmd_t **cmdp)
{
    ngx_int_t                     rc;
    ngx_http_kordon_redis_cmd_t  *cmd;

    rc = ngx_http_kordon_redis_refuse(srv, argc, argv, argvlen);
    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        return rc;
    }

    if (handler == NULL) {
        (void) ngx_atomic_fetch_add(&srv->stats->errors, 1);
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    cmd = ngx_http_kordon_redis_cmd_get(srv);
    if (cmd == NULL) {
        (void) ngx_atomic_fetch_add(&srv->stats->errors, 1);
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->start = ngx_current_msec;
    cmd->timeout = timeout ? timeout : srv->timeout;

    if (ngx_http_kordon_redis_queue(srv, cmd, argc, argv, argvlen)
        != NGX_OK)
    {
        cmd->handler = NULL;
        ngx_queue_insert_head(&srv->free, &cmd->queue);

        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "redis \"%V\": could not queue a command",
                      &srv->name);

        (void) ngx_atomic_fetch_add(&srv->stats->errors, 1);
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    ngx_add_timer(&cmd->timer, cmd->timeout);

    ngx_queue_insert_tail(&srv->busy, &cmd->queue);
    srv->pending++;

    (void) ngx_atomic_fetch_add(&srv->stats->commands, 1);

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, srv->log, 0,
                   "redis \"%V\" command \"%*s\", in flight: %ui",
                   &srv->name,
                   argvlen ? argvlen[0] : ngx_strlen(argv[0]), argv[0],
                   srv->pending);

    if (cmdp) {
        *cmdp = cmd;
    }

    return NGX_HTTP_KORDON_REDIS_OK;
}


/*
 * Formats the command here (kordon_redis_format(): lengths and memcpy)
 * and hands hiredis the bytes, which it copies to its output buffer:
 * hiredis's own redisAsyncCommandArgv() formats with sds and sdscatfmt
 * at several thousand instructions a command.  A command larger than
 * the worker's buffer is formatted in memory of its own, freed here.
 * NGX_OK, or NGX_ERROR when hiredis or the allocation refused.
 */
static ngx_int_t
ngx_http_kordon_redis_queue(ngx_http_kordon_redis_server_t *srv,
    ngx_http_kordon_redis_cmd_t *cmd, ngx_uint_t argc, const char **argv,
    const size_t *argvlen)
{
    int            rc;
    u_char        *buf, *last;
    size_t         len;
    static u_char  fmt[NGX_HTTP_KORDON_REDIS_FORMAT_BUF];

    len = kordon_redis_format_len(argc, argv, argvlen);

    if (len <= sizeof(fmt)) {
        buf = fmt;

    } else {
        buf = ngx_alloc(len, srv->log);
        if (buf == NULL) {
            return NGX_ERROR;
        }
    }

    last = kordon_redis_format(buf, argc, argv, argvlen);

    rc = redisAsyncFormattedCommand(srv->ac, ngx_http_kordon_redis_reply,
                                    cmd, (const char *) buf, last - buf);

    if (buf != fmt) {
        ngx_free(buf);
    }

    return rc == REDIS_OK ? NGX_OK : NGX_ERROR;
}


/*
 * The checks before a command is queued: OK, or the status to return
 * (counted, and logged where a caller's bug or an overload is the cause).
 */
static ngx_int_t
ngx_http_kordon_redis_refuse(ngx_http_kordon_redis_server_t *srv,
    ngx_uint_t argc, const char **argv, const size_t *argvlen)
{
    if (argc == 0 || argc > NGX_HTTP_KORDON_REDIS_ARGC_MAX || argv == NULL
        || kordon_redis_command_refused(argc, argv, argvlen))
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "redis \"%V\": this command cannot be sent on the "
                      "shared connection", &srv->name);

        (void) ngx_atomic_fetch_add(&srv->stats->errors, 1);
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    if (srv->closing
        || (srv->state != NGX_HTTP_KORDON_REDIS_READY
            && !(srv->state == NGX_HTTP_KORDON_REDIS_CONNECTING
                 && srv->early)))
    {
        (void) ngx_atomic_fetch_add(&srv->stats->down, 1);
        return NGX_HTTP_KORDON_REDIS_DOWN;
    }

    if (srv->pending >= srv->pending_max) {

        if (!srv->full) {
            srv->full = 1;
            ngx_log_error(NGX_LOG_WARN, srv->log, 0,
                          "redis \"%V\" (%V): %ui commands in flight, "
                          "refusing more", &srv->name, &srv->addr,
                          srv->pending);
        }

        (void) ngx_atomic_fetch_add(&srv->stats->down, 1);
        return NGX_HTTP_KORDON_REDIS_DOWN;
    }

    return NGX_HTTP_KORDON_REDIS_OK;
}


/* a command slot: recycled, or new from the cycle pool (max_pending) */
static ngx_http_kordon_redis_cmd_t *
ngx_http_kordon_redis_cmd_get(ngx_http_kordon_redis_server_t *srv)
{
    ngx_queue_t                  *q;
    ngx_http_kordon_redis_cmd_t  *cmd;

    if (!ngx_queue_empty(&srv->free)) {
        q = ngx_queue_head(&srv->free);
        ngx_queue_remove(q);
        return ngx_queue_data(q, ngx_http_kordon_redis_cmd_t, queue);
    }

    cmd = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_kordon_redis_cmd_t));
    if (cmd == NULL) {
        return NULL;
    }

    cmd->server = srv;
    cmd->timer.handler = ngx_http_kordon_redis_timeout_handler;
    cmd->timer.data = cmd;
    cmd->timer.log = srv->log;

    return cmd;
}


/*
 * hiredis's callback, exactly once per command: a reply, or NULL when
 * the context is freed.  The slot is free again before the handler runs.
 */
static void
ngx_http_kordon_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    void                              *data;
    ngx_uint_t                         status;
    redisReply                        *reply;
    ngx_http_kordon_redis_cmd_t       *cmd;
    ngx_http_kordon_redis_server_t    *srv;
    ngx_http_kordon_redis_handler_pt   handler;

    reply = r;
    cmd = privdata;
    srv = cmd->server;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    handler = cmd->handler;
    data = cmd->data;

    cmd->handler = NULL;
    cmd->data = NULL;

    ngx_queue_remove(&cmd->queue);
    ngx_queue_insert_head(&srv->free, &cmd->queue);
    srv->pending--;

    if (srv->pending < srv->pending_max / 2) {
        srv->full = 0;
    }

    if (reply == NULL) {
        /* the connection is going: refuse commands from now on */
        srv->closing = 1;
        status = NGX_HTTP_KORDON_REDIS_DOWN;

    } else if (reply->type == REDIS_REPLY_ERROR) {
        status = NGX_HTTP_KORDON_REDIS_ERROR;

    } else {
        status = NGX_HTTP_KORDON_REDIS_OK;
    }

    if (handler == NULL) {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, srv->log, 0,
                       "redis \"%V\" late %s ignored", &srv->name,
                       reply ? "reply" : "end");
        return;
    }

    if (status == NGX_HTTP_KORDON_REDIS_DOWN) {
        (void) ngx_atomic_fetch_add(&srv->stats->down, 1);

    } else if (status == NGX_HTTP_KORDON_REDIS_ERROR) {
        (void) ngx_atomic_fetch_add(&srv->stats->errors, 1);
    }

    handler(reply, status, data);
}


/*
 * A command's timer: TIMEOUT to its handler now; the slot stays with
 * hiredis until the reply or the end of the connection.  If nothing at
 * all was read while the command waited, the connection, not the
 * command, is stuck: it is dropped, and the commands behind get DOWN.
 */
static void
ngx_http_kordon_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_uint_t                         stalled;
    ngx_http_kordon_redis_cmd_t       *cmd;
    ngx_http_kordon_redis_server_t    *srv;
    ngx_http_kordon_redis_handler_pt   handler;

    cmd = ev->data;
    srv = cmd->server;

    handler = cmd->handler;
    cmd->handler = NULL;

    (void) ngx_atomic_fetch_add(&srv->stats->timeouts, 1);

    ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                  "redis \"%V\" (%V) did not answer in %M ms",
                  &srv->name, &srv->addr, cmd->timeout);

    stalled = kordon_redis_stalled(srv->read_time, cmd->start);

    if (handler) {
        handler(NULL, NGX_HTTP_KORDON_REDIS_TIMEOUT, cmd->data);
    }

    if (stalled && srv->state == NGX_HTTP_KORDON_REDIS_READY) {
        ngx_log_error(NGX_LOG_ERR, srv->log, 0,
                      "redis \"%V\" (%V) sent nothing for %M ms, "
                      "closing the connection",
                      &srv->name, &srv->addr, ngx_current_msec - cmd->start);
        ngx_http_kordon_redis_drop(srv);
    }
}


void
ngx_http_kordon_redis_cancel(ngx_http_kordon_redis_cmd_t *cmd)
{
    if (cmd->handler == NULL) {
        return;
    }

    cmd->handler = NULL;
    cmd->data = NULL;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, cmd->server->log, 0,
                   "redis \"%V\" command orphaned", &cmd->server->name);
}


/* request-bound commands */

ngx_int_t
ngx_http_kordon_redis_request(ngx_http_request_t *r,
    ngx_http_kordon_redis_server_t *srv, ngx_uint_t argc, const char **argv,
    const size_t *argvlen, ngx_msec_t timeout,
    ngx_http_kordon_redis_request_pt handler, void *data)
{
    ngx_int_t                      rc;
    ngx_pool_cleanup_t            *cln;
    ngx_http_kordon_redis_wait_t  *w;

    /* everything that can fail for want of memory, before the send */

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_kordon_redis_wait_t));
    if (w == NULL) {
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    w->request = r;
    w->handler = handler;
    w->data = data;

    cln->handler = ngx_http_kordon_redis_request_cleanup;
    cln->data = w;

    if (handler == NULL) {
        return NGX_HTTP_KORDON_REDIS_ERROR;
    }

    rc = ngx_http_kordon_redis_send(srv, argc, argv, argvlen, timeout,
                                    ngx_http_kordon_redis_request_done, w,
                                    &w->cmd);
    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        return rc;
    }

    r->main->count++;

    /* as limit_req's delay: notice a client that leaves, ignore writes */

    if (r->read_event_handler == ngx_http_block_reading) {
        r->read_event_handler = ngx_http_test_reading;
        w->test_reading = 1;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_HTTP_KORDON_REDIS_OK;
}


static void
ngx_http_kordon_redis_request_done(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_kordon_redis_wait_t  *w;

    w = data;
    r = w->request;
    c = r->connection;

    w->cmd = NULL;

    if (w->test_reading) {
        r->read_event_handler = ngx_http_block_reading;
    }

    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_set_log_request(c->log, r);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "redis request done: %V",
                   ngx_http_kordon_redis_status_text(status));

    w->handler(r, reply, status, w->data);

    ngx_http_run_posted_requests(c);
}


/* r->pool is being destroyed: the request will not hear back */
static void
ngx_http_kordon_redis_request_cleanup(void *data)
{
    ngx_http_kordon_redis_wait_t  *w = data;

    if (w->cmd) {
        ngx_http_kordon_redis_cancel(w->cmd);
        w->cmd = NULL;
    }
}


/* subscribers */

ngx_http_kordon_redis_sub_t *
ngx_http_kordon_redis_subscribe(ngx_cycle_t *cycle,
    ngx_http_kordon_redis_server_t *server, ngx_str_t *channel,
    ngx_http_kordon_redis_message_pt handler, void *data)
{
    u_char                          *p;
    ngx_http_kordon_redis_sub_t     *sub;
    ngx_http_kordon_redis_server_t  *srv;

    static ngx_str_t  suffix = ngx_string(" (subscriber)");

    sub = ngx_pcalloc(cycle->pool, sizeof(ngx_http_kordon_redis_sub_t));
    if (sub == NULL) {
        return NULL;
    }

    srv = &sub->server;

    p = ngx_pnalloc(cycle->pool, server->name.len + suffix.len);
    if (p == NULL) {
        return NULL;
    }

    srv->name.data = p;
    srv->name.len = ngx_cpymem(ngx_cpymem(p, server->name.data,
                                          server->name.len),
                               suffix.data, suffix.len) - p;

    /* the configuration only: the run-time part starts from zero */
    srv->addr = server->addr;
    srv->host = server->host;
    srv->port = server->port;
    srv->timeout = server->timeout;
    srv->connect_timeout = server->connect_timeout;
    srv->db = server->db;
    srv->password = server->password;
    srv->pending_max = server->pending_max;
    srv->file = server->file;
    srv->line = server->line;
    srv->defined = 1;
    srv->stats = &sub->stats;

    srv->channel = *channel;
    srv->message = handler;
    srv->message_data = data;

    ngx_http_kordon_redis_start(srv, cycle);

    return sub;
}


void
ngx_http_kordon_redis_unsubscribe(ngx_http_kordon_redis_sub_t *sub)
{
    ngx_http_kordon_redis_stop(&sub->server);
}


/* accessors */

ngx_uint_t
ngx_http_kordon_redis_ready(ngx_http_kordon_redis_server_t *srv)
{
    return srv->state == NGX_HTTP_KORDON_REDIS_READY && !srv->closing;
}


ngx_str_t *
ngx_http_kordon_redis_status_text(ngx_uint_t status)
{
    if (status > NGX_HTTP_KORDON_REDIS_DOWN) {
        status = NGX_HTTP_KORDON_REDIS_ERROR;
    }

    return &ngx_http_kordon_redis_status_texts[status];
}
