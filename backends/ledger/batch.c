/*
 * batch.c -- group commit for transfers.  Handlers check a request,
 * suspend it and queue its item; batcher threads take up to batch_size
 * queued items at a time, post them in one transaction (post.c) and
 * answer each one.
 *
 * The idea: a durable commit costs the same for one transfer as for two
 * hundred, so under load the cost is shared.  While one batch is in the
 * database the next one gathers in the queue, so batches grow with the
 * load by themselves.  And a batch costs PostgreSQL a fixed part (its
 * ten statements, BEGIN and COMMIT) besides its transfers, so when
 * another batcher is already posting -- the database is busy anyway --
 * a batcher holds its batch open up to batch_wait_us (1 ms by default)
 * for more, as PostgreSQL's commit_delay does with commit_siblings; a
 * lone request, with no batch in flight, waits for nothing
 * (ledger_batch_should_wait()).  On the bench's 64 clients that makes
 * batches of 20-30 instead of ~17 and cuts PostgreSQL's CPU per transfer
 * by a tenth or more.  Several batchers keep several transactions in
 * flight; post_transfers() locks accounts in id order, so they cannot
 * deadlock.
 *
 * The queue is bounded (LEDGER_QUEUE_MAX): beyond it a request is
 * answered 503 at once instead of waiting without end.  A batch never
 * holds one idempotency key twice; a second request with a key already in
 * the batch waits for the next one, where it is answered as a replay.
 * Batchers run until the process ends; the kit's graceful stop waits for
 * suspended requests, so every queued item is answered first.
 *
 * Whether requests really batch shows in the log: at most once a second,
 * while transfers are posted, one line with the transfers, batches,
 * transfers per batch, the largest batch and the batches per power-of-two
 * size since the last line (scripts/bench-ledger prints the mean and the
 * distribution for each run: 64 keep-alive clients make batches of 20-30).
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger.h"

static struct {
    pthread_mutex_t   mu;
    pthread_cond_t    cv;               /* items arrived */
    ledger_item_t    *head, *tail;      /* under mu */
    int               len;              /* under mu */
    int               busy;             /* batchers posting, under mu */
} ledger_q = { .mu = PTHREAD_MUTEX_INITIALIZER };

/*
 * Posted since the last stats line; next_s: when the next one is due;
 * sizes[b]: batches of 2^b to 2^(b+1) - 1 transfers.
 */
#define LEDGER_SIZE_BUCKETS  11                 /* up to 1,024 and more */

static struct {
    pthread_mutex_t   mu;
    long              items, batches, next_s;
    long              sizes[LEDGER_SIZE_BUCKETS];
    int               largest;
} ledger_stats = { .mu = PTHREAD_MUTEX_INITIALIZER };


int
ledger_batch_submit(ledger_item_t *it)
{
    LEDGER_ASSERT(it != NULL && it->next == NULL);
    pthread_mutex_lock(&ledger_q.mu);
    if (ledger_q.len >= LEDGER_QUEUE_MAX) {
        pthread_mutex_unlock(&ledger_q.mu);
        return -1;
    }
    if (ledger_q.tail != NULL) {
        ledger_q.tail->next = it;
    } else {
        ledger_q.head = it;
    }
    ledger_q.tail = it;
    ledger_q.len++;
    pthread_cond_signal(&ledger_q.cv);
    pthread_mutex_unlock(&ledger_q.mu);
    return 0;
}


/* 1 when one of the n items in out has it's idempotency key. */
static int
ledger_batch_has_key(ledger_item_t *const *out, int n,
    const ledger_item_t *it)
{
    int  k;

    if (it->idem_key[0] == '\0') {
        return 0;
    }
    for (k = 0; k < n; k++) {
        if (out[k]->op == it->op
            && strcmp(out[k]->idem_key, it->idem_key) == 0
            && strcmp(out[k]->actor, it->actor) == 0)
        {
            return 1;
        }
    }
    return 0;
}


int
ledger_batch_take(ledger_item_t **head, ledger_item_t **tail,
    ledger_item_t **out, int max)
{
    ledger_item_t  *it, *prev, *next;
    int             n, seen;

    n = 0;
    prev = NULL;
    for (it = *head, seen = 0;
         it != NULL && n < max && seen < LEDGER_QUEUE_MAX;
         it = next, seen++)
    {
        next = it->next;
        if (ledger_batch_has_key(out, n, it)) {
            prev = it;                  /* stays, in order */
            continue;
        }
        if (prev != NULL) {
            prev->next = next;
        } else {
            *head = next;
        }
        if (*tail == it) {
            *tail = prev;
        }
        it->next = NULL;
        out[n++] = it;
    }
    return n;
}


int
ledger_batch_should_wait(int queued, int busy)
{
    return ledger_cf.batch_wait_us > 0 && busy > 0
           && queued < ledger_cf.batch_size;
}


/* Waits for work and takes a batch of at most batch_size items. */
static int
ledger_batch_wait(ledger_item_t **batch)
{
    struct timespec  deadline;
    int              n;

    pthread_mutex_lock(&ledger_q.mu);
    while (ledger_q.len == 0) {
        pthread_cond_wait(&ledger_q.cv, &ledger_q.mu);
    }
    if (ledger_batch_should_wait(ledger_q.len, ledger_q.busy)) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += ledger_cf.batch_wait_us * 1000;
        deadline.tv_sec += deadline.tv_nsec / 1000000000;
        deadline.tv_nsec %= 1000000000;
        while (ledger_q.len < ledger_cf.batch_size
               && pthread_cond_timedwait(&ledger_q.cv, &ledger_q.mu,
                                         &deadline) != ETIMEDOUT)
        {
            /* more arrived; wait for the rest or the deadline */
        }
    }
    n = ledger_batch_take(&ledger_q.head, &ledger_q.tail, batch,
                          ledger_cf.batch_size);
    ledger_q.len -= n;
    ledger_q.busy += n > 0;
    if (ledger_q.len > 0) {
        pthread_cond_signal(&ledger_q.cv);      /* for another batcher */
    }
    pthread_mutex_unlock(&ledger_q.mu);
    return n;
}


static double
ledger_ms_since(const struct timespec *t0)
{
    struct timespec  now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double) (now.tv_sec - t0->tv_sec) * 1e3
           + (double) (now.tv_nsec - t0->tv_nsec) / 1e6;
}


/* The size bucket of a batch of n >= 1: floor(log2(n)), bounded. */
static int
ledger_size_bucket(int n)
{
    int  b;

    for (b = 0; b < LEDGER_SIZE_BUCKETS - 1 && n >= 2 << b; b++) {
        /* void */
    }
    return b;
}


/*
 * Counts a batch of n; logs the counts once a second while busy: the
 * mean, the largest, and how many batches fell in each power-of-two size
 * bucket ("sizes 16:40" -- 40 batches of 16 to 31 transfers).
 */
static void
ledger_batch_count(int n)
{
    struct timespec  now;
    long             items, batches, sizes[LEDGER_SIZE_BUCKETS];
    char             line[LEDGER_SIZE_BUCKETS * 32], *p;
    int              b, largest;

    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&ledger_stats.mu);
    ledger_stats.items += n;
    ledger_stats.batches++;
    ledger_stats.sizes[ledger_size_bucket(n)]++;
    if (n > ledger_stats.largest) {
        ledger_stats.largest = n;
    }
    if (now.tv_sec < ledger_stats.next_s) {
        pthread_mutex_unlock(&ledger_stats.mu);
        return;
    }
    items = ledger_stats.items;
    batches = ledger_stats.batches;
    largest = ledger_stats.largest;
    memcpy(sizes, ledger_stats.sizes, sizeof(sizes));
    ledger_stats.items = 0;
    ledger_stats.batches = 0;
    ledger_stats.largest = 0;
    memset(ledger_stats.sizes, 0, sizeof(ledger_stats.sizes));
    ledger_stats.next_s = now.tv_sec + 1;
    pthread_mutex_unlock(&ledger_stats.mu);

    p = line;
    *p = '\0';
    for (b = 0; b < LEDGER_SIZE_BUCKETS; b++) {
        if (sizes[b] > 0) {
            p += snprintf(p, sizeof(line) - (size_t) (p - line), " %d:%ld",
                          1 << b, sizes[b]);
        }
    }
    kit_log(KIT_LOG_INFO, "batches: %ld transfers in %ld batches, %.1f per "
            "batch, largest %d, sizes%s", items, batches,
            (double) items / (double) batches, largest, line);
}


static void *
ledger_batcher(void *arg)
{
    ledger_item_t  **batch = arg;
    struct timespec  t0;
    int              n, k, rc;
    static int       batchers;

    ledger_post_set_shard(__atomic_fetch_add(&batchers, 1,
                                             __ATOMIC_RELAXED));
    for ( ;; ) {
        n = ledger_batch_wait(batch);
        if (n == 0) {
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = ledger_post(batch, n);
        kit_log(KIT_LOG_DEBUG, "posted a batch of %d transfers in %.1f ms%s",
                n, ledger_ms_since(&t0), rc == LEDGER_POST_OK ? ""
                : ", which failed");
        ledger_batch_count(n);
        pthread_mutex_lock(&ledger_q.mu);
        ledger_q.busy--;
        pthread_mutex_unlock(&ledger_q.mu);
        for (k = 0; k < n; k++) {
            ledger_item_reply(batch[k], rc);
        }
    }
    return NULL;
}


int
ledger_batch_start(void)
{
    pthread_condattr_t   ca;
    pthread_attr_t       attr;
    pthread_t            t;
    ledger_item_t      **batch;
    int                  i;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ledger_q.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (i = 0; i < ledger_cf.batchers; i++) {
        /* Each batcher's own array; it lives as long as the process. */
        batch = calloc((size_t) ledger_cf.batch_size, sizeof(*batch));
        if (batch == NULL || pthread_create(&t, &attr, ledger_batcher,
                                            batch) != 0)
        {
            free(batch);
            pthread_attr_destroy(&attr);
            kit_log(KIT_LOG_ERROR, "could not start batcher %d", i + 1);
            return -1;
        }
    }
    pthread_attr_destroy(&attr);
    return 0;
}
