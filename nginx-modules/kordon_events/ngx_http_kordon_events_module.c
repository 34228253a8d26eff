
/*
 * Kordon edge: one JSON event per request to Kafka.
 *
 * Each worker owns a librdkafka producer, made in init_process (the
 * library's threads do not survive fork()).  The log phase encodes the
 * request (kordon_events_core.c, no printf, no allocation) into the
 * worker's one buffer and hands it to rd_kafka_produce()
 * with RD_KAFKA_MSG_F_COPY and without RD_KAFKA_MSG_F_BLOCK: that call
 * only appends to an in-memory queue bounded by queue= messages, and
 * librdkafka's own threads talk to the broker.  A full queue (the
 * broker is gone, or slower than the edge) fails the call at once: the
 * event is dropped and counted, the request is not slowed.
 *
 * The one idea: nothing of librdkafka ever calls back into nginx from
 * another thread.  Delivery reports, errors and log lines wait on the
 * producer's main queue (log.queue, rd_kafka_set_log_queue) until a
 * timer of this worker polls it without waiting; the counters they
 * bump live in the metrics zone of ngx_http_kordon_module.so.  At exit
 * the worker flushes for at most flush= and drops the rest.
 * linger= (linger.ms) is 50 ms by default: fewer, larger produce
 * requests cost librdkafka's thread and the broker less per event, and
 * a request event may well reach Kafka 50 ms late.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <librdkafka/rdkafka.h>
#include "ngx_http_kordon.h"
#include "kordon_events_core.h"


#define NGX_HTTP_KORDON_EVENTS_QUEUE_DEFAULT    20000
/* librdkafka's queue.buffering.max.kbytes: memory bound of the queue */
#define NGX_HTTP_KORDON_EVENTS_QUEUE_KBYTES     "16384"
#define NGX_HTTP_KORDON_EVENTS_QUEUE_MAX        10000000
#define NGX_HTTP_KORDON_EVENTS_LINGER_DEFAULT   50       /* ms */
#define NGX_HTTP_KORDON_EVENTS_POLL_DEFAULT     100      /* ms */
#define NGX_HTTP_KORDON_EVENTS_FLUSH_DEFAULT    1000     /* ms */
#define NGX_HTTP_KORDON_EVENTS_TIMEOUT_DEFAULT  10000    /* ms */
#define NGX_HTTP_KORDON_EVENTS_ERRSTR_LEN       512
/* the worker's event buffer: larger events take memory from the pool */
#define NGX_HTTP_KORDON_EVENTS_BUF_LEN          4096
/* at most one librdkafka error line per this many ms */
#define NGX_HTTP_KORDON_EVENTS_LOG_EVERY        10000


typedef struct {
    ngx_str_t                  brokers;       /* empty: events off */
    ngx_str_t                  topic;
    ngx_uint_t                 queue_max;
    ngx_msec_t                 linger;
    ngx_msec_t                 poll;
    ngx_msec_t                 flush;
    ngx_msec_t                 timeout;

    ngx_int_t                  request_id_index;
    ngx_int_t                  user_index;
    ngx_int_t                  api_key_index;
    ngx_int_t                  limit_index;
    ngx_int_t                  cache_index;
} ngx_http_kordon_events_main_conf_t;


typedef struct {
    ngx_flag_t                 enable;
} ngx_http_kordon_events_loc_conf_t;


/* the worker's producer; NULL in the master and when events are off */
typedef struct {
    rd_kafka_t                *rk;
    rd_kafka_topic_t          *rkt;
    kordon_metrics_kafka_t    *stats;
    ngx_event_t                poll_ev;
    ngx_connection_t           dummy;         /* poll_ev.data, for logs */
    ngx_msec_t                 logged;
    ngx_log_t                 *log;
    char                       errstr[NGX_HTTP_KORDON_EVENTS_ERRSTR_LEN];
    u_char                     buf[NGX_HTTP_KORDON_EVENTS_BUF_LEN];
} ngx_http_kordon_events_worker_t;


static ngx_int_t ngx_http_kordon_events_handler(ngx_http_request_t *r);
static void ngx_http_kordon_events_fill(ngx_http_request_t *r,
    ngx_http_kordon_events_main_conf_t *emcf, kordon_event_t *e);
static void ngx_http_kordon_events_var(ngx_http_request_t *r,
    ngx_int_t index, kordon_events_str_t *s);
static void ngx_http_kordon_events_poll(ngx_event_t *ev);
static void ngx_http_kordon_events_dr(rd_kafka_t *rk,
    const rd_kafka_message_t *msg, void *opaque);
static void ngx_http_kordon_events_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);
static void ngx_http_kordon_events_logger(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static rd_kafka_conf_t *ngx_http_kordon_events_rd_conf(ngx_cycle_t *cycle,
    ngx_http_kordon_events_main_conf_t *emcf);
static ngx_int_t ngx_http_kordon_events_set(ngx_cycle_t *cycle,
    rd_kafka_conf_t *conf, const char *name, const char *value);
static ngx_int_t ngx_http_kordon_events_init_process(ngx_cycle_t *cycle);
static void ngx_http_kordon_events_exit_process(ngx_cycle_t *cycle);
static char *ngx_http_kordon_events(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_kordon_events_param(ngx_conf_t *cf,
    ngx_http_kordon_events_main_conf_t *emcf, ngx_str_t *v);
static void *ngx_http_kordon_events_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_kordon_events_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_kordon_events_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_kordon_events_init(ngx_conf_t *cf);


static ngx_http_kordon_events_worker_t  ngx_http_kordon_events_worker;

/* where the counters go when the metrics zone is absent (nginx -t) */
static kordon_metrics_kafka_t  ngx_http_kordon_events_private_stats;


static ngx_command_t  ngx_http_kordon_events_commands[] = {

    { ngx_string("kordon_events"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_kordon_events,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_kordon_events_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_kordon_events_init,           /* postconfiguration */

    ngx_http_kordon_events_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_kordon_events_create_loc_conf, /* create location configuration */
    ngx_http_kordon_events_merge_loc_conf  /* merge location configuration */
};


ngx_module_t  ngx_http_kordon_events_module = {
    NGX_MODULE_V1,
    &ngx_http_kordon_events_module_ctx,    /* module context */
    ngx_http_kordon_events_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_kordon_events_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_kordon_events_exit_process,   /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The log phase: encode, hand over, count.  Never fails the request and
 * never waits: a full queue or any produce error drops the event.
 */

static ngx_int_t
ngx_http_kordon_events_handler(ngx_http_request_t *r)
{
    int                                  rc;
    size_t                               len;
    u_char                              *buf;
    kordon_event_t                       e;
    rd_kafka_resp_err_t                  err;
    kordon_events_str_t                 *key;
    ngx_http_kordon_events_worker_t     *w;
    ngx_http_kordon_events_loc_conf_t   *elcf;
    ngx_http_kordon_events_main_conf_t  *emcf;

    w = &ngx_http_kordon_events_worker;

    if (w->rkt == NULL || r != r->main) {
        return NGX_OK;
    }

    elcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_events_module);

    if (!elcf->enable) {
        return NGX_OK;
    }

    emcf = ngx_http_get_module_main_conf(r, ngx_http_kordon_events_module);

    ngx_http_kordon_events_fill(r, emcf, &e);

    /* librdkafka copies the text: one buffer serves every request */

    len = kordon_events_json_len(&e);

    if (len <= NGX_HTTP_KORDON_EVENTS_BUF_LEN) {
        buf = w->buf;

    } else {
        buf = ngx_pnalloc(r->pool, len);
        if (buf == NULL) {
            kordon_metrics_add(&w->stats->dropped_error, 1);
            return NGX_OK;
        }
    }

    len = kordon_events_json(buf, &e);

    /* the partition follows the user, else the client */
    key = e.user.len ? &e.user : &e.client_ip;

    rc = rd_kafka_produce(w->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                          buf, len, key->data, key->len, NULL);

    if (rc == 0) {
        kordon_metrics_add(&w->stats->produced, 1);
        return NGX_OK;
    }

    err = rd_kafka_last_error();

    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        kordon_metrics_add(&w->stats->dropped_queue_full, 1);

    } else {
        kordon_metrics_add(&w->stats->dropped_error, 1);
    }

    return NGX_OK;
}


static void
ngx_http_kordon_events_fill(ngx_http_request_t *r,
    ngx_http_kordon_events_main_conf_t *emcf, kordon_event_t *e)
{
    ngx_str_t                   route;
    ngx_uint_t                  i;
    ngx_time_t                 *tp;
    ngx_msec_int_t              ms;
    ngx_http_upstream_state_t  *state;

    ngx_memzero(e, sizeof(kordon_event_t));

    e->time_ms = (int64_t) r->start_sec * 1000 + r->start_msec;

    ngx_http_kordon_events_var(r, emcf->request_id_index, &e->request_id);

    e->method.data = r->method_name.data;
    e->method.len = r->method_name.len;

    (void) ngx_http_kordon_route(r, &route);
    e->route.data = route.data;
    e->route.len = route.len;

    e->status = r->err_status ? r->err_status : r->headers_out.status;

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    e->duration_ms = ngx_max(ms, 0);

    e->upstream_ms = -1;

    if (r->upstream_states != NULL && r->upstream_states->nelts > 0) {
        state = r->upstream_states->elts;
        e->upstream_ms = 0;

        for (i = 0; i < r->upstream_states->nelts; i++) {
            if (state[i].status && state[i].response_time != (ngx_msec_t) -1)
            {
                e->upstream_ms += state[i].response_time;
            }
        }
    }

    e->bytes_sent = r->connection->sent > 0 ? r->connection->sent : 0;
    e->bytes_received = r->request_length > 0 ? r->request_length : 0;

    ngx_http_kordon_events_var(r, emcf->user_index, &e->user);
    ngx_http_kordon_events_var(r, emcf->api_key_index, &e->api_key_id);
    ngx_http_kordon_events_var(r, emcf->limit_index, &e->limit);
    ngx_http_kordon_events_var(r, emcf->cache_index, &e->cache);

    e->client_ip.data = r->connection->addr_text.data;
    e->client_ip.len = r->connection->addr_text.len;
}


/* a variable's value, empty when it is not defined or not found */

static void
ngx_http_kordon_events_var(ngx_http_request_t *r, ngx_int_t index,
    kordon_events_str_t *s)
{
    ngx_http_variable_value_t  *v;

    s->len = 0;
    s->data = NULL;

    if (index == NGX_ERROR) {
        return;
    }

    v = ngx_http_get_indexed_variable(r, index);

    if (v == NULL || v->not_found) {
        return;
    }

    s->data = v->data;
    s->len = v->len;
}


/*
 * The worker's timer: delivery reports, errors and log lines run here,
 * in the worker's own thread; then the queue depth is published.
 */

static void
ngx_http_kordon_events_poll(ngx_event_t *ev)
{
    ngx_http_kordon_events_worker_t     *w;
    ngx_http_kordon_events_main_conf_t  *emcf;

    w = &ngx_http_kordon_events_worker;

    rd_kafka_poll(w->rk, 0);

    if (ngx_worker < KORDON_METRICS_WORKERS_MAX) {
        kordon_metrics_store(&w->stats->queue[ngx_worker],
                             (uint64_t) rd_kafka_outq_len(w->rk));
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    emcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_kordon_events_module);

    ngx_add_timer(ev, emcf->poll);
}


static void
ngx_http_kordon_events_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg,
    void *opaque)
{
    ngx_http_kordon_events_worker_t  *w = opaque;

    if (msg->err) {
        kordon_metrics_add(&w->stats->delivery_failed, 1);

    } else {
        kordon_metrics_add(&w->stats->delivered, 1);
    }
}


/*
 * Errors are counted; a broker that stays down reports one every few
 * seconds, so the log gets at most one line per LOG_EVERY.
 */

static void
ngx_http_kordon_events_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_kordon_events_worker_t  *w = opaque;

    kordon_metrics_add(&w->stats->errors, 1);

    if (w->logged != 0
        && ngx_current_msec - w->logged < NGX_HTTP_KORDON_EVENTS_LOG_EVERY)
    {
        return;
    }

    w->logged = ngx_current_msec;

    ngx_log_error(NGX_LOG_WARN, w->log, 0,
                  "kordon_events: kafka error \"%s\": %s (events are "
                  "dropped and counted while it lasts)",
                  rd_kafka_err2name(err), reason);
}


static void
ngx_http_kordon_events_logger(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf)
{
    ngx_uint_t                        l;
    ngx_http_kordon_events_worker_t  *w;

    w = &ngx_http_kordon_events_worker;

    /*
     * syslog levels; what librdkafka reports is about the broker and the
     * network, not this worker, so at most a warning
     */
    l = level <= 4 ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(l, w->log ? w->log : ngx_cycle->log, 0,
                  "kordon_events: librdkafka %s: %s", fac, buf);
}


static ngx_int_t
ngx_http_kordon_events_set(ngx_cycle_t *cycle, rd_kafka_conf_t *conf,
    const char *name, const char *value)
{
    char  errstr[NGX_HTTP_KORDON_EVENTS_ERRSTR_LEN];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "kordon_events: could not set \"%s\": %s",
                      name, errstr);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static rd_kafka_conf_t *
ngx_http_kordon_events_rd_conf(ngx_cycle_t *cycle,
    ngx_http_kordon_events_main_conf_t *emcf)
{
    u_char            *p;
    ngx_uint_t         i;
    rd_kafka_conf_t   *conf;
    u_char             v[6][NGX_INT_T_LEN + 1];
    static char       *names[] = {
        "queue.buffering.max.messages", "linger.ms", "message.timeout.ms",
        "socket.connection.setup.timeout.ms", "reconnect.backoff.max.ms",
        "retry.backoff.ms"
    };

    conf = rd_kafka_conf_new();

    p = ngx_sprintf(v[0], "%ui", emcf->queue_max); *p = '\0';
    p = ngx_sprintf(v[1], "%M", emcf->linger); *p = '\0';
    p = ngx_sprintf(v[2], "%M", emcf->timeout); *p = '\0';
    p = ngx_sprintf(v[3], "%M", ngx_min(emcf->timeout, 1000)); *p = '\0';
    p = ngx_sprintf(v[4], "%M", (ngx_msec_t) 1000); *p = '\0';
    p = ngx_sprintf(v[5], "%M", (ngx_msec_t) 100); *p = '\0';

    if (ngx_http_kordon_events_set(cycle, conf, "bootstrap.servers",
                                   (char *) emcf->brokers.data) != NGX_OK
        || ngx_http_kordon_events_set(cycle, conf, "acks", "1") != NGX_OK
        || ngx_http_kordon_events_set(cycle, conf, "enable.idempotence",
                                      "false") != NGX_OK
        || ngx_http_kordon_events_set(cycle, conf,
                                      "queue.buffering.max.kbytes",
                                      NGX_HTTP_KORDON_EVENTS_QUEUE_KBYTES)
           != NGX_OK
        || ngx_http_kordon_events_set(cycle, conf, "log.queue", "true")
           != NGX_OK
        || ngx_http_kordon_events_set(cycle, conf, "client.id",
                                      "kordon-edge") != NGX_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    for (i = 0; i < 6; i++) {
        if (ngx_http_kordon_events_set(cycle, conf, names[i], (char *) v[i])
            != NGX_OK)
        {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    rd_kafka_conf_set_opaque(conf, &ngx_http_kordon_events_worker);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_http_kordon_events_dr);
    rd_kafka_conf_set_error_cb(conf, ngx_http_kordon_events_error);
    rd_kafka_conf_set_log_cb(conf, ngx_http_kordon_events_logger);

    return conf;
}


/*
 * The worker's producer.  A failure here is logged and leaves events
 * off in this worker; the worker still serves requests.
 */

static ngx_int_t
ngx_http_kordon_events_init_process(ngx_cycle_t *cycle)
{
    rd_kafka_conf_t                     *conf;
    ngx_http_kordon_events_worker_t     *w;
    ngx_http_kordon_events_main_conf_t  *emcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_events_module);

    if (emcf == NULL || emcf->brokers.len == 0) {
        return NGX_OK;
    }

    w = &ngx_http_kordon_events_worker;
    w->log = cycle->log;

    w->stats = ngx_http_kordon_metrics_kafka();
    if (w->stats == NULL) {
        w->stats = &ngx_http_kordon_events_private_stats;
    }

    conf = ngx_http_kordon_events_rd_conf(cycle, emcf);
    if (conf == NULL) {
        return NGX_OK;
    }

    w->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, w->errstr,
                         sizeof(w->errstr));
    if (w->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "kordon_events: could not create a producer: %s",
                      w->errstr);
        return NGX_OK;
    }

    /* logs go to the main queue too: served by the timer, in this thread */
    (void) rd_kafka_set_log_queue(w->rk, NULL);

    w->rkt = rd_kafka_topic_new(w->rk, (char *) emcf->topic.data, NULL);
    if (w->rkt == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "kordon_events: could not use topic \"%V\": %s",
                      &emcf->topic, rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(w->rk);
        w->rk = NULL;
        return NGX_OK;
    }

    w->poll_ev.handler = ngx_http_kordon_events_poll;
    w->dummy.fd = (ngx_socket_t) -1;
    w->poll_ev.data = &w->dummy;
    w->poll_ev.log = cycle->log;
    w->poll_ev.cancelable = 1;

    ngx_add_timer(&w->poll_ev, emcf->poll);

    return NGX_OK;
}


/*
 * Flushes for at most flush=, then drops what is left (counted as
 * delivery failures by the purge's reports) and frees the producer.
 */

static void
ngx_http_kordon_events_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_kordon_events_worker_t     *w;
    ngx_http_kordon_events_main_conf_t  *emcf;

    w = &ngx_http_kordon_events_worker;

    if (w->rk == NULL) {
        return;
    }

    emcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_kordon_events_module);

    if (rd_kafka_flush(w->rk, (int) emcf->flush) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "kordon_events: %d events not delivered at exit",
                      rd_kafka_outq_len(w->rk));

        (void) rd_kafka_purge(w->rk, RD_KAFKA_PURGE_F_QUEUE
                                     |RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(w->rk, 0);
    }

    if (ngx_worker < KORDON_METRICS_WORKERS_MAX) {
        kordon_metrics_store(&w->stats->queue[ngx_worker], 0);
    }

    rd_kafka_topic_destroy(w->rkt);
    rd_kafka_destroy(w->rk);

    w->rkt = NULL;
    w->rk = NULL;
}


/*
 * kordon_events brokers=host:port[,...] [topic=name] [queue=N]
 *               [linger=time] [poll=time] [flush=time] [timeout=time];
 * kordon_events on | off;
 */

static char *
ngx_http_kordon_events(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_kordon_events_loc_conf_t *elcf = conf;

    char                                *rv;
    ngx_str_t                           *value;
    ngx_uint_t                           i;
    ngx_http_kordon_events_main_conf_t  *emcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && (ngx_strcmp(value[1].data, "on") == 0
            || ngx_strcmp(value[1].data, "off") == 0))
    {
        if (elcf->enable != NGX_CONF_UNSET) {
            return "is duplicate";
        }

        elcf->enable = (value[1].data[1] == 'n');
        return NGX_CONF_OK;
    }

    if (cf->cmd_type != NGX_HTTP_MAIN_CONF) {
        return "takes brokers= and the other settings only in http{}; "
               "here only \"on\" or \"off\"";
    }

    emcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_events_module);

    if (emcf->brokers.len) {
        return "is duplicate";
    }

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_kordon_events_param(cf, emcf, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (emcf->brokers.len == 0) {
        return "needs brokers=";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_kordon_events_param(ngx_conf_t *cf,
    ngx_http_kordon_events_main_conf_t *emcf, ngx_str_t *v)
{
    ngx_int_t    n;
    ngx_str_t    s;
    ngx_msec_t  *ms;

    if (ngx_strncmp(v->data, "brokers=", 8) == 0 && v->len > 8) {
        emcf->brokers.data = v->data + 8;      /* NUL-terminated */
        emcf->brokers.len = v->len - 8;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(v->data, "topic=", 6) == 0 && v->len > 6) {
        emcf->topic.data = v->data + 6;
        emcf->topic.len = v->len - 6;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(v->data, "queue=", 6) == 0) {
        n = ngx_atoi(v->data + 6, v->len - 6);
        if (n < 1 || n > NGX_HTTP_KORDON_EVENTS_QUEUE_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid queue \"%V\" (1..%d messages)", v,
                               NGX_HTTP_KORDON_EVENTS_QUEUE_MAX);
            return NGX_CONF_ERROR;
        }

        emcf->queue_max = n;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(v->data, "linger=", 7) == 0) {
        ms = &emcf->linger;
        s.data = v->data + 7;
        s.len = v->len - 7;

    } else if (ngx_strncmp(v->data, "poll=", 5) == 0) {
        ms = &emcf->poll;
        s.data = v->data + 5;
        s.len = v->len - 5;

    } else if (ngx_strncmp(v->data, "flush=", 6) == 0) {
        ms = &emcf->flush;
        s.data = v->data + 6;
        s.len = v->len - 6;

    } else if (ngx_strncmp(v->data, "timeout=", 8) == 0) {
        ms = &emcf->timeout;
        s.data = v->data + 8;
        s.len = v->len - 8;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", v);
        return NGX_CONF_ERROR;
    }

    *ms = ngx_parse_time(&s, 0);

    if (*ms == (ngx_msec_t) NGX_ERROR || (*ms == 0 && ms != &emcf->linger)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\"", v);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_kordon_events_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_events_main_conf_t  *emcf;

    emcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_events_main_conf_t));
    if (emcf == NULL) {
        return NULL;
    }

    ngx_str_set(&emcf->topic, "edge.requests");
    emcf->queue_max = NGX_HTTP_KORDON_EVENTS_QUEUE_DEFAULT;
    emcf->linger = NGX_HTTP_KORDON_EVENTS_LINGER_DEFAULT;
    emcf->poll = NGX_HTTP_KORDON_EVENTS_POLL_DEFAULT;
    emcf->flush = NGX_HTTP_KORDON_EVENTS_FLUSH_DEFAULT;
    emcf->timeout = NGX_HTTP_KORDON_EVENTS_TIMEOUT_DEFAULT;

    return emcf;
}


static void *
ngx_http_kordon_events_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_kordon_events_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_kordon_events_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_kordon_events_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_kordon_events_loc_conf_t *prev = parent;
    ngx_http_kordon_events_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 1);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_kordon_events_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt                 *h;
    ngx_http_core_main_conf_t           *cmcf;
    ngx_http_kordon_events_main_conf_t  *emcf;

    emcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_kordon_events_module);

    if (emcf->brokers.len == 0) {
        return NGX_OK;
    }

    emcf->request_id_index = ngx_http_kordon_variable_index(cf, "request_id");
    emcf->user_index = ngx_http_kordon_variable_index(cf, "kordon_jwt_sub");
    emcf->api_key_index = ngx_http_kordon_variable_index(cf,
                                                         "kordon_api_key_id");
    emcf->limit_index = ngx_http_kordon_variable_index(cf,
                                                       "kordon_limit_status");
    emcf->cache_index = ngx_http_kordon_variable_index(cf,
                                                       "kordon_cache_status");

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_kordon_events_handler;

    return NGX_OK;
}
