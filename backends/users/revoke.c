/*
 * revoke.c -- telling the edge whom to refuse (the lead's revocation
 * contract).
 *
 * A handler that ends sessions writes the cut into pending_revocations in
 * the same transaction, and after the commit wakes this file's thread.
 * The thread appends each pending cut to the Redis stream
 *
 *   XADD kordon:revocations MINID ~ <now_ms - 1800000> * sub|sid <uuid>
 *        nbf <unix seconds>
 *
 * and deletes the row once Redis took it.  So a cut is pushed only after
 * its commit, and a Redis outage (or a crash) only delays it: the rows
 * wait, and the thread retries with a growing pause (250 ms to 5 s), and
 * looks at the table every second anyway.  Rows are claimed with FOR
 * UPDATE SKIP LOCKED, so several users processes push each row once.
 *
 * hiredis's blocking API on this one thread, with 1 s timeouts: the
 * service's HTTP threads never wait for Redis.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "users.h"

#define USERS_REVOKE_BATCH_MAX     100
#define USERS_REVOKE_POLL_MS       1000
#define USERS_REVOKE_BACKOFF_MIN   250
#define USERS_REVOKE_BACKOFF_MAX   5000
#define USERS_REVOKE_TIMEOUT_MS    1000
#define USERS_REVOKE_KEEP_MS       1800000LL
#define USERS_REVOKE_STREAM        "kordon:revocations"

static struct {
    pthread_mutex_t   mu;
    pthread_cond_t    cv;
    int               kicked;             /* under mu */
    char              host[256];
    int               port;
    redisContext     *rc;                 /* the thread's own */
} users_rv = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static const char  users_revoke_claim_sql[] =
    "select id, kind, value, nbf from pending_revocations"
    " order by id limit 100 for update skip locked";
static const char  users_revoke_done_sql[] =
    "delete from pending_revocations where id = $1";
static const char  users_revoke_insert_sql[] =
    "insert into pending_revocations (kind, value, nbf)"
    " values ($1, $2, $3)";


int
users_revoke_add(kit_pg_t *pg, const char *kind, const char *value,
    int64_t nbf)
{
    const char  *p[3];
    char         nbf_s[24];
    PGresult    *res;
    int          ok;

    snprintf(nbf_s, sizeof(nbf_s), "%lld", (long long) nbf);
    p[0] = kind;
    p[1] = value;
    p[2] = nbf_s;
    res = kit_pg_exec(pg, "users_revoke_insert", users_revoke_insert_sql, 3,
                      p);
    ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok ? 0 : -1;
}


void
users_revoke_kick(void)
{
    pthread_mutex_lock(&users_rv.mu);
    users_rv.kicked = 1;
    pthread_cond_signal(&users_rv.cv);
    pthread_mutex_unlock(&users_rv.mu);
}


static int64_t
users_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* A connected context, or NULL (logged). */
static redisContext *
users_redis(void)
{
    struct timeval  tv = { USERS_REVOKE_TIMEOUT_MS / 1000,
                           USERS_REVOKE_TIMEOUT_MS % 1000 * 1000 };

    if (users_rv.rc != NULL && users_rv.rc->err == 0) {
        return users_rv.rc;
    }
    if (users_rv.rc != NULL) {
        redisFree(users_rv.rc);
    }
    users_rv.rc = redisConnectWithTimeout(users_rv.host, users_rv.port, tv);
    if (users_rv.rc == NULL || users_rv.rc->err != 0) {
        kit_log(KIT_LOG_WARN, "could not connect to redis \"%s:%d\": %s",
                users_rv.host, users_rv.port, users_rv.rc != NULL
                ? users_rv.rc->errstr : "out of memory");
        if (users_rv.rc != NULL) {
            redisFree(users_rv.rc);
            users_rv.rc = NULL;
        }
        return NULL;
    }
    redisSetTimeout(users_rv.rc, tv);
    return users_rv.rc;
}


/* XADD one cut; 0 when Redis took it. */
static int
users_revoke_push(const char *kind, const char *value, const char *nbf)
{
    const char     *argv[10];
    redisContext   *c;
    redisReply     *r;
    char            minid[32];
    int             ok;

    c = users_redis();
    if (c == NULL) {
        return -1;
    }
    snprintf(minid, sizeof(minid), "%lld",
             (long long) (users_now_ms() - USERS_REVOKE_KEEP_MS));
    argv[0] = "XADD";
    argv[1] = USERS_REVOKE_STREAM;
    argv[2] = "MINID";
    argv[3] = "~";
    argv[4] = minid;
    argv[5] = "*";
    argv[6] = kind;
    argv[7] = value;
    argv[8] = "nbf";
    argv[9] = nbf;
    r = redisCommandArgv(c, 10, argv, NULL);
    ok = r != NULL && r->type == REDIS_REPLY_STRING;
    if (!ok) {
        kit_log(KIT_LOG_WARN, "could not append to redis stream \"%s\": %s",
                USERS_REVOKE_STREAM, r != NULL && r->type == REDIS_REPLY_ERROR
                ? r->str : c->errstr);
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    return ok ? 0 : -1;
}


/* One round in one transaction; fn of kit_pg_tx.  *arg: rows left. */
static int
users_revoke_round(kit_pg_t *pg, void *arg)
{
    const char  *p[1];
    PGresult    *res, *del;
    int         *failed = arg;
    int          i, n;

    *failed = 0;
    res = kit_pg_exec(pg, "users_revoke_claim", users_revoke_claim_sql, 0,
                      NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
        if (users_revoke_push(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                              PQgetvalue(res, i, 3)) != 0)
        {
            *failed = n - i;
            break;
        }
        p[0] = PQgetvalue(res, i, 0);
        del = kit_pg_exec(pg, "users_revoke_done", users_revoke_done_sql, 1,
                          p);
        PQclear(del);
    }
    PQclear(res);
    return 0;
}


static void
users_revoke_wait(int ms)
{
    struct timespec  t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long) (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&users_rv.mu);
    while (!users_rv.kicked
           && pthread_cond_timedwait(&users_rv.cv, &users_rv.mu, &t) == 0)
    {
        /* spurious wake-up */
    }
    users_rv.kicked = 0;
    pthread_mutex_unlock(&users_rv.mu);
}


static void *
users_revoke_thread(void *unused)
{
    int  backoff, failed, rc;

    backoff = USERS_REVOKE_BACKOFF_MIN;
    for ( ;; ) {
        failed = 0;
        rc = kit_pg_tx("read committed", users_revoke_round, &failed);
        if (rc != 0 || failed > 0) {
            users_revoke_wait(backoff);
            backoff = backoff * 2 > USERS_REVOKE_BACKOFF_MAX
                      ? USERS_REVOKE_BACKOFF_MAX : backoff * 2;
            continue;
        }
        backoff = USERS_REVOKE_BACKOFF_MIN;
        users_revoke_wait(USERS_REVOKE_POLL_MS);
    }
    return NULL;
}


int
users_revoke_start(const char *redis_addr)
{
    pthread_condattr_t  ca;
    pthread_t           t;
    const char         *colon;
    size_t              n;

    colon = strrchr(redis_addr, ':');
    n = colon != NULL ? (size_t) (colon - redis_addr) : 0;
    if (n == 0 || n >= sizeof(users_rv.host)) {
        return -1;
    }
    memcpy(users_rv.host, redis_addr, n);
    users_rv.host[n] = '\0';
    users_rv.port = atoi(colon + 1);
    if (users_rv.port <= 0 || users_rv.port > 65535) {
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&users_rv.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&t, NULL, users_revoke_thread, NULL) != 0) {
        return -1;
    }
    pthread_detach(t);
    return 0;
}
