
/*
 * Kordon edge: what the Kordon nginx modules share.
 *
 * ngx_http_kordon_module.so holds three modules: the header guard
 * (ngx_http_kordon_module.c) that drops client-sent X-Kordon-* request
 * headers, the problem renderer (ngx_http_kordon_problem_module.c) that
 * turns every edge error into an RFC 9457 application/problem+json body,
 * and the connection metrics (ngx_http_kordon_metrics_module.c).
 *
 * Later Kordon modules include this header and call the functions below;
 * nginx loads dynamic modules with RTLD_GLOBAL, so their symbols resolve
 * against ngx_http_kordon_module.so, which must be loaded first.
 */


#ifndef _NGX_HTTP_KORDON_H_INCLUDED_
#define _NGX_HTTP_KORDON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "kordon_metrics_core.h"


/* request headers with this name prefix belong to the edge, not clients */
#define NGX_HTTP_KORDON_RESERVED_PREFIX  "x-kordon-"

#define NGX_HTTP_KORDON_PROBLEM_TYPE     "application/problem+json"

/* a kordon_route value may not be longer (it is a metrics label) */
#define NGX_HTTP_KORDON_ROUTE_LEN_MAX    255

/* title and detail are cut to this many bytes before escaping */
#define NGX_HTTP_KORDON_PROBLEM_TEXT_MAX  1024


typedef struct {
    ngx_array_t               routes;        /* ngx_str_t, configured */
    ngx_hash_t                route_hash;    /* name -> index + 1 */
    ngx_int_t                 route_index;   /* of $kordon_route */
} ngx_http_kordon_main_conf_t;


/*
 * The request's route template ($kordon_route, "" when none) and its
 * number in the configured set: i + 1 for ngx_http_kordon_routes()[i],
 * 0 for a value outside the set.  Reads the main request's variable.
 */
ngx_uint_t ngx_http_kordon_route(ngx_http_request_t *r, ngx_str_t *route);

/*
 * At configuration time, from a postconfiguration handler: the route
 * names without variables that the configuration holds (ngx_str_t).
 */
ngx_array_t *ngx_http_kordon_routes(ngx_conf_t *cf);

/*
 * From a postconfiguration handler: the index of a variable some loaded
 * module defines, or NGX_ERROR when none does (asking nginx for the
 * index of an undefined name would make it refuse the configuration).
 */
ngx_int_t ngx_http_kordon_variable_index(ngx_conf_t *cf, char *name);

/*
 * The counters of kordon_events in the metrics zone, or NULL before the
 * zone exists (nginx -t) or when kordon_metrics is not loaded.  Workers
 * add with kordon_metrics_add() (kordon_metrics_core.h).
 */
kordon_metrics_kafka_t *ngx_http_kordon_metrics_kafka(void);

/*
 * Sends a complete problem+json response and returns what a content
 * handler returns (the result of ngx_http_output_filter(), NGX_ERROR,
 * or NGX_HTTP_INTERNAL_SERVER_ERROR when memory runs out).  A NULL title
 * or detail means the standard one for the status.  From a content
 * handler: "return ngx_http_kordon_problem_send(...);".  From an earlier
 * phase handler: "ngx_http_finalize_request(r, rc); return NGX_DONE;".
 * The request body, if any, is discarded.
 */
ngx_int_t ngx_http_kordon_problem_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *title, ngx_str_t *detail);

/*
 * The same, with extra members appended to the object: members is
 * ready JSON text such as "\"errors\":[...]", escaped by the caller.
 */
ngx_int_t ngx_http_kordon_problem_send_members(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *title, ngx_str_t *detail,
    ngx_str_t *members);

/* the standard title and detail for a status; never NULL */
ngx_str_t *ngx_http_kordon_problem_title(ngx_uint_t status);
ngx_str_t *ngx_http_kordon_problem_detail(ngx_uint_t status);

/*
 * JSON string escaping without the quotes.  Invalid UTF-8 becomes
 * U+FFFD, so the output is always valid JSON text; escape_len() gives
 * the exact size escape() will write.
 */
size_t ngx_http_kordon_json_escape_len(u_char *src, size_t size);
u_char *ngx_http_kordon_json_escape(u_char *dst, u_char *src, size_t size);

/* 1 if a lowercased header name is in the edge's X-Kordon- namespace */
ngx_uint_t ngx_http_kordon_reserved_header(u_char *lowcase_key, size_t len);


extern ngx_module_t  ngx_http_kordon_module;
extern ngx_module_t  ngx_http_kordon_problem_module;
extern ngx_module_t  ngx_http_kordon_metrics_module;


#endif /* _NGX_HTTP_KORDON_H_INCLUDED_ */
