
/*
 * Kordon edge: the JSON of a token's header and payload, read into a view
 * of the few members the verifier looks at.  Free of nginx; used by
 * kordon_jwt_core.c only (and its tests).  See kordon_jwt_read_core.c.
 */


#ifndef _KORDON_JWT_READ_CORE_H_INCLUDED_
#define _KORDON_JWT_READ_CORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include <jansson.h>


#define KORDON_JWT_DOC_MEMBERS       12     /* names one view holds */
#define KORDON_JWT_DOC_ITEMS         64     /* array elements kept, in all */
#define KORDON_JWT_DOC_ITEMS_ONE     16     /* ... of one array */
#define KORDON_JWT_DOC_KEYS          32     /* members of one object */
#define KORDON_JWT_DOC_DIGITS        18     /* of an integer */

/* the fast reader leaves this text to jansson (a positive code) */
#define KORDON_JWT_READ_DECLINED     1

/* what a member is; jansson's types, with objects and literals as OTHER */
#define KORDON_JWT_V_ABSENT          0
#define KORDON_JWT_V_STRING          1
#define KORDON_JWT_V_INTEGER         2
#define KORDON_JWT_V_REAL            3
#define KORDON_JWT_V_ARRAY           4
#define KORDON_JWT_V_OTHER           5


typedef struct kordon_jwt_val_s  kordon_jwt_val_t;

struct kordon_jwt_val_s {
    unsigned                 type;
    size_t                   len;       /* STRING: bytes; ARRAY: elements */
    const char              *s;         /* STRING: no NUL among its bytes */
    int64_t                  i;         /* INTEGER */
    double                   d;         /* REAL */
    const kordon_jwt_val_t  *item;      /* ARRAY, fast reader: elements */
    const json_t            *json;      /* ARRAY, jansson: the array */
};


typedef struct {
    const char              *name;
    size_t                   len;
} kordon_jwt_name_t;


/*
 * A read header or payload: m[i] is the member names[i] (ABSENT when the
 * object has none).  Strings point into the text (fast reader) or into
 * json (jansson), so the view lives as long as both.
 */

typedef struct {
    kordon_jwt_val_t         m[KORDON_JWT_DOC_MEMBERS];
    kordon_jwt_val_t         item[KORDON_JWT_DOC_ITEMS];
    size_t                   nitems;
    json_t                  *json;
} kordon_jwt_doc_t;


int kordon_jwt_doc_fast(kordon_jwt_doc_t *doc, const kordon_jwt_name_t *names,
    size_t nnames, const char *text, size_t len, unsigned max_depth);
int kordon_jwt_doc_jansson(kordon_jwt_doc_t *doc,
    const kordon_jwt_name_t *names, size_t nnames, const char *text,
    size_t len);
void kordon_jwt_doc_free(kordon_jwt_doc_t *doc);
const kordon_jwt_val_t *kordon_jwt_val_item(const kordon_jwt_val_t *arr,
    size_t i, kordon_jwt_val_t *tmp);
int kordon_jwt_val_is(const kordon_jwt_val_t *v, const char *s);


#endif /* _KORDON_JWT_READ_CORE_H_INCLUDED_ */
