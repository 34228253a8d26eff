/*
 * kit_log.c -- one JSON object per line on stderr.
 *
 * Every line is built whole with jansson, so each string is escaped
 * properly whatever it holds, and leaves in a single write(2): lines from
 * different threads never interleave.  A string that is not valid UTF-8
 * is logged with its odd bytes replaced rather than dropped.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kit.h"
#include "kit_internal.h"

#define KIT_LOG_MSG_MAX            2048
#define KIT_LOG_SVC_MAX            64
#define KIT_LOG_TS_MAX             32
#define KIT_LOG_WRITE_RETRIES_MAX  8
/* %g digits for the "ms" field: 1234.57 */
#define KIT_LOG_REAL_DIGITS        6

static char  kit_log_svc[KIT_LOG_SVC_MAX] = "kordon";
static int   kit_log_min = KIT_LOG_INFO;

static const char *const kit_log_names[] = { "debug", "info", "warn",
                                             "error" };


void
kit_log_init(const char *service, int level)
{
    KIT_ASSERT(service != NULL);

    snprintf(kit_log_svc, sizeof(kit_log_svc), "%s", service);
    if (level < KIT_LOG_DEBUG || level > KIT_LOG_ERROR) {
        level = KIT_LOG_INFO;
    }
    kit_log_min = level;
}


int
kit_log_level_parse(const char *name)
{
    int  i;

    for (i = KIT_LOG_DEBUG; i <= KIT_LOG_ERROR; i++) {
        if (strcmp(name, kit_log_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}


int
kit_log_enabled(int level)
{
    return level >= kit_log_min;
}


const char *
kit_log_service(void)
{
    return kit_log_svc;
}


json_t *
kit_json_str(const char *s)
{
    json_t  *j;
    char    *copy;
    size_t   i;

    j = json_string(s != NULL ? s : "");
    if (j != NULL) {
        return j;
    }

    /* Invalid UTF-8 (or no memory): keep the ASCII, mark the rest. */
    copy = strdup(s != NULL ? s : "");
    if (copy == NULL) {
        return NULL;
    }
    for (i = 0; copy[i] != '\0'; i++) {
        if ((unsigned char) copy[i] >= 0x80) {
            copy[i] = '?';
        }
    }
    j = json_string(copy);
    free(copy);
    return j;
}


/* ISO-8601 UTC with milliseconds: 2024-05-01T12:00:00.123Z */
static void
kit_log_ts(char *buf, size_t len)
{
    struct timespec  ts;
    struct tm        tm;
    size_t           n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}


/*
 * Writes line and a newline to stderr in one write(2) where the kernel
 * allows, retrying short writes and EINTR a bounded number of times.
 * Takes ownership of line (a json_dumps() result).
 */
static void
kit_log_write(char *line)
{
    size_t   len, off;
    ssize_t  n;
    char    *buf;
    int      i;

    len = strlen(line);
    buf = realloc(line, len + 2);
    if (buf == NULL) {
        free(line);
        return;
    }
    buf[len++] = '\n';
    buf[len] = '\0';

    off = 0;
    for (i = 0; i < KIT_LOG_WRITE_RETRIES_MAX && off < len; i++) {
        n = write(STDERR_FILENO, buf + off, len - off);
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n > 0) {
            off += (size_t) n;
        }
    }
    free(buf);
}


/* A new line object with ts, level, svc and msg; NULL when out of memory. */
static json_t *
kit_log_line(int level, const char *msg)
{
    char     ts[KIT_LOG_TS_MAX];
    json_t  *o;

    kit_log_ts(ts, sizeof(ts));
    o = json_object();
    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "ts", json_string(ts)) != 0
        || json_object_set_new(o, "level",
                               json_string(kit_log_names[level])) != 0
        || json_object_set_new(o, "svc", kit_json_str(kit_log_svc)) != 0
        || json_object_set_new(o, "msg", kit_json_str(msg)) != 0)
    {
        json_decref(o);
        return NULL;
    }
    return o;
}


/* Dumps o and writes it; consumes o.  Out of memory loses the line. */
static void
kit_log_emit(json_t *o)
{
    char  *line;

    if (o == NULL) {
        return;
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER
                         | JSON_REAL_PRECISION(KIT_LOG_REAL_DIGITS));
    json_decref(o);
    if (line != NULL) {
        kit_log_write(line);
    }
}


void
kit_log(int level, const char *fmt, ...)
{
    char     msg[KIT_LOG_MSG_MAX];
    va_list  ap;

    KIT_ASSERT(level >= KIT_LOG_DEBUG && level <= KIT_LOG_ERROR);
    if (level < KIT_LOG_DEBUG || level > KIT_LOG_ERROR) {
        level = KIT_LOG_ERROR;
    }
    if (!kit_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kit_log_emit(kit_log_line(level, msg));
}


void
kit_log_request(const char *request_id, const char *method,
    const char *route, int status, double ms)
{
    json_t  *o;

    if (!kit_log_enabled(KIT_LOG_INFO)) {
        return;
    }
    o = kit_log_line(KIT_LOG_INFO, "request");
    if (o == NULL) {
        return;
    }
    if (json_object_set_new(o, "request_id", kit_json_str(request_id)) != 0
        || json_object_set_new(o, "method", kit_json_str(method)) != 0
        || json_object_set_new(o, "route", kit_json_str(route)) != 0
        || json_object_set_new(o, "status", json_integer(status)) != 0
        || json_object_set_new(o, "ms", json_real(ms)) != 0)
    {
        json_decref(o);
        return;
    }
    kit_log_emit(o);
}
