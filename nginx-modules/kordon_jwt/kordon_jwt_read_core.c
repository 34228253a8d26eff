
/*
 * Kordon edge: the claims reader.  The JSON of a token's header and
 * payload is read into a view (kordon_jwt_doc_t) of the members the
 * verifier looks at -- alg, kid, typ, crit; exp, iat, nbf, iss, aud, sub,
 * sid, jti, scope, roles, amr -- and kordon_jwt_core.c checks the view,
 * whoever read it.
 *
 * Two readers fill the same view.  kordon_jwt_doc_jansson() is
 * json_loadb() with JSON_REJECT_DUPLICATES and json_object_get() per
 * name: the reference, whose verdict on any text stands.
 * kordon_jwt_doc_fast() reads in one pass, without allocating, the plain
 * JSON that tokens are made of: ASCII strings without escapes, integers
 * of up to 18 digits, true, false, null, objects of up to 32 members with
 * no name twice, arrays, nesting up to the verifier's bound; an array
 * that is one of the names keeps up to 16 elements.  At the first thing
 * outside that -- an escape, a byte over 0x7f, a real, a longer integer,
 * anything that is not JSON at all -- it declines
 * (KORDON_JWT_READ_DECLINED) and the text goes to jansson.  So it never
 * refuses a text and never takes one that jansson would not read to the
 * same view: duplicate members, bad UTF-8 and escapes, control
 * characters, integer and real overflow, trailing bytes are all refused
 * by jansson exactly as before; the fast reader only spares the common
 * token the parse (the bench's 250-byte payload: 45,000 instructions with
 * jansson, whose lexer reads a byte at a time through a UTF-8 checking
 * stream and builds a tree of allocated values, then the lookups and the
 * frees; 5,400 here).
 * t/unit/test_jwt.c checks the two agree over many generated tokens, and
 * fuzz/jwt_fuzz.c on whatever it finds.
 */


#include <string.h>

#include "kordon_jwt_read_core.h"


typedef struct {
    const unsigned char      *p;
    const unsigned char      *end;
    unsigned                  depth;
    unsigned                  max_depth;
    size_t                    nnames;
    const kordon_jwt_name_t  *names;
    kordon_jwt_doc_t         *doc;
} kordon_jwt_rd_t;


static int kordon_jwt_rd_value(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v,
    int keep);
static int kordon_jwt_rd_object(kordon_jwt_rd_t *rd, int top);
static int kordon_jwt_rd_array(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v,
    int keep);
static int kordon_jwt_rd_string(kordon_jwt_rd_t *rd, const char **s,
    size_t *len);
static int kordon_jwt_rd_number(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v);
static int kordon_jwt_rd_literal(kordon_jwt_rd_t *rd, const char *word,
    size_t len);
static void kordon_jwt_rd_ws(kordon_jwt_rd_t *rd);
static kordon_jwt_val_t *kordon_jwt_rd_slot(kordon_jwt_rd_t *rd,
    const char *key, size_t len);
static void kordon_jwt_doc_init(kordon_jwt_doc_t *doc);
static void kordon_jwt_val_json(const json_t *j, kordon_jwt_val_t *v);


/*
 * Reads text (len bytes) into doc with the fast reader.  Returns 0, or
 * KORDON_JWT_READ_DECLINED when the text is not plain JSON as above (or
 * not JSON, or nested deeper than max_depth): doc must not be used then.
 */

int
kordon_jwt_doc_fast(kordon_jwt_doc_t *doc, const kordon_jwt_name_t *names,
    size_t nnames, const char *text, size_t len, unsigned max_depth)
{
    kordon_jwt_rd_t  rd;

    if (nnames > KORDON_JWT_DOC_MEMBERS) {
        return KORDON_JWT_READ_DECLINED;
    }

    kordon_jwt_doc_init(doc);

    rd.p = (const unsigned char *) text;
    rd.end = rd.p + len;
    rd.depth = 0;
    rd.max_depth = max_depth;
    rd.nnames = nnames;
    rd.names = names;
    rd.doc = doc;

    kordon_jwt_rd_ws(&rd);

    if (rd.p == rd.end || *rd.p != '{' || kordon_jwt_rd_object(&rd, 1) != 0)
    {
        return KORDON_JWT_READ_DECLINED;
    }

    kordon_jwt_rd_ws(&rd);

    return (rd.p == rd.end) ? 0 : KORDON_JWT_READ_DECLINED;
}


/*
 * Reads text into doc with jansson.  Returns 0, or -1 when it is not JSON
 * or not an object; either way kordon_jwt_doc_free() frees the tree.
 */

int
kordon_jwt_doc_jansson(kordon_jwt_doc_t *doc, const kordon_jwt_name_t *names,
    size_t nnames, const char *text, size_t len)
{
    size_t  i;

    kordon_jwt_doc_init(doc);

    if (nnames > KORDON_JWT_DOC_MEMBERS) {
        return -1;
    }

    doc->json = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(doc->json)) {
        return -1;
    }

    for (i = 0; i < nnames; i++) {
        kordon_jwt_val_json(json_object_get(doc->json, names[i].name),
                            &doc->m[i]);
    }

    return 0;
}


void
kordon_jwt_doc_free(kordon_jwt_doc_t *doc)
{
    json_decref(doc->json);
    doc->json = NULL;
}


/* the element i (< arr->len) of an array, in *tmp or in the view */

const kordon_jwt_val_t *
kordon_jwt_val_item(const kordon_jwt_val_t *arr, size_t i,
    kordon_jwt_val_t *tmp)
{
    if (arr->json != NULL) {
        kordon_jwt_val_json(json_array_get(arr->json, i), tmp);
        return tmp;
    }

    return &arr->item[i];
}


/* 1 when v is a string equal to s, else 0 */

int
kordon_jwt_val_is(const kordon_jwt_val_t *v, const char *s)
{
    return v->type == KORDON_JWT_V_STRING && v->len == strlen(s)
           && memcmp(v->s, s, v->len) == 0;
}


static void
kordon_jwt_doc_init(kordon_jwt_doc_t *doc)
{
    memset(doc->m, 0, sizeof(doc->m));
    doc->nitems = 0;
    doc->json = NULL;
}


static void
kordon_jwt_val_json(const json_t *j, kordon_jwt_val_t *v)
{
    memset(v, 0, sizeof(kordon_jwt_val_t));

    if (j == NULL) {
        v->type = KORDON_JWT_V_ABSENT;

    } else if (json_is_string(j)) {
        v->type = KORDON_JWT_V_STRING;
        v->s = json_string_value(j);
        v->len = json_string_length(j);

    } else if (json_is_integer(j)) {
        v->type = KORDON_JWT_V_INTEGER;
        v->i = (int64_t) json_integer_value(j);

    } else if (json_is_real(j)) {
        v->type = KORDON_JWT_V_REAL;
        v->d = json_real_value(j);

    } else if (json_is_array(j)) {
        v->type = KORDON_JWT_V_ARRAY;
        v->len = json_array_size(j);
        v->json = j;

    } else {
        v->type = KORDON_JWT_V_OTHER;
    }
}


/*
 * The fast reader: each function starts at the first byte of its value
 * and leaves rd->p after it, or returns -1 (decline).  v, when not NULL,
 * receives what the value is; keep says whether an array stores its
 * elements in the view (a named member's array does, an element's not).
 */

static int
kordon_jwt_rd_value(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v, int keep)
{
    size_t            len;
    const char       *s;
    kordon_jwt_val_t  other;

    if (v == NULL) {
        v = &other;
    }

    if (rd->p == rd->end) {
        return -1;
    }

    switch (*rd->p) {

    case '{':
        v->type = KORDON_JWT_V_OTHER;
        return kordon_jwt_rd_object(rd, 0);

    case '[':
        return kordon_jwt_rd_array(rd, v, keep);

    case '"':
        if (kordon_jwt_rd_string(rd, &s, &len) != 0) {
            return -1;
        }

        v->type = KORDON_JWT_V_STRING;
        v->s = s;
        v->len = len;
        return 0;

    case 't':
        v->type = KORDON_JWT_V_OTHER;
        return kordon_jwt_rd_literal(rd, "true", 4);

    case 'f':
        v->type = KORDON_JWT_V_OTHER;
        return kordon_jwt_rd_literal(rd, "false", 5);

    case 'n':
        v->type = KORDON_JWT_V_OTHER;
        return kordon_jwt_rd_literal(rd, "null", 4);
    }

    return kordon_jwt_rd_number(rd, v);
}


/*
 * An object; the members of the top one (top) are matched against the
 * names.  A name twice, in any object, is left to jansson, which refuses
 * it: the names compared here are the bytes, as no escape gets this far.
 */

static int
kordon_jwt_rd_object(kordon_jwt_rd_t *rd, int top)
{
    size_t             i, n, len, lens[KORDON_JWT_DOC_KEYS];
    const char        *key, *keys[KORDON_JWT_DOC_KEYS];
    kordon_jwt_val_t  *v;

    if (++rd->depth > rd->max_depth) {
        return -1;
    }

    rd->p++;                                    /* "{" */
    kordon_jwt_rd_ws(rd);

    if (rd->p < rd->end && *rd->p == '}') {
        rd->p++;
        rd->depth--;
        return 0;
    }

    for (n = 0; /* void */; n++) {

        if (n == KORDON_JWT_DOC_KEYS || rd->p == rd->end || *rd->p != '"'
            || kordon_jwt_rd_string(rd, &key, &len) != 0)
        {
            return -1;
        }

        for (i = 0; i < n; i++) {
            if (lens[i] == len && memcmp(keys[i], key, len) == 0) {
                return -1;
            }
        }

        keys[n] = key;
        lens[n] = len;

        kordon_jwt_rd_ws(rd);

        if (rd->p == rd->end || *rd->p != ':') {
            return -1;
        }

        rd->p++;
        kordon_jwt_rd_ws(rd);

        v = top ? kordon_jwt_rd_slot(rd, key, len) : NULL;

        if (kordon_jwt_rd_value(rd, v, 1) != 0) {
            return -1;
        }

        kordon_jwt_rd_ws(rd);

        if (rd->p < rd->end && *rd->p == ',') {
            rd->p++;
            kordon_jwt_rd_ws(rd);
            continue;
        }

        if (rd->p < rd->end && *rd->p == '}') {
            rd->p++;
            rd->depth--;
            return 0;
        }

        return -1;
    }
}


static int
kordon_jwt_rd_array(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v, int keep)
{
    size_t             n, first;
    kordon_jwt_val_t  *item;

    if (++rd->depth > rd->max_depth) {
        return -1;
    }

    rd->p++;                                    /* "[" */
    kordon_jwt_rd_ws(rd);

    keep = keep && v != NULL;
    first = rd->doc->nitems;
    n = 0;

    if (rd->p < rd->end && *rd->p == ']') {
        rd->p++;
        goto done;
    }

    for ( ;; ) {
        item = NULL;

        if (keep) {
            if (n == KORDON_JWT_DOC_ITEMS_ONE
                || rd->doc->nitems == KORDON_JWT_DOC_ITEMS)
            {
                return -1;
            }

            item = &rd->doc->item[rd->doc->nitems++];
            memset(item, 0, sizeof(kordon_jwt_val_t));
        }

        if (kordon_jwt_rd_value(rd, item, 0) != 0) {
            return -1;
        }

        n++;
        kordon_jwt_rd_ws(rd);

        if (rd->p < rd->end && *rd->p == ',') {
            rd->p++;
            kordon_jwt_rd_ws(rd);
            continue;
        }

        if (rd->p < rd->end && *rd->p == ']') {
            rd->p++;
            break;
        }

        return -1;
    }

done:

    rd->depth--;

    if (v != NULL) {
        v->type = KORDON_JWT_V_ARRAY;
        v->len = n;
        v->item = keep ? &rd->doc->item[first] : NULL;
        v->json = NULL;
    }

    return 0;
}


/* printable ASCII only: no escape, no control character, no UTF-8 */

static int
kordon_jwt_rd_string(kordon_jwt_rd_t *rd, const char **s, size_t *len)
{
    const unsigned char  *p;

    p = ++rd->p;                                /* after the quote */

    while (p < rd->end) {

        if (*p == '"') {
            *s = (const char *) rd->p;
            *len = (size_t) (p - rd->p);
            rd->p = p + 1;
            return 0;
        }

        if (*p < 0x20 || *p > 0x7f || *p == '\\') {
            return -1;
        }

        p++;
    }

    return -1;
}


/*
 * An integer as JSON writes it (no leading zero, no "+"), of at most
 * KORDON_JWT_DOC_DIGITS digits, so it fits an int64_t as jansson's
 * strtoll would read it; a fraction or an exponent makes a real, which
 * is jansson's to read.
 */

static int
kordon_jwt_rd_number(kordon_jwt_rd_t *rd, kordon_jwt_val_t *v)
{
    int                   neg;
    int64_t               n;
    const unsigned char  *p, *digits;

    p = rd->p;
    neg = (*p == '-');
    p += neg;
    digits = p;
    n = 0;

    if (p == rd->end || *p < '0' || *p > '9') {
        return -1;
    }

    if (*p == '0') {
        p++;

    } else {
        while (p < rd->end && *p >= '0' && *p <= '9'
               && p - digits < KORDON_JWT_DOC_DIGITS)
        {
            n = n * 10 + (*p++ - '0');
        }
    }

    if (p < rd->end
        && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
    {
        return -1;
    }

    rd->p = p;
    v->type = KORDON_JWT_V_INTEGER;
    v->i = neg ? -n : n;

    return 0;
}


static int
kordon_jwt_rd_literal(kordon_jwt_rd_t *rd, const char *word, size_t len)
{
    if ((size_t) (rd->end - rd->p) < len || memcmp(rd->p, word, len) != 0) {
        return -1;
    }

    rd->p += len;

    return 0;
}


static void
kordon_jwt_rd_ws(kordon_jwt_rd_t *rd)
{
    while (rd->p < rd->end
           && (*rd->p == ' ' || *rd->p == '\n' || *rd->p == '\r'
               || *rd->p == '\t'))
    {
        rd->p++;
    }
}


/* the view's place for a member of the top object, NULL if unwanted */

static kordon_jwt_val_t *
kordon_jwt_rd_slot(kordon_jwt_rd_t *rd, const char *key, size_t len)
{
    size_t  i;

    for (i = 0; i < rd->nnames; i++) {
        if (rd->names[i].len == len
            && memcmp(rd->names[i].name, key, len) == 0)
        {
            return &rd->doc->m[i];
        }
    }

    return NULL;
}
