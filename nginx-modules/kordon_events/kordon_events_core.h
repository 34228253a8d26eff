
/*
 * Kordon edge: the request event, nginx-free (see kordon_events_core.c).
 */


#ifndef _KORDON_EVENTS_CORE_H_INCLUDED_
#define _KORDON_EVENTS_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


typedef struct {
    const unsigned char  *data;
    size_t                len;
} kordon_events_str_t;


/*
 * One request as it ends.  Empty user, api_key_id, limit and cache are
 * written as null; upstream_ms < 0 means the request had no upstream.
 */
typedef struct {
    int64_t               time_ms;        /* request start, Unix ms */
    kordon_events_str_t   request_id;
    kordon_events_str_t   method;
    kordon_events_str_t   route;
    unsigned              status;
    int64_t               duration_ms;
    int64_t               upstream_ms;
    uint64_t              bytes_sent;
    uint64_t              bytes_received;
    kordon_events_str_t   user;
    kordon_events_str_t   api_key_id;
    kordon_events_str_t   client_ip;
    kordon_events_str_t   limit;
    kordon_events_str_t   cache;
} kordon_event_t;


/* a bound of what kordon_events_json() writes, its final NUL included */
size_t kordon_events_json_len(const kordon_event_t *e);

/*
 * Writes the event as one JSON object into dst, which holds
 * kordon_events_json_len(e) bytes; returns the bytes of the text (the
 * NUL after them is not counted).  Strings
 * are escaped; invalid UTF-8 becomes U+FFFD, so the text is always
 * valid JSON whatever a client sent.
 */
size_t kordon_events_json(unsigned char *dst, const kordon_event_t *e);

/* JSON string escaping, without the quotes: its size, and the writer */
size_t kordon_events_escape_len(const unsigned char *src, size_t len);
unsigned char *kordon_events_escape(unsigned char *dst,
    const unsigned char *src, size_t len);


#endif /* _KORDON_EVENTS_CORE_H_INCLUDED_ */
