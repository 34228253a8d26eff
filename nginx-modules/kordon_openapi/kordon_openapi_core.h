
/*
 * Kordon edge: an OpenAPI 3.1 document compiled for request validation,
 * free of nginx (the module, t/unit/test_openapi.c and fuzz/openapi_fuzz.c
 * link it alike).
 *
 * kordon_oa_load() turns the JSON text of a document into a tree of
 * compiled schemas (JSON Schema 2020-12, the keywords listed in the
 * module's README) and a table of path templates with their operations;
 * everything that cannot be compiled is refused with a JSON Pointer into
 * the document.  Validating a request then never allocates except for
 * the parsed body and never fails on input: every problem of the request
 * is a kordon_oa_error_t in a bounded report.
 *
 * A compiled document is read-only once loaded, except for one PCRE2
 * match block it reuses: one document is used by one thread at a time.
 */


#ifndef _KORDON_OPENAPI_CORE_H_INCLUDED_
#define _KORDON_OPENAPI_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


/* errors listed in one answer; more are counted, not listed */
#define KORDON_OA_ERRORS_MAX       32
/* nesting of arrays and objects accepted in a body */
#define KORDON_OA_DEPTH_MAX        64
/* schema recursion ($ref, combinators) followed while validating */
#define KORDON_OA_RECURSION_MAX    128
/* schemas evaluated for one value: bounds oneOf nested in recursion */
#define KORDON_OA_STEPS_MAX        200000
#define KORDON_OA_POINTER_MAX      256
#define KORDON_OA_MESSAGE_MAX      160
#define KORDON_OA_NAME_MAX         64
/* segments of a path template, parameters of an operation */
#define KORDON_OA_SEGMENTS_MAX     16
#define KORDON_OA_PARAMS_MAX       32
/* a document's own size limit, and the default body limit */
#define KORDON_OA_DOC_MAX          (8 * 1024 * 1024)
#define KORDON_OA_BODY_MAX         (16 * 1024)


typedef enum {
    KORDON_OA_IN_BODY = 0,
    KORDON_OA_IN_PATH,
    KORDON_OA_IN_QUERY,
    KORDON_OA_IN_HEADER
} kordon_oa_in_e;


typedef struct {
    kordon_oa_in_e      in;
    char                name[KORDON_OA_NAME_MAX];        /* parameter */
    char                pointer[KORDON_OA_POINTER_MAX];
    char                message[KORDON_OA_MESSAGE_MAX];
} kordon_oa_error_t;


/* the problems of one request: the first KORDON_OA_ERRORS_MAX listed */
typedef struct {
    kordon_oa_error_t   errors[KORDON_OA_ERRORS_MAX];
    unsigned            n;
    unsigned            total;
    unsigned            malformed;  /* the body was not JSON, or absent */
} kordon_oa_report_t;


typedef struct kordon_oa_doc_s     kordon_oa_doc_t;
typedef struct kordon_oa_path_s    kordon_oa_path_t;
typedef struct kordon_oa_op_s      kordon_oa_op_t;
typedef struct kordon_oa_schema_s  kordon_oa_schema_t;


/* the outcome of matching a request path: the values of its parameters */
typedef struct {
    const kordon_oa_path_t  *path;
    const char              *value[KORDON_OA_SEGMENTS_MAX];
    size_t                   len[KORDON_OA_SEGMENTS_MAX];
} kordon_oa_match_t;


/* a request header by name (case-insensitive); NULL when absent */
typedef const char *(*kordon_oa_header_pt)(void *data, const char *name,
    size_t *len);


/*
 * Compiles the JSON text of an OpenAPI 3.1 document.  Returns NULL on any
 * problem, with err->pointer naming the place in the document ("" for the
 * text as a whole) and err->message the problem.
 */
kordon_oa_doc_t *kordon_oa_load(const char *text, size_t len,
    kordon_oa_error_t *err);
void kordon_oa_free(kordon_oa_doc_t *doc);

/* how many path templates and operations the document holds */
size_t kordon_oa_paths(const kordon_oa_doc_t *doc);
size_t kordon_oa_operations(const kordon_oa_doc_t *doc);

/*
 * The path template matching a request path (percent-decoded, without
 * the query string); literal segments win over parameters.  NULL when no
 * template matches; m then holds nothing useful.
 */
const kordon_oa_path_t *kordon_oa_match(const kordon_oa_doc_t *doc,
    const char *path, size_t len, kordon_oa_match_t *m);
const char *kordon_oa_template(const kordon_oa_path_t *path);

/* the i-th path of the document, i < kordon_oa_paths() */
const kordon_oa_path_t *kordon_oa_path(const kordon_oa_doc_t *doc,
    size_t i);

/*
 * The operation of a path for a method (upper case, as sent); HEAD falls
 * back to GET.  NULL: the method is not allowed, and kordon_oa_allow()
 * writes the allowed ones ("GET, HEAD, POST") into buf, NUL-terminated,
 * returning their length.
 */
const kordon_oa_op_t *kordon_oa_operation(const kordon_oa_path_t *path,
    const char *method, size_t len);
size_t kordon_oa_allow(const kordon_oa_path_t *path, char *buf,
    size_t size);

/*
 * The media types an operation takes, ", "-separated, NUL-terminated in
 * buf (cut at a whole type when buf is short); returns their length.
 */
size_t kordon_oa_media_types(const kordon_oa_op_t *op, char *buf,
    size_t size);

/* what an operation takes as a body */
int kordon_oa_has_body(const kordon_oa_op_t *op);
int kordon_oa_body_required(const kordon_oa_op_t *op);
size_t kordon_oa_body_max(const kordon_oa_op_t *op);
/* 1 if the Content-Type value names a media type the operation takes */
int kordon_oa_media_type_ok(const kordon_oa_op_t *op, const char *type,
    size_t len);

void kordon_oa_report_init(kordon_oa_report_t *report);

/*
 * Validates the path parameters of m, the query string (raw, without
 * "?") and the header parameters of op.  Returns the number of problems
 * added to the report (0: valid).
 */
unsigned kordon_oa_check_params(kordon_oa_doc_t *doc,
    const kordon_oa_op_t *op, const kordon_oa_match_t *m, const char *query,
    size_t query_len, kordon_oa_header_pt header, void *data,
    kordon_oa_report_t *report);

/*
 * Parses a JSON body (UTF-8, no duplicate keys, at most
 * KORDON_OA_DEPTH_MAX deep) and validates it against the operation's
 * schema.  Returns the number of problems added (0: valid).
 */
/*
 * The JSON of a body as json_loadb() would read it, for the plain JSON
 * it takes (see kordon_openapi_core.c); NULL when it does not, and then
 * only json_loadb() can say.
 */
json_t *kordon_oa_parse_fast(const char *text, size_t len);

unsigned kordon_oa_check_body(kordon_oa_doc_t *doc, const kordon_oa_op_t *op,
    const char *body, size_t len, kordon_oa_report_t *report);

/* the name of a parameter location: "body", "path", "query", "header" */
const char *kordon_oa_in_name(kordon_oa_in_e in);


#endif /* _KORDON_OPENAPI_CORE_H_INCLUDED_ */
