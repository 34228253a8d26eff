/*
 * kit_pg.c -- a fixed pool of PostgreSQL connections, prepared statements
 * by name, and transactions that retry serialization failures.
 *
 * The idea that makes it survive server restarts: a connection is checked
 * when it is lent, not when it breaks.  kit_pg_acquire() polls the idle
 * socket; a server that restarted has sent its "terminating connection"
 * error and closed it, so the socket is readable, libpq marks the
 * connection bad, and it is replaced (with a non-blocking connect bounded
 * by the caller's timeout) before anyone uses it.  Connections are made
 * lazily too, so the pool starts while the database is still down and
 * /readyz says so until it is up.
 *
 * Each slot remembers which statement names it has prepared (a small
 * table, cleared with the connection); kit_pg_exec() prepares on first
 * use and falls back to unnamed statements when the table is full.
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "kit.h"
#include "kit_internal.h"

#define KIT_PG_POOL_MAX            64
#define KIT_PG_PREPARED_MAX        64
#define KIT_PG_NAME_MAX            64     /* NAMEDATALEN */
#define KIT_PG_CONNECT_MS          5000   /* at pool start */
#define KIT_PG_CONNECT_MIN_MS      100
#define KIT_PG_CONNECT_POLLS_MAX   64
#define KIT_PG_TX_ACQUIRE_MS       2000
#define KIT_PG_BACKOFF_BASE_MS     5
#define KIT_PG_BACKOFF_MAX_MS      250
#define KIT_PG_STOP_WAIT_MS        5000
#define KIT_PG_ALIVE_READS_MAX  4
#define KIT_PG_NOTIFIES_MAX        64
#define KIT_PG_ERR_MAX             512

struct kit_pg_s {
    PGconn  *conn;
    int      busy;
    int      failed;                   /* the connection broke in use */
    char     sqlstate[6];              /* of the last failed statement */
    int      nprepared;
    char     prepared[KIT_PG_PREPARED_MAX][KIT_PG_NAME_MAX];
};

static struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    kit_pg_t        *slots;
    char            *conninfo;
    int              size;
    int              in_use;
    atomic_int       down;             /* last connect attempt failed */
} kit_pool = { .mu = PTHREAD_MUTEX_INITIALIZER };


int64_t
kit_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* libpq's message on one line: each run of white space becomes one space. */
static void
kit_pg_errmsg(const char *msg, char *out, size_t outlen)
{
    size_t  n;
    int     space;

    KIT_ASSERT(outlen > 0);
    n = 0;
    space = 1;                          /* drops leading white space */
    for ( ; msg != NULL && *msg != '\0' && n + 1 < outlen; msg++) {
        if (*msg == ' ' || *msg == '\n' || *msg == '\t' || *msg == '\r') {
            if (!space) {
                out[n++] = ' ';
            }
            space = 1;
            continue;
        }
        out[n++] = *msg;
        space = 0;
    }
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
}


/*
 * Logs the first failure after a success and the first success after a
 * failure, so an outage is two lines, not one per request.  what says
 * which failure: "could not connect to database" or "lost the database
 * connection".
 */
static void
kit_pg_mark(int ok, const char *what, const char *why)
{
    char  msg[KIT_PG_ERR_MAX];

    if (ok) {
        if (atomic_exchange(&kit_pool.down, 0)) {
            kit_log(KIT_LOG_INFO, "database connection restored");
        }
        return;
    }
    if (!atomic_exchange(&kit_pool.down, 1)) {
        kit_pg_errmsg(why, msg, sizeof(msg));
        kit_log(KIT_LOG_WARN, "%s: %s", what, msg);
    }
}


static void
kit_pg_notice(void *arg, const char *message)
{
    char  msg[KIT_PG_ERR_MAX];

    kit_pg_errmsg(message, msg, sizeof(msg));
    kit_log(KIT_LOG_DEBUG, "database notice: %s", msg);
}


/* Waits until c's socket is ready for st, up to deadline; 0 or -1. */
static int
kit_pg_wait(PGconn *c, PostgresPollingStatusType st, int64_t deadline)
{
    struct pollfd  p;
    int64_t        left;
    int            n;

    p.fd = PQsocket(c);
    p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    for ( ;; ) {
        left = deadline - kit_now_ms();
        if (left <= 0 || p.fd < 0) {
            return -1;
        }
        n = poll(&p, 1, (int) left);
        if (n > 0) {
            return 0;
        }
        if (n == 0 || errno != EINTR) {
            return -1;
        }
    }
}


/*
 * Opens a connection without blocking longer than timeout_ms (name
 * resolution aside, which libpq does synchronously).  Returns it ready,
 * or NULL after logging the failure once.
 */
static PGconn *
kit_pg_connect(int timeout_ms)
{
    static const char *const    keys[] = {
        "application_name", "keepalives", "keepalives_idle",
        "keepalives_interval", "keepalives_count", "dbname", NULL
    };
    const char                 *vals[7];
    PostgresPollingStatusType   st;
    PGconn                     *c;
    int64_t                     deadline;
    int                         i;

    vals[0] = kit_log_service();
    vals[1] = "1";
    vals[2] = "30";
    vals[3] = "10";
    vals[4] = "3";
    vals[5] = kit_pool.conninfo;     /* last: the URL's own values win */
    vals[6] = NULL;
    deadline = kit_now_ms() + timeout_ms;

    c = PQconnectStartParams(keys, vals, 1);
    st = PGRES_POLLING_WRITING;
    for (i = 0; c != NULL && PQstatus(c) != CONNECTION_BAD
                && i < KIT_PG_CONNECT_POLLS_MAX; i++)
    {
        if (st == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED) {
            break;
        }
        if (kit_pg_wait(c, st, deadline) != 0) {
            kit_pg_mark(0, "could not connect to database", "timed out");
            PQfinish(c);
            return NULL;
        }
        st = PQconnectPoll(c);
    }
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        kit_pg_mark(0, "could not connect to database",
                    c != NULL ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, kit_pg_notice, NULL);
    kit_pg_mark(1, NULL, NULL);
    return c;
}


/* Drops pg's connection and everything prepared on it. */
static void
kit_pg_drop(kit_pg_t *pg)
{
    PQfinish(pg->conn);
    pg->conn = NULL;
    pg->nprepared = 0;
}


/*
 * 1 when an idle connection still looks usable: nothing to read on its
 * socket, or only notices and notifications that leave it good.  A server
 * that stops sends an error and then closes; libpq sees the close only on
 * a later read, so read until the socket is quiet (bounded).
 */
static int
kit_pg_alive(PGconn *c)
{
    struct pollfd  p;
    PGnotify      *n;
    int            i, r;

    for (r = 0; r < KIT_PG_ALIVE_READS_MAX; r++) {
        if (PQstatus(c) != CONNECTION_OK) {
            return 0;
        }
        p.fd = PQsocket(c);
        p.events = POLLIN;
        if (poll(&p, 1, 0) <= 0) {
            return 1;
        }
        if (!PQconsumeInput(c)) {
            return 0;
        }
        for (i = 0; i < KIT_PG_NOTIFIES_MAX && (n = PQnotifies(c)) != NULL;
             i++)
        {
            PQfreemem(n);
        }
    }
    /* Still talking after that many reads: not an idle connection. */
    return 0;
}


int
kit_pg_pool_start(const char *conninfo, int size)
{
    pthread_condattr_t  ca;
    int                 i;

    KIT_ASSERT(conninfo != NULL && kit_pool.slots == NULL);
    KIT_ASSERT(size >= 1 && size <= KIT_PG_POOL_MAX);
    if (conninfo == NULL || kit_pool.slots != NULL || size < 1
        || size > KIT_PG_POOL_MAX)
    {
        return -1;
    }
    kit_pool.slots = calloc((size_t) size, sizeof(kit_pg_t));
    kit_pool.conninfo = strdup(conninfo);
    if (kit_pool.slots == NULL || kit_pool.conninfo == NULL) {
        free(kit_pool.slots);
        free(kit_pool.conninfo);
        kit_pool.slots = NULL;
        kit_pool.conninfo = NULL;
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&kit_pool.cv, &ca);
    pthread_condattr_destroy(&ca);
    kit_pool.size = size;
    kit_pool.in_use = 0;

    /* Open what opens now; the rest is opened on demand. */
    for (i = 0; i < size; i++) {
        kit_pool.slots[i].conn = kit_pg_connect(KIT_PG_CONNECT_MS);
        if (kit_pool.slots[i].conn == NULL) {
            kit_log(KIT_LOG_WARN, "database is not available yet, "
                    "starting anyway");
            break;
        }
    }
    return 0;
}


/* Takes a free slot, preferring one with a live connection; NULL on timeout. */
static kit_pg_t *
kit_pg_take(int64_t deadline)
{
    struct timespec  ts;
    kit_pg_t        *pg;
    int              i;

    pthread_mutex_lock(&kit_pool.mu);
    for ( ;; ) {
        pg = NULL;
        for (i = 0; i < kit_pool.size; i++) {
            if (kit_pool.slots[i].busy) {
                continue;
            }
            if (pg == NULL || (pg->conn == NULL
                               && kit_pool.slots[i].conn != NULL))
            {
                pg = &kit_pool.slots[i];
            }
        }
        if (pg != NULL || kit_now_ms() >= deadline) {
            break;
        }
        ts.tv_sec = (time_t) (deadline / 1000);
        ts.tv_nsec = (long) (deadline % 1000) * 1000000;
        pthread_cond_timedwait(&kit_pool.cv, &kit_pool.mu, &ts);
    }
    if (pg != NULL) {
        pg->busy = 1;
        kit_pool.in_use++;
    }
    pthread_mutex_unlock(&kit_pool.mu);
    return pg;
}


static void
kit_pg_give(kit_pg_t *pg)
{
    pthread_mutex_lock(&kit_pool.mu);
    KIT_ASSERT(pg->busy && kit_pool.in_use > 0);
    pg->busy = 0;
    kit_pool.in_use--;
    pthread_cond_signal(&kit_pool.cv);
    pthread_mutex_unlock(&kit_pool.mu);
}


kit_pg_t *
kit_pg_acquire(int timeout_ms)
{
    kit_pg_t  *pg;
    int64_t    deadline, left;

    if (kit_pool.slots == NULL) {
        return NULL;
    }
    deadline = kit_now_ms() + timeout_ms;
    pg = kit_pg_take(deadline);
    if (pg == NULL) {
        return NULL;
    }
    if (pg->conn != NULL && !kit_pg_alive(pg->conn)) {
        kit_pg_drop(pg);
    }
    if (pg->conn == NULL) {
        left = deadline - kit_now_ms();
        pg->conn = kit_pg_connect(left > KIT_PG_CONNECT_MIN_MS
                                  ? (int) left : KIT_PG_CONNECT_MIN_MS);
        if (pg->conn == NULL) {
            kit_pg_give(pg);
            return NULL;
        }
    }
    pg->failed = 0;
    pg->sqlstate[0] = '\0';
    return pg;
}


void
kit_pg_release(kit_pg_t *pg)
{
    PGTransactionStatusType  ts;
    PGresult                *res;

    if (pg == NULL) {
        return;
    }
    if (pg->conn != NULL) {
        ts = PQtransactionStatus(pg->conn);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            /* A transaction left open: never hand it to the next user. */
            res = PQexec(pg->conn, "ROLLBACK");
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                kit_pg_drop(pg);
            }
            PQclear(res);
        } else if (ts != PQTRANS_IDLE) {
            /* A query still running or a broken link. */
            kit_pg_drop(pg);
        }
    }
    kit_pg_give(pg);
}


PGconn *
kit_pg_conn(kit_pg_t *pg)
{
    KIT_ASSERT(pg != NULL);
    return pg->conn;
}


void
kit_pg_pool_stop(void)
{
    struct timespec  ts;
    int64_t          deadline;
    int              i, busy;

    if (kit_pool.slots == NULL) {
        return;
    }
    deadline = kit_now_ms() + KIT_PG_STOP_WAIT_MS;
    pthread_mutex_lock(&kit_pool.mu);
    while (kit_pool.in_use > 0 && kit_now_ms() < deadline) {
        ts.tv_sec = (time_t) (deadline / 1000);
        ts.tv_nsec = (long) (deadline % 1000) * 1000000;
        pthread_cond_timedwait(&kit_pool.cv, &kit_pool.mu, &ts);
    }
    busy = kit_pool.in_use;
    for (i = 0; i < kit_pool.size; i++) {
        if (!kit_pool.slots[i].busy) {
            kit_pg_drop(&kit_pool.slots[i]);
        }
    }
    pthread_mutex_unlock(&kit_pool.mu);
    if (busy > 0) {
        /* Someone still holds a connection: leak the pool, not crash. */
        kit_log(KIT_LOG_WARN, "%d database connections still in use at "
                "stop", busy);
        return;
    }
    pthread_cond_destroy(&kit_pool.cv);
    free(kit_pool.slots);
    free(kit_pool.conninfo);
    kit_pool.slots = NULL;
    kit_pool.conninfo = NULL;
    kit_pool.size = 0;
}


void
kit_pg_pool_stats(int *size, int *in_use)
{
    pthread_mutex_lock(&kit_pool.mu);
    *size = kit_pool.size;
    *in_use = kit_pool.in_use;
    pthread_mutex_unlock(&kit_pool.mu);
}


/*
 * Sorts out a result: NULL (after PQclear) when the connection broke,
 * which also marks pg failed; otherwise the result, with the SQLSTATE of
 * an error remembered for kit_pg_tx().
 */
static PGresult *
kit_pg_check(kit_pg_t *pg, PGresult *res)
{
    ExecStatusType   st;
    const char      *state;

    if (res == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        PQclear(res);
        pg->failed = 1;
        kit_pg_mark(0, "lost the database connection",
                    PQerrorMessage(pg->conn));
        return NULL;
    }
    st = PQresultStatus(res);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s",
                 state != NULL ? state : "");
    }
    return res;
}


static int
kit_pg_prepared(const kit_pg_t *pg, const char *name)
{
    int  i;

    for (i = 0; i < pg->nprepared; i++) {
        if (strcmp(pg->prepared[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}


PGresult *
kit_pg_exec(kit_pg_t *pg, const char *name, const char *sql,
    int nparams, const char *const *params)
{
    PGresult  *res;

    KIT_ASSERT(pg != NULL && name != NULL && sql != NULL && nparams >= 0);
    if (pg->conn == NULL || pg->failed) {
        return NULL;
    }
    if (!kit_pg_prepared(pg, name)) {
        if (pg->nprepared == KIT_PG_PREPARED_MAX
            || strlen(name) >= KIT_PG_NAME_MAX)
        {
            /* No room to remember it: run it unnamed, still parameterized. */
            res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL,
                               NULL, 0);
            return kit_pg_check(pg, res);
        }
        res = kit_pg_check(pg, PQprepare(pg->conn, name, sql, nparams,
                                         NULL));
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            return res;
        }
        PQclear(res);
        snprintf(pg->prepared[pg->nprepared++], KIT_PG_NAME_MAX, "%s", name);
    }
    res = PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0);
    return kit_pg_check(pg, res);
}


/* Runs a command that returns no rows; 0, or -1 (pg->failed tells why). */
static int
kit_pg_command(kit_pg_t *pg, const char *sql)
{
    PGresult  *res;
    int        ok;

    res = kit_pg_check(pg, PQexec(pg->conn, sql));
    if (res == NULL) {
        return -1;
    }
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}


int
kit_pg_ping(int timeout_ms)
{
    kit_pg_t  *pg;
    PGresult  *res;
    int        ok;

    pg = kit_pg_acquire(timeout_ms);
    if (pg == NULL) {
        return -1;
    }
    res = kit_pg_check(pg, PQexec(pg->conn, "select 1"));
    ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    kit_pg_release(pg);
    return ok ? 0 : -1;
}


/* BEGIN for a known isolation level; NULL for anything else. */
static const char *
kit_pg_begin_sql(const char *isolation)
{
    static const char *const  levels[][2] = {
        { "serializable", "BEGIN ISOLATION LEVEL SERIALIZABLE" },
        { "repeatable read", "BEGIN ISOLATION LEVEL REPEATABLE READ" },
        { "read committed", "BEGIN ISOLATION LEVEL READ COMMITTED" },
    };
    size_t                    i;

    if (isolation == NULL) {
        return "BEGIN";
    }
    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcasecmp(isolation, levels[i][0]) == 0) {
            return levels[i][1];
        }
    }
    return NULL;
}


static int
kit_pg_retryable(const char *sqlstate)
{
    return strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0;
}


/* Sleeps a random time in [base/2, base], base doubling per attempt. */
static void
kit_pg_backoff(int attempt)
{
    struct timespec  ts;
    long             base, ms;

    base = KIT_PG_BACKOFF_BASE_MS << (attempt < 16 ? attempt : 16);
    if (base > KIT_PG_BACKOFF_MAX_MS) {
        base = KIT_PG_BACKOFF_MAX_MS;
    }
    ms = base / 2 + (long) arc4random_uniform((uint32_t) (base / 2 + 1));
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the remainder is in ts */
    }
}


enum {
    KIT_TX_DONE,          /* return the value */
    KIT_TX_RETRY,         /* serialization failure or deadlock */
    KIT_TX_BROKEN,        /* the connection broke before COMMIT was sent */
    KIT_TX_LOST           /* it broke during COMMIT: outcome unknown */
};


/* COMMIT, and what it says; fn asked for it by returning 0. */
static int
kit_pg_tx_commit(kit_pg_t *pg, int *outcome)
{
    PGresult  *res;
    int        committed;

    res = kit_pg_check(pg, PQexec(pg->conn, "COMMIT"));
    if (res == NULL) {
        *outcome = KIT_TX_LOST;
        return KIT_TX_UNAVAILABLE;
    }
    /* A transaction that failed inside fn answers COMMIT with ROLLBACK. */
    committed = PQresultStatus(res) == PGRES_COMMAND_OK
                && strcmp(PQcmdStatus(res), "COMMIT") == 0;
    PQclear(res);
    if (committed) {
        *outcome = KIT_TX_DONE;
        return 0;
    }
    *outcome = kit_pg_retryable(pg->sqlstate) ? KIT_TX_RETRY : KIT_TX_DONE;
    return KIT_TX_FAILED;
}


/* One attempt: BEGIN, fn, COMMIT or ROLLBACK.  *outcome says what next. */
static int
kit_pg_tx_once(kit_pg_t *pg, const char *begin, kit_tx_pt fn, void *arg,
    int *outcome)
{
    int  rc;

    if (kit_pg_command(pg, begin) != 0) {
        *outcome = pg->failed ? KIT_TX_BROKEN : KIT_TX_DONE;
        return pg->failed ? KIT_TX_UNAVAILABLE : KIT_TX_FAILED;
    }
    rc = fn(pg, arg);
    if (pg->failed || PQstatus(pg->conn) != CONNECTION_OK) {
        *outcome = KIT_TX_BROKEN;
        return KIT_TX_UNAVAILABLE;
    }
    if (rc == 0) {
        return kit_pg_tx_commit(pg, outcome);
    }
    if (kit_pg_command(pg, "ROLLBACK") != 0 && pg->failed) {
        /* Rolled back anyway: the server drops a broken session's work. */
        kit_log(KIT_LOG_DEBUG, "connection broke during rollback");
    }
    *outcome = kit_pg_retryable(pg->sqlstate) ? KIT_TX_RETRY : KIT_TX_DONE;
    return *outcome == KIT_TX_RETRY ? KIT_TX_CONFLICT : rc;
}


int
kit_pg_tx(const char *isolation, kit_tx_pt fn, void *arg)
{
    const char  *begin;
    kit_pg_t    *pg;
    int          attempt, rc, outcome, broke;

    KIT_ASSERT(fn != NULL);
    begin = kit_pg_begin_sql(isolation);
    if (begin == NULL) {
        kit_log(KIT_LOG_ERROR, "unknown isolation level \"%s\"", isolation);
        return KIT_TX_FAILED;
    }
    broke = 0;
    for (attempt = 0; attempt <= KIT_TX_RETRIES_MAX; attempt++) {
        if (attempt > 0) {
            kit_pg_backoff(attempt);
        }
        pg = kit_pg_acquire(KIT_PG_TX_ACQUIRE_MS);
        if (pg == NULL) {
            return KIT_TX_UNAVAILABLE;
        }
        rc = kit_pg_tx_once(pg, begin, fn, arg, &outcome);
        kit_pg_release(pg);
        if (outcome == KIT_TX_DONE || outcome == KIT_TX_LOST) {
            return rc;
        }
        if (outcome == KIT_TX_BROKEN && broke++ > 0) {
            return KIT_TX_UNAVAILABLE;
        }
    }
    kit_log(KIT_LOG_WARN, "transaction gave up after %d serialization "
            "failures", KIT_TX_RETRIES_MAX + 1);
    return KIT_TX_CONFLICT;
}
