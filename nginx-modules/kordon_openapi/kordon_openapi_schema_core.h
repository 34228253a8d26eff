
/*
 * Kordon edge: JSON Schema 2020-12 for the OpenAPI core, the internal
 * interface between kordon_openapi_core.c (document, paths, parameters)
 * and kordon_openapi_schema_core.c (compiled schemas and validation).
 */


#ifndef _KORDON_OPENAPI_SCHEMA_CORE_H_INCLUDED_
#define _KORDON_OPENAPI_SCHEMA_CORE_H_INCLUDED_


#include <jansson.h>
#include "kordon_openapi_core.h"


/* what every compiled piece of a document is allocated from */
typedef struct kordon_oa_chunk_s  kordon_oa_chunk_t;

typedef struct {
    json_t              *root;        /* the document, kept for enum/const */
    kordon_oa_chunk_t   *chunks;
    kordon_oa_schema_t  *schemas;     /* every schema, for kordon_oa_free */
    void                *refs;        /* pointer -> schema, while compiling */
    void                *match_data;  /* pcre2_match_data, one per document */
    void                *match_context;   /* pcre2 match limits */
    kordon_oa_error_t   *err;
} kordon_oa_arena_t;


/* validation state: where in the value we are, where problems go */
typedef struct {
    kordon_oa_report_t  *report;
    kordon_oa_in_e       in;
    const char          *name;
    void                *match_data;
    void                *match_context;
    char                 pointer[KORDON_OA_POINTER_MAX];
    size_t               len;
    unsigned             quiet;      /* inside anyOf/oneOf/not: stop early */
    unsigned             recursion;
    unsigned             steps;      /* schemas evaluated so far */
    unsigned             exhausted;  /* KORDON_OA_STEPS_MAX reached */
} kordon_oa_vctx_t;


void *kordon_oa_alloc(kordon_oa_arena_t *a, size_t size);
char *kordon_oa_strdup(kordon_oa_arena_t *a, const char *s);
int kordon_oa_fail(kordon_oa_arena_t *a, const char *pointer,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* a pointer with one more reference token, escaped per RFC 6901 */
char *kordon_oa_ptr_join(kordon_oa_arena_t *a, const char *base,
    const char *token);
/* the node a "#/..." reference names in the document, or NULL */
json_t *kordon_oa_resolve(json_t *root, const char *ref);

/*
 * Compiles the schema at node, whose place in the document is pointer.
 * Returns NULL (with a->err set) when it cannot.
 */
kordon_oa_schema_t *kordon_oa_schema_compile(kordon_oa_arena_t *a,
    json_t *node, const char *pointer);
void kordon_oa_schemas_free(kordon_oa_arena_t *a);
/* the match block and limits patterns need; -1 when out of memory */
int kordon_oa_match_init(kordon_oa_arena_t *a);

/* 1 if the schema's types include a JSON integer, number or boolean */
unsigned kordon_oa_schema_types(const kordon_oa_schema_t *s);

#define KORDON_OA_T_NULL     0x01
#define KORDON_OA_T_BOOLEAN  0x02
#define KORDON_OA_T_OBJECT   0x04
#define KORDON_OA_T_ARRAY    0x08
#define KORDON_OA_T_NUMBER   0x10
#define KORDON_OA_T_INTEGER  0x20
#define KORDON_OA_T_STRING   0x40

/*
 * Validates value against s, adding problems at ctx->pointer and below.
 * Returns the number of problems found (in quiet mode: 0 or 1).
 */
unsigned kordon_oa_validate(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);

/* adds one problem at the context's pointer (or pointer + token) */
void kordon_oa_report(kordon_oa_vctx_t *ctx, const char *token,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));


#endif /* _KORDON_OPENAPI_SCHEMA_CORE_H_INCLUDED_ */
