
/*
 * Kordon edge: JSON Schema 2020-12, compiled once and then validated
 * against many values.
 *
 * A schema object of the document becomes one kordon_oa_schema_t: the
 * type set as a bit mask, bounds as long double (exact for every int64,
 * so an integer bound near 2^63 compares exactly), patterns compiled by
 * PCRE2 (with JIT where available) and a match limit against patterns
 * that backtrack without end, properties and required names in arrays.
 * A keyword the compiler does not know is refused, so a typo in the
 * document ("requried") fails "nginx -t" instead of validating nothing;
 * annotations (title, description, examples, ...) are skipped.
 *
 * $ref is resolved within the document: each target is compiled once,
 * registered by its pointer before its body is compiled, so recursive
 * schemas end; validation bounds its own recursion instead.
 *
 * Validation walks the value and the schema together and writes every
 * problem, with the JSON Pointer of the offending value, into a bounded
 * report.  Its work is bounded too (KORDON_OA_STEPS_MAX schemas per
 * value): oneOf nested in a recursive schema could otherwise cost
 * 2^depth.  anyOf/oneOf/not evaluate their branches quietly (stopping
 * at the first problem) and report one problem of their own.
 *
 * The formats email, uuid and date-time are checked by hand below: no
 * Debian library validates just their syntax, and each is a few lines.
 */


#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "kordon_openapi_schema_core.h"


/* work limits of one pattern match, against catastrophic backtracking */
#define KORDON_OA_MATCH_LIMIT   100000
#define KORDON_OA_DEPTH_LIMIT   1000


typedef enum {
    KORDON_OA_FORMAT_NONE = 0,
    KORDON_OA_FORMAT_EMAIL,
    KORDON_OA_FORMAT_UUID,
    KORDON_OA_FORMAT_DATE_TIME
} kordon_oa_format_e;


typedef struct {
    const char          *name;
    kordon_oa_schema_t  *schema;
} kordon_oa_prop_t;


typedef struct {
    kordon_oa_schema_t  **items;
    size_t                n;
} kordon_oa_list_t;


typedef struct {
    long double           value;
    unsigned              set;
} kordon_oa_bound_t;


struct kordon_oa_schema_s {
    kordon_oa_schema_t  *next;          /* in the arena's list */
    unsigned             types;         /* 0: any type */
    unsigned             is_bool:1;
    unsigned             bool_value:1;
    kordon_oa_bound_t    min;
    kordon_oa_bound_t    max;
    kordon_oa_bound_t    emin;          /* exclusiveMinimum */
    kordon_oa_bound_t    emax;          /* exclusiveMaximum */
    int64_t              min_len;       /* -1: no bound, here and below */
    int64_t              max_len;
    int64_t              min_items;
    int64_t              max_items;
    int64_t              min_props;
    int64_t              max_props;
    pcre2_code          *pattern;
    const char          *pattern_src;
    kordon_oa_format_e   format;
    json_t              *enumeration;   /* borrowed from the document */
    json_t              *constant;
    kordon_oa_prop_t    *props;
    size_t               nprops;
    const char         **required;
    size_t               nrequired;
    kordon_oa_schema_t  *additional;    /* NULL: anything */
    kordon_oa_schema_t  *items;
    kordon_oa_list_t     all_of;
    kordon_oa_list_t     any_of;
    kordon_oa_list_t     one_of;
    kordon_oa_schema_t  *not;
    kordon_oa_schema_t  *ref;
};


struct kordon_oa_chunk_s {
    kordon_oa_chunk_t   *next;
    max_align_t          data[];
};


typedef struct kordon_oa_ref_s  kordon_oa_ref_t;

struct kordon_oa_ref_s {
    kordon_oa_ref_t     *next;
    const char          *ref;
    kordon_oa_schema_t  *schema;
};


typedef struct {
    const char  *name;
    unsigned     type;
} kordon_oa_type_name_t;


static const kordon_oa_type_name_t  kordon_oa_type_names[] = {
    { "null", KORDON_OA_T_NULL },
    { "boolean", KORDON_OA_T_BOOLEAN },
    { "object", KORDON_OA_T_OBJECT },
    { "array", KORDON_OA_T_ARRAY },
    { "number", KORDON_OA_T_NUMBER },
    { "integer", KORDON_OA_T_INTEGER },
    { "string", KORDON_OA_T_STRING },
    { NULL, 0 }
};


/* keywords that only annotate: skipped by the compiler */
static const char  *kordon_oa_annotations[] = {
    "title", "description", "default", "examples", "example",
    "deprecated", "readOnly", "writeOnly", "$comment", "$schema",
    "$defs", "definitions", "contentMediaType", "contentEncoding",
    "externalDocs", "xml", "discriminator", NULL
};


static int kordon_oa_compile_into(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *node, const char *pointer);
static int kordon_oa_compile_keyword(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, const char *key, json_t *v, const char *ptr);
static int kordon_oa_compile_type(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_enum(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_const(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_bound(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_count(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_pattern(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_format(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_props(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_required(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_sub(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_list(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static int kordon_oa_compile_ref_keyword(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);
static kordon_oa_schema_t *kordon_oa_compile_ref(kordon_oa_arena_t *a,
    json_t *v, const char *ptr);

static unsigned kordon_oa_check_type(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_check_string(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_check_number(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_check_object(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_check_array(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_check_combined(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static unsigned kordon_oa_quiet(kordon_oa_vctx_t *ctx,
    const kordon_oa_schema_t *s, json_t *value);
static size_t kordon_oa_push(kordon_oa_vctx_t *ctx, const char *token);
static void kordon_oa_pop(kordon_oa_vctx_t *ctx, size_t len);
static size_t kordon_oa_escape(char *dst, size_t size, const char *token);
static size_t kordon_oa_code_points(const char *s, size_t len);
static int kordon_oa_is_email(const char *s, size_t len);
static int kordon_oa_is_uuid(const char *s, size_t len);
static int kordon_oa_is_date_time(const char *s, size_t len);
static int kordon_oa_digits(const char *s, size_t n, int *value);


/* a keyword's compiler; field is the schema member named by offset */
typedef int (*kordon_oa_keyword_pt)(kordon_oa_arena_t *a,
    kordon_oa_schema_t *s, json_t *v, const char *ptr, void *field);

typedef struct {
    const char            *name;
    kordon_oa_keyword_pt   compile;
    size_t                 offset;
} kordon_oa_keyword_t;


#define KORDON_OA_KW(name, fn, member)                                       \
    { name, kordon_oa_compile_##fn, offsetof(kordon_oa_schema_t, member) }

static const kordon_oa_keyword_t  kordon_oa_keywords[] = {
    KORDON_OA_KW("type", type, types),
    KORDON_OA_KW("enum", enum, enumeration),
    KORDON_OA_KW("const", const, constant),
    KORDON_OA_KW("minimum", bound, min),
    KORDON_OA_KW("maximum", bound, max),
    KORDON_OA_KW("exclusiveMinimum", bound, emin),
    KORDON_OA_KW("exclusiveMaximum", bound, emax),
    KORDON_OA_KW("minLength", count, min_len),
    KORDON_OA_KW("maxLength", count, max_len),
    KORDON_OA_KW("minItems", count, min_items),
    KORDON_OA_KW("maxItems", count, max_items),
    KORDON_OA_KW("minProperties", count, min_props),
    KORDON_OA_KW("maxProperties", count, max_props),
    KORDON_OA_KW("pattern", pattern, pattern),
    KORDON_OA_KW("format", format, format),
    KORDON_OA_KW("properties", props, props),
    KORDON_OA_KW("required", required, required),
    KORDON_OA_KW("additionalProperties", sub, additional),
    KORDON_OA_KW("items", sub, items),
    KORDON_OA_KW("not", sub, not),
    KORDON_OA_KW("allOf", list, all_of),
    KORDON_OA_KW("anyOf", list, any_of),
    KORDON_OA_KW("oneOf", list, one_of),
    KORDON_OA_KW("$ref", ref_keyword, ref),
    { NULL, NULL, 0 }
};


/* arena */

void *
kordon_oa_alloc(kordon_oa_arena_t *a, size_t size)
{
    kordon_oa_chunk_t  *c;

    c = calloc(1, sizeof(kordon_oa_chunk_t) + size);
    if (c == NULL) {
        return NULL;
    }

    c->next = a->chunks;
    a->chunks = c;

    return c->data;
}


char *
kordon_oa_strdup(kordon_oa_arena_t *a, const char *s)
{
    char    *p;
    size_t   len;

    len = strlen(s);

    p = kordon_oa_alloc(a, len + 1);
    if (p != NULL) {
        memcpy(p, s, len + 1);
    }

    return p;
}


int
kordon_oa_fail(kordon_oa_arena_t *a, const char *pointer, const char *fmt,
    ...)
{
    va_list  ap;

    if (a->err->message[0] != '\0') {
        return -1;                      /* the first problem is the one */
    }

    snprintf(a->err->pointer, sizeof(a->err->pointer), "%s",
             pointer ? pointer : "");

    va_start(ap, fmt);
    vsnprintf(a->err->message, sizeof(a->err->message), fmt, ap);
    va_end(ap);

    return -1;
}


char *
kordon_oa_ptr_join(kordon_oa_arena_t *a, const char *base, const char *token)
{
    char    *p;
    size_t   blen, tlen;

    blen = strlen(base);
    tlen = kordon_oa_escape(NULL, 0, token);

    p = kordon_oa_alloc(a, blen + 1 + tlen + 1);
    if (p == NULL) {
        kordon_oa_fail(a, base, "out of memory");
        return NULL;
    }

    memcpy(p, base, blen);
    p[blen] = '/';
    kordon_oa_escape(p + blen + 1, tlen + 1, token);

    return p;
}


/*
 * The node "#/a/b~1c" names in root: RFC 6901 reference tokens after
 * the fragment's "#".  NULL when the reference is not of that form or
 * names nothing.
 */
json_t *
kordon_oa_resolve(json_t *root, const char *ref)
{
    char        token[KORDON_OA_POINTER_MAX];
    size_t      n;
    json_t     *node;
    const char *p;

    if (ref[0] != '#' || (ref[1] != '/' && ref[1] != '\0')) {
        return NULL;
    }

    node = root;
    p = ref + 1;

    while (*p == '/' && node != NULL) {
        p++;

        for (n = 0; *p != '/' && *p != '\0'; p++) {
            if (n + 1 >= sizeof(token)) {
                return NULL;
            }

            if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
                token[n++] = (p[1] == '0') ? '~' : '/';
                p++;

            } else {
                token[n++] = *p;
            }
        }

        token[n] = '\0';

        if (json_is_object(node)) {
            node = json_object_get(node, token);

        } else if (json_is_array(node)) {
            char  *end;
            long   i;

            i = strtol(token, &end, 10);
            node = (*end == '\0' && n > 0 && i >= 0)
                   ? json_array_get(node, (size_t) i) : NULL;

        } else {
            node = NULL;
        }
    }

    return node;
}


/* compiling */

kordon_oa_schema_t *
kordon_oa_schema_compile(kordon_oa_arena_t *a, json_t *node,
    const char *pointer)
{
    kordon_oa_schema_t  *s;

    s = kordon_oa_alloc(a, sizeof(kordon_oa_schema_t));
    if (s == NULL) {
        kordon_oa_fail(a, pointer, "out of memory");
        return NULL;
    }

    s->next = a->schemas;
    a->schemas = s;

    if (kordon_oa_compile_into(a, s, node, pointer) != 0) {
        return NULL;
    }

    return s;
}


void
kordon_oa_schemas_free(kordon_oa_arena_t *a)
{
    kordon_oa_chunk_t   *c, *next;
    kordon_oa_schema_t  *s;

    for (s = a->schemas; s != NULL; s = s->next) {
        pcre2_code_free(s->pattern);
    }

    pcre2_match_data_free(a->match_data);
    pcre2_match_context_free(a->match_context);

    for (c = a->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }

    a->chunks = NULL;
    a->schemas = NULL;
    a->match_data = NULL;
    a->match_context = NULL;
}


int
kordon_oa_match_init(kordon_oa_arena_t *a)
{
    a->match_data = pcre2_match_data_create(1, NULL);
    a->match_context = pcre2_match_context_create(NULL);

    if (a->match_data == NULL || a->match_context == NULL) {
        return -1;
    }

    pcre2_set_match_limit(a->match_context, KORDON_OA_MATCH_LIMIT);
    pcre2_set_depth_limit(a->match_context, KORDON_OA_DEPTH_LIMIT);

    return 0;
}


unsigned
kordon_oa_schema_types(const kordon_oa_schema_t *s)
{
    /* a bare reference takes the types of its target */
    while (s->types == 0 && s->ref != NULL) {
        s = s->ref;
    }

    return s->types;
}


static int
kordon_oa_compile_into(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *node, const char *pointer)
{
    char        *ptr;
    json_t      *v;
    const char  *key;

    s->min_len = s->max_len = -1;
    s->min_items = s->max_items = -1;
    s->min_props = s->max_props = -1;

    if (json_is_boolean(node)) {
        s->is_bool = 1;
        s->bool_value = json_is_true(node);
        return 0;
    }

    if (!json_is_object(node)) {
        return kordon_oa_fail(a, pointer, "a schema must be an object or "
                              "a boolean");
    }

    json_object_foreach(node, key, v) {
        ptr = kordon_oa_ptr_join(a, pointer, key);
        if (ptr == NULL) {
            return -1;
        }

        if (kordon_oa_compile_keyword(a, s, key, v, ptr) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
kordon_oa_compile_keyword(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    const char *key, json_t *v, const char *ptr)
{
    size_t                      i;
    const kordon_oa_keyword_t  *k;

    for (k = kordon_oa_keywords; k->name != NULL; k++) {
        if (strcmp(key, k->name) == 0) {
            return k->compile(a, s, v, ptr, (char *) s + k->offset);
        }
    }

    if (strncmp(key, "x-", 2) == 0) {
        return 0;
    }

    for (i = 0; kordon_oa_annotations[i] != NULL; i++) {
        if (strcmp(key, kordon_oa_annotations[i]) == 0) {
            return 0;
        }
    }

    if (strcmp(key, "nullable") == 0) {
        return kordon_oa_fail(a, ptr, "\"nullable\" is OpenAPI 3.0; use "
                              "\"type\": [..., \"null\"]");
    }

    return kordon_oa_fail(a, ptr, "unsupported schema keyword \"%s\"", key);
}


static int
kordon_oa_compile_enum(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        return kordon_oa_fail(a, ptr, "enum must be a non-empty array");
    }

    s->enumeration = v;

    return 0;
}


static int
kordon_oa_compile_const(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    s->constant = v;

    return 0;
}


/* additionalProperties, items, not: one schema into a field */
static int
kordon_oa_compile_sub(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    kordon_oa_schema_t  **sub = field;

    *sub = kordon_oa_schema_compile(a, v, ptr);

    return *sub ? 0 : -1;
}


static int
kordon_oa_compile_ref_keyword(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    s->ref = kordon_oa_compile_ref(a, v, ptr);

    return s->ref ? 0 : -1;
}


static int
kordon_oa_compile_type(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    size_t       i, j, n;
    json_t      *t;
    const char  *name;

    n = json_is_array(v) ? json_array_size(v) : 1;

    if (n == 0 || (!json_is_array(v) && !json_is_string(v))) {
        return kordon_oa_fail(a, ptr, "type must be a string or a "
                              "non-empty array of strings");
    }

    for (i = 0; i < n; i++) {
        t = json_is_array(v) ? json_array_get(v, i) : v;
        name = json_string_value(t);

        for (j = 0; name != NULL && kordon_oa_type_names[j].name; j++) {
            if (strcmp(name, kordon_oa_type_names[j].name) == 0) {
                break;
            }
        }

        if (name == NULL || kordon_oa_type_names[j].name == NULL) {
            return kordon_oa_fail(a, ptr, "unknown type \"%s\"",
                                  name ? name : "(not a string)");
        }

        s->types |= kordon_oa_type_names[j].type;
    }

    return 0;
}


static int
kordon_oa_compile_bound(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    kordon_oa_bound_t  *bound = field;

    bound->set = 1;

    if (json_is_integer(v)) {
        bound->value = (long double) json_integer_value(v);
        return 0;
    }

    if (json_is_real(v)) {
        bound->value = (long double) json_real_value(v);
        return 0;
    }

    return kordon_oa_fail(a, ptr, "must be a number");
}


static int
kordon_oa_compile_count(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    int64_t  *count = field;

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return kordon_oa_fail(a, ptr, "must be a non-negative integer");
    }

    *count = json_integer_value(v);

    return 0;
}


static int
kordon_oa_compile_pattern(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    int          rc;
    size_t       offset;
    PCRE2_UCHAR  msg[128];

    if (!json_is_string(v)) {
        return kordon_oa_fail(a, ptr, "pattern must be a string");
    }

    s->pattern_src = json_string_value(v);

    s->pattern = pcre2_compile((PCRE2_SPTR) s->pattern_src,
                               json_string_length(v), PCRE2_UTF | PCRE2_UCP,
                               &rc, &offset, NULL);
    if (s->pattern == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return kordon_oa_fail(a, ptr, "pattern does not compile at offset "
                              "%zu: %s", offset, (char *) msg);
    }

    /* JIT is an optimisation: the interpreter serves where it fails */
    (void) pcre2_jit_compile(s->pattern, PCRE2_JIT_COMPLETE);

    return 0;
}


static int
kordon_oa_compile_format(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    const char  *f;

    f = json_string_value(v);
    if (f == NULL) {
        return kordon_oa_fail(a, ptr, "format must be a string");
    }

    /* other formats (int64, password, uri...) annotate, as 2020-12 says */
    if (strcmp(f, "email") == 0) {
        s->format = KORDON_OA_FORMAT_EMAIL;

    } else if (strcmp(f, "uuid") == 0) {
        s->format = KORDON_OA_FORMAT_UUID;

    } else if (strcmp(f, "date-time") == 0) {
        s->format = KORDON_OA_FORMAT_DATE_TIME;
    }

    return 0;
}


static int
kordon_oa_compile_props(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    char        *p;
    size_t       i;
    json_t      *sub;
    const char  *key;

    if (!json_is_object(v)) {
        return kordon_oa_fail(a, ptr, "properties must be an object");
    }

    s->nprops = json_object_size(v);
    s->props = kordon_oa_alloc(a, (s->nprops + 1) * sizeof(kordon_oa_prop_t));
    if (s->props == NULL) {
        return kordon_oa_fail(a, ptr, "out of memory");
    }

    i = 0;

    json_object_foreach(v, key, sub) {
        p = kordon_oa_ptr_join(a, ptr, key);
        if (p == NULL) {
            return -1;
        }

        s->props[i].name = key;
        s->props[i].schema = kordon_oa_schema_compile(a, sub, p);
        if (s->props[i].schema == NULL) {
            return -1;
        }

        i++;
    }

    return 0;
}


static int
kordon_oa_compile_required(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    size_t   i;
    json_t  *name;

    if (!json_is_array(v)) {
        return kordon_oa_fail(a, ptr, "required must be an array");
    }

    s->nrequired = json_array_size(v);
    s->required = kordon_oa_alloc(a, (s->nrequired + 1) * sizeof(char *));
    if (s->required == NULL) {
        return kordon_oa_fail(a, ptr, "out of memory");
    }

    json_array_foreach(v, i, name) {
        if (!json_is_string(name)) {
            return kordon_oa_fail(a, ptr, "required must list strings");
        }

        s->required[i] = json_string_value(name);
    }

    return 0;
}


static int
kordon_oa_compile_list(kordon_oa_arena_t *a, kordon_oa_schema_t *s,
    json_t *v, const char *ptr, void *field)
{
    kordon_oa_list_t  *list = field;

    char    *p, index[24];
    size_t   i;
    json_t  *sub;

    if (!json_is_array(v) || json_array_size(v) == 0) {
        return kordon_oa_fail(a, ptr, "must be a non-empty array of "
                              "schemas");
    }

    list->n = json_array_size(v);
    list->items = kordon_oa_alloc(a, list->n * sizeof(kordon_oa_schema_t *));
    if (list->items == NULL) {
        return kordon_oa_fail(a, ptr, "out of memory");
    }

    json_array_foreach(v, i, sub) {
        snprintf(index, sizeof(index), "%zu", i);

        p = kordon_oa_ptr_join(a, ptr, index);
        if (p == NULL) {
            return -1;
        }

        list->items[i] = kordon_oa_schema_compile(a, sub, p);
        if (list->items[i] == NULL) {
            return -1;
        }
    }

    return 0;
}


/*
 * The compiled target of a "$ref": compiled at its own place in the
 * document the first time, then shared.
 */
static kordon_oa_schema_t *
kordon_oa_compile_ref(kordon_oa_arena_t *a, json_t *v, const char *ptr)
{
    json_t              *node;
    const char          *ref;
    kordon_oa_ref_t     *r;
    kordon_oa_schema_t  *s;

    ref = json_string_value(v);
    if (ref == NULL) {
        kordon_oa_fail(a, ptr, "$ref must be a string");
        return NULL;
    }

    for (r = a->refs; r != NULL; r = r->next) {
        if (strcmp(r->ref, ref) == 0) {
            return r->schema;
        }
    }

    if (ref[0] != '#') {
        kordon_oa_fail(a, ptr, "$ref \"%s\" is outside the document", ref);
        return NULL;
    }

    node = kordon_oa_resolve(a->root, ref);
    if (node == NULL) {
        kordon_oa_fail(a, ptr, "$ref \"%s\" names nothing in the document",
                       ref);
        return NULL;
    }

    r = kordon_oa_alloc(a, sizeof(kordon_oa_ref_t));
    s = kordon_oa_alloc(a, sizeof(kordon_oa_schema_t));
    if (r == NULL || s == NULL) {
        kordon_oa_fail(a, ptr, "out of memory");
        return NULL;
    }

    s->next = a->schemas;
    a->schemas = s;

    r->ref = ref;
    r->schema = s;
    r->next = a->refs;
    a->refs = r;

    if (kordon_oa_compile_into(a, s, node, ref + 1) != 0) {
        return NULL;
    }

    return s;
}


/* validating */

unsigned
kordon_oa_validate(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    unsigned  n, quiet;

    if (++ctx->steps > KORDON_OA_STEPS_MAX) {
        if (!ctx->exhausted) {
            /* said once, even from inside a quiet branch */
            ctx->exhausted = 1;
            quiet = ctx->quiet;
            ctx->quiet = 0;
            kordon_oa_report(ctx, NULL, "is too costly to validate");
            ctx->quiet = quiet;
        }

        return 1;
    }

    if (ctx->recursion >= KORDON_OA_RECURSION_MAX) {
        kordon_oa_report(ctx, NULL, "is nested too deeply for the schema");
        return 1;
    }

    if (s->is_bool) {
        if (s->bool_value) {
            return 0;
        }

        kordon_oa_report(ctx, NULL, "is not allowed");
        return 1;
    }

    ctx->recursion++;

    n = 0;

    if (s->ref != NULL) {
        n = kordon_oa_validate(ctx, s->ref, value);
    }

    if (n == 0 || !ctx->quiet) {
        n += kordon_oa_check_type(ctx, s, value);
    }

    if (n == 0 || !ctx->quiet) {
        n += kordon_oa_check_combined(ctx, s, value);
    }

    ctx->recursion--;

    return n;
}


static unsigned
kordon_oa_check_type(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    char      names[96];
    size_t    i, len;
    unsigned  t;

    switch (json_typeof(value)) {
    case JSON_OBJECT:  t = KORDON_OA_T_OBJECT; break;
    case JSON_ARRAY:   t = KORDON_OA_T_ARRAY; break;
    case JSON_STRING:  t = KORDON_OA_T_STRING; break;
    case JSON_INTEGER: t = KORDON_OA_T_INTEGER | KORDON_OA_T_NUMBER; break;
    case JSON_REAL:    t = KORDON_OA_T_NUMBER; break;
    case JSON_TRUE:
    case JSON_FALSE:   t = KORDON_OA_T_BOOLEAN; break;
    default:           t = KORDON_OA_T_NULL; break;
    }

    if (s->types != 0 && (s->types & t) == 0) {
        len = 0;
        names[0] = '\0';

        for (i = 0; kordon_oa_type_names[i].name != NULL; i++) {
            if (s->types & kordon_oa_type_names[i].type) {
                len += snprintf(names + len, sizeof(names) - len, "%s%s",
                                len ? " or " : "",
                                kordon_oa_type_names[i].name);
            }
        }

        kordon_oa_report(ctx, NULL, "must be %s", names);
        return 1;   /* the other keywords would only repeat it */
    }

    if (s->enumeration != NULL) {
        json_t  *e;

        json_array_foreach(s->enumeration, i, e) {
            if (json_equal(e, value)) {
                break;
            }
        }

        if (i == json_array_size(s->enumeration)) {
            kordon_oa_report(ctx, NULL, "must be one of the allowed values");
            return 1;
        }
    }

    if (s->constant != NULL && !json_equal(s->constant, value)) {
        kordon_oa_report(ctx, NULL, "must be the constant value");
        return 1;
    }

    switch (t) {
    case KORDON_OA_T_STRING:
        return kordon_oa_check_string(ctx, s, value);
    case KORDON_OA_T_OBJECT:
        return kordon_oa_check_object(ctx, s, value);
    case KORDON_OA_T_ARRAY:
        return kordon_oa_check_array(ctx, s, value);
    case KORDON_OA_T_NUMBER:
    case KORDON_OA_T_INTEGER | KORDON_OA_T_NUMBER:
        return kordon_oa_check_number(ctx, s, value);
    default:
        return 0;
    }
}


static unsigned
kordon_oa_check_string(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    int          rc, ok;
    size_t       len, cps;
    unsigned     n;
    const char  *str;

    str = json_string_value(value);
    len = json_string_length(value);
    n = 0;

    if (s->min_len >= 0 || s->max_len >= 0) {
        cps = kordon_oa_code_points(str, len);

        if (s->min_len >= 0 && cps < (uint64_t) s->min_len) {
            kordon_oa_report(ctx, NULL, "must be at least %lld characters "
                             "long", (long long) s->min_len);
            n++;

        } else if (s->max_len >= 0 && cps > (uint64_t) s->max_len) {
            kordon_oa_report(ctx, NULL, "must be at most %lld characters "
                             "long", (long long) s->max_len);
            n++;
        }
    }

    if (s->pattern != NULL && (n == 0 || !ctx->quiet)) {
        rc = pcre2_match(s->pattern, (PCRE2_SPTR) str, len, 0, 0,
                         ctx->match_data, ctx->match_context);
        if (rc < 0) {
            /* no match, or the match limit: either way not proven valid */
            kordon_oa_report(ctx, NULL, "must match the pattern \"%.80s\"",
                             s->pattern_src);
            n++;
        }
    }

    if (s->format != KORDON_OA_FORMAT_NONE && (n == 0 || !ctx->quiet)) {
        switch (s->format) {
        case KORDON_OA_FORMAT_EMAIL:
            ok = kordon_oa_is_email(str, len);
            break;
        case KORDON_OA_FORMAT_UUID:
            ok = kordon_oa_is_uuid(str, len);
            break;
        default:
            ok = kordon_oa_is_date_time(str, len);
            break;
        }

        if (!ok) {
            kordon_oa_report(ctx, NULL, "must be a valid %s",
                             s->format == KORDON_OA_FORMAT_EMAIL ? "email"
                             : s->format == KORDON_OA_FORMAT_UUID ? "uuid"
                             : "date-time");
            n++;
        }
    }

    return n;
}


static unsigned
kordon_oa_check_number(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    long double  v;

    v = json_is_integer(value) ? (long double) json_integer_value(value)
                               : (long double) json_real_value(value);

    if (s->min.set && v < s->min.value) {
        kordon_oa_report(ctx, NULL, "must be >= %.21Lg", s->min.value);
        return 1;
    }

    if (s->max.set && v > s->max.value) {
        kordon_oa_report(ctx, NULL, "must be <= %.21Lg", s->max.value);
        return 1;
    }

    if (s->emin.set && v <= s->emin.value) {
        kordon_oa_report(ctx, NULL, "must be > %.21Lg", s->emin.value);
        return 1;
    }

    if (s->emax.set && v >= s->emax.value) {
        kordon_oa_report(ctx, NULL, "must be < %.21Lg", s->emax.value);
        return 1;
    }

    return 0;
}


static unsigned
kordon_oa_check_object(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    size_t                     i, save, size;
    json_t                    *v;
    unsigned                   n;
    const char                *key;
    const kordon_oa_schema_t  *sub;

    n = 0;
    size = json_object_size(value);

    if (s->min_props >= 0 && size < (uint64_t) s->min_props) {
        kordon_oa_report(ctx, NULL, "must have at least %lld properties",
                         (long long) s->min_props);
        n++;
    }

    if (s->max_props >= 0 && size > (uint64_t) s->max_props) {
        kordon_oa_report(ctx, NULL, "must have at most %lld properties",
                         (long long) s->max_props);
        n++;
    }

    for (i = 0; i < s->nrequired && (n == 0 || !ctx->quiet); i++) {
        if (json_object_get(value, s->required[i]) == NULL) {
            kordon_oa_report(ctx, s->required[i], "is required");
            n++;
        }
    }

    json_object_foreach(value, key, v) {
        if (n != 0 && ctx->quiet) {
            break;
        }

        sub = s->additional;

        for (i = 0; i < s->nprops; i++) {
            if (strcmp(s->props[i].name, key) == 0) {
                sub = s->props[i].schema;
                break;
            }
        }

        if (sub == NULL) {
            continue;
        }

        save = kordon_oa_push(ctx, key);

        if (sub->is_bool && !sub->bool_value && i == s->nprops) {
            kordon_oa_report(ctx, NULL, "is not an allowed property");
            n++;

        } else {
            n += kordon_oa_validate(ctx, sub, v);
        }

        kordon_oa_pop(ctx, save);
    }

    return n;
}


static unsigned
kordon_oa_check_array(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    char      index[24];
    size_t    i, save, size;
    json_t   *v;
    unsigned  n;

    n = 0;
    size = json_array_size(value);

    if (s->min_items >= 0 && size < (uint64_t) s->min_items) {
        kordon_oa_report(ctx, NULL, "must have at least %lld items",
                         (long long) s->min_items);
        n++;
    }

    if (s->max_items >= 0 && size > (uint64_t) s->max_items) {
        kordon_oa_report(ctx, NULL, "must have at most %lld items",
                         (long long) s->max_items);
        n++;
    }

    if (s->items == NULL) {
        return n;
    }

    json_array_foreach(value, i, v) {
        if (n != 0 && ctx->quiet) {
            break;
        }

        snprintf(index, sizeof(index), "%zu", i);
        save = kordon_oa_push(ctx, index);
        n += kordon_oa_validate(ctx, s->items, v);
        kordon_oa_pop(ctx, save);
    }

    return n;
}


static unsigned
kordon_oa_check_combined(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    size_t    i, matched;
    unsigned  n;

    n = 0;

    for (i = 0; i < s->all_of.n && (n == 0 || !ctx->quiet); i++) {
        n += kordon_oa_validate(ctx, s->all_of.items[i], value);
    }

    if (s->any_of.n && (n == 0 || !ctx->quiet)) {
        for (i = 0; i < s->any_of.n; i++) {
            if (kordon_oa_quiet(ctx, s->any_of.items[i], value) == 0) {
                break;
            }
        }

        if (i == s->any_of.n) {
            kordon_oa_report(ctx, NULL, "must match at least one schema "
                             "of anyOf");
            n++;
        }
    }

    if (s->one_of.n && (n == 0 || !ctx->quiet)) {
        matched = 0;

        for (i = 0; i < s->one_of.n && matched < 2; i++) {
            if (kordon_oa_quiet(ctx, s->one_of.items[i], value) == 0) {
                matched++;
            }
        }

        if (matched != 1) {
            kordon_oa_report(ctx, NULL, "must match exactly one schema of "
                             "oneOf (matches %s)", matched ? "several"
                                                           : "none");
            n++;
        }
    }

    if (s->not != NULL && (n == 0 || !ctx->quiet)) {
        if (kordon_oa_quiet(ctx, s->not, value) == 0) {
            kordon_oa_report(ctx, NULL, "must not match the schema of not");
            n++;
        }
    }

    return n;
}


/* validates without reporting: 0 when the value is valid */
static unsigned
kordon_oa_quiet(kordon_oa_vctx_t *ctx, const kordon_oa_schema_t *s,
    json_t *value)
{
    unsigned  n, quiet;

    quiet = ctx->quiet;
    ctx->quiet = 1;

    n = kordon_oa_validate(ctx, s, value);

    ctx->quiet = quiet;

    return n;
}


void
kordon_oa_report(kordon_oa_vctx_t *ctx, const char *token, const char *fmt,
    ...)
{
    size_t              save;
    va_list             ap;
    kordon_oa_error_t  *e;
    kordon_oa_report_t *r;

    if (ctx->quiet) {
        return;
    }

    r = ctx->report;
    r->total++;

    if (r->n >= KORDON_OA_ERRORS_MAX) {
        return;
    }

    e = &r->errors[r->n++];
    e->in = ctx->in;
    snprintf(e->name, sizeof(e->name), "%s", ctx->name ? ctx->name : "");

    save = token ? kordon_oa_push(ctx, token) : ctx->len;
    memcpy(e->pointer, ctx->pointer, ctx->len + 1);
    kordon_oa_pop(ctx, save);

    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}


/*
 * Appends "/token" (escaped) to the context's pointer and returns the
 * length to restore.  A pointer that would not fit stays as it was.
 */
static size_t
kordon_oa_push(kordon_oa_vctx_t *ctx, const char *token)
{
    size_t  save, need;

    save = ctx->len;
    need = kordon_oa_escape(NULL, 0, token);

    if (save + 1 + need + 1 > sizeof(ctx->pointer)) {
        return save;
    }

    ctx->pointer[save] = '/';
    kordon_oa_escape(ctx->pointer + save + 1, need + 1, token);
    ctx->len = save + 1 + need;

    return save;
}


static void
kordon_oa_pop(kordon_oa_vctx_t *ctx, size_t len)
{
    ctx->len = len;
    ctx->pointer[len] = '\0';
}


/*
 * RFC 6901: "~" is written "~0" and "/" is written "~1".  Returns the
 * escaped length; writes (NUL-terminated) only when dst is not NULL.
 */
static size_t
kordon_oa_escape(char *dst, size_t size, const char *token)
{
    size_t       n;
    const char  *p;

    n = 0;

    for (p = token; *p != '\0'; p++) {
        if (*p == '~' || *p == '/') {
            if (dst != NULL && n + 2 < size) {
                dst[n] = '~';
                dst[n + 1] = (*p == '~') ? '0' : '1';
            }

            n += 2;

        } else {
            if (dst != NULL && n + 1 < size) {
                dst[n] = *p;
            }

            n++;
        }
    }

    if (dst != NULL && size > 0) {
        dst[n < size ? n : size - 1] = '\0';
    }

    return n;
}


/* code points of valid UTF-8: every byte that does not continue one */
static size_t
kordon_oa_code_points(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


/*
 * A practical address: local@domain, the local part of RFC 5322 atext
 * and dots (no quoted forms), the domain of letter/digit/hyphen labels
 * with at least one dot.  Stricter than the RFC on purpose: addresses
 * that mail systems reject are refused at the edge.
 */
static int
kordon_oa_is_email(const char *s, size_t len)
{
    size_t       i, at, label;
    const char  *atext = "!#$%&'*+-/=?^_`{|}~.";

    if (len < 3 || len > 254) {
        return 0;
    }

    at = len;

    for (i = 0; i < len; i++) {
        if (s[i] == '@') {
            if (at != len) {
                return 0;
            }

            at = i;
        }
    }

    if (at == 0 || at > 64 || at + 1 >= len) {
        return 0;
    }

    for (i = 0; i < at; i++) {
        if (!(((unsigned char) s[i] < 0x80
               && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                   || (s[i] >= '0' && s[i] <= '9')))
              || (s[i] != '\0' && strchr(atext, s[i]) != NULL)))
        {
            return 0;
        }
    }

    if (s[0] == '.' || s[at - 1] == '.') {
        return 0;
    }

    for (i = 1; i < at; i++) {
        if (s[i] == '.' && s[i - 1] == '.') {
            return 0;
        }
    }

    label = 0;

    for (i = at + 1; i < len; i++) {
        if (s[i] == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return 0;
            }

            label = 0;
            continue;
        }

        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && label > 0)))
        {
            return 0;
        }

        if (++label > 63) {
            return 0;
        }
    }

    return label > 0 && s[len - 1] != '-'
           && memchr(s + at + 1, '.', len - at - 1) != NULL;
}


/* 8-4-4-4-12 hexadecimal digits, either case */
static int
kordon_oa_is_uuid(const char *s, size_t len)
{
    size_t  i;

    if (len != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') {
                return 0;
            }

        } else if (!isxdigit((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


/* RFC 3339 date-time: 2026-11-24T02:25:46.123Z or ...+03:00 */
static int
kordon_oa_is_date_time(const char *s, size_t len)
{
    int          y, mo, d, h, mi, sec, oh, om, leap;
    size_t       i;
    static int   days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (len < 20
        || !kordon_oa_digits(s, 4, &y) || s[4] != '-'
        || !kordon_oa_digits(s + 5, 2, &mo) || s[7] != '-'
        || !kordon_oa_digits(s + 8, 2, &d)
        || (s[10] != 'T' && s[10] != 't')
        || !kordon_oa_digits(s + 11, 2, &h) || s[13] != ':'
        || !kordon_oa_digits(s + 14, 2, &mi) || s[16] != ':'
        || !kordon_oa_digits(s + 17, 2, &sec))
    {
        return 0;
    }

    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (mo < 1 || mo > 12 || d < 1
        || d > days[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59
        || sec > 60)
    {
        return 0;
    }

    i = 19;

    if (s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* fraction digits */
        }

        if (i == 20) {
            return 0;
        }
    }

    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        return 1;
    }

    return i + 6 == len && (s[i] == '+' || s[i] == '-')
           && kordon_oa_digits(s + i + 1, 2, &oh) && s[i + 3] == ':'
           && kordon_oa_digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59;
}


static int
kordon_oa_digits(const char *s, size_t n, int *value)
{
    size_t  i;

    *value = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }

        *value = *value * 10 + (s[i] - '0');
    }

    return 1;
}
