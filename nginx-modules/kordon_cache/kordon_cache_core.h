/*
 * kordon_cache_core.h -- the nginx-free parts of the edge's Redis
 * response cache: the cache key (normalized path, sorted query, the
 * user), Cache-Control parsing and the stored entry's format.  Compiled
 * into the module and into build/lib/libkordon_edge.a for the unit tests
 * (t/unit/test_cache.c).
 */

#ifndef KORDON_CACHE_CORE_H
#define KORDON_CACHE_CORE_H

#include <stddef.h>
#include <stdint.h>


/* "kordon:cache:e:" + 64 hex digits of SHA-256 */
#define KORDON_CACHE_KEY_PREFIX       "kordon:cache:e:"
#define KORDON_CACHE_KEY_LEN          (sizeof(KORDON_CACHE_KEY_PREFIX) - 1 \
                                       + 64)
#define KORDON_CACHE_TAG_PREFIX       "kordon:cache:tag:"

/* a query with more parameters than this is not cached (BYPASS) */
#define KORDON_CACHE_QUERY_PARAMS_MAX  64

/* a response with more tags is stored under the first ones only */
#define KORDON_CACHE_TAGS_MAX          16
#define KORDON_CACHE_TAG_LEN_MAX       128

/* request headers one location may vary on (kordon_cache_vary) */
#define KORDON_CACHE_VARY_MAX          8

/* headers kept in one entry */
#define KORDON_CACHE_HEADERS_MAX       32

#define KORDON_CACHE_ENTRY_MAGIC       "KC1 "
/* the magic and the first line's four numbers, with room */
#define KORDON_CACHE_ENTRY_HEAD_MAX    96


typedef struct {
    unsigned   no_store:1;
    unsigned   no_cache:1;
    unsigned   private_:1;
    int64_t    max_age;     /* seconds, -1 when absent */
    int64_t    s_maxage;    /* seconds, -1 when absent */
} kordon_cache_cc_t;


typedef struct {
    const char  *name;
    size_t       name_len;
    const char  *value;
    size_t       value_len;
} kordon_cache_header_t;


typedef struct {
    const char  *data;
    size_t       len;
} kordon_cache_str_t;


typedef struct {
    unsigned                status;
    uint64_t                stored;     /* unix seconds, for Age */
    size_t                  nheaders;
    kordon_cache_header_t   headers[KORDON_CACHE_HEADERS_MAX];
    const char             *body;
    size_t                  body_len;
} kordon_cache_entry_t;


/*
 * Writes the path with "//" collapsed and "." and ".." segments
 * resolved ("/a/./b/../c" -> "/a/c"; ".." never climbs above "/") into
 * out, which has room for len + 1 bytes.  Returns the length written.
 * A path not starting with "/" gets one.
 */
size_t kordon_cache_path_normalize(const char *path, size_t len, char *out);

/*
 * Writes the query with its parameters sorted by name (bytewise; equal
 * names keep their order, so "a=2&a=1" stays as it is) and empty
 * parameters dropped, joined by "&", into out (room for len bytes).
 * Returns the length written, or -1 with more than
 * KORDON_CACHE_QUERY_PARAMS_MAX parameters.
 */
long kordon_cache_query_normalize(const char *query, size_t len, char *out);

/*
 * The Redis key of a request: KORDON_CACHE_KEY_PREFIX and the hex
 * SHA-256 of the method, the normalized path, the normalized query and
 * the user, each length-prefixed so that no two requests share a key.
 * path and query must be normalized already (the functions above).
 * Writes KORDON_CACHE_KEY_LEN bytes (no NUL) to out; returns 0, or -1
 * when OpenSSL fails.  It keeps one SHA-256 context for the process
 * (made on the first call): call it from one thread at a time.
 */
int kordon_cache_key(const char *method, size_t method_len,
    const char *path, size_t path_len, const char *query, size_t query_len,
    const char *user, size_t user_len, char *out);

/*
 * The same with a fifth part, the request header values a location
 * varies on (kordon_cache_vary, see kordon_cache_vary_value()); vary
 * NULL is the four-part key above, so that locations without
 * kordon_cache_vary keep their keys.
 */
int kordon_cache_key_vary(const char *method, size_t method_len,
    const char *path, size_t path_len, const char *query, size_t query_len,
    const char *user, size_t user_len, const char *vary, size_t vary_len,
    char *out);

/*
 * A request header value as the key holds it: runs of spaces and tabs
 * become one space, none is kept at either end or beside a comma
 * ("en ,  fr" -> "en,fr"); the case is kept.  out has room for len
 * bytes.  Returns the length written.
 */
size_t kordon_cache_vary_value(const char *value, size_t len, char *out);

/*
 * Adds one Cache-Control header value to cc (call
 * kordon_cache_cc_init() first; several header lines add up).
 * Directive names are case-insensitive; a max-age or s-maxage that is
 * not a number counts as 0 (stale at once), as RFC 9111 says.
 */
void kordon_cache_cc_init(kordon_cache_cc_t *cc);
void kordon_cache_cc_parse(kordon_cache_cc_t *cc, const char *value,
    size_t len);

/*
 * The TTL to store a response with, in milliseconds: the configured
 * maximum, lowered to s-maxage (or, without one, max-age) when the
 * upstream gave it; 0 means "do not store" (no-store, no-cache,
 * max-age=0, or private on a key shared by users).
 */
uint64_t kordon_cache_ttl_ms(const kordon_cache_cc_t *cc, uint64_t max_ms,
    int user_key);

/*
 * 1 if a tag is 1 to KORDON_CACHE_TAG_LEN_MAX bytes of
 * A-Z a-z 0-9 _ . : - , else 0.
 */
int kordon_cache_tag_valid(const char *tag, size_t len);

/*
 * A purge message's list of tags ("a b,c"; spaces, tabs and commas
 * separate): at most max tags, pointers into list.  Returns how many,
 * or -1 for an empty list, an invalid tag or more than max: the whole
 * message is refused, never half purged.
 */
long kordon_cache_tags_parse(const char *list, size_t len,
    kordon_cache_str_t *tags, size_t max);

/*
 * The stored entry: "KC1 <status> <stored> <nheaders> <body length>\n",
 * then "<name>: <value>\n" per header, then the body.  entry_size() is the
 * exact size entry_write() writes.  entry_parse() fills e with pointers
 * into data; returns 0, or -1 for anything malformed (which the caller
 * treats as a miss).
 */
size_t kordon_cache_entry_size(const kordon_cache_entry_t *e);
char *kordon_cache_entry_write(char *out, const kordon_cache_entry_t *e);
int kordon_cache_entry_parse(const char *data, size_t len,
    kordon_cache_entry_t *e);


#endif /* KORDON_CACHE_CORE_H */
