
/*
 * Kordon edge: the request event as JSON, nginx-free so that the unit
 * tests and a fuzzer reach it.
 *
 * Hand-written rather than jansson: the encoder runs in every request's
 * log phase, and writing the fixed set of members straight into one
 * buffer of the exact size (a first pass measures, a second writes)
 * costs no allocation per member.  Every string may come from a client
 * (method, user, cache status set from headers by a misconfiguration),
 * so each is escaped and invalid UTF-8 is replaced with U+FFFD.
 */


#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kordon_events_core.h"


#define KORDON_EVENTS_INT_LEN   20     /* digits of UINT64_MAX */
#define KORDON_EVENTS_TIME_LEN  24     /* 2026-11-24T02:30:00.123Z */


/*
 * The length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF
 * included).
 */

static size_t
kordon_events_utf8(const unsigned char *p, size_t len)
{
    unsigned char  c;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        return (len >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80
            || (c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
        {
            return 0;
        }

        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80
            || (p[3] & 0xc0) != 0x80
            || (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
        {
            return 0;
        }

        return 4;
    }

    return 0;
}


size_t
kordon_events_escape_len(const unsigned char *src, size_t len)
{
    size_t  i, n, size;

    size = 0;

    for (i = 0; i < len; i += n) {
        n = kordon_events_utf8(src + i, len - i);

        if (n == 0) {
            size += 3;                          /* U+FFFD */
            n = 1;

        } else if (n > 1) {
            size += n;

        } else if (src[i] == '"' || src[i] == '\\' || src[i] == '\n'
                   || src[i] == '\r' || src[i] == '\t')
        {
            size += 2;

        } else if (src[i] < 0x20 || src[i] == 0x7f) {
            size += 6;                          /* \u00XX */

        } else {
            size++;
        }
    }

    return size;
}


unsigned char *
kordon_events_escape(unsigned char *dst, const unsigned char *src, size_t len)
{
    size_t                i, n;
    unsigned char         c;
    static const char     hex[] = "0123456789abcdef";

    for (i = 0; i < len; i += n) {
        n = kordon_events_utf8(src + i, len - i);

        if (n == 0) {
            *dst++ = 0xef; *dst++ = 0xbf; *dst++ = 0xbd;
            n = 1;
            continue;
        }

        if (n > 1) {
            memcpy(dst, src + i, n);
            dst += n;
            continue;
        }

        c = src[i];

        switch (c) {
        case '"':  *dst++ = '\\'; *dst++ = '"'; break;
        case '\\': *dst++ = '\\'; *dst++ = '\\'; break;
        case '\n': *dst++ = '\\'; *dst++ = 'n'; break;
        case '\r': *dst++ = '\\'; *dst++ = 'r'; break;
        case '\t': *dst++ = '\\'; *dst++ = 't'; break;

        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(dst, "\\u00", 4);
                dst[4] = hex[c >> 4];
                dst[5] = hex[c & 0xf];
                dst += 6;

            } else {
                *dst++ = c;
            }
        }
    }

    return dst;
}


/* a member's name, its quotes and colon, and a comma: "name":"",  */

#define kordon_events_member_len(name)  (sizeof(name) - 1 + 6)


static size_t
kordon_events_str_len(const kordon_events_str_t *s)
{
    return s->len ? kordon_events_escape_len(s->data, s->len) : 4;  /* null */
}


size_t
kordon_events_json_len(const kordon_event_t *e)
{
    size_t  size;

    size = sizeof("{\"type\":\"edge.request\",}") - 1;

    size += kordon_events_member_len("time") + KORDON_EVENTS_TIME_LEN;
    size += kordon_events_member_len("request_id")
            + kordon_events_str_len(&e->request_id);
    size += kordon_events_member_len("method")
            + kordon_events_str_len(&e->method);
    size += kordon_events_member_len("route")
            + kordon_events_str_len(&e->route);
    size += kordon_events_member_len("status") + KORDON_EVENTS_INT_LEN;
    size += kordon_events_member_len("duration_ms") + KORDON_EVENTS_INT_LEN;
    size += kordon_events_member_len("upstream_ms") + KORDON_EVENTS_INT_LEN;
    size += kordon_events_member_len("bytes_sent") + KORDON_EVENTS_INT_LEN;
    size += kordon_events_member_len("bytes_received")
            + KORDON_EVENTS_INT_LEN;
    size += kordon_events_member_len("user") + kordon_events_str_len(&e->user);
    size += kordon_events_member_len("api_key_id")
            + kordon_events_str_len(&e->api_key_id);
    size += kordon_events_member_len("client_ip")
            + kordon_events_str_len(&e->client_ip);
    size += kordon_events_member_len("limit")
            + kordon_events_str_len(&e->limit);
    size += kordon_events_member_len("cache")
            + kordon_events_str_len(&e->cache);

    return size;
}


static unsigned char *
kordon_events_put_str(unsigned char *p, const char *name,
    const kordon_events_str_t *s)
{
    size_t  n;

    n = strlen(name);

    *p++ = ',';
    *p++ = '"';
    memcpy(p, name, n);
    p += n;
    *p++ = '"';
    *p++ = ':';

    if (s->len == 0) {
        memcpy(p, "null", 4);
        return p + 4;
    }

    *p++ = '"';
    p = kordon_events_escape(p, s->data, s->len);
    *p++ = '"';

    return p;
}


static unsigned char *
kordon_events_put_int(unsigned char *p, const char *name, int64_t v)
{
    int  n;

    /* the bound was counted with quotes that numbers do not use */
    n = snprintf((char *) p, KORDON_EVENTS_INT_LEN + 1 + 32, ",\"%s\":%lld",
                 name, (long long) v);

    return p + n;
}


size_t
kordon_events_json(unsigned char *dst, const kordon_event_t *e)
{
    time_t          sec;
    struct tm       tm;
    unsigned char  *p;

    p = dst;

    sec = (time_t) (e->time_ms / 1000);
    gmtime_r(&sec, &tm);

    p += sprintf((char *) p,
                 "{\"type\":\"edge.request\",\"time\":"
                 "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int) (e->time_ms % 1000));

    p = kordon_events_put_str(p, "request_id", &e->request_id);
    p = kordon_events_put_str(p, "method", &e->method);
    p = kordon_events_put_str(p, "route", &e->route);
    p = kordon_events_put_int(p, "status", e->status);
    p = kordon_events_put_int(p, "duration_ms", e->duration_ms);

    if (e->upstream_ms < 0) {
        memcpy(p, ",\"upstream_ms\":null", sizeof(",\"upstream_ms\":null") - 1);
        p += sizeof(",\"upstream_ms\":null") - 1;

    } else {
        p = kordon_events_put_int(p, "upstream_ms", e->upstream_ms);
    }

    p = kordon_events_put_int(p, "bytes_sent", (int64_t) e->bytes_sent);
    p = kordon_events_put_int(p, "bytes_received",
                              (int64_t) e->bytes_received);
    p = kordon_events_put_str(p, "user", &e->user);
    p = kordon_events_put_str(p, "api_key_id", &e->api_key_id);
    p = kordon_events_put_str(p, "client_ip", &e->client_ip);
    p = kordon_events_put_str(p, "limit", &e->limit);
    p = kordon_events_put_str(p, "cache", &e->cache);

    *p++ = '}';

    return (size_t) (p - dst);
}
