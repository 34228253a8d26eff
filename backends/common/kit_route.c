/*
 * kit_route.c -- matching a path against the route table.
 *
 * Paths and patterns are cut on '/' into at most KIT_ROUTE_SEGMENTS_MAX
 * segments, without copying.  A match scores one bit per literal
 * segment, the first segment in the highest bit, so comparing scores
 * makes a literal win over a parameter at the first place they differ:
 * /v1/users/me beats /v1/users/{id} whatever the table's order.  An empty
 * segment (a trailing slash, "//") matches nothing: /v1/users/ is not
 * /v1/users.  HEAD matches GET routes, as HTTP says it must.
 */

#include <string.h>

#include "kit.h"
#include "kit_internal.h"

typedef struct {
    const char  *s[KIT_ROUTE_SEGMENTS_MAX];
    size_t       len[KIT_ROUTE_SEGMENTS_MAX];
    int          n;
} kit_segs_t;


/*
 * Cuts path into segments; "/" has none.  Returns -1 when path does not
 * start with '/' or has more than KIT_ROUTE_SEGMENTS_MAX segments.
 */
static int
kit_segs_split(const char *path, kit_segs_t *sg)
{
    const char  *p, *slash;

    sg->n = 0;
    if (path[0] != '/') {
        return -1;
    }
    if (path[1] == '\0') {
        return 0;
    }
    p = path + 1;
    for ( ;; ) {
        if (sg->n == KIT_ROUTE_SEGMENTS_MAX) {
            return -1;
        }
        slash = strchr(p, '/');
        sg->s[sg->n] = p;
        sg->len[sg->n] = slash != NULL ? (size_t) (slash - p) : strlen(p);
        sg->n++;
        if (slash == NULL) {
            return 0;
        }
        p = slash + 1;
    }
}


static int
kit_seg_is_param(const char *s, size_t len)
{
    return len >= 3 && s[0] == '{' && s[len - 1] == '}';
}


/*
 * Matches the path's segments against a pattern's: the score (literal
 * segments as bits, >= 0) and the parameters in *params, or -1.
 */
static long
kit_route_score(const kit_segs_t *pat, const kit_segs_t *path,
    kit_params_t *params)
{
    long  score;
    int   i;

    if (pat->n != path->n) {
        return -1;
    }
    score = 0;
    params->n = 0;
    for (i = 0; i < pat->n; i++) {
        if (kit_seg_is_param(pat->s[i], pat->len[i])) {
            if (path->len[i] == 0) {
                return -1;
            }
            if (params->n == KIT_ROUTE_PARAMS_MAX) {
                KIT_ASSERT(!"a route pattern has too many parameters");
                return -1;
            }
            params->name[params->n] = pat->s[i] + 1;
            params->value[params->n] = path->s[i];
            params->value_len[params->n] = path->len[i];
            params->n++;
            continue;
        }
        if (pat->len[i] != path->len[i]
            || memcmp(pat->s[i], path->s[i], pat->len[i]) != 0)
        {
            return -1;
        }
        score |= 1L << (KIT_ROUTE_SEGMENTS_MAX - 1 - i);
    }
    return score;
}


static int
kit_method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0
           || (strcmp(method, "HEAD") == 0
               && strcmp(route_method, "GET") == 0);
}


int
kit_route_match(const kit_route_t *routes, size_t nroutes,
    const char *method, const char *path, kit_params_t *params)
{
    kit_params_t  tmp, best_params;
    kit_segs_t    sp, sr;
    size_t        i;
    long          score, best_score;
    int           best, path_seen;

    memset(&best_params, 0, sizeof(best_params));
    if (method == NULL || path == NULL || kit_segs_split(path, &sp) != 0) {
        return -1;
    }
    best = -1;
    best_score = -1;
    path_seen = 0;
    for (i = 0; i < nroutes; i++) {
        if (kit_segs_split(routes[i].pattern, &sr) != 0) {
            KIT_ASSERT(!"route pattern must start with '/' and fit the limits");
            continue;
        }
        score = kit_route_score(&sr, &sp, &tmp);
        if (score < 0) {
            continue;
        }
        path_seen = 1;
        if (kit_method_matches(routes[i].method, method)
            && score > best_score)
        {
            best = (int) i;
            best_score = score;
            best_params = tmp;
        }
    }
    if (params != NULL) {
        *params = best_params;
    }
    if (best >= 0) {
        return best;
    }
    return path_seen ? -2 : -1;
}


int
kit_params_find(const kit_params_t *p, const char *name)
{
    size_t  len;
    int     i;

    len = strlen(name);
    for (i = 0; i < p->n; i++) {
        if (strncmp(p->name[i], name, len) == 0 && p->name[i][len] == '}') {
            return i;
        }
    }
    return -1;
}


/* 1 when the ", "-separated list already names method (mlen bytes). */
static int
kit_allow_has(const char *list, const char *method, size_t mlen)
{
    const char  *p, *comma;
    size_t       len;

    for (p = list; *p != '\0'; p = comma + 2) {
        comma = strstr(p, ", ");
        len = comma != NULL ? (size_t) (comma - p) : strlen(p);
        if (len == mlen && memcmp(p, method, mlen) == 0) {
            return 1;
        }
        if (comma == NULL) {
            break;
        }
    }
    return 0;
}


size_t
kit_route_allow(const kit_route_t *routes, size_t nroutes,
    const char *path, char *buf, size_t buflen)
{
    kit_params_t  tmp;
    kit_segs_t    sp, sr;
    size_t        i, len, mlen;

    KIT_ASSERT(buflen > 0);
    len = strlen(buf);
    if (kit_segs_split(path, &sp) != 0) {
        return len;
    }
    for (i = 0; i < nroutes; i++) {
        if (kit_segs_split(routes[i].pattern, &sr) != 0
            || kit_route_score(&sr, &sp, &tmp) < 0)
        {
            continue;
        }
        mlen = strlen(routes[i].method);
        if (kit_allow_has(buf, routes[i].method, mlen)) {
            continue;
        }
        if (len + mlen + 3 > buflen) {
            break;
        }
        len += (size_t) snprintf(buf + len, buflen - len, "%s%s",
                                 len > 0 ? ", " : "", routes[i].method);
    }
    return len;
}
