
/*
 * Kordon edge: what the OpenAPI module's files share.
 */


#ifndef _NGX_HTTP_KORDON_OPENAPI_H_INCLUDED_
#define _NGX_HTTP_KORDON_OPENAPI_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_kordon.h"
#include "kordon_openapi_core.h"


typedef struct {
    kordon_oa_doc_t          *doc;         /* NULL: no document */
    ngx_str_t                 file;
} ngx_http_kordon_openapi_srv_conf_t;


typedef struct {
    ngx_flag_t                validate;
    ngx_uint_t                schema_status;   /* 400 or 422 */
} ngx_http_kordon_openapi_loc_conf_t;


typedef struct {
    const kordon_oa_path_t   *path;        /* the matched template */
    const kordon_oa_op_t     *op;
    kordon_oa_match_t         match;
    unsigned                  matched:1;   /* path looked up */
    unsigned                  body_read:1;
    unsigned                  done:1;
} ngx_http_kordon_openapi_ctx_t;


ngx_int_t ngx_http_kordon_openapi_handler(ngx_http_request_t *r);
ngx_http_kordon_openapi_ctx_t *ngx_http_kordon_openapi_route(
    ngx_http_request_t *r);


extern ngx_module_t  ngx_http_kordon_openapi_module;
extern ngx_int_t     ngx_http_kordon_openapi_route_index;


#endif /* _NGX_HTTP_KORDON_OPENAPI_H_INCLUDED_ */
