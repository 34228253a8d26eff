/*
 * pool.c -- a fixed number of threads for password work, fed by a
 * bounded queue.
 *
 * argon2id costs about 20 MiB and tens of milliseconds per hash by
 * design.  Run on libmicrohttpd's threads, a burst of logins would hold
 * every one of them and starve refreshes and reads; run here, it holds at
 * most hash_threads x argon2 memory, and the HTTP threads stay free (the
 * request is suspended meanwhile).  Beyond hash_queue_max waiting jobs a
 * request is answered 503 at once rather than queued without end.
 */

#include <pthread.h>
#include <stdlib.h>

#include "users.h"

#define USERS_POOL_THREADS_MAX  64

typedef struct users_job_s  users_job_t;

struct users_job_s {
    users_job_pt   fn;
    void          *arg;
    users_job_t   *next;
};

static struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    users_job_t     *head, *tail;     /* under mu */
    int              len, max;        /* under mu */
} users_pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};


int
users_pool_submit(users_job_pt fn, void *arg)
{
    users_job_t  *j;

    j = malloc(sizeof(*j));
    if (j == NULL) {
        return -1;
    }
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&users_pool.mu);
    if (users_pool.len >= users_pool.max) {
        pthread_mutex_unlock(&users_pool.mu);
        free(j);
        return -1;
    }
    if (users_pool.tail != NULL) {
        users_pool.tail->next = j;
    } else {
        users_pool.head = j;
    }
    users_pool.tail = j;
    users_pool.len++;
    pthread_cond_signal(&users_pool.cv);
    pthread_mutex_unlock(&users_pool.mu);
    return 0;
}


static void *
users_pool_worker(void *unused)
{
    users_job_t  *j;

    for ( ;; ) {
        pthread_mutex_lock(&users_pool.mu);
        while (users_pool.head == NULL) {
            pthread_cond_wait(&users_pool.cv, &users_pool.mu);
        }
        j = users_pool.head;
        users_pool.head = j->next;
        if (users_pool.head == NULL) {
            users_pool.tail = NULL;
        }
        users_pool.len--;
        pthread_mutex_unlock(&users_pool.mu);
        j->fn(j->arg);
        free(j);
    }
    return NULL;
}


int
users_pool_start(int threads, int queue_max)
{
    pthread_attr_t  attr;
    pthread_t       t;
    int             i;

    if (threads < 1 || threads > USERS_POOL_THREADS_MAX || queue_max < 1) {
        return -1;
    }
    users_pool.max = queue_max;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (i = 0; i < threads; i++) {
        if (pthread_create(&t, &attr, users_pool_worker, NULL) != 0) {
            pthread_attr_destroy(&attr);
            kit_log(KIT_LOG_ERROR, "could not start hashing thread %d",
                    i + 1);
            return -1;
        }
    }
    pthread_attr_destroy(&attr);
    return 0;
}
