/*
 * kit_outbox.c -- the transactional outbox and its relay to Kafka.
 *
 * kit_outbox_write() adds a row to the service's outbox table inside the
 * caller's transaction and notifies "kordon_outbox", so an event exists
 * exactly when the change it announces does.  One relay thread per
 * process publishes unsent rows to Kafka and stamps their sent_at.
 *
 * The idea that makes it safe: the table is the queue, and a row leaves
 * it only after the broker acknowledged it.  A broker outage, a crash or a
 * restart at any moment leaves the row unsent, and a later round
 * publishes it again, oldest first.  The idempotent producer drops the
 * duplicates its own retries would make, so a row reaches Kafka twice only
 * when the broker took it but the relay could not learn so (the delivery
 * report timed out while the message was in flight, or stamping sent_at
 * failed).  A failed row is retried in a later round; the rows of its
 * batch that did get through are not held back, so in that rare case a
 * key may see a retried event after a newer one.
 *
 * One relay per schema publishes at a time, across all processes: the
 * leader holds a session advisory lock on a connection of its own (not
 * the pool's); the others ask again every few seconds and take over when
 * the leader's session ends.  The leader sleeps on LISTEN with a poll
 * fallback, so an event leaves within milliseconds of its commit; after a
 * failure it backs off exponentially, 100 ms to 5 s.
 *
 * A row Kafka refuses for good (too large, a malformed topic name) is
 * skipped with an error and stays unsent, for an operator to repair; it
 * does not hold back the rows after it.
 *
 * Threads: only the relay thread touches the relay's connection, producer
 * and batch.  librdkafka calls the delivery and error callbacks from
 * rd_kafka_poll() on that thread; only the log callback comes from
 * librdkafka's own threads, and it touches nothing but kit_log().
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kit.h"


#ifdef KIT_DEBUG
#include <assert.h>
#define OUTBOX_ASSERT(e)          assert(e)
#else
#define OUTBOX_ASSERT(e)          ((void) 0)
#endif

#define OUTBOX_STR_(x)            #x
#define OUTBOX_STR(x)             OUTBOX_STR_(x)

#define OUTBOX_CHANNEL            "kordon_outbox"
#define OUTBOX_LOCK_PREFIX        "kordon_outbox:"

#define OUTBOX_SCHEMA_LEN_MAX     63        /* NAMEDATALEN - 1 */
#define OUTBOX_KEY_LEN_MAX        24        /* a bigint in decimal, NUL */
#define OUTBOX_MSG_LEN_MAX        512
/* "{" + per id up to 20 digits and sign and a comma + "}" + NUL */
#define OUTBOX_IDS_LEN_MAX        (KIT_OUTBOX_BATCH_MAX * 21 + 3)

#define OUTBOX_POLL_MS            1000      /* when no notification came */
#define OUTBOX_LEADER_RETRY_MS    3000      /* a standby asks this often */
#define OUTBOX_BACKOFF_MIN_MS     100
#define OUTBOX_BACKOFF_MAX_MS     5000
#define OUTBOX_MSG_TIMEOUT_MS     10000     /* librdkafka message.timeout.ms */
#define OUTBOX_LINGER_MS          5
#define OUTBOX_DELIVERY_GRACE_MS  5000      /* beyond the message timeout */
#define OUTBOX_STOP_WAIT_MS       5000      /* for the batch in hand */
#define OUTBOX_PURGE_WAIT_MS      1000
#define OUTBOX_KAFKA_POLL_MS      100
#define OUTBOX_FLUSH_MS           1000
#define OUTBOX_WARN_INTERVAL_MS   10000     /* per kind of warning */
#define OUTBOX_CONNECT_TIMEOUT_S  "5"
#define OUTBOX_STATEMENT_TIMEOUT  "30s"

/*
 * A message's opaque is a tag: the batch generation above the slot index,
 * so a delivery report that outlived its batch is recognised and ignored.
 */
#define OUTBOX_TAG_IDX_BITS       16
#define OUTBOX_TAG_GEN_MASK       0x7fffu

_Static_assert(KIT_OUTBOX_BATCH_MAX < (1 << OUTBOX_TAG_IDX_BITS),
    "a batch index must fit the delivery tag");


/*
 * The CTE lets one prepared statement insert and wake the relay.  The
 * channel is kordon_outbox_<schema>, so a commit wakes only its own
 * service's relay (the service role's search_path is its schema).
 */
static const char  outbox_insert_sql[] =
    "with e as ("
    "insert into outbox (topic, key, type, request_id, actor, subject, data)"
    " values ($1, $2, $3, $4, $5, $6, $7::jsonb) returning id) "
    "select e.id, pg_notify('" OUTBOX_CHANNEL "_' || current_schema(), '')"
    " from e";

static const char  outbox_select_sql[] =
    "select id, topic, key, jsonb_build_object("
    "'id', event_id, 'type', type,"
    " 'occurred_at', to_char(created_at at time zone 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " 'request_id', request_id, 'actor', actor, 'subject', subject,"
    " 'data', data)::text "
    "from outbox where sent_at is null order by id limit $1";

static const char  outbox_mark_sql[] =
    "update outbox set sent_at = now() where id = any($1::bigint[])";


typedef enum {
    OUTBOX_SLOT_IDLE,        /* not handed to the producer */
    OUTBOX_SLOT_PENDING,     /* produced, no delivery report yet */
    OUTBOX_SLOT_SENT,        /* acknowledged by the broker */
    OUTBOX_SLOT_FAILED,      /* not acknowledged: a later round retries */
    OUTBOX_SLOT_REJECTED     /* refused for good: skipped, stays unsent */
} outbox_slot_state_t;

typedef struct {
    int64_t                  id;
    outbox_slot_state_t      state;
    rd_kafka_resp_err_t      err;
} outbox_slot_t;

/* At most one warning of a kind per OUTBOX_WARN_INTERVAL_MS. */
typedef struct {
    uint64_t                 last_ms;
    unsigned                 suppressed;
} outbox_limit_t;

typedef struct {
    char                     schema[OUTBOX_SCHEMA_LEN_MAX + 1];
    char                     lock_key[OUTBOX_KEY_LEN_MAX];
    char                    *conninfo;
    char                    *bootstrap;
    int                      running;
    pthread_t                thread;
    int                      stop_fd;
    atomic_int               stopping;
    _Atomic uint64_t         stop_deadline_ms;

    /* The relay thread's own, from here on. */
    PGconn                  *conn;
    int                      leader;
    int                      standby_logged;
    int                      failing;
    int                      backoff_ms;
    rd_kafka_t              *rk;
    unsigned                 gen;
    int                      nslots;
    int                      outstanding;
    outbox_slot_t            slots[KIT_OUTBOX_BATCH_MAX];
    outbox_limit_t           warn_kafka;
    outbox_limit_t           warn_batch;
    outbox_limit_t           warn_db;
    outbox_limit_t           warn_rejected;
} outbox_relay_t;

static outbox_relay_t  relay = { .stop_fd = -1 };


static void outbox_warn(outbox_limit_t *lim, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/*
 * Logs a warning unless one of the same kind went out less than
 * OUTBOX_WARN_INTERVAL_MS ago; then it only counts it, and the next one
 * that goes out says how many were held back.  Relay thread only.
 */
static void
outbox_warn(outbox_limit_t *lim, const char *fmt, ...)
{
    char      msg[OUTBOX_MSG_LEN_MAX];
    va_list   ap;
    uint64_t  now;

    now = (uint64_t) kit_now_ms();
    if (lim->last_ms != 0 && now - lim->last_ms < OUTBOX_WARN_INTERVAL_MS) {
        lim->suppressed++;
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (lim->suppressed > 0) {
        kit_log(KIT_LOG_WARN, "%s (%u similar messages suppressed)", msg,
                lim->suppressed);
    } else {
        kit_log(KIT_LOG_WARN, "%s", msg);
    }
    lim->last_ms = now;
    lim->suppressed = 0;
}


/*
 * The primary message of a failed statement (or of the connection when
 * there is no result), on one line, for a log.  Returns buf.
 */
static const char *
outbox_pg_message(const PGresult *res, const PGconn *conn, char *buf,
    size_t len)
{
    const char  *m;

    m = NULL;
    if (res != NULL) {
        m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    }
    if (m == NULL && conn != NULL) {
        m = PQerrorMessage(conn);
    }
    if (m == NULL || *m == '\0') {
        m = "connection lost";
    }
    snprintf(buf, len, "%.*s", (int) strcspn(m, "\n"), m);
    return buf;
}


/* ---- writing ---------------------------------------------------------- */

/* Turns the insert's result into 0 or -1, logging a failure. */
static int
outbox_write_result(const PGresult *res, kit_pg_t *pg, const char *type)
{
    char         msg[OUTBOX_MSG_LEN_MAX];
    const char  *state;
    int          level;

    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
        return 0;
    }

    /* A serialization failure is routine: kit_pg_tx() retries it. */
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    level = (state && strncmp(state, "40", 2) == 0) ? KIT_LOG_DEBUG
                                                    : KIT_LOG_ERROR;
    kit_log(level, "could not write event \"%s\" to the outbox: %s", type,
            outbox_pg_message(res, kit_pg_conn(pg), msg, sizeof(msg)));
    return -1;
}


/*
 * Adds one event to the outbox in the transaction open on pg and wakes
 * the relay; both take effect at COMMIT, neither if it rolls back.
 * request_id, actor and subject may be NULL (stored as ""); data may be
 * NULL (stored as {}).  data is not stolen: the caller keeps its
 * reference.  Returns 0, or -1 after logging why; a failed statement
 * aborts the caller's transaction, as any failed statement does.
 */
int
kit_outbox_write(kit_pg_t *pg, const char *topic, const char *type,
    const char *key, const char *request_id, const char *actor,
    const char *subject, json_t *data)
{
    const char  *params[7];
    PGresult    *res;
    char        *body;
    int          rc;

    if (pg == NULL || topic == NULL || *topic == '\0' || type == NULL
        || *type == '\0' || key == NULL)
    {
        kit_log(KIT_LOG_ERROR, "could not write event \"%s\" to the outbox: "
                "topic, type and key are required", type ? type : "");
        return -1;
    }

    body = NULL;
    if (data != NULL) {
        body = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (body == NULL) {
            kit_log(KIT_LOG_ERROR, "could not encode the data of event "
                    "\"%s\"", type);
            return -1;
        }
    }

    params[0] = topic;
    params[1] = key;
    params[2] = type;
    params[3] = request_id ? request_id : "";
    params[4] = actor ? actor : "";
    params[5] = subject ? subject : "";
    params[6] = body ? body : "{}";

    res = kit_pg_exec(pg, "kit_outbox_insert", outbox_insert_sql, 7, params);
    free(body);
    rc = outbox_write_result(res, pg, type);
    PQclear(res);
    return rc;
}


/* ---- the producer ----------------------------------------------------- */

/* Delivery report: settles the message's slot unless its batch is gone. */
static void
outbox_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    outbox_slot_t  *slot;
    uintptr_t       tag;
    unsigned        gen, idx;

    tag = (uintptr_t) m->_private;
    gen = (unsigned) (tag >> OUTBOX_TAG_IDX_BITS);
    idx = (unsigned) (tag & ((1u << OUTBOX_TAG_IDX_BITS) - 1));

    if (gen != (relay.gen & OUTBOX_TAG_GEN_MASK)
        || idx >= (unsigned) relay.nslots
        || relay.slots[idx].state != OUTBOX_SLOT_PENDING)
    {
        return;
    }

    slot = &relay.slots[idx];
    slot->err = m->err;
    slot->state = m->err ? OUTBOX_SLOT_FAILED : OUTBOX_SLOT_SENT;
    relay.outstanding--;
    OUTBOX_ASSERT(relay.outstanding >= 0);
}


/* Broker trouble (unreachable, all brokers down, ...): a limited warning. */
static void
outbox_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        kit_log(KIT_LOG_ERROR, "kafka producer of the outbox failed: %s",
                reason);
        return;
    }
    outbox_warn(&relay.warn_kafka, "kafka error for the outbox of schema "
                "\"%s\": %s", relay.schema, reason);
}


/* librdkafka's own log, from its threads: debug detail only. */
static void
outbox_on_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    kit_log(KIT_LOG_DEBUG, "kafka %s: %s", fac, buf);
}


/*
 * A new idempotent producer for bootstrap with the relay's callbacks.
 * Returns NULL after writing why into err.
 */
static rd_kafka_t *
outbox_producer_new(const char *bootstrap, char *err, size_t errlen)
{
    /* murmur2_random puts a key where a Java client would put it. */
    static const char *const  settings[][2] = {
        { "enable.idempotence",       "true" },
        { "acks",                     "all" },
        { "message.timeout.ms",       OUTBOX_STR(OUTBOX_MSG_TIMEOUT_MS) },
        { "linger.ms",                OUTBOX_STR(OUTBOX_LINGER_MS) },
        { "reconnect.backoff.ms",     "100" },
        { "reconnect.backoff.max.ms", "1000" },
        { "partitioner",              "murmur2_random" },
        { "client.id",                "kordon-outbox" },
    };
    rd_kafka_conf_t  *conf;
    rd_kafka_t       *rk;
    size_t            i;

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errlen)
        != RD_KAFKA_CONF_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err,
                              errlen)
            != RD_KAFKA_CONF_OK)
        {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, outbox_on_delivery);
    rd_kafka_conf_set_error_cb(conf, outbox_on_error);
    rd_kafka_conf_set_log_cb(conf, outbox_on_log);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);      /* still ours when new failed */
    }
    return rk;
}


/* Flushes what is left (bounded), purges the rest, destroys. */
static void
outbox_producer_close(rd_kafka_t *rk)
{
    if (rk == NULL) {
        return;
    }
    if (rd_kafka_flush(rk, OUTBOX_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_destroy(rk);
}


/*
 * After a fatal producer error (its idempotence state is lost) the
 * producer is useless: replace it.  The rows it failed are still unsent.
 * On failure the old one stays and the next round tries again.
 */
static void
outbox_check_fatal(void)
{
    char         reason[OUTBOX_MSG_LEN_MAX], err[OUTBOX_MSG_LEN_MAX];
    rd_kafka_t  *rk;

    if (rd_kafka_fatal_error(relay.rk, reason, sizeof(reason))
        == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        return;
    }
    kit_log(KIT_LOG_ERROR, "kafka producer of the outbox of schema \"%s\" "
            "failed, replacing it: %s", relay.schema, reason);

    rk = outbox_producer_new(relay.bootstrap, err, sizeof(err));
    if (rk == NULL) {
        kit_log(KIT_LOG_ERROR, "could not create a kafka producer for \"%s\": "
                "%s", relay.bootstrap, err);
        return;
    }
    outbox_producer_close(relay.rk);
    relay.rk = rk;
}


/* ---- the relay's connection ------------------------------------------- */

static void
outbox_disconnect(void)
{
    PQfinish(relay.conn);
    relay.conn = NULL;
    relay.leader = 0;
}


/*
 * Runs sql on the relay's connection.  Returns the result when its status
 * is want, else NULL after a limited warning; a connection found broken
 * is closed, so the next round reconnects.
 */
static PGresult *
outbox_exec(const char *what, const char *sql, int nparams,
    const char *const *params, ExecStatusType want)
{
    char       msg[OUTBOX_MSG_LEN_MAX];
    PGresult  *res;

    res = PQexecParams(relay.conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (res != NULL && PQresultStatus(res) == want) {
        return res;
    }

    outbox_warn(&relay.warn_db, "could not %s for schema \"%s\": %s", what,
                relay.schema, outbox_pg_message(res, relay.conn, msg,
                                                sizeof(msg)));
    PQclear(res);
    if (PQstatus(relay.conn) != CONNECTION_OK) {
        outbox_disconnect();
    }
    return NULL;
}


/*
 * LISTEN on kordon_outbox_<schema>.  Returns the result, or NULL as
 * outbox_exec() does.
 */
static PGresult *
outbox_listen(void)
{
    char       sql[sizeof("listen ") + OUTBOX_SCHEMA_LEN_MAX * 2 + 32];
    char      *ident;
    char       channel[sizeof(OUTBOX_CHANNEL "_") + OUTBOX_SCHEMA_LEN_MAX];

    snprintf(channel, sizeof(channel), OUTBOX_CHANNEL "_%s", relay.schema);
    ident = PQescapeIdentifier(relay.conn, channel, strlen(channel));
    if (ident == NULL) {
        return NULL;
    }
    snprintf(sql, sizeof(sql), "listen %s", ident);
    PQfreemem(ident);
    return outbox_exec("listen for new events", sql, 0, NULL,
                       PGRES_COMMAND_OK);
}


/* Server notices (e.g. "terminating connection") go to the log, not stderr. */
static void
outbox_on_notice(void *arg, const char *message)
{
    kit_log(KIT_LOG_DEBUG, "outbox connection of schema \"%s\": %.*s",
            relay.schema, (int) strcspn(message, "\n"), message);
}


/*
 * Opens the relay's own connection, search_path set to the schema and a
 * statement timeout so that no query holds the relay (or a stop) forever.
 * Returns 0, or -1 after a limited warning, relay.conn left NULL.
 */
static int
outbox_connect(void)
{
    static const char *const  keys[] = {
        "connect_timeout", "application_name", "dbname", NULL
    };
    const char  *values[4], *params[2];
    char         msg[OUTBOX_MSG_LEN_MAX];
    PGresult    *res;
    char        *ident;

    /* dbname comes last, so the conninfo overrides our defaults. */
    values[0] = OUTBOX_CONNECT_TIMEOUT_S;
    values[1] = "kordon-outbox";
    values[2] = relay.conninfo;
    values[3] = NULL;

    relay.conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(relay.conn) != CONNECTION_OK) {
        outbox_warn(&relay.warn_db, "could not connect the outbox relay of "
                    "schema \"%s\": %s", relay.schema,
                    outbox_pg_message(NULL, relay.conn, msg, sizeof(msg)));
        outbox_disconnect();
        return -1;
    }

    PQsetNoticeProcessor(relay.conn, outbox_on_notice, NULL);
    ident = PQescapeIdentifier(relay.conn, relay.schema,
                               strlen(relay.schema));
    if (ident == NULL) {
        outbox_disconnect();
        return -1;
    }
    params[0] = ident;
    params[1] = OUTBOX_STATEMENT_TIMEOUT;
    res = outbox_exec("set up the outbox session",
                      "select set_config('search_path', $1, false),"
                      " set_config('statement_timeout', $2, false)",
                      2, params, PGRES_TUPLES_OK);
    PQfreemem(ident);
    if (res == NULL) {
        outbox_disconnect();
        return -1;
    }
    PQclear(res);
    return 0;
}


/* The current backoff; the next one doubles, up to the maximum. */
static int
outbox_backoff(void)
{
    int  ms;

    ms = relay.backoff_ms;
    relay.backoff_ms = ms * 2 > OUTBOX_BACKOFF_MAX_MS ? OUTBOX_BACKOFF_MAX_MS
                                                      : ms * 2;
    return ms;
}


/* Takes the schema's advisory lock: 1 taken, 0 held elsewhere, -1 error. */
static int
outbox_try_lock(void)
{
    const char  *params[1];
    PGresult    *res;
    int          got;

    params[0] = relay.lock_key;
    res = outbox_exec("take the outbox lock",
                      "select pg_try_advisory_lock($1::bigint)", 1, params,
                      PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }
    got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}


/*
 * Makes sure the relay is connected, holds the schema's lock and listens.
 * Returns 0 when it may publish, else how many ms to wait before asking
 * again.
 */
static int
outbox_lead(void)
{
    PGresult  *res;
    int        got;

    if (relay.conn != NULL && PQstatus(relay.conn) != CONNECTION_OK) {
        outbox_warn(&relay.warn_db, "lost the outbox connection of schema "
                    "\"%s\"", relay.schema);
        outbox_disconnect();
    }
    if (relay.leader) {
        return 0;
    }
    if (relay.conn == NULL && outbox_connect() != 0) {
        return outbox_backoff();
    }

    got = outbox_try_lock();
    if (got <= 0) {
        if (got == 0 && !relay.standby_logged) {
            kit_log(KIT_LOG_INFO, "outbox relay of schema \"%s\" stands by: "
                    "another process publishes", relay.schema);
            relay.standby_logged = 1;
        }
        return got == 0 ? OUTBOX_LEADER_RETRY_MS : outbox_backoff();
    }

    res = outbox_listen();
    if (res == NULL) {
        outbox_disconnect();              /* also drops the lock */
        return outbox_backoff();
    }
    PQclear(res);

    relay.leader = 1;
    relay.standby_logged = 0;
    kit_log(KIT_LOG_INFO, "outbox relay of schema \"%s\" publishes",
            relay.schema);
    return 0;
}


/*
 * Reads what PostgreSQL sent and frees the notifications libpq holds.
 * Returns how many there were; a broken connection is closed.  The loop
 * is bounded by what libpq has buffered.
 */
static int
outbox_drain_notifies(void)
{
    PGnotify  *nf;
    int        n;

    if (relay.conn == NULL) {
        return 0;
    }
    if (PQconsumeInput(relay.conn) == 0) {
        outbox_warn(&relay.warn_db, "lost the outbox connection of schema "
                    "\"%s\"", relay.schema);
        outbox_disconnect();
        return 0;
    }
    n = 0;
    while ((nf = PQnotifies(relay.conn)) != NULL) {
        PQfreemem(nf);
        n++;
    }
    return n;
}


/* ---- one round -------------------------------------------------------- */

/* Errors that no retry will cure: the row is skipped, not retried now. */
static int
outbox_err_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}


/* Hands row i of res to the producer, tagged with the batch and slot. */
static rd_kafka_resp_err_t
outbox_produce_one(const PGresult *res, int i)
{
    uintptr_t  tag;

    tag = ((uintptr_t) (relay.gen & OUTBOX_TAG_GEN_MASK)
           << OUTBOX_TAG_IDX_BITS) | (uintptr_t) i;

    return rd_kafka_producev(relay.rk,
               RD_KAFKA_V_TOPIC(PQgetvalue(res, i, 1)),
               RD_KAFKA_V_KEY(PQgetvalue(res, i, 2),
                              (size_t) PQgetlength(res, i, 2)),
               RD_KAFKA_V_VALUE(PQgetvalue(res, i, 3),
                                (size_t) PQgetlength(res, i, 3)),
               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
               RD_KAFKA_V_OPAQUE((void *) tag),
               RD_KAFKA_V_END);
}


/*
 * Hands the rows of res, in id order, to the producer as a new batch.  A
 * row refused for good is marked rejected and skipped; any other refusal
 * ends the batch there, so no later row overtakes the refused one.
 */
static void
outbox_produce(const PGresult *res, int n)
{
    rd_kafka_resp_err_t   err;
    outbox_slot_t        *slot;
    int                   i;

    OUTBOX_ASSERT(n >= 0 && n <= KIT_OUTBOX_BATCH_MAX);
    relay.gen++;
    relay.nslots = n;
    relay.outstanding = 0;
    for (i = 0; i < n; i++) {
        slot = &relay.slots[i];
        slot->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        slot->state = OUTBOX_SLOT_IDLE;
        slot->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }

    for (i = 0; i < n; i++) {
        slot = &relay.slots[i];
        err = outbox_produce_one(res, i);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            slot->state = OUTBOX_SLOT_PENDING;
            relay.outstanding++;
            continue;
        }
        slot->err = err;
        if (!outbox_err_permanent(err)) {
            slot->state = OUTBOX_SLOT_FAILED;
            break;
        }
        slot->state = OUTBOX_SLOT_REJECTED;
        outbox_warn(&relay.warn_rejected, "could not publish outbox row %"
                    PRId64 " of schema \"%s\" to topic \"%s\": %s", slot->id,
                    relay.schema, PQgetvalue(res, i, 1),
                    rd_kafka_err2str(err));
    }
}


/*
 * Serves delivery reports until every message of the batch has one, or
 * the bound passes: message.timeout.ms plus a grace, cut to
 * OUTBOX_STOP_WAIT_MS after a stop request.  What is still out then is
 * purged; it stays unsent and goes out again later (perhaps twice).
 */
static void
outbox_await(void)
{
    uint64_t  deadline, now;
    int       purged;

    deadline = (uint64_t) kit_now_ms() + OUTBOX_MSG_TIMEOUT_MS
               + OUTBOX_DELIVERY_GRACE_MS;
    purged = 0;

    while (relay.outstanding > 0) {
        now = (uint64_t) kit_now_ms();
        if (!purged
            && (now >= deadline
                || (atomic_load(&relay.stopping)
                    && now >= atomic_load(&relay.stop_deadline_ms))))
        {
            rd_kafka_purge(relay.rk,
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            deadline = now + OUTBOX_PURGE_WAIT_MS;
            purged = 1;

        } else if (purged && now >= deadline) {
            kit_log(KIT_LOG_WARN, "outbox relay of schema \"%s\" gave up on "
                    "%d delivery reports", relay.schema, relay.outstanding);
            return;
        }
        rd_kafka_poll(relay.rk, OUTBOX_KAFKA_POLL_MS);
    }
}


/*
 * Counts the rows of the batch that were neither acknowledged nor
 * rejected; *err gets the first such row's error.
 */
static int
outbox_count_failed(rd_kafka_resp_err_t *err)
{
    int  i, failed;

    *err = RD_KAFKA_RESP_ERR_NO_ERROR;
    failed = 0;
    for (i = 0; i < relay.nslots; i++) {
        if (relay.slots[i].state == OUTBOX_SLOT_SENT
            || relay.slots[i].state == OUTBOX_SLOT_REJECTED)
        {
            continue;
        }
        if (failed++ == 0) {
            *err = relay.slots[i].err ? relay.slots[i].err
                                      : RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
        }
    }
    return failed;
}


/*
 * Stamps sent_at on the acknowledged rows of the batch.  Returns 0, or -1
 * when the database failed (those rows go out again: at least once).
 */
static int
outbox_mark_sent(void)
{
    char         ids[OUTBOX_IDS_LEN_MAX];
    const char  *params[1];
    PGresult    *res;
    size_t       len;
    int          i, k;

    len = 0;
    ids[len++] = '{';
    for (i = 0, k = 0; i < relay.nslots; i++) {
        if (relay.slots[i].state != OUTBOX_SLOT_SENT) {
            continue;
        }
        len += (size_t) snprintf(ids + len, sizeof(ids) - len, "%s%" PRId64,
                                 k++ ? "," : "", relay.slots[i].id);
        OUTBOX_ASSERT(len < sizeof(ids) - 2);
    }
    if (k == 0) {
        return 0;
    }
    ids[len++] = '}';
    ids[len] = '\0';

    params[0] = ids;
    res = outbox_exec("mark outbox rows sent", outbox_mark_sql, 1, params,
                      PGRES_COMMAND_OK);
    if (res == NULL) {
        return -1;
    }
    PQclear(res);
    return 0;
}


/*
 * Publishes the oldest unsent rows, up to KIT_OUTBOX_BATCH_MAX, and stamps
 * the acknowledged ones.  Returns how many rows it read, or -1 when the
 * database failed; *failed counts the rows Kafka did not take (yet).
 */
static int
outbox_round(int *failed, rd_kafka_resp_err_t *err)
{
    const char  *params[1];
    PGresult    *res;
    int          n;

    params[0] = OUTBOX_STR(KIT_OUTBOX_BATCH_MAX);
    res = outbox_exec("read the outbox", outbox_select_sql, 1, params,
                      PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }
    n = PQntuples(res);
    outbox_produce(res, n);
    PQclear(res);                         /* the producer copied the rows */

    outbox_await();
    *failed = outbox_count_failed(err);
    if (outbox_mark_sent() != 0) {
        return -1;
    }
    return n;
}


#define OUTBOX_IDLE  (-1)

/*
 * One round and its verdict: 0 to go again at once (a full batch, or a
 * notification came meanwhile), OUTBOX_IDLE to sleep until notified, or
 * the backoff in ms after a failure.
 */
static int
outbox_step(void)
{
    rd_kafka_resp_err_t  err;
    int                  n, failed;

    failed = 0;
    n = outbox_round(&failed, &err);
    outbox_check_fatal();
    if (n < 0) {
        return outbox_backoff();
    }
    if (failed > 0) {
        outbox_warn(&relay.warn_batch, "could not publish %d of %d events of "
                    "schema \"%s\" to kafka \"%s\": %s", failed, n,
                    relay.schema, relay.bootstrap, rd_kafka_err2str(err));
        relay.failing = 1;
        return outbox_backoff();
    }

    if (relay.failing) {
        kit_log(KIT_LOG_INFO, "outbox relay of schema \"%s\" publishes to "
                "kafka \"%s\" again", relay.schema, relay.bootstrap);
        relay.failing = 0;
    }
    relay.backoff_ms = OUTBOX_BACKOFF_MIN_MS;
    if (n == KIT_OUTBOX_BATCH_MAX || outbox_drain_notifies() > 0) {
        return 0;
    }
    return OUTBOX_IDLE;
}


/*
 * Sleeps up to ms, waking early on a stop request and, when listen is
 * set, on anything PostgreSQL sends (a notification, or a broken
 * connection).
 */
static void
outbox_wait(int ms, int listen)
{
    struct pollfd  fds[2];
    nfds_t         nfds;

    fds[0].fd = relay.stop_fd;
    fds[0].events = POLLIN;
    nfds = 1;
    if (listen && relay.conn != NULL) {
        fds[1].fd = PQsocket(relay.conn);
        fds[1].events = POLLIN;
        nfds = 2;
    }

    if (poll(fds, nfds, ms) < 0 && errno != EINTR) {
        kit_log(KIT_LOG_ERROR, "outbox relay could not poll: %s",
                strerror(errno));
        usleep((useconds_t) ms * 1000);   /* no spinning on a broken poll */
        return;
    }
    if (nfds == 2 && fds[1].revents != 0) {
        outbox_drain_notifies();
    }
}


static void *
outbox_main(void *arg)
{
    int  wait_ms;

    while (!atomic_load(&relay.stopping)) {
        wait_ms = outbox_lead();
        if (wait_ms > 0) {
            outbox_wait(wait_ms, 0);
            continue;
        }
        wait_ms = outbox_step();
        if (wait_ms == OUTBOX_IDLE) {
            outbox_wait(OUTBOX_POLL_MS, 1);
        } else if (wait_ms > 0) {
            outbox_wait(wait_ms, 0);
        }
    }

    outbox_producer_close(relay.rk);
    relay.rk = NULL;
    outbox_disconnect();                  /* releases the lock */
    kit_log(KIT_LOG_INFO, "outbox relay of schema \"%s\" stopped",
            relay.schema);
    return NULL;
}


/* ---- start and stop --------------------------------------------------- */

/*
 * The advisory lock key of a schema: FNV-1a 64 of "kordon_outbox:<schema>"
 * as a signed bigint, so every process of a service derives the same one.
 */
static void
outbox_lock_key(const char *schema, char *out, size_t outlen)
{
    const unsigned char  *p;
    const char           *parts[2] = { OUTBOX_LOCK_PREFIX, schema };
    uint64_t              h;
    int64_t               key;
    size_t                i;

    h = 14695981039346656037u;
    for (i = 0; i < 2; i++) {
        for (p = (const unsigned char *) parts[i]; *p != '\0'; p++) {
            h = (h ^ *p) * 1099511628211u;
        }
    }
    memcpy(&key, &h, sizeof(key));
    snprintf(out, outlen, "%" PRId64, key);
}


/* Frees what kit_outbox_start() took; safe on a partial start. */
static void
outbox_release(void)
{
    outbox_producer_close(relay.rk);
    relay.rk = NULL;
    if (relay.stop_fd >= 0) {
        close(relay.stop_fd);
    }
    relay.stop_fd = -1;
    free(relay.conninfo);
    free(relay.bootstrap);
    relay.conninfo = NULL;
    relay.bootstrap = NULL;
}


/* Starts the relay thread with every signal blocked: they are main's. */
static int
outbox_spawn(void)
{
    sigset_t  all, old;
    int       rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&relay.thread, NULL, outbox_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        kit_log(KIT_LOG_ERROR, "could not start the outbox relay thread: %s",
                strerror(rc));
        return -1;
    }
    return 0;
}


/*
 * Starts the relay of schema: PostgreSQL at conninfo, Kafka at bootstrap.
 * Returns 0, or -1 after logging why (bad arguments, a producer setting
 * librdkafka refuses, no thread).  Neither the database nor the broker
 * needs to be up: the relay waits for them.  One relay per process;
 * kit_outbox_start() and kit_outbox_stop() are for one thread (kit_main).
 */
int
kit_outbox_start(const char *schema, const char *conninfo,
    const char *bootstrap)
{
    char  err[OUTBOX_MSG_LEN_MAX];

    if (relay.running) {
        kit_log(KIT_LOG_ERROR, "outbox relay of schema \"%s\" is already "
                "running", relay.schema);
        return -1;
    }
    if (schema == NULL || *schema == '\0'
        || strlen(schema) > OUTBOX_SCHEMA_LEN_MAX
        || conninfo == NULL || bootstrap == NULL || *bootstrap == '\0')
    {
        kit_log(KIT_LOG_ERROR, "could not start the outbox relay: a schema "
                "name, a database and a kafka bootstrap are required");
        return -1;
    }

    memset(&relay, 0, sizeof(relay));
    atomic_store(&relay.stopping, 0);
    atomic_store(&relay.stop_deadline_ms, 0);
    snprintf(relay.schema, sizeof(relay.schema), "%s", schema);
    outbox_lock_key(schema, relay.lock_key, sizeof(relay.lock_key));
    relay.backoff_ms = OUTBOX_BACKOFF_MIN_MS;
    relay.conninfo = strdup(conninfo);
    relay.bootstrap = strdup(bootstrap);
    relay.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (relay.conninfo == NULL || relay.bootstrap == NULL
        || relay.stop_fd < 0)
    {
        kit_log(KIT_LOG_ERROR, "could not start the outbox relay of schema "
                "\"%s\": %s", schema, strerror(errno));
        goto failed;
    }

    relay.rk = outbox_producer_new(bootstrap, err, sizeof(err));
    if (relay.rk == NULL) {
        kit_log(KIT_LOG_ERROR, "could not create a kafka producer for \"%s\": "
                "%s", bootstrap, err);
        goto failed;
    }
    if (outbox_spawn() != 0) {
        goto failed;
    }

    relay.running = 1;
    kit_log(KIT_LOG_INFO, "outbox relay of schema \"%s\" started, kafka "
            "\"%s\"", schema, bootstrap);
    return 0;

failed:
    outbox_release();
    return -1;
}


/*
 * Stops the relay: it finishes the batch in hand (waiting at most
 * OUTBOX_STOP_WAIT_MS for the broker), flushes, closes its producer and
 * connection, and is joined.  Rows not acknowledged stay unsent for the
 * next start.  Does nothing when the relay is not running.
 */
void
kit_outbox_stop(void)
{
    uint64_t  one;

    if (!relay.running) {
        return;
    }

    atomic_store(&relay.stop_deadline_ms,
                 (uint64_t) kit_now_ms() + OUTBOX_STOP_WAIT_MS);
    atomic_store(&relay.stopping, 1);
    one = 1;
    if (write(relay.stop_fd, &one, sizeof(one)) != (ssize_t) sizeof(one)) {
        /* The relay still sees the flag within OUTBOX_POLL_MS. */
        kit_log(KIT_LOG_WARN, "could not wake the outbox relay: %s",
                strerror(errno));
    }

    pthread_join(relay.thread, NULL);
    outbox_release();
    relay.running = 0;
}
