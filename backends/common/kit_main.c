/*
 * kit_main.c -- a service's whole life: configure, start the parts in
 * order, wait for SIGTERM or SIGINT, stop them in reverse.
 *
 * The stop signals are blocked before any thread exists, so every thread
 * inherits the mask and the main thread alone takes them with sigwait():
 * no handler runs at an awkward moment, and stopping is ordinary code.
 * Anything that fails before serving is one line on stderr,
 * "kordon-<name>: <message>", and exit status 1.
 */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kit.h"
#include "kit_internal.h"

#define KIT_ERR_MAX            512
/* Below the usual 30 s a supervisor waits before SIGKILL. */
#ifndef KIT_STOP_DRAIN_MS
#define KIT_STOP_DRAIN_MS      25000
#endif
#define KIT_SIGWAIT_TRIES_MAX  1000


static int
kit_main_fail(const kit_service_t *svc, const char *msg)
{
    fprintf(stderr, "kordon-%s: %s\n", svc->name, msg);
    return 1;
}


/* Stops what kit_main_start() started, in reverse. */
static void
kit_main_stop_parts(const kit_service_t *svc, int outbox_started)
{
    if (outbox_started) {
        kit_outbox_stop();
    }
    if (svc->schema != NULL) {
        kit_pg_pool_stop();
    }
    kit_http_unlisten();
}


/*
 * The listening socket, pool, outbox, the service's init and the server;
 * 0, or -1 with err after stopping what had started.
 */
static int
kit_main_start(const kit_service_t *svc, const kit_config_t *cf,
    char *err, size_t errlen)
{
    if (kit_http_listen(cf, err, errlen) != 0) {
        return -1;
    }
    if (svc->schema != NULL
        && kit_pg_pool_start(cf->database_url, cf->db_pool_size) != 0)
    {
        kit_http_unlisten();
        snprintf(err, errlen, "could not start the database pool");
        return -1;
    }
    if (svc->outbox
        && kit_outbox_start(svc->schema, cf->database_url,
                            cf->kafka_bootstrap) != 0)
    {
        kit_main_stop_parts(svc, 0);
        snprintf(err, errlen, "could not start the outbox relay for schema "
                 "\"%s\"", svc->schema);
        return -1;
    }
    if (svc->init != NULL && svc->init(cf) != 0) {
        kit_main_stop_parts(svc, svc->outbox);
        snprintf(err, errlen, "could not initialize service \"%s\"",
                 svc->name);
        return -1;
    }
    if (kit_http_start(svc, cf, err, errlen) != 0) {
        kit_main_stop_parts(svc, svc->outbox);
        return -1;
    }
    return 0;
}


/* Blocks until SIGTERM or SIGINT; returns which. */
static int
kit_main_wait(const sigset_t *set)
{
    int  i, sig;

    for (i = 0; i < KIT_SIGWAIT_TRIES_MAX; i++) {
        if (sigwait(set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT)) {
            return sig;
        }
    }
    return SIGTERM;
}


int
kit_main(const kit_service_t *svc)
{
    kit_config_t  cf;
    sigset_t      set;
    char          err[KIT_ERR_MAX];
    int           sig;

    KIT_ASSERT(svc != NULL && svc->name != NULL);
    KIT_ASSERT(svc->routes != NULL || svc->nroutes == 0);
    KIT_ASSERT(!svc->outbox || svc->schema != NULL);

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (svc->outbox && svc->schema == NULL) {
        return kit_main_fail(svc, "an outbox needs a schema");
    }
    if (kit_config_load(&cf, svc->schema != NULL, svc->outbox, err,
                        sizeof(err)) != 0)
    {
        return kit_main_fail(svc, err);
    }
    kit_log_init(svc->name, cf.log_level);
    if (kit_main_start(svc, &cf, err, sizeof(err)) != 0) {
        kit_config_free(&cf);
        return kit_main_fail(svc, err);
    }
    kit_log(KIT_LOG_INFO, "listening on \"%s:%u\"", cf.listen_host,
            (unsigned) cf.listen_port);

    sig = kit_main_wait(&set);
    kit_log(KIT_LOG_INFO, "received %s, stopping",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    kit_http_stop(KIT_STOP_DRAIN_MS);
    kit_main_stop_parts(svc, svc->outbox);
    kit_config_free(&cf);
    kit_log(KIT_LOG_INFO, "stopped");
    return 0;
}
