/*
 * kit_internal.h -- what the kit's own files share and services never
 * see: the glue between config, log, routing, metrics, the pool and the
 * HTTP server.  Unit tests may include it to reach the pure helpers.
 */

#ifndef KORDON_KIT_INTERNAL_H
#define KORDON_KIT_INTERNAL_H

#include "kit.h"

/* Invariants, checked in debug builds (make asan defines KIT_DEBUG). */
#ifdef KIT_DEBUG
#include <assert.h>
#define KIT_ASSERT(e)  assert(e)
#else
#define KIT_ASSERT(e)  ((void) 0)
#endif


/* kit_config.c */

/* Frees what kit_config_load() allocated and wipes the secret. */
void kit_config_free(kit_config_t *cf);


/* kit_log.c */

/* The level for "debug", "info", "warn" or "error"; -1 otherwise. */
int kit_log_level_parse(const char *name);
int kit_log_enabled(int level);
/* The service name given to kit_log_init(), "kordon" before. */
const char *kit_log_service(void);
/*
 * A JSON string of s; bytes that are not valid UTF-8 become '?' instead
 * of failing.  NULL only when out of memory.
 */
json_t *kit_json_str(const char *s);


/* kit_route.c */

/*
 * The parameter called name: its index in p, or -1.  p->name[i] points
 * into the route pattern just after '{' and ends at '}'.
 */
int kit_params_find(const kit_params_t *p, const char *name);
/*
 * Appends to buf (", " separated, without duplicates) the methods of the
 * routes whose pattern matches path.  Returns the length of buf; stops
 * adding when buf (buflen bytes, NUL included) is full.
 */
size_t kit_route_allow(const kit_route_t *routes, size_t nroutes,
    const char *path, char *buf, size_t buflen);


/* kit_metrics.c */

/* kit_metrics_observe() with the request method as a label. */
void kit_metrics_observe_method(const char *method, const char *route,
    int status, double ms);


/* kit_pg.c */

/* Pool size and connections lent out now; both 0 without a pool. */
void kit_pg_pool_stats(int *size, int *in_use);


/* kit_http.c */

/*
 * Binds the listening socket (first, so a taken port fails before
 * anything else starts).  Returns 0, or -1 with a message in err.
 */
int kit_http_listen(const kit_config_t *cf, char *err, size_t errlen);
/* Closes the socket of kit_http_listen() when serving never started. */
void kit_http_unlisten(void);
/*
 * Starts serving svc's routes on the bound socket.  Returns 0, or -1 with
 * a message in err (the socket stays bound: kit_http_unlisten()).
 */
int kit_http_start(const kit_service_t *svc, const kit_config_t *cf,
    char *err, size_t errlen);
/*
 * Stops accepting, waits up to drain_ms for the requests in flight
 * (suspended ones included), answers 503 to those still suspended, then
 * stops the server.
 */
void kit_http_stop(int drain_ms);

#endif /* KORDON_KIT_INTERNAL_H */
