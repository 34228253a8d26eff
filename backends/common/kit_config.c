/*
 * kit_config.c -- the environment, read once at start and checked whole.
 *
 * Every variable goes through kit_env_str() or kit_env_int(), so a bad
 * value always stops the service with one message that names the
 * variable and says what was expected.  An empty variable counts as unset.
 * The edge secret is the one value that never appears in a message: only
 * its file's name and length do.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kit.h"
#include "kit_internal.h"

/* A hex file of a 64-byte key is 128 chars; leave room for whitespace. */
#define KIT_SECRET_FILE_MAX   4096
#define KIT_SECRET_MIN        32
/* read(2) calls for one small file, EINTR included */
#define KIT_READ_TRIES_MAX    64


int
kit_env_str(const char *name, const char *def, const char **out,
    char *err, size_t errlen)
{
    const char  *v;

    KIT_ASSERT(name != NULL && out != NULL);
    v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        if (def == NULL) {
            snprintf(err, errlen, "environment variable \"%s\" is not set",
                     name);
            return -1;
        }
        v = def;
    }
    *out = v;
    return 0;
}


/*
 * Parses all of s as a decimal long; -1 for anything else (sign and
 * surrounding spaces included: "4 " is malformed).
 */
static int
kit_parse_long(const char *s, long *out)
{
    char  *end;
    long   v;

    if (s[0] == '\0' || isspace((unsigned char) s[0])) {
        return -1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}


int
kit_env_int(const char *name, const char *def, long min, long max,
    long *out, char *err, size_t errlen)
{
    const char  *s;
    long         v;

    KIT_ASSERT(min <= max);
    if (kit_env_str(name, def, &s, err, errlen) != 0) {
        return -1;
    }
    if (kit_parse_long(s, &v) != 0) {
        snprintf(err, errlen, "environment variable \"%s\" is malformed: "
                 "expected an integer", name);
        return -1;
    }
    if (v < min || v > max) {
        snprintf(err, errlen, "environment variable \"%s\" is out of "
                 "range: expected %ld..%ld", name, min, max);
        return -1;
    }
    *out = v;
    return 0;
}


/* KORDON_LISTEN: an IPv4 literal and a port; hostnames are refused. */
static int
kit_config_listen(kit_config_t *cf, char *err, size_t errlen)
{
    const char      *s, *colon;
    struct in_addr   a;
    size_t           hlen;
    long             port;

    if (kit_env_str("KORDON_LISTEN", NULL, &s, err, errlen) != 0) {
        return -1;
    }
    colon = strrchr(s, ':');
    hlen = colon != NULL ? (size_t) (colon - s) : 0;
    if (colon == NULL || hlen == 0 || hlen >= sizeof(cf->listen_host)
        || kit_parse_long(colon + 1, &port) != 0 || port < 1
        || port > 65535)
    {
        snprintf(err, errlen, "environment variable \"KORDON_LISTEN\" is "
                 "malformed: expected host:port");
        return -1;
    }
    memcpy(cf->listen_host, s, hlen);
    cf->listen_host[hlen] = '\0';
    if (inet_pton(AF_INET, cf->listen_host, &a) != 1) {
        snprintf(err, errlen, "environment variable \"KORDON_LISTEN\" is "
                 "malformed: host \"%s\" is not an IPv4 address",
                 cf->listen_host);
        return -1;
    }
    cf->listen_port = (uint16_t) port;
    return 0;
}


/* Reads at most KIT_SECRET_FILE_MAX - 1 bytes of path into buf. */
static ssize_t
kit_read_small_file(const char *path, char *buf, size_t buflen)
{
    ssize_t  n;
    size_t   off;
    int      fd, saved, i;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = 0;
    off = 0;
    for (i = 0; i < KIT_READ_TRIES_MAX && off < buflen - 1; i++) {
        n = read(fd, buf + off, buflen - 1 - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (size_t) n;
    }
    saved = errno;
    close(fd);
    errno = saved;
    if (n < 0) {
        return -1;
    }
    buf[off] = '\0';
    return (ssize_t) off;
}


/* Hex-decodes the trimmed text into the key; messages never show it. */
static int
kit_config_secret_decode(kit_config_t *cf, const char *path, char *text,
    char *err, size_t errlen)
{
    char  *s, *e;
    int    n;

    s = text;
    while (isspace((unsigned char) *s)) {
        s++;
    }
    e = s + strlen(s);
    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }
    if ((size_t) (e - s) > 2 * sizeof(cf->edge_secret)) {
        snprintf(err, errlen, "edge secret file \"%s\" is too long: "
                 "expected at most %zu bytes", path,
                 sizeof(cf->edge_secret));
        return -1;
    }
    n = kit_hex_decode(s, cf->edge_secret, sizeof(cf->edge_secret));
    if (n < 0) {
        snprintf(err, errlen, "edge secret file \"%s\" is malformed: "
                 "expected hex digits", path);
        return -1;
    }
    if (n < KIT_SECRET_MIN) {
        snprintf(err, errlen, "edge secret file \"%s\" is too short: %d "
                 "bytes, expected at least %d", path, n, KIT_SECRET_MIN);
        return -1;
    }
    cf->edge_secret_len = (size_t) n;
    return 0;
}


static int
kit_config_secret(kit_config_t *cf, char *err, size_t errlen)
{
    char         text[KIT_SECRET_FILE_MAX];
    const char  *path;
    ssize_t      n;
    int          rc;

    if (kit_env_str("KORDON_EDGE_SECRET_FILE", NULL, &path, err, errlen)
        != 0)
    {
        return -1;
    }
    n = kit_read_small_file(path, text, sizeof(text));
    if (n < 0) {
        snprintf(err, errlen, "could not read edge secret file \"%s\": %s",
                 path, strerror(errno));
        return -1;
    }
    if ((size_t) n == sizeof(text) - 1) {
        snprintf(err, errlen, "edge secret file \"%s\" is too long: "
                 "expected at most %zu bytes", path,
                 sizeof(cf->edge_secret));
        explicit_bzero(text, sizeof(text));
        return -1;
    }
    rc = kit_config_secret_decode(cf, path, text, err, errlen);
    explicit_bzero(text, sizeof(text));
    return rc;
}


/* An optional (or, when need, required) string, copied into *out. */
static int
kit_config_dup(const char *name, int need, char **out, char *err,
    size_t errlen)
{
    const char  *v;

    *out = NULL;
    if (kit_env_str(name, need ? NULL : "", &v, err, errlen) != 0) {
        return -1;
    }
    if (v[0] == '\0') {
        return 0;
    }
    *out = strdup(v);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory reading \"%s\"", name);
        return -1;
    }
    return 0;
}


/* The numeric variables and the log level. */
static int
kit_config_numbers(kit_config_t *cf, char *err, size_t errlen)
{
    const char  *level;
    long         v[5];

    if (kit_env_int("KORDON_THREADS", "4", 1, 64, &v[0], err, errlen)
        || kit_env_int("KORDON_DB_POOL_SIZE", "4", 1, 64, &v[1], err,
                       errlen)
        || kit_env_int("KORDON_BODY_MAX", "65536", 1, 16777216, &v[2], err,
                       errlen)
        || kit_env_int("KORDON_REQUEST_TIMEOUT_S", "30", 1, 300, &v[3], err,
                       errlen)
        || kit_env_int("KORDON_SIGNATURE_SKEW_S", "60", 1, 600, &v[4], err,
                       errlen)
        || kit_env_str("KORDON_LOG_LEVEL", "info", &level, err, errlen))
    {
        return -1;
    }
    cf->threads = (int) v[0];
    cf->db_pool_size = (int) v[1];
    cf->body_max = (size_t) v[2];
    cf->request_timeout_s = (int) v[3];
    cf->signature_skew_s = (int) v[4];
    cf->log_level = kit_log_level_parse(level);
    if (cf->log_level < 0) {
        snprintf(err, errlen, "environment variable \"KORDON_LOG_LEVEL\" is "
                 "malformed: expected debug, info, warn or error");
        return -1;
    }
    return 0;
}


int
kit_config_load(kit_config_t *cf, int need_db, int need_kafka,
    char *err, size_t errlen)
{
    KIT_ASSERT(cf != NULL && err != NULL && errlen > 0);

    memset(cf, 0, sizeof(*cf));
    if (kit_config_listen(cf, err, errlen) != 0
        || kit_config_dup("KORDON_DATABASE_URL", need_db, &cf->database_url,
                          err, errlen) != 0
        || kit_config_secret(cf, err, errlen) != 0
        || kit_config_dup("KAFKA_BOOTSTRAP", need_kafka,
                          &cf->kafka_bootstrap, err, errlen) != 0
        || kit_config_numbers(cf, err, errlen) != 0)
    {
        kit_config_free(cf);
        return -1;
    }
    return 0;
}


void
kit_config_free(kit_config_t *cf)
{
    free(cf->database_url);
    free(cf->kafka_bootstrap);
    cf->database_url = NULL;
    cf->kafka_bootstrap = NULL;
    explicit_bzero(cf->edge_secret, sizeof(cf->edge_secret));
    cf->edge_secret_len = 0;
}
