
/*
 * Kordon edge: an OpenAPI 3.1 document, compiled for validating requests.
 *
 * The document's "paths" become a table of templates split into
 * segments ("/v1/accounts/{id}" is "v1", "accounts", a parameter); a
 * request path matches the template with the same number of segments
 * whose literal segments all equal the request's, the one with the most
 * literal segments winning, as OpenAPI asks.  Each template holds one
 * operation per method with its parameters (path-level ones merged in,
 * each with a compiled schema) and its request body: the media types it
 * takes, the schema of its JSON media type, and a size limit
 * (x-kordon-max-body-size, default KORDON_OA_BODY_MAX).
 *
 * Parameters arrive as text; a value becomes the JSON value its schema
 * asks for (an integer if the schema takes integers and the text is one)
 * before the schema validates it, so "limit=abc" against an integer
 * schema is reported as "must be integer".  Only scalar parameters in
 * path, query and header are supported; the compiler refuses the rest.
 *
 * The values a check parses (the body, a parameter) take their memory
 * from a bump arena, not malloc(): jansson's allocator is switched to
 * kordon_oa_arena_alloc() for the length of kordon_oa_check_body() and
 * kordon_oa_check_params() and back after, every value is freed before
 * that, and the arena is reset (a body past KORDON_OA_ARENA_SIZE goes on
 * in the allocator jansson had).  A JSON body of a few hundred bytes
 * makes some forty allocations and as many frees; in the arena they cost
 * a pointer bump each and nothing, 5,000 instructions less per request.
 * So both checks are not reentrant: one thread at a time, as in an nginx
 * worker.
 *
 * A body is first read by kordon_oa_parse_fast(), which builds the same
 * jansson values as json_loadb() for the plain JSON requests are made
 * of (ASCII strings without escapes, integers of up to 18 digits, true,
 * false, null, no duplicate keys, shallow) in one pass over the bytes,
 * and gives up at the first thing outside that: the body then goes to
 * json_loadb(), whose answer (and error messages) stand.  jansson's
 * lexer reads a byte at a time through a UTF-8 checking stream and a
 * growing buffer: 23,000 instructions for a 150-byte transfer, against
 * some 5,000 here.
 */


#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kordon_openapi_schema_core.h"


#define KORDON_OA_METHODS     8
/* a query parameter's name and value, decoded, are cut at this size */
#define KORDON_OA_QUERY_MAX   4096
/* the nesting kordon_oa_parse_fast() takes; deeper goes to jansson */
#define KORDON_OA_FAST_DEPTH  32
/* the digits of an integer it takes: no overflow below 10^18 */
#define KORDON_OA_FAST_DIGITS 18
/* jansson's memory for one check; past it, jansson's own allocator */
#define KORDON_OA_ARENA_SIZE  (64 * 1024)
#define KORDON_OA_ARENA_ALIGN 16


typedef struct {
    json_malloc_t        malloc_fn;    /* jansson's before the check */
    json_free_t          free_fn;
} kordon_oa_arena_saved_t;


static unsigned char  kordon_oa_arena[KORDON_OA_ARENA_SIZE]
                          __attribute__((aligned(KORDON_OA_ARENA_ALIGN)));
static size_t         kordon_oa_arena_used;
/* the allocator the arena stands in for, which takes over past it */
static json_malloc_t  kordon_oa_arena_next_malloc = malloc;
static json_free_t    kordon_oa_arena_next_free = free;


typedef struct {
    const char          *name;
    kordon_oa_in_e       in;
    unsigned             required:1;
    size_t               segment;      /* path parameters: which one */
    kordon_oa_schema_t  *schema;
} kordon_oa_param_t;


struct kordon_oa_op_s {
    kordon_oa_param_t    params[KORDON_OA_PARAMS_MAX];
    size_t               nparams;
    unsigned             has_body:1;
    unsigned             body_required:1;
    const char         **media;
    size_t               nmedia;
    kordon_oa_schema_t  *body_schema;  /* NULL: the body is not JSON */
    size_t               body_max;
};


struct kordon_oa_path_s {
    const char          *template;
    const char          *seg[KORDON_OA_SEGMENTS_MAX];
    size_t               seglen[KORDON_OA_SEGMENTS_MAX];
    unsigned char        param[KORDON_OA_SEGMENTS_MAX];
    size_t               nseg;
    size_t               literals;
    kordon_oa_op_t      *ops[KORDON_OA_METHODS];
};


struct kordon_oa_doc_s {
    kordon_oa_arena_t    arena;
    kordon_oa_path_t   **paths;
    size_t               npaths;
    size_t               nops;
};


/* the methods in the order an Allow header lists them */
static const char  *kordon_oa_methods[KORDON_OA_METHODS] = {
    "get", "head", "post", "put", "patch", "delete", "options", "trace"
};

static const char  *kordon_oa_methods_uc[KORDON_OA_METHODS] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"
};

static const char  *kordon_oa_path_skip[] = {
    "summary", "description", "servers", NULL
};

static const char  *kordon_oa_op_skip[] = {
    "summary", "description", "operationId", "tags", "security",
    "deprecated", "responses", "servers", "externalDocs", "callbacks", NULL
};


static int kordon_oa_compile_path(kordon_oa_doc_t *doc, const char *key,
    json_t *node, const char *ptr);
static kordon_oa_op_t *kordon_oa_new_op(kordon_oa_doc_t *doc,
    kordon_oa_path_t *path, json_t *shared, json_t *node, const char *ptr,
    const char *key);
static int kordon_oa_split_template(kordon_oa_arena_t *a,
    kordon_oa_path_t *p, const char *ptr);
static int kordon_oa_compile_op(kordon_oa_doc_t *doc, kordon_oa_path_t *p,
    kordon_oa_op_t *op, json_t *node, const char *ptr);
static int kordon_oa_compile_params(kordon_oa_arena_t *a,
    kordon_oa_path_t *p, kordon_oa_op_t *op, json_t *list, const char *ptr);
static int kordon_oa_compile_param(kordon_oa_arena_t *a,
    kordon_oa_path_t *p, kordon_oa_param_t *param, json_t *node,
    const char *ptr);
static int kordon_oa_param_in(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    kordon_oa_param_t *param, const char *in, const char *ptr);
static int kordon_oa_check_template(kordon_oa_arena_t *a,
    kordon_oa_path_t *p, kordon_oa_op_t *op, const char *ptr);
static int kordon_oa_compile_body(kordon_oa_arena_t *a, kordon_oa_op_t *op,
    json_t *node, const char *ptr);
static json_t *kordon_oa_deref(kordon_oa_arena_t *a, json_t *node,
    const char **ptr);
static int kordon_oa_skipped(const char *key, const char **names);
static json_t *kordon_oa_fast_value(const char **pp, const char *end,
    unsigned depth);
static json_t *kordon_oa_fast_object(const char **pp, const char *end,
    unsigned depth);
static json_t *kordon_oa_fast_array(const char **pp, const char *end,
    unsigned depth);
static int kordon_oa_fast_string(const char **pp, const char *end,
    const char **s, size_t *len);
static json_t *kordon_oa_fast_integer(const char **pp, const char *end);
static void *kordon_oa_arena_alloc(size_t size);
static void kordon_oa_arena_free(void *p);
static void kordon_oa_arena_enter(kordon_oa_arena_saved_t *saved);
static void kordon_oa_arena_leave(kordon_oa_arena_saved_t *saved);
static unsigned kordon_oa_check_params_in(kordon_oa_doc_t *doc,
    const kordon_oa_op_t *op, const kordon_oa_match_t *m, const char *query,
    size_t query_len, kordon_oa_header_pt header, void *data,
    kordon_oa_report_t *report);
static unsigned kordon_oa_check_body_in(kordon_oa_doc_t *doc,
    const kordon_oa_op_t *op, const char *body, size_t len,
    kordon_oa_report_t *report);
static unsigned kordon_oa_check_value(kordon_oa_doc_t *doc,
    const kordon_oa_param_t *param, const char *value, size_t len,
    kordon_oa_report_t *report);
static json_t *kordon_oa_param_value(const kordon_oa_schema_t *s,
    const char *value, size_t len);
static int kordon_oa_query_get(const char *query, size_t len,
    const char *name, char *value, size_t *vlen);
static size_t kordon_oa_unescape(char *dst, size_t size, const char *src,
    size_t len);
static void kordon_oa_report_in(kordon_oa_report_t *report,
    kordon_oa_in_e in, const char *name, const char *message);
static size_t kordon_oa_depth(json_t *value, size_t level);


kordon_oa_doc_t *
kordon_oa_load(const char *text, size_t len, kordon_oa_error_t *err)
{
    char              *ptr;
    json_t            *root, *paths, *node;
    const char        *key, *version;
    json_error_t       jerr;
    kordon_oa_doc_t   *doc;
    kordon_oa_arena_t *a;

    memset(err, 0, sizeof(kordon_oa_error_t));

    doc = calloc(1, sizeof(kordon_oa_doc_t));
    if (doc == NULL) {
        snprintf(err->message, sizeof(err->message), "out of memory");
        return NULL;
    }

    a = &doc->arena;
    a->err = err;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        kordon_oa_fail(a, "", "not a JSON document: line %d: %s",
                       jerr.line, jerr.text);
        goto failed;
    }

    a->root = root;

    if (kordon_oa_match_init(a) != 0) {
        kordon_oa_fail(a, "", "out of memory");
        goto failed;
    }

    version = json_string_value(json_object_get(root, "openapi"));
    if (version == NULL || strncmp(version, "3.1.", 4) != 0) {
        kordon_oa_fail(a, "/openapi", "must be an OpenAPI 3.1.x version");
        goto failed;
    }

    paths = json_object_get(root, "paths");
    if (!json_is_object(paths) || json_object_size(paths) == 0) {
        kordon_oa_fail(a, "/paths", "must be an object of paths");
        goto failed;
    }

    doc->paths = kordon_oa_alloc(a, json_object_size(paths)
                                    * sizeof(kordon_oa_path_t *));
    if (doc->paths == NULL) {
        kordon_oa_fail(a, "/paths", "out of memory");
        goto failed;
    }

    json_object_foreach(paths, key, node) {
        ptr = kordon_oa_ptr_join(a, "/paths", key);
        if (ptr == NULL || kordon_oa_compile_path(doc, key, node, ptr) != 0) {
            goto failed;
        }
    }

    return doc;

failed:

    kordon_oa_free(doc);
    return NULL;
}


void
kordon_oa_free(kordon_oa_doc_t *doc)
{
    if (doc == NULL) {
        return;
    }

    kordon_oa_schemas_free(&doc->arena);
    json_decref(doc->arena.root);
    free(doc);
}


size_t
kordon_oa_paths(const kordon_oa_doc_t *doc)
{
    return doc->npaths;
}


const kordon_oa_path_t *
kordon_oa_path(const kordon_oa_doc_t *doc, size_t i)
{
    assert(i < doc->npaths);

    return doc->paths[i];
}


size_t
kordon_oa_operations(const kordon_oa_doc_t *doc)
{
    return doc->nops;
}


static int
kordon_oa_compile_path(kordon_oa_doc_t *doc, const char *key, json_t *node,
    const char *ptr)
{
    char               *p;
    size_t              i;
    json_t             *v, *shared;
    const char         *k;
    kordon_oa_path_t   *path;
    kordon_oa_arena_t  *a;

    a = &doc->arena;

    if (!json_is_object(node)) {
        return kordon_oa_fail(a, ptr, "a path item must be an object");
    }


    path = kordon_oa_alloc(a, sizeof(kordon_oa_path_t));
    if (path == NULL) {
        return kordon_oa_fail(a, ptr, "out of memory");
    }

    path->template = key;

    if (kordon_oa_split_template(a, path, ptr) != 0) {
        return -1;
    }

    shared = json_object_get(node, "parameters");

    json_object_foreach(node, k, v) {
        for (i = 0; i < KORDON_OA_METHODS; i++) {
            if (strcmp(k, kordon_oa_methods[i]) == 0) {
                break;
            }
        }

        if (i == KORDON_OA_METHODS) {
            if (strcmp(k, "parameters") == 0 || strncmp(k, "x-", 2) == 0
                || kordon_oa_skipped(k, kordon_oa_path_skip))
            {
                continue;
            }

            p = kordon_oa_ptr_join(a, ptr, k);
            return kordon_oa_fail(a, p ? p : ptr,
                                  "unsupported path item member \"%s\"", k);
        }

        path->ops[i] = kordon_oa_new_op(doc, path, shared, v, ptr, k);
        if (path->ops[i] == NULL) {
            return -1;
        }

        doc->nops++;
    }

    doc->paths[doc->npaths++] = path;

    return 0;
}


/*
 * The operation of method key at ptr, with the path item's shared
 * parameters first; NULL (a->err set) when it cannot be compiled.
 */
static kordon_oa_op_t *
kordon_oa_new_op(kordon_oa_doc_t *doc, kordon_oa_path_t *path,
    json_t *shared, json_t *node, const char *ptr, const char *key)
{
    char               *p, *sp;
    kordon_oa_op_t     *op;
    kordon_oa_arena_t  *a;

    a = &doc->arena;

    p = kordon_oa_ptr_join(a, ptr, key);
    sp = kordon_oa_ptr_join(a, ptr, "parameters");
    op = kordon_oa_alloc(a, sizeof(kordon_oa_op_t));

    if (p == NULL || sp == NULL || op == NULL) {
        kordon_oa_fail(a, ptr, "out of memory");
        return NULL;
    }

    if (shared != NULL
        && kordon_oa_compile_params(a, path, op, shared, sp) != 0)
    {
        return NULL;
    }

    if (kordon_oa_compile_op(doc, path, op, node, p) != 0) {
        return NULL;
    }

    return op;
}


/* "/v1/accounts/{id}" into segments; a parameter is a whole segment */
static int
kordon_oa_split_template(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    const char *ptr)
{
    size_t       n;
    const char  *s, *end;

    s = p->template;

    if (s[0] != '/') {
        return kordon_oa_fail(a, ptr, "a path must start with \"/\"");
    }

    for (s++, n = 0; ; n++) {
        if (n == KORDON_OA_SEGMENTS_MAX) {
            return kordon_oa_fail(a, ptr, "a path has at most %d segments",
                                  KORDON_OA_SEGMENTS_MAX);
        }

        end = strchr(s, '/');
        if (end == NULL) {
            end = s + strlen(s);
        }

        p->seg[n] = s;
        p->seglen[n] = end - s;

        if (end - s >= 2 && s[0] == '{' && end[-1] == '}') {
            p->param[n] = 1;
            p->seg[n] = s + 1;
            p->seglen[n] = end - s - 2;

        } else {
            p->literals++;
        }

        if (memchr(p->seg[n], '{', p->seglen[n]) != NULL
            || memchr(p->seg[n], '}', p->seglen[n]) != NULL)
        {
            return kordon_oa_fail(a, ptr, "a path parameter must be a whole "
                                  "segment");
        }

        if (*end == '\0') {
            p->nseg = n + 1;
            return 0;
        }

        s = end + 1;
    }
}


static int
kordon_oa_compile_op(kordon_oa_doc_t *doc, kordon_oa_path_t *p,
    kordon_oa_op_t *op, json_t *node, const char *ptr)
{
    char               *sub;
    json_t             *v;
    const char         *k;
    kordon_oa_arena_t  *a;

    a = &doc->arena;
    op->body_max = KORDON_OA_BODY_MAX;

    if (!json_is_object(node)) {
        return kordon_oa_fail(a, ptr, "an operation must be an object");
    }

    json_object_foreach(node, k, v) {
        sub = kordon_oa_ptr_join(a, ptr, k);
        if (sub == NULL) {
            return -1;
        }

        if (strcmp(k, "parameters") == 0) {
            if (kordon_oa_compile_params(a, p, op, v, sub) != 0) {
                return -1;
            }

        } else if (strcmp(k, "requestBody") == 0) {
            if (kordon_oa_compile_body(a, op, v, sub) != 0) {
                return -1;
            }

        } else if (strcmp(k, "x-kordon-max-body-size") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                return kordon_oa_fail(a, sub, "must be a positive integer "
                                      "(bytes)");
            }

            op->body_max = (size_t) json_integer_value(v);

        } else if (strncmp(k, "x-", 2) != 0
                   && !kordon_oa_skipped(k, kordon_oa_op_skip))
        {
            return kordon_oa_fail(a, sub, "unsupported operation member "
                                  "\"%s\"", k);
        }
    }

    return kordon_oa_check_template(a, p, op, ptr);
}


/*
 * Adds the parameters of list to op; one with the name and location of a
 * parameter already there (a path-level one) replaces it.
 */
static int
kordon_oa_compile_params(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    kordon_oa_op_t *op, json_t *list, const char *ptr)
{
    char               *sub, index[24];
    size_t              i, j;
    json_t             *node;
    kordon_oa_param_t   param;

    if (!json_is_array(list)) {
        return kordon_oa_fail(a, ptr, "parameters must be an array");
    }

    json_array_foreach(list, i, node) {
        snprintf(index, sizeof(index), "%zu", i);

        sub = kordon_oa_ptr_join(a, ptr, index);
        if (sub == NULL) {
            return -1;
        }

        memset(&param, 0, sizeof(kordon_oa_param_t));

        if (kordon_oa_compile_param(a, p, &param, node, sub) != 0) {
            return -1;
        }

        for (j = 0; j < op->nparams; j++) {
            if (op->params[j].in == param.in
                && strcasecmp(op->params[j].name, param.name) == 0)
            {
                break;
            }
        }

        if (j == KORDON_OA_PARAMS_MAX) {
            return kordon_oa_fail(a, sub, "an operation has at most %d "
                                  "parameters", KORDON_OA_PARAMS_MAX);
        }

        op->params[j] = param;

        if (j == op->nparams) {
            op->nparams++;
        }
    }

    return 0;
}


static int
kordon_oa_compile_param(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    kordon_oa_param_t *param, json_t *node, const char *ptr)
{
    char        *sub;
    json_t      *schema;
    unsigned     types;
    const char  *in;

    node = kordon_oa_deref(a, node, &ptr);
    if (node == NULL) {
        return -1;
    }

    param->name = json_string_value(json_object_get(node, "name"));
    in = json_string_value(json_object_get(node, "in"));

    if (param->name == NULL || in == NULL) {
        return kordon_oa_fail(a, ptr, "a parameter needs a name and \"in\"");
    }

    param->required = json_is_true(json_object_get(node, "required"));

    if (kordon_oa_param_in(a, p, param, in, ptr) != 0) {
        return -1;
    }

    schema = json_object_get(node, "schema");
    if (schema == NULL) {
        return kordon_oa_fail(a, ptr, "a parameter needs a schema "
                              "(\"content\" is not supported)");
    }

    sub = kordon_oa_ptr_join(a, ptr, "schema");
    if (sub == NULL) {
        return -1;
    }

    param->schema = kordon_oa_schema_compile(a, schema, sub);
    if (param->schema == NULL) {
        return -1;
    }

    types = kordon_oa_schema_types(param->schema);
    if (types & (KORDON_OA_T_OBJECT | KORDON_OA_T_ARRAY)) {
        return kordon_oa_fail(a, sub, "only scalar parameters are "
                              "supported");
    }

    return 0;
}


/* where a parameter is; a path parameter's segment in the template */
static int
kordon_oa_param_in(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    kordon_oa_param_t *param, const char *in, const char *ptr)
{
    size_t  i;

    if (strcmp(in, "query") == 0) {
        param->in = KORDON_OA_IN_QUERY;
        return 0;
    }

    if (strcmp(in, "header") == 0) {
        param->in = KORDON_OA_IN_HEADER;
        return 0;
    }

    if (strcmp(in, "path") != 0) {
        return kordon_oa_fail(a, ptr, "parameters in \"%s\" are not "
                              "supported", in);
    }

    param->in = KORDON_OA_IN_PATH;

    for (i = 0; i < p->nseg; i++) {
        if (p->param[i] && p->seglen[i] == strlen(param->name)
            && strncmp(p->seg[i], param->name, p->seglen[i]) == 0)
        {
            break;
        }
    }

    if (i == p->nseg || !param->required) {
        return kordon_oa_fail(a, ptr, "path parameter \"%s\" must be "
                              "required and in the template", param->name);
    }

    param->segment = i;

    return 0;
}


/* every parameter segment of the template is declared in "path" */
static int
kordon_oa_check_template(kordon_oa_arena_t *a, kordon_oa_path_t *p,
    kordon_oa_op_t *op, const char *ptr)
{
    size_t  i, j;

    for (i = 0; i < p->nseg; i++) {
        if (!p->param[i]) {
            continue;
        }

        for (j = 0; j < op->nparams; j++) {
            if (op->params[j].in == KORDON_OA_IN_PATH
                && op->params[j].segment == i)
            {
                break;
            }
        }

        if (j == op->nparams) {
            return kordon_oa_fail(a, ptr, "path parameter \"%.*s\" is not "
                                  "declared", (int) p->seglen[i], p->seg[i]);
        }
    }

    return 0;
}


static int
kordon_oa_compile_body(kordon_oa_arena_t *a, kordon_oa_op_t *op,
    json_t *node, const char *ptr)
{
    char        *sub, *msub, *lower;
    size_t       i;
    json_t      *content, *media, *schema;
    const char  *type;

    node = kordon_oa_deref(a, node, &ptr);
    if (node == NULL) {
        return -1;
    }

    content = json_object_get(node, "content");
    if (!json_is_object(content) || json_object_size(content) == 0) {
        return kordon_oa_fail(a, ptr, "a request body needs content");
    }

    sub = kordon_oa_ptr_join(a, ptr, "content");
    op->media = kordon_oa_alloc(a, json_object_size(content) * sizeof(char *));
    if (sub == NULL || op->media == NULL) {
        return kordon_oa_fail(a, ptr, "out of memory");
    }

    op->has_body = 1;
    op->body_required = json_is_true(json_object_get(node, "required"));

    json_object_foreach(content, type, media) {
        lower = kordon_oa_strdup(a, type);
        msub = kordon_oa_ptr_join(a, sub, type);
        if (lower == NULL || msub == NULL) {
            return kordon_oa_fail(a, sub, "out of memory");
        }

        for (i = 0; lower[i] != '\0'; i++) {
            lower[i] = tolower((unsigned char) lower[i]);
        }

        op->media[op->nmedia++] = lower;

        schema = json_object_get(media, "schema");
        i = strlen(lower);

        if (schema == NULL
            || !(strcmp(lower, "application/json") == 0
                 || (i > 5 && strcmp(lower + i - 5, "+json") == 0)))
        {
            continue;
        }

        if (op->body_schema != NULL) {
            return kordon_oa_fail(a, msub, "one JSON media type per "
                                  "request body");
        }

        msub = kordon_oa_ptr_join(a, msub, "schema");
        if (msub == NULL) {
            return -1;
        }

        op->body_schema = kordon_oa_schema_compile(a, schema, msub);
        if (op->body_schema == NULL) {
            return -1;
        }
    }

    return 0;
}


/*
 * A parameter or request body given as {"$ref": "#/components/..."}: the
 * node it names, *ptr moved there.  NULL (a->err set) when it names
 * nothing.
 */
static json_t *
kordon_oa_deref(kordon_oa_arena_t *a, json_t *node, const char **ptr)
{
    json_t      *target;
    const char  *ref;

    if (!json_is_object(node)) {
        kordon_oa_fail(a, *ptr, "must be an object");
        return NULL;
    }

    ref = json_string_value(json_object_get(node, "$ref"));
    if (ref == NULL) {
        return node;
    }

    target = kordon_oa_resolve(a->root, ref);
    if (!json_is_object(target) || json_object_get(target, "$ref") != NULL) {
        kordon_oa_fail(a, *ptr, "$ref \"%s\" names no object in the "
                       "document", ref);
        return NULL;
    }

    *ptr = ref + 1;

    return target;
}


static int
kordon_oa_skipped(const char *key, const char **names)
{
    size_t  i;

    for (i = 0; names[i] != NULL; i++) {
        if (strcmp(key, names[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/* requests */

const kordon_oa_path_t *
kordon_oa_match(const kordon_oa_doc_t *doc, const char *path, size_t len,
    kordon_oa_match_t *m)
{
    size_t                   i, j, n, k;
    const char              *s, *end, *seg[KORDON_OA_SEGMENTS_MAX];
    size_t                   seglen[KORDON_OA_SEGMENTS_MAX];
    const kordon_oa_path_t  *p, *best;

    if (len == 0 || path[0] != '/') {
        return NULL;
    }

    end = path + len;

    for (s = path + 1, n = 0; ; n++) {
        const char  *e;

        if (n == KORDON_OA_SEGMENTS_MAX) {
            return NULL;
        }

        e = memchr(s, '/', end - s);
        if (e == NULL) {
            e = end;
        }

        seg[n] = s;
        seglen[n] = e - s;

        if (e == end) {
            n++;
            break;
        }

        s = e + 1;
    }

    best = NULL;

    for (i = 0; i < doc->npaths; i++) {
        p = doc->paths[i];

        if (p->nseg != n || (best != NULL && p->literals <= best->literals)) {
            continue;
        }

        for (j = 0; j < n; j++) {
            if (p->param[j] ? seglen[j] == 0
                            : (seglen[j] != p->seglen[j]
                               || memcmp(seg[j], p->seg[j], seglen[j]) != 0))
            {
                break;
            }
        }

        if (j == n) {
            best = p;
        }
    }

    if (best != NULL) {
        for (k = 0; k < n; k++) {
            m->value[k] = seg[k];
            m->len[k] = seglen[k];
        }

        m->path = best;
    }

    return best;
}


const char *
kordon_oa_template(const kordon_oa_path_t *path)
{
    return path->template;
}


const kordon_oa_op_t *
kordon_oa_operation(const kordon_oa_path_t *path, const char *method,
    size_t len)
{
    size_t  i;

    for (i = 0; i < KORDON_OA_METHODS; i++) {
        if (strlen(kordon_oa_methods_uc[i]) == len
            && memcmp(kordon_oa_methods_uc[i], method, len) == 0)
        {
            break;
        }
    }

    if (i == KORDON_OA_METHODS) {
        return NULL;
    }

    if (path->ops[i] == NULL && i == 1) {
        return path->ops[0];            /* HEAD is GET without a body */
    }

    return path->ops[i];
}


size_t
kordon_oa_allow(const kordon_oa_path_t *path, char *buf, size_t size)
{
    int     n;
    size_t  i, len;

    len = 0;
    buf[0] = '\0';

    for (i = 0; i < KORDON_OA_METHODS; i++) {
        if (path->ops[i] == NULL && !(i == 1 && path->ops[0] != NULL)) {
            continue;
        }

        n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                     kordon_oa_methods_uc[i]);
        if (n < 0 || (size_t) n >= size - len) {
            break;
        }

        len += n;
    }

    return len;
}


size_t
kordon_oa_media_types(const kordon_oa_op_t *op, char *buf, size_t size)
{
    int     n;
    size_t  i, len;

    len = 0;
    buf[0] = '\0';

    for (i = 0; i < op->nmedia; i++) {
        n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                     op->media[i]);
        if (n < 0 || (size_t) n >= size - len) {
            buf[len] = '\0';
            break;
        }

        len += n;
    }

    return len;
}


int
kordon_oa_has_body(const kordon_oa_op_t *op)
{
    return op->has_body;
}


int
kordon_oa_body_required(const kordon_oa_op_t *op)
{
    return op->body_required;
}


size_t
kordon_oa_body_max(const kordon_oa_op_t *op)
{
    return op->body_max;
}


int
kordon_oa_media_type_ok(const kordon_oa_op_t *op, const char *type,
    size_t len)
{
    size_t       i, n;
    const char  *m, *semi;

    semi = memchr(type, ';', len);
    if (semi != NULL) {
        len = semi - type;
    }

    while (len > 0 && (type[0] == ' ' || type[0] == '\t')) {
        type++;
        len--;
    }

    while (len > 0 && (type[len - 1] == ' ' || type[len - 1] == '\t')) {
        len--;
    }

    for (i = 0; i < op->nmedia; i++) {
        m = op->media[i];
        n = strlen(m);

        if (strcmp(m, "*/*") == 0
            || (n == len && strncasecmp(m, type, len) == 0)
            || (n > 2 && strcmp(m + n - 2, "/*") == 0 && len > n - 1
                && strncasecmp(m, type, n - 1) == 0))
        {
            return 1;
        }
    }

    return 0;
}


void
kordon_oa_report_init(kordon_oa_report_t *report)
{
    report->n = 0;
    report->total = 0;
    report->malformed = 0;
}


const char *
kordon_oa_in_name(kordon_oa_in_e in)
{
    static const char  *names[] = { "body", "path", "query", "header" };

    return names[in];
}


/*
 * The fast reader (see the top of the file).  Each function takes *pp
 * at the start of its item and leaves it past the item; NULL (or -1)
 * means "not taken here", never "not JSON".
 */

#define kordon_oa_fast_ws(p, end)                                             \
    while ((p) < (end)                                                        \
           && (*(p) == ' ' || *(p) == '\n' || *(p) == '\r' || *(p) == '\t')) \
    {                                                                         \
        (p)++;                                                                \
    }


json_t *
kordon_oa_parse_fast(const char *text, size_t len)
{
    json_t      *v;
    const char  *p, *end;

    p = text;
    end = text + len;

    kordon_oa_fast_ws(p, end);

    v = kordon_oa_fast_value(&p, end, 0);
    if (v == NULL) {
        return NULL;
    }

    kordon_oa_fast_ws(p, end);

    if (p != end) {
        json_decref(v);
        return NULL;
    }

    return v;
}


static json_t *
kordon_oa_fast_value(const char **pp, const char *end, unsigned depth)
{
    size_t       len;
    const char  *p, *s;

    p = *pp;

    if (p == end) {
        return NULL;
    }

    switch (*p) {

    case '{':
        return kordon_oa_fast_object(pp, end, depth + 1);

    case '[':
        return kordon_oa_fast_array(pp, end, depth + 1);

    case '"':
        if (kordon_oa_fast_string(pp, end, &s, &len) != 0) {
            return NULL;
        }

        return json_stringn_nocheck(s, len);

    case 't':
        if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            *pp = p + 4;
            return json_true();
        }

        return NULL;

    case 'f':
        if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            *pp = p + 5;
            return json_false();
        }

        return NULL;

    case 'n':
        if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            *pp = p + 4;
            return json_null();
        }

        return NULL;

    default:
        return kordon_oa_fast_integer(pp, end);
    }
}


static json_t *
kordon_oa_fast_object(const char **pp, const char *end, unsigned depth)
{
    size_t       klen;
    json_t      *obj, *v;
    const char  *p, *key;

    if (depth > KORDON_OA_FAST_DEPTH) {
        return NULL;
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    p = *pp + 1;
    kordon_oa_fast_ws(p, end);

    if (p < end && *p == '}') {
        *pp = p + 1;
        return obj;
    }

    for ( ;; ) {
        if (kordon_oa_fast_string(&p, end, &key, &klen) != 0) {
            break;
        }

        kordon_oa_fast_ws(p, end);

        if (p == end || *p != ':') {
            break;
        }

        p++;
        kordon_oa_fast_ws(p, end);

        /* a duplicate is an error: jansson's to report */

        if (json_object_getn(obj, key, klen) != NULL) {
            break;
        }

        v = kordon_oa_fast_value(&p, end, depth);
        if (v == NULL
            || json_object_setn_new_nocheck(obj, key, klen, v) != 0)
        {
            break;
        }

        kordon_oa_fast_ws(p, end);

        if (p < end && *p == ',') {
            p++;
            kordon_oa_fast_ws(p, end);
            continue;
        }

        if (p < end && *p == '}') {
            *pp = p + 1;
            return obj;
        }

        break;
    }

    json_decref(obj);
    return NULL;
}


static json_t *
kordon_oa_fast_array(const char **pp, const char *end, unsigned depth)
{
    json_t      *arr, *v;
    const char  *p;

    if (depth > KORDON_OA_FAST_DEPTH) {
        return NULL;
    }

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    p = *pp + 1;
    kordon_oa_fast_ws(p, end);

    if (p < end && *p == ']') {
        *pp = p + 1;
        return arr;
    }

    for ( ;; ) {
        v = kordon_oa_fast_value(&p, end, depth);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            break;
        }

        kordon_oa_fast_ws(p, end);

        if (p < end && *p == ',') {
            p++;
            kordon_oa_fast_ws(p, end);
            continue;
        }

        if (p < end && *p == ']') {
            *pp = p + 1;
            return arr;
        }

        break;
    }

    json_decref(arr);
    return NULL;
}


/*
 * A string of printable ASCII without escapes, in place: 0 and its
 * bytes, or -1 for anything else (an escape, a control character, a
 * byte past 0x7f, no closing quote).
 */

static int
kordon_oa_fast_string(const char **pp, const char *end, const char **s,
    size_t *len)
{
    const unsigned char  *p, *e;

    p = (const unsigned char *) *pp;
    e = (const unsigned char *) end;

    if (p == e || *p != '"') {
        return -1;
    }

    *s = (const char *) ++p;

    while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
        p++;
    }

    if (p == e || *p != '"') {
        return -1;
    }

    *len = (const char *) p - *s;
    *pp = (const char *) p + 1;

    return 0;
}


/*
 * An integer as jansson reads one: "-"?, then "0" or a digit 1-9 and
 * more digits; a fraction, an exponent, a leading zero or more than
 * KORDON_OA_FAST_DIGITS digits is left to jansson.
 */

static json_t *
kordon_oa_fast_integer(const char **pp, const char *end)
{
    int          neg;
    size_t       n;
    const char  *p;
    json_int_t   v;

    p = *pp;
    neg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }

    if (p == end || *p < '0' || *p > '9') {
        return NULL;
    }

    v = 0;

    for (n = 0; p < end && *p >= '0' && *p <= '9'; n++, p++) {
        if (n == KORDON_OA_FAST_DIGITS) {
            return NULL;
        }

        v = v * 10 + (*p - '0');
    }

    if ((n > 1 && p[-(ptrdiff_t) n] == '0')
        || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
    {
        return NULL;
    }

    *pp = p;

    return json_integer(neg ? -v : v);
}


/* jansson's allocator during a check: the arena while it lasts */

static void *
kordon_oa_arena_alloc(size_t size)
{
    size_t          n;
    unsigned char  *p;

    n = (size + KORDON_OA_ARENA_ALIGN - 1)
        & ~((size_t) KORDON_OA_ARENA_ALIGN - 1);

    if (n < size || n > KORDON_OA_ARENA_SIZE - kordon_oa_arena_used) {
        return kordon_oa_arena_next_malloc(size);
    }

    p = kordon_oa_arena + kordon_oa_arena_used;
    kordon_oa_arena_used += n;

    return p;
}


/* arena memory goes with the reset; the rest goes back where it came from */

static void
kordon_oa_arena_free(void *p)
{
    if ((unsigned char *) p >= kordon_oa_arena
        && (unsigned char *) p < kordon_oa_arena + KORDON_OA_ARENA_SIZE)
    {
        return;
    }

    kordon_oa_arena_next_free(p);
}


static void
kordon_oa_arena_enter(kordon_oa_arena_saved_t *saved)
{
    json_get_alloc_funcs(&saved->malloc_fn, &saved->free_fn);
    kordon_oa_arena_next_malloc = saved->malloc_fn;
    kordon_oa_arena_next_free = saved->free_fn;
    json_set_alloc_funcs(kordon_oa_arena_alloc, kordon_oa_arena_free);
    kordon_oa_arena_used = 0;
}


/* every value of the check is freed by now: nothing points in */

static void
kordon_oa_arena_leave(kordon_oa_arena_saved_t *saved)
{
    json_set_alloc_funcs(saved->malloc_fn, saved->free_fn);
    kordon_oa_arena_used = 0;
}


unsigned
kordon_oa_check_params(kordon_oa_doc_t *doc, const kordon_oa_op_t *op,
    const kordon_oa_match_t *m, const char *query, size_t query_len,
    kordon_oa_header_pt header, void *data, kordon_oa_report_t *report)
{
    unsigned                 n;
    kordon_oa_arena_saved_t  saved;

    if (op->nparams == 0) {
        return 0;
    }

    kordon_oa_arena_enter(&saved);
    n = kordon_oa_check_params_in(doc, op, m, query, query_len, header, data,
                                  report);
    kordon_oa_arena_leave(&saved);

    return n;
}


static unsigned
kordon_oa_check_params_in(kordon_oa_doc_t *doc, const kordon_oa_op_t *op,
    const kordon_oa_match_t *m, const char *query, size_t query_len,
    kordon_oa_header_pt header, void *data, kordon_oa_report_t *report)
{
    int                       found;
    char                      value[KORDON_OA_QUERY_MAX];
    size_t                    i, len;
    unsigned                  n;
    const char               *v;
    const kordon_oa_param_t  *param;

    n = 0;

    for (i = 0; i < op->nparams; i++) {
        param = &op->params[i];

        switch (param->in) {

        case KORDON_OA_IN_PATH:
            v = m->value[param->segment];
            len = m->len[param->segment];
            found = 1;
            break;

        case KORDON_OA_IN_QUERY:
            found = kordon_oa_query_get(query, query_len, param->name, value,
                                        &len);
            v = value;

            if (found > 1) {
                kordon_oa_report_in(report, param->in, param->name,
                                    "must appear once");
                n++;
                continue;
            }

            break;

        default:
            v = header ? header(data, param->name, &len) : NULL;
            found = (v != NULL);
            break;
        }

        if (!found) {
            if (param->required) {
                kordon_oa_report_in(report, param->in, param->name,
                                    "is required");
                n++;
            }

            continue;
        }

        n += kordon_oa_check_value(doc, param, v, len, report);
    }

    return n;
}


static unsigned
kordon_oa_check_value(kordon_oa_doc_t *doc, const kordon_oa_param_t *param,
    const char *value, size_t len, kordon_oa_report_t *report)
{
    json_t            *v;
    unsigned           n;
    kordon_oa_vctx_t   ctx;

    v = kordon_oa_param_value(param->schema, value, len);
    if (v == NULL) {
        kordon_oa_report_in(report, param->in, param->name,
                            "must be valid UTF-8");
        return 1;
    }

    memset(&ctx, 0, sizeof(kordon_oa_vctx_t));
    ctx.report = report;
    ctx.in = param->in;
    ctx.name = param->name;
    ctx.match_data = doc->arena.match_data;
    ctx.match_context = doc->arena.match_context;

    n = kordon_oa_validate(&ctx, param->schema, v);

    json_decref(v);

    return n;
}


/*
 * The JSON value a parameter's text stands for, by what its schema
 * takes: an integer, a number, a boolean, else the string itself.  NULL
 * when the text is not valid UTF-8 (or memory runs out).
 */
static json_t *
kordon_oa_param_value(const kordon_oa_schema_t *s, const char *value,
    size_t len)
{
    char       buf[64], *end;
    double     d;
    unsigned   types;
    long long  i;

    types = kordon_oa_schema_types(s);

    if (len > 0 && len < sizeof(buf)
        && (types & (KORDON_OA_T_INTEGER | KORDON_OA_T_NUMBER))
        && (isdigit((unsigned char) value[0]) || value[0] == '-'))
    {
        memcpy(buf, value, len);
        buf[len] = '\0';
        errno = 0;

        i = strtoll(buf, &end, 10);
        if (*end == '\0' && errno == 0) {
            return json_integer(i);
        }

        if (types & KORDON_OA_T_NUMBER) {
            d = strtod(buf, &end);
            if (*end == '\0' && errno == 0) {
                return json_real(d);
            }
        }
    }

    if (types & KORDON_OA_T_BOOLEAN) {
        if (len == 4 && memcmp(value, "true", 4) == 0) {
            return json_true();
        }

        if (len == 5 && memcmp(value, "false", 5) == 0) {
            return json_false();
        }
    }

    return json_stringn(value, len);
}


/*
 * Finds name in a raw query string (a=1&b=2, percent-encoded, "+" for a
 * space) and decodes its first value into value.  Returns how many times
 * the name occurs.
 */
static int
kordon_oa_query_get(const char *query, size_t len, const char *name,
    char *value, size_t *vlen)
{
    int          found;
    char         key[KORDON_OA_NAME_MAX * 3];
    size_t       klen;
    const char  *p, *end, *amp, *eq;

    found = 0;
    end = query + len;

    for (p = query; p < end; p = amp + 1) {
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);
        if (eq == NULL) {
            eq = amp;
        }

        klen = kordon_oa_unescape(key, sizeof(key), p, eq - p);

        if (klen == strlen(name) && memcmp(key, name, klen) == 0) {
            if (found++ == 0) {
                *vlen = kordon_oa_unescape(value, KORDON_OA_QUERY_MAX,
                                           eq < amp ? eq + 1 : amp,
                                           eq < amp ? amp - eq - 1 : 0);
            }
        }

        if (amp == end) {
            break;
        }
    }

    return found;
}


/* percent-decoding, "+" as a space; stops at size - 1 bytes */
static size_t
kordon_oa_unescape(char *dst, size_t size, const char *src, size_t len)
{
    int     hi, lo;
    size_t  i, n;

    for (i = 0, n = 0; i < len && n + 1 < size; i++) {
        if (src[i] == '+') {
            dst[n++] = ' ';

        } else if (src[i] == '%' && i + 2 < len
                   && isxdigit((unsigned char) src[i + 1])
                   && isxdigit((unsigned char) src[i + 2]))
        {
            hi = isdigit((unsigned char) src[i + 1])
                 ? src[i + 1] - '0' : (tolower(src[i + 1]) - 'a' + 10);
            lo = isdigit((unsigned char) src[i + 2])
                 ? src[i + 2] - '0' : (tolower(src[i + 2]) - 'a' + 10);
            dst[n++] = (char) (hi * 16 + lo);
            i += 2;

        } else {
            dst[n++] = src[i];
        }
    }

    dst[n] = '\0';

    return n;
}


static void
kordon_oa_report_in(kordon_oa_report_t *report, kordon_oa_in_e in,
    const char *name, const char *message)
{
    kordon_oa_error_t  *e;

    report->total++;

    if (report->n >= KORDON_OA_ERRORS_MAX) {
        return;
    }

    e = &report->errors[report->n++];
    e->in = in;
    e->pointer[0] = '\0';
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->message, sizeof(e->message), "%s", message);
}


unsigned
kordon_oa_check_body(kordon_oa_doc_t *doc, const kordon_oa_op_t *op,
    const char *body, size_t len, kordon_oa_report_t *report)
{
    unsigned                 n;
    kordon_oa_arena_saved_t  saved;

    if (len == 0 || op->body_schema == NULL) {
        return kordon_oa_check_body_in(doc, op, body, len, report);
    }

    kordon_oa_arena_enter(&saved);
    n = kordon_oa_check_body_in(doc, op, body, len, report);
    kordon_oa_arena_leave(&saved);

    return n;
}


static unsigned
kordon_oa_check_body_in(kordon_oa_doc_t *doc, const kordon_oa_op_t *op,
    const char *body, size_t len, kordon_oa_report_t *report)
{
    char               msg[KORDON_OA_MESSAGE_MAX];
    json_t            *root;
    unsigned           n;
    const char        *why;
    json_error_t       jerr;
    kordon_oa_vctx_t   ctx;

    if (len == 0) {
        if (op->body_required) {
            kordon_oa_report_in(report, KORDON_OA_IN_BODY, "",
                                "a request body is required");
            report->malformed = 1;
            return 1;
        }

        return 0;
    }

    if (op->body_schema == NULL) {
        return 0;
    }

    root = kordon_oa_parse_fast(body, len);

    if (root == NULL) {
        root = json_loadb(body, len,
                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    }

    if (root == NULL) {
        switch (json_error_code(&jerr)) {
        case json_error_invalid_utf8:     why = "invalid UTF-8"; break;
        case json_error_duplicate_key:    why = "a duplicate key"; break;
        case json_error_numeric_overflow: why = "a number out of range";
                                          break;
        case json_error_stack_overflow:   why = "nesting too deep"; break;
        case json_error_null_character:   why = "a NUL character"; break;
        case json_error_premature_end_of_input:
                                          why = "an early end"; break;
        case json_error_end_of_input_expected:
                                          why = "text after the value";
                                          break;
        default:                          why = "a syntax error"; break;
        }

        snprintf(msg, sizeof(msg), "is not valid JSON: %s at byte %d", why,
                 jerr.position);
        kordon_oa_report_in(report, KORDON_OA_IN_BODY, "", msg);
        report->malformed = 1;
        return 1;
    }

    if (kordon_oa_depth(root, 1) > KORDON_OA_DEPTH_MAX) {
        json_decref(root);
        snprintf(msg, sizeof(msg), "nests deeper than %d levels",
                 KORDON_OA_DEPTH_MAX);
        kordon_oa_report_in(report, KORDON_OA_IN_BODY, "", msg);
        report->malformed = 1;
        return 1;
    }

    memset(&ctx, 0, sizeof(kordon_oa_vctx_t));
    ctx.report = report;
    ctx.in = KORDON_OA_IN_BODY;
    ctx.match_data = doc->arena.match_data;
    ctx.match_context = doc->arena.match_context;

    n = kordon_oa_validate(&ctx, op->body_schema, root);

    json_decref(root);

    return n;
}


/* the nesting of a value, counted no further than one past the limit */
static size_t
kordon_oa_depth(json_t *value, size_t level)
{
    size_t       i, d, max;
    json_t      *v;
    const char  *key;

    if (!json_is_object(value) && !json_is_array(value)) {
        return level - 1;               /* only containers nest */
    }

    if (level > KORDON_OA_DEPTH_MAX) {
        return level;
    }

    max = level;

    if (json_is_object(value)) {
        json_object_foreach(value, key, v) {
            d = kordon_oa_depth(v, level + 1);
            if (d > max) {
                max = d;
            }

            if (max > KORDON_OA_DEPTH_MAX) {
                break;
            }
        }

    } else if (json_is_array(value)) {
        json_array_foreach(value, i, v) {
            d = kordon_oa_depth(v, level + 1);
            if (d > max) {
                max = d;
            }

            if (max > KORDON_OA_DEPTH_MAX) {
                break;
            }
        }
    }

    return max;
}
