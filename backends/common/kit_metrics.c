/*
 * kit_metrics.c -- request counters and latency histograms, rendered in
 * the Prometheus text format.
 *
 * Series live in fixed tables behind one mutex, found through a small
 * open-addressing hash, so an observation costs one hash and a few
 * compares.  The number of series is bounded: once the table is all but
 * full, new label sets fold into route="other", and the last few slots are
 * kept for exactly that, so a scan of random paths can never grow memory
 * or the scrape.  Methods outside the standard few become "other" too,
 * since a client chooses them.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"
#include "kit_internal.h"

#define KIT_METRICS_SERIES_MAX    512
#define KIT_METRICS_RESERVED      48     /* for route="other" */
#define KIT_METRICS_ROUTES_MAX    128
#define KIT_METRICS_HASH_SIZE     1024   /* power of 2, > 2 * SERIES_MAX */
#define KIT_METRICS_LABEL_MAX     128
#define KIT_METRICS_METHOD_MAX    8
#define KIT_METRICS_OTHER         "other"

static const double kit_metrics_le[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define KIT_METRICS_BUCKETS  (sizeof(kit_metrics_le) / sizeof(double))

typedef struct {
    char      route[KIT_METRICS_LABEL_MAX];
    uint64_t  bucket[KIT_METRICS_BUCKETS];
    uint64_t  count;
    double    sum;
} kit_hist_t;

typedef struct {
    char      method[KIT_METRICS_METHOD_MAX];
    int       status;
    int       hist;        /* index into kit_metrics.hists */
    uint64_t  count;
} kit_series_t;

static struct {
    pthread_mutex_t  mu;
    kit_series_t     series[KIT_METRICS_SERIES_MAX];
    int              nseries;
    int16_t          index[KIT_METRICS_HASH_SIZE];   /* series + 1 */
    kit_hist_t       hists[KIT_METRICS_ROUTES_MAX];
    int              nhists;
    uint64_t         dropped;
} kit_metrics = { .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *const kit_metrics_methods[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"
};


static const char *
kit_metrics_method(const char *method)
{
    size_t  i;

    for (i = 0; i < sizeof(kit_metrics_methods) / sizeof(char *); i++) {
        if (method != NULL && strcmp(method, kit_metrics_methods[i]) == 0) {
            return kit_metrics_methods[i];
        }
    }
    return method != NULL && method[0] == '\0' ? "" : KIT_METRICS_OTHER;
}


/* FNV-1a over route, method and status. */
static uint32_t
kit_metrics_hash(const char *route, const char *method, int status)
{
    uint32_t     h;
    const char  *p;

    h = 2166136261u;
    for (p = route; *p != '\0'; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }
    h = (h ^ '|') * 16777619u;
    for (p = method; *p != '\0'; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }
    return (h ^ (uint32_t) status) * 16777619u;
}


/*
 * The histogram of route, made if there is room (the last slot is kept
 * for route="other"); -1 when full.
 */
static int
kit_metrics_hist(const char *route)
{
    kit_hist_t  *h;
    int          i;

    for (i = 0; i < kit_metrics.nhists; i++) {
        if (strcmp(kit_metrics.hists[i].route, route) == 0) {
            return i;
        }
    }
    if (kit_metrics.nhists == KIT_METRICS_ROUTES_MAX
        || (kit_metrics.nhists == KIT_METRICS_ROUTES_MAX - 1
            && strcmp(route, KIT_METRICS_OTHER) != 0))
    {
        return -1;
    }
    h = &kit_metrics.hists[kit_metrics.nhists];
    memset(h, 0, sizeof(*h));
    snprintf(h->route, sizeof(h->route), "%s", route);
    return kit_metrics.nhists++;
}


/*
 * The series for the labels, added when there is room (limit: the table
 * size less what is kept for "other").  Returns its index or -1.
 * Called with the mutex held.
 */
static int
kit_metrics_find(const char *route, const char *method, int status,
    int limit)
{
    kit_series_t  *s;
    uint32_t       h;
    int            i, slot, idx, hist;

    h = kit_metrics_hash(route, method, status);
    for (i = 0; i < KIT_METRICS_HASH_SIZE; i++) {
        slot = (int) ((h + (uint32_t) i) & (KIT_METRICS_HASH_SIZE - 1));
        idx = kit_metrics.index[slot] - 1;
        if (idx < 0) {
            break;
        }
        s = &kit_metrics.series[idx];
        if (s->status == status && strcmp(s->method, method) == 0
            && strcmp(kit_metrics.hists[s->hist].route, route) == 0)
        {
            return idx;
        }
    }
    if (i == KIT_METRICS_HASH_SIZE || kit_metrics.nseries >= limit) {
        return -1;
    }
    hist = kit_metrics_hist(route);
    if (hist < 0) {
        return -1;
    }
    idx = kit_metrics.nseries++;
    s = &kit_metrics.series[idx];
    snprintf(s->method, sizeof(s->method), "%s", method);
    s->status = status;
    s->hist = hist;
    s->count = 0;
    kit_metrics.index[slot] = (int16_t) (idx + 1);
    return idx;
}


void
kit_metrics_observe_method(const char *method, const char *route,
    int status, double ms)
{
    kit_hist_t  *h;
    double       s;
    size_t       b;
    int          idx;

    method = kit_metrics_method(method);
    route = route != NULL ? route : KIT_METRICS_OTHER;
    status = (status >= 100 && status <= 599) ? status : 0;
    s = ms > 0 ? ms / 1000.0 : 0;

    pthread_mutex_lock(&kit_metrics.mu);
    idx = kit_metrics_find(route, method, status,
                           KIT_METRICS_SERIES_MAX - KIT_METRICS_RESERVED);
    if (idx < 0) {
        idx = kit_metrics_find(KIT_METRICS_OTHER, method, status,
                               KIT_METRICS_SERIES_MAX);
    }
    if (idx < 0) {
        kit_metrics.dropped++;
        pthread_mutex_unlock(&kit_metrics.mu);
        return;
    }
    kit_metrics.series[idx].count++;
    h = &kit_metrics.hists[kit_metrics.series[idx].hist];
    for (b = 0; b < KIT_METRICS_BUCKETS; b++) {
        if (s <= kit_metrics_le[b]) {
            h->bucket[b]++;
        }
    }
    h->count++;
    h->sum += s;
    pthread_mutex_unlock(&kit_metrics.mu);
}


void
kit_metrics_observe(const char *route, int status, double ms)
{
    kit_metrics_observe_method("", route, status, ms);
}


/* Writes s as a label value: backslash, quote and newline escaped. */
static void
kit_metrics_label(FILE *f, const char *s)
{
    for ( ; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"') {
            fputc('\\', f);
            fputc(*s, f);
        } else if (*s == '\n') {
            fputs("\\n", f);
        } else {
            fputc(*s, f);
        }
    }
}


static void
kit_metrics_render_counters(FILE *f)
{
    kit_series_t  *s;
    int            i;

    fputs("# HELP kordon_http_requests_total HTTP requests answered, by "
          "route, method and status.\n"
          "# TYPE kordon_http_requests_total counter\n", f);
    for (i = 0; i < kit_metrics.nseries; i++) {
        s = &kit_metrics.series[i];
        fputs("kordon_http_requests_total{route=\"", f);
        kit_metrics_label(f, kit_metrics.hists[s->hist].route);
        fprintf(f, "\",method=\"%s\",status=\"%d\"} %llu\n", s->method,
                s->status, (unsigned long long) s->count);
    }
}


static void
kit_metrics_render_hists(FILE *f)
{
    kit_hist_t  *h;
    size_t       b;
    int          i;

    fputs("# HELP kordon_http_request_duration_seconds Time from request "
          "line to the end of the answer, by route.\n"
          "# TYPE kordon_http_request_duration_seconds histogram\n", f);
    for (i = 0; i < kit_metrics.nhists; i++) {
        h = &kit_metrics.hists[i];
        for (b = 0; b < KIT_METRICS_BUCKETS; b++) {
            fputs("kordon_http_request_duration_seconds_bucket{route=\"", f);
            kit_metrics_label(f, h->route);
            fprintf(f, "\",le=\"%g\"} %llu\n", kit_metrics_le[b],
                    (unsigned long long) h->bucket[b]);
        }
        fputs("kordon_http_request_duration_seconds_bucket{route=\"", f);
        kit_metrics_label(f, h->route);
        fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long) h->count);
        fputs("kordon_http_request_duration_seconds_sum{route=\"", f);
        kit_metrics_label(f, h->route);
        fprintf(f, "\"} %.6f\n", h->sum);
        fputs("kordon_http_request_duration_seconds_count{route=\"", f);
        kit_metrics_label(f, h->route);
        fprintf(f, "\"} %llu\n", (unsigned long long) h->count);
    }
}


static void
kit_metrics_render_gauges(FILE *f, const char *service)
{
    int  size, in_use;

    kit_pg_pool_stats(&size, &in_use);
    fprintf(f, "# HELP kordon_db_pool_size PostgreSQL connections in the "
            "pool.\n# TYPE kordon_db_pool_size gauge\n"
            "kordon_db_pool_size %d\n"
            "# HELP kordon_db_pool_in_use PostgreSQL connections lent out."
            "\n# TYPE kordon_db_pool_in_use gauge\n"
            "kordon_db_pool_in_use %d\n", size, in_use);
    fputs("# HELP kordon_metrics_dropped_total Observations lost to the "
          "series limit.\n# TYPE kordon_metrics_dropped_total counter\n", f);
    fprintf(f, "kordon_metrics_dropped_total %llu\n",
            (unsigned long long) kit_metrics.dropped);
    fputs("# HELP kordon_service_info The service behind this endpoint.\n"
          "# TYPE kordon_service_info gauge\n"
          "kordon_service_info{service=\"", f);
    kit_metrics_label(f, service != NULL ? service : "");
    fputs("\"} 1\n", f);
}


char *
kit_metrics_render(const char *service)
{
    char    *buf;
    size_t   len;
    FILE    *f;

    f = open_memstream(&buf, &len);
    if (f == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&kit_metrics.mu);
    kit_metrics_render_counters(f);
    kit_metrics_render_hists(f);
    kit_metrics_render_gauges(f, service);
    pthread_mutex_unlock(&kit_metrics.mu);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
