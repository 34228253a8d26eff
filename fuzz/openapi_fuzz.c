/*
 * openapi_fuzz.c -- libFuzzer target for the edge's OpenAPI core
 * (nginx-modules/kordon_openapi/kordon_openapi_*_core.c).
 *
 * The first byte of an input chooses what the rest is:
 *
 *     'b'  a request body, validated against a document that uses every
 *          keyword the validator knows (recursive $ref, oneOf, patterns)
 *     'p'  "PATH\nQUERY\nHEADER": matched and its parameters validated
 *     'd'  an OpenAPI document, compiled (and freed)
 *
 * Anything else is taken as a body.  No input may crash, leak, hang or
 * trip a sanitizer; a body's report never lists more than its bound;
 * what kordon_oa_parse_fast() takes of a body, json_loadb() reads to an
 * equal value.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kordon_openapi_core.h"


static const char  doc_text[] =
    "{\"openapi\":\"3.1.0\",\"paths\":{"
    "\"/t\":{\"post\":{\"requestBody\":{\"required\":true,\"content\":{"
    "\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/T\"}"
    "}}}}},"
    "\"/p/{id}/{n}\":{\"parameters\":["
    "{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}},"
    "{\"name\":\"n\",\"in\":\"path\",\"required\":true,"
    "\"schema\":{\"type\":[\"integer\",\"boolean\"],\"minimum\":-5}}],"
    "\"get\":{\"parameters\":["
    "{\"name\":\"q\",\"in\":\"query\",\"schema\":{\"type\":\"string\","
    "\"pattern\":\"^[a-z]+(-[a-z]+)*$\",\"maxLength\":20}},"
    "{\"name\":\"f\",\"in\":\"query\",\"schema\":{\"type\":\"number\","
    "\"exclusiveMaximum\":1e300}},"
    "{\"name\":\"at\",\"in\":\"query\",\"schema\":{\"format\":"
    "\"date-time\"}},"
    "{\"name\":\"X-H\",\"in\":\"header\",\"schema\":{\"type\":\"string\","
    "\"format\":\"email\"}}]}},"
    "\"/p/x/{n}\":{\"get\":{\"parameters\":[{\"name\":\"n\",\"in\":"
    "\"path\",\"required\":true,\"schema\":{\"const\":\"1\"}}]}}},"
    "\"components\":{\"schemas\":{\"T\":{\"type\":\"object\","
    "\"additionalProperties\":{\"type\":\"integer\"},"
    "\"minProperties\":1,\"maxProperties\":20,"
    "\"required\":[\"a\"],\"properties\":{"
    "\"a\":{\"type\":\"integer\",\"exclusiveMinimum\":0,"
    "\"maximum\":9223372036854775807},"
    "\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":8,"
    "\"pattern\":\"(a|b)+c?$\"},"
    "\"e\":{\"format\":\"email\"},\"u\":{\"format\":\"uuid\"},"
    "\"d\":{\"format\":\"date-time\"},"
    "\"k\":{\"enum\":[\"x\",1,null,[1],{\"a\":1}]},\"c\":{\"const\":{}},"
    "\"l\":{\"type\":\"array\",\"maxItems\":5,\"items\":"
    "{\"$ref\":\"#/components/schemas/T\"}},"
    "\"o\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":10}]},"
    "\"y\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"string\"}]},"
    "\"z\":{\"allOf\":[{\"type\":\"number\"},{\"not\":{\"const\":3}}]},"
    "\"a/~b\":false}}}}}";

static kordon_oa_doc_t  *doc;


static const char *
header(void *data, const char *name, size_t *len)
{
    const char  *v = data;

    if (v == NULL) {
        return NULL;
    }

    *len = strlen(v);

    return v;
}


static void
fuzz_params(const char *s, size_t size)
{
    char                      *buf, *nl1, *nl2, *q, *h;
    kordon_oa_match_t          m;
    kordon_oa_report_t         report;
    const kordon_oa_op_t      *op;
    const kordon_oa_path_t    *p;

    buf = malloc(size + 1);
    if (buf == NULL) {
        return;
    }

    memcpy(buf, s, size);
    buf[size] = '\0';

    nl1 = memchr(buf, '\n', size);
    q = "";
    h = NULL;

    if (nl1 != NULL) {
        *nl1 = '\0';
        q = nl1 + 1;
        nl2 = strchr(q, '\n');

        if (nl2 != NULL) {
            *nl2 = '\0';
            h = nl2 + 1;
        }
    }

    p = kordon_oa_match(doc, buf, strlen(buf), &m);

    if (p != NULL) {
        op = kordon_oa_operation(p, "GET", 3);

        if (op != NULL) {
            kordon_oa_report_init(&report);
            kordon_oa_check_params(doc, op, &m, q, strlen(q), header, h,
                                   &report);

            if (report.n > KORDON_OA_ERRORS_MAX || report.n > report.total) {
                abort();
            }
        }
    }

    free(buf);
}


/* the fast reader takes nothing jansson would not read the same */
static void
fuzz_fast(const char *text, size_t len)
{
    json_t        *f, *j;
    json_error_t   err;

    f = kordon_oa_parse_fast(text, len);
    if (f == NULL) {
        return;
    }

    j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (j == NULL || !json_equal(f, j)) {
        abort();
    }

    json_decref(f);
    json_decref(j);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kordon_oa_error_t          err;
    kordon_oa_match_t          m;
    kordon_oa_report_t         report;
    kordon_oa_doc_t           *d;
    const kordon_oa_op_t      *op;

    if (doc == NULL) {
        doc = kordon_oa_load(doc_text, sizeof(doc_text) - 1, &err);
        if (doc == NULL) {
            abort();
        }
    }

    if (size > 0 && data[0] == 'd') {
        d = kordon_oa_load((const char *) data + 1, size - 1, &err);
        kordon_oa_free(d);
        return 0;
    }

    if (size > 0 && data[0] == 'p') {
        fuzz_params((const char *) data + 1, size - 1);
        return 0;
    }

    if (size > 0 && data[0] == 'b') {
        data++;
        size--;
    }

    fuzz_fast((const char *) data, size);

    op = kordon_oa_operation(kordon_oa_match(doc, "/t", 2, &m), "POST", 4);

    kordon_oa_report_init(&report);
    kordon_oa_check_body(doc, op, (const char *) data, size, &report);

    if (report.n > KORDON_OA_ERRORS_MAX || report.n > report.total) {
        abort();
    }

    return 0;
}
