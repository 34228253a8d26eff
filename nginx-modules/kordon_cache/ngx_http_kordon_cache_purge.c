/*
 * Kordon edge: the Redis response cache, tag purges.
 *
 * An answer may carry "X-Kordon-Cache-Tags: a b c"; its entry's key is
 * added to the Redis set kordon:cache:tag:<tag> of each tag (see the
 * store in ngx_http_kordon_cache_handler.c).  Purging a tag deletes the
 * keys in its set and the set, in one Lua script, so that it is atomic
 * and costs one round trip whoever asks:
 *
 *   - the edge's internal location (kordon_cache_purge), which EVALs it;
 *   - any service, with "FCALL kordon_cache_purge 0 <tag>": each worker
 *     checks every second that Redis has the function library
 *     kordon_cache_v1 (FUNCTION LIST) and loads it when it does not (a
 *     Redis restarted without persistence), so a service needs no copy
 *     of the script and no edge address.
 *
 *   - any service, with "PUBLISH <channel> <tags>" when the edge has
 *     kordon_cache_purge_channel: worker 0 of each edge holds a
 *     subscriber connection of its own (ngx_http_kordon_redis_subscribe:
 *     it reconnects and subscribes again after a Redis restart) and runs
 *     the same script for each tag of a message, on the shared
 *     connection, never waiting.  A message that is not a list of 1 to
 *     16 valid tags is logged and ignored whole.
 *
 * FCALL is the one to use when the purge must happen: it works with no
 * edge connected and tells how many entries went.  PUBLISH tells only
 * how many edges heard it (0: nobody purged), and a message sent while
 * no edge is subscribed is lost, as pub/sub is; it is there for services
 * that already publish their changes, and it costs them nothing to add.
 * The channel's purge is EVAL of the script, not FCALL, so that it works
 * in the second after a Redis restart, before the loader puts the
 * library back.
 */


#include "ngx_http_kordon_cache_internal.h"


typedef struct {
    ngx_event_t                      timer;
    ngx_array_t                     *servers;
} ngx_http_kordon_cache_loader_t;


static ngx_int_t ngx_http_kordon_cache_purge_fail(ngx_http_request_t *r,
    ngx_uint_t status, char *detail);
static void ngx_http_kordon_cache_purge_done(ngx_http_request_t *r,
    redisReply *reply, ngx_uint_t status, void *data);
static ngx_int_t ngx_http_kordon_cache_purge_ok(ngx_http_request_t *r,
    ngx_str_t *tag, long long n);
static void ngx_http_kordon_cache_channel_purged(redisReply *reply,
    ngx_uint_t status, void *data);
static void ngx_http_kordon_cache_loader_tick(ngx_event_t *ev);
static void ngx_http_kordon_cache_library_listed(redisReply *reply,
    ngx_uint_t status, void *data);
static void ngx_http_kordon_cache_library_loaded(redisReply *reply,
    ngx_uint_t status, void *data);


/* the purge, shared by the EVAL script and the function; tag is set */
#define NGX_HTTP_KORDON_CACHE_PURGE_LUA                                      \
    "local set = '" KORDON_CACHE_TAG_PREFIX "' .. tag\n"                     \
    "local keys = redis.call('SMEMBERS', set)\n"                             \
    "local n = 0\n"                                                          \
    "for i = 1, #keys, 500 do\n"                                             \
    "  n = n + redis.call('UNLINK',\n"                                       \
    "                     unpack(keys, i, math.min(i + 499, #keys)))\n"      \
    "end\n"                                                                  \
    "redis.call('DEL', set)\n"                                               \
    "return n\n"

static const char  ngx_http_kordon_cache_purge_script[] =
    "local tag = ARGV[1]\n"
    NGX_HTTP_KORDON_CACHE_PURGE_LUA;

static const char  ngx_http_kordon_cache_library[] =
    "#!lua name=" NGX_HTTP_KORDON_CACHE_LIBRARY "\n"
    "redis.register_function('kordon_cache_purge', function(keys, args)\n"
    "local tag = args[1]\n"
    "if tag == nil or tag == '' then\n"
    "  return redis.error_reply('ERR kordon_cache_purge needs a tag')\n"
    "end\n"
    NGX_HTTP_KORDON_CACHE_PURGE_LUA
    "end)\n";


/* POST (or DELETE) ...?tag=<tag>: 200 {"tag":"x","purged":N} */
ngx_int_t
ngx_http_kordon_cache_purge_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc;
    ngx_str_t                          tag, *copy;
    const char                        *argv[4];
    size_t                             argvlen[4];
    ngx_http_kordon_cache_loc_conf_t  *clcf;

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_DELETE))) {
        return ngx_http_kordon_cache_purge_fail(r, NGX_HTTP_NOT_ALLOWED,
                                                "use POST or DELETE");
    }

    if (ngx_http_arg(r, (u_char *) "tag", 3, &tag) != NGX_OK
        || !kordon_cache_tag_valid((char *) tag.data, tag.len))
    {
        return ngx_http_kordon_cache_purge_fail(r, NGX_HTTP_BAD_REQUEST,
                   "the query parameter \"tag\" must be 1 to 128 characters "
                   "of A-Z a-z 0-9 _ . : -");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    copy = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *copy = tag;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_kordon_cache_module);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_kordon_cache_purge_script;
    argvlen[1] = sizeof(ngx_http_kordon_cache_purge_script) - 1;
    argv[2] = "0";
    argvlen[2] = 1;
    argv[3] = (char *) tag.data;
    argvlen[3] = tag.len;

    rc = ngx_http_kordon_redis_request(r, clcf->purge, 4, argv, argvlen, 0,
                                       ngx_http_kordon_cache_purge_done,
                                       copy);

    if (rc != NGX_HTTP_KORDON_REDIS_OK) {
        return ngx_http_kordon_cache_purge_fail(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "redis is not reachable");
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_kordon_cache_purge_fail(ngx_http_request_t *r, ngx_uint_t status,
    char *detail)
{
    ngx_str_t  text;

    text.data = (u_char *) detail;
    text.len = ngx_strlen(detail);

    return ngx_http_kordon_problem_send(r, status, NULL, &text);
}


static void
ngx_http_kordon_cache_purge_done(ngx_http_request_t *r, redisReply *reply,
    ngx_uint_t status, void *data)
{
    ngx_int_t   rc;
    ngx_str_t  *tag = data;

    if (status == NGX_HTTP_KORDON_REDIS_OK
        && reply->type == REDIS_REPLY_INTEGER)
    {
        ngx_http_kordon_cache_inc(purges);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "kordon cache: tag \"%V\" purged, %L entries",
                      tag, (int64_t) reply->integer);
        rc = ngx_http_kordon_cache_purge_ok(r, tag, reply->integer);

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "kordon cache: could not purge tag \"%V\": %V%s%*s",
                      tag, ngx_http_kordon_redis_status_text(status),
                      reply && reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply && reply->type == REDIS_REPLY_ERROR
                      ? reply->len : 0,
                      reply && reply->type == REDIS_REPLY_ERROR
                      ? reply->str : "");
        rc = ngx_http_kordon_cache_purge_fail(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                 status == NGX_HTTP_KORDON_REDIS_TIMEOUT
                 ? "redis did not answer in time"
                 : status == NGX_HTTP_KORDON_REDIS_DOWN
                 ? "redis is not reachable"
                 : "redis answered with an error");
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_kordon_cache_purge_ok(ngx_http_request_t *r, ngx_str_t *tag,
    long long n)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    /* a valid tag needs no JSON escaping */
    b = ngx_create_temp_buf(r->pool, sizeof("{\"tag\":\"\",\"purged\":}\n")
                                     + tag->len + NGX_INT64_LEN);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"tag\":\"%V\",\"purged\":%L}\n",
                          tag, (int64_t) n);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * A message of kordon_cache_purge_channel, in worker 0: one EVAL of the
 * purge per tag, on the shared connection, each answered by
 * channel_purged.  A message that is not a tag list is ignored whole
 * (logged, counted); only its size is logged, not its bytes.
 */
void
ngx_http_kordon_cache_channel_message(ngx_str_t *message, void *data)
{
    long                                n, i;
    size_t                              argvlen[4];
    ngx_int_t                           rc;
    ngx_str_t                          *tag;
    const char                         *argv[4];
    kordon_cache_str_t                  tags[KORDON_CACHE_TAGS_MAX];
    ngx_http_kordon_cache_main_conf_t  *kmcf = data;

    n = kordon_cache_tags_parse((char *) message->data, message->len, tags,
                                KORDON_CACHE_TAGS_MAX);

    if (n < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "kordon cache: ignored a message of %uz bytes on "
                      "channel \"%V\": not a list of 1 to %d valid tags",
                      message->len, &kmcf->channel, KORDON_CACHE_TAGS_MAX);
        ngx_http_kordon_cache_inc(channel_ignored);
        return;
    }

    ngx_http_kordon_cache_inc(channel_messages);

    argv[0] = "EVAL";
    argvlen[0] = 4;
    argv[1] = ngx_http_kordon_cache_purge_script;
    argvlen[1] = sizeof(ngx_http_kordon_cache_purge_script) - 1;
    argv[2] = "0";
    argvlen[2] = 1;

    for (i = 0; i < n; i++) {

        /* the handler's copy of the tag, for its log line; freed there */
        tag = ngx_alloc(sizeof(ngx_str_t) + tags[i].len, ngx_cycle->log);
        if (tag == NULL) {
            return;
        }

        tag->len = tags[i].len;
        tag->data = (u_char *) (tag + 1);
        ngx_memcpy(tag->data, tags[i].data, tag->len);

        argv[3] = (char *) tag->data;
        argvlen[3] = tag->len;

        rc = ngx_http_kordon_redis_send(kmcf->channel_server, 4, argv,
                                        argvlen, 0,
                                        ngx_http_kordon_cache_channel_purged,
                                        tag, NULL);

        if (rc != NGX_HTTP_KORDON_REDIS_OK) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "kordon cache: could not purge tag \"%V\" "
                          "from the channel: %V", tag,
                          ngx_http_kordon_redis_status_text(rc));
            ngx_free(tag);
        }
    }
}


static void
ngx_http_kordon_cache_channel_purged(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_str_t  *tag = data;

    if (status == NGX_HTTP_KORDON_REDIS_OK
        && reply->type == REDIS_REPLY_INTEGER)
    {
        ngx_http_kordon_cache_inc(purges);
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "kordon cache: tag \"%V\" purged from the channel, "
                      "%L entries", tag, (int64_t) reply->integer);

    } else {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "kordon cache: could not purge tag \"%V\" from the "
                      "channel: %V", tag,
                      ngx_http_kordon_redis_status_text(status));
    }

    ngx_free(tag);
}


/*
 * In each worker: a timer that makes sure every Redis the cache uses has
 * the function library.  It never holds a worker back at shutdown.
 */
void
ngx_http_kordon_cache_loader_start(ngx_cycle_t *cycle, ngx_array_t *servers)
{
    ngx_http_kordon_cache_loader_t  *loader;

    loader = ngx_pcalloc(cycle->pool, sizeof(ngx_http_kordon_cache_loader_t));
    if (loader == NULL) {
        return;
    }

    loader->servers = servers;
    loader->timer.handler = ngx_http_kordon_cache_loader_tick;
    loader->timer.data = loader;
    loader->timer.log = cycle->log;
    loader->timer.cancelable = 1;

    /* the connection is made in init_process too: give it a moment */
    ngx_add_timer(&loader->timer, 100);
}


static void
ngx_http_kordon_cache_loader_tick(ngx_event_t *ev)
{
    ngx_uint_t                        i;
    const char                       *argv[4];
    ngx_http_kordon_redis_server_t  **servers;
    ngx_http_kordon_cache_loader_t   *loader = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    argv[0] = "FUNCTION";
    argv[1] = "LIST";
    argv[2] = "LIBRARYNAME";
    argv[3] = NGX_HTTP_KORDON_CACHE_LIBRARY;

    servers = loader->servers->elts;

    for (i = 0; i < loader->servers->nelts; i++) {
        if (ngx_http_kordon_redis_ready(servers[i])) {
            (void) ngx_http_kordon_redis_send(servers[i], 4, argv, NULL, 0,
                                        ngx_http_kordon_cache_library_listed,
                                        servers[i], NULL);
        }
    }

    ngx_add_timer(ev, NGX_HTTP_KORDON_CACHE_LOADER_MS);
}


static void
ngx_http_kordon_cache_library_listed(redisReply *reply, ngx_uint_t status,
    void *data)
{
    const char                      *argv[3];
    size_t                           argvlen[3];
    ngx_http_kordon_redis_server_t  *server = data;

    if (status != NGX_HTTP_KORDON_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 0)
    {
        return;
    }

    argv[0] = "FUNCTION";
    argvlen[0] = 8;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = ngx_http_kordon_cache_library;
    argvlen[2] = sizeof(ngx_http_kordon_cache_library) - 1;

    (void) ngx_http_kordon_redis_send(server, 3, argv, argvlen, 0,
                                      ngx_http_kordon_cache_library_loaded,
                                      server, NULL);
}


static void
ngx_http_kordon_cache_library_loaded(redisReply *reply, ngx_uint_t status,
    void *data)
{
    ngx_http_kordon_redis_server_t  *server = data;

    if (status == NGX_HTTP_KORDON_REDIS_OK) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "kordon cache: function library \""
                      NGX_HTTP_KORDON_CACHE_LIBRARY "\" loaded into "
                      "redis \"%V\"", ngx_http_kordon_redis_name(server));
        return;
    }

    /* another worker or edge may have loaded it first: not an error */
    if (reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strstrn((u_char *) reply->str, "already exists", 14 - 1))
    {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "kordon cache: could not load the function library into "
                  "redis \"%V\": %V", ngx_http_kordon_redis_name(server),
                  ngx_http_kordon_redis_status_text(status));
}
