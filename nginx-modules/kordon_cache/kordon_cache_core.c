/*
 * kordon_cache_core.c -- the nginx-free parts of the Redis response
 * cache (see kordon_cache_core.h).
 *
 * The one idea: two requests share a cache entry exactly when their
 * canonical form (method, normalized path, query sorted by parameter
 * name, user) is the same, and the Redis key is a SHA-256 of that form,
 * so keys have a fixed length and never show a user id or a path.
 * The digest and its context are fetched once per process and reused.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "kordon_cache_core.h"


typedef struct {
    const char  *p;
    size_t       len;
    size_t       name_len;
} kordon_cache_param_t;


static EVP_MD_CTX *kordon_cache_md_ctx(void);
static const char *kordon_cache_entry_head(const char *p, const char *end,
    uint64_t *nums);
static int kordon_cache_lower(int c);
static int kordon_cache_token(const char *p, size_t len, const char *name);
static int64_t kordon_cache_seconds(const char *p, size_t len);


/*
 * SHA-256 and one digest context for the process, made on first use and
 * kept: an nginx worker hashes a key per lookup, and OpenSSL 3 spent more
 * on fetching the algorithm and allocating a context for each key than
 * on hashing it (callgrind: 6,700 of a HIT's 26,000 instructions went to
 * the key).  Not for several threads at once; nginx workers have one.
 */
static EVP_MD      *kordon_cache_sha256;
static EVP_MD_CTX  *kordon_cache_ctx;


static EVP_MD_CTX *
kordon_cache_md_ctx(void)
{
    if (kordon_cache_ctx) {
        return kordon_cache_ctx;
    }

    if (kordon_cache_sha256 == NULL) {
        kordon_cache_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (kordon_cache_sha256 == NULL) {
            return NULL;
        }
    }

    kordon_cache_ctx = EVP_MD_CTX_new();

    return kordon_cache_ctx;
}


size_t
kordon_cache_path_normalize(const char *path, size_t len, char *out)
{
    size_t       n, seg;
    const char  *end, *s, *e;

    /*
     * "/" before each segment kept, none after: the output never needs
     * more than len + 1 bytes ("a/" -> "/a/")
     */
    n = 0;
    end = path + len;

    for (s = path; s < end; s = e) {
        while (s < end && *s == '/') {
            s++;
        }

        for (e = s; e < end && *e != '/'; e++) { /* void */ }

        seg = (size_t) (e - s);

        if (seg == 0 || (seg == 1 && s[0] == '.')) {
            continue;
        }

        if (seg == 2 && s[0] == '.' && s[1] == '.') {
            /* drop the last segment and its "/"; never above the root */
            while (n > 0 && out[n - 1] != '/') {
                n--;
            }

            if (n > 0) {
                n--;
            }

            continue;
        }

        out[n++] = '/';
        memcpy(out + n, s, seg);
        n += seg;
    }

    if (n == 0) {
        out[n++] = '/';

    } else if (path[len - 1] == '/') {
        out[n++] = '/';
    }

    return n;
}


long
kordon_cache_query_normalize(const char *query, size_t len, char *out)
{
    int                    c;
    size_t                 i, j, n, k, out_len;
    const char            *end, *s, *e, *eq;
    kordon_cache_param_t   params[KORDON_CACHE_QUERY_PARAMS_MAX], tmp;

    n = 0;
    end = query + len;

    for (s = query; s < end; s = e + 1) {
        for (e = s; e < end && *e != '&'; e++) { /* void */ }

        if (e == s) {
            continue;
        }

        if (n == KORDON_CACHE_QUERY_PARAMS_MAX) {
            return -1;
        }

        eq = memchr(s, '=', (size_t) (e - s));
        params[n].p = s;
        params[n].len = (size_t) (e - s);
        params[n].name_len = eq ? (size_t) (eq - s) : params[n].len;
        n++;
    }

    /* insertion sort: stable, and n is small and bounded */
    for (i = 1; i < n; i++) {
        tmp = params[i];

        for (j = i; j > 0; j--) {
            k = tmp.name_len < params[j - 1].name_len
                ? tmp.name_len : params[j - 1].name_len;

            c = memcmp(params[j - 1].p, tmp.p, k);

            if (c < 0 || (c == 0 && params[j - 1].name_len <= tmp.name_len))
            {
                break;
            }

            params[j] = params[j - 1];
        }

        params[j] = tmp;
    }

    out_len = 0;

    for (i = 0; i < n; i++) {
        if (i > 0) {
            out[out_len++] = '&';
        }

        memcpy(out + out_len, params[i].p, params[i].len);
        out_len += params[i].len;
    }

    return (long) out_len;
}


int
kordon_cache_key(const char *method, size_t method_len,
    const char *path, size_t path_len, const char *query, size_t query_len,
    const char *user, size_t user_len, char *out)
{
    return kordon_cache_key_vary(method, method_len, path, path_len, query,
                                 query_len, user, user_len, NULL, 0, out);
}


int
kordon_cache_key_vary(const char *method, size_t method_len,
    const char *path, size_t path_len, const char *query, size_t query_len,
    const char *user, size_t user_len, const char *vary, size_t vary_len,
    char *out)
{
    int            rc;
    char           prefix[24];
    size_t         i, k, n, nparts;
    unsigned       md_len;
    EVP_MD_CTX    *md;
    unsigned char  digest[EVP_MAX_MD_SIZE];
    const char    *parts[5] = { method, path, query, user, vary };
    size_t         lens[5] = { method_len, path_len, query_len, user_len,
                               vary_len };

    static const char  hex[] = "0123456789abcdef";

    /* no vary part at all: the keys of locations without kordon_cache_vary */
    nparts = vary ? 5 : 4;

    md = kordon_cache_md_ctx();
    if (md == NULL) {
        return -1;
    }

    /* the digest fetched once: EVP_sha256() here fetched it per call */
    rc = EVP_DigestInit_ex2(md, kordon_cache_sha256, NULL);

    for (i = 0; rc == 1 && i < nparts; i++) {
        /* "<length>:" before each part: "a" + "bc" != "ab" + "c" */
        k = sizeof(prefix) - 1;
        prefix[k] = ':';
        n = lens[i];

        do {
            prefix[--k] = (char) ('0' + n % 10);
            n /= 10;
        } while (n && k > 0);

        rc = EVP_DigestUpdate(md, prefix + k, sizeof(prefix) - k);

        if (rc == 1 && lens[i] != 0) {
            rc = EVP_DigestUpdate(md, parts[i], lens[i]);
        }
    }

    if (rc == 1) {
        rc = EVP_DigestFinal_ex(md, digest, &md_len);
    }

    if (rc != 1 || md_len != 32) {
        return -1;
    }

    memcpy(out, KORDON_CACHE_KEY_PREFIX, sizeof(KORDON_CACHE_KEY_PREFIX) - 1);
    out += sizeof(KORDON_CACHE_KEY_PREFIX) - 1;

    for (i = 0; i < 32; i++) {
        *out++ = hex[digest[i] >> 4];
        *out++ = hex[digest[i] & 0xf];
    }

    return 0;
}


void
kordon_cache_cc_init(kordon_cache_cc_t *cc)
{
    memset(cc, 0, sizeof(kordon_cache_cc_t));
    cc->max_age = -1;
    cc->s_maxage = -1;
}


void
kordon_cache_cc_parse(kordon_cache_cc_t *cc, const char *value, size_t len)
{
    int          quoted;
    size_t       name_len, arg_len;
    const char  *end, *s, *e, *eq, *arg;

    end = value + len;

    for (s = value; s < end; s = e + 1) {
        /* a directive ends at a comma outside a quoted string */
        quoted = 0;

        for (e = s; e < end && (quoted || *e != ','); e++) {
            if (*e == '"') {
                quoted = !quoted;
            }
        }

        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }

        eq = memchr(s, '=', (size_t) (e - s));
        name_len = (size_t) ((eq ? eq : e) - s);

        while (name_len && (s[name_len - 1] == ' ' || s[name_len - 1] == '\t'))
        {
            name_len--;
        }

        arg = eq ? eq + 1 : e;
        arg_len = (size_t) (e - arg);

        if (kordon_cache_token(s, name_len, "no-store")) {
            cc->no_store = 1;

        } else if (kordon_cache_token(s, name_len, "no-cache")) {
            cc->no_cache = 1;

        } else if (kordon_cache_token(s, name_len, "private")) {
            cc->private_ = 1;

        } else if (kordon_cache_token(s, name_len, "max-age")) {
            cc->max_age = kordon_cache_seconds(arg, arg_len);

        } else if (kordon_cache_token(s, name_len, "s-maxage")) {
            cc->s_maxage = kordon_cache_seconds(arg, arg_len);
        }
    }
}


uint64_t
kordon_cache_ttl_ms(const kordon_cache_cc_t *cc, uint64_t max_ms,
    int user_key)
{
    int64_t   age;
    uint64_t  ms;

    if (cc->no_store || cc->no_cache || (cc->private_ && !user_key)) {
        return 0;
    }

    age = cc->s_maxage >= 0 ? cc->s_maxage : cc->max_age;

    if (age < 0) {
        return max_ms;
    }

    ms = (uint64_t) age * 1000;

    return ms < max_ms ? ms : max_ms;
}


int
kordon_cache_tag_valid(const char *tag, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > KORDON_CACHE_TAG_LEN_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = tag[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.'
              || c == ':' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


size_t
kordon_cache_entry_size(const kordon_cache_entry_t *e)
{
    size_t  i, n;

    n = KORDON_CACHE_ENTRY_HEAD_MAX;

    for (i = 0; i < e->nheaders; i++) {
        n += e->headers[i].name_len + 2 + e->headers[i].value_len + 1;
    }

    return n + e->body_len;
}


char *
kordon_cache_entry_write(char *out, const kordon_cache_entry_t *e)
{
    int     n;
    size_t  i;

    n = snprintf(out, KORDON_CACHE_ENTRY_HEAD_MAX, KORDON_CACHE_ENTRY_MAGIC
                 "%u %llu %zu %zu\n", e->status,
                 (unsigned long long) e->stored, e->nheaders, e->body_len);
    out += n;

    for (i = 0; i < e->nheaders; i++) {
        memcpy(out, e->headers[i].name, e->headers[i].name_len);
        out += e->headers[i].name_len;
        *out++ = ':';
        *out++ = ' ';
        memcpy(out, e->headers[i].value, e->headers[i].value_len);
        out += e->headers[i].value_len;
        *out++ = '\n';
    }

    if (e->body_len) {
        memcpy(out, e->body, e->body_len);
    }

    return out + e->body_len;
}


int
kordon_cache_entry_parse(const char *data, size_t len,
    kordon_cache_entry_t *e)
{
    size_t       i;
    uint64_t     nums[4];
    const char  *p, *end, *nl, *colon;

    end = data + len;
    p = kordon_cache_entry_head(data, end, nums);

    if (p == NULL) {
        return -1;
    }

    if (nums[0] < 100 || nums[0] > 599
        || nums[2] > KORDON_CACHE_HEADERS_MAX)
    {
        return -1;
    }

    e->status = (unsigned) nums[0];
    e->stored = nums[1];
    e->nheaders = (size_t) nums[2];

    for (i = 0; i < e->nheaders; i++) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL) {
            return -1;
        }

        colon = memchr(p, ':', (size_t) (nl - p));
        if (colon == NULL || colon == p || colon + 1 == nl
            || colon[1] != ' ')
        {
            return -1;
        }

        e->headers[i].name = p;
        e->headers[i].name_len = (size_t) (colon - p);
        e->headers[i].value = colon + 2;
        e->headers[i].value_len = (size_t) (nl - colon - 2);
        p = nl + 1;
    }

    if ((uint64_t) (end - p) != nums[3]) {
        return -1;
    }

    e->body = p;
    e->body_len = (size_t) nums[3];

    return 0;
}


/*
 * The entry's first line: the magic, then status, stored, header count
 * and body length, each 1 to 19 digits.  Returns where the headers
 * start, or NULL.
 */
static const char *
kordon_cache_entry_head(const char *p, const char *end, uint64_t *nums)
{
    size_t  i, field;

    if ((size_t) (end - p) < sizeof(KORDON_CACHE_ENTRY_MAGIC) - 1
        || memcmp(p, KORDON_CACHE_ENTRY_MAGIC,
                  sizeof(KORDON_CACHE_ENTRY_MAGIC) - 1) != 0)
    {
        return NULL;
    }

    p += sizeof(KORDON_CACHE_ENTRY_MAGIC) - 1;

    for (field = 0; field < 4; field++) {
        nums[field] = 0;

        if (p == end || *p < '0' || *p > '9') {
            return NULL;
        }

        for (i = 0; p < end && *p >= '0' && *p <= '9'; p++, i++) {
            if (i == 19) {
                return NULL;
            }

            nums[field] = nums[field] * 10 + (uint64_t) (*p - '0');
        }

        if (p == end || *p != (field == 3 ? '\n' : ' ')) {
            return NULL;
        }

        p++;
    }

    return p;
}


static int
kordon_cache_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


/* 1 if p[0..len) is name, case-insensitively */
static int
kordon_cache_token(const char *p, size_t len, const char *name)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (name[i] == '\0' || kordon_cache_lower(p[i]) != name[i]) {
            return 0;
        }
    }

    return name[len] == '\0';
}


/* delta-seconds, optionally quoted; malformed = 0, huge = a year */
static int64_t
kordon_cache_seconds(const char *p, size_t len)
{
    size_t   i;
    int64_t  n;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p++;
        len -= 2;
    }

    if (len == 0) {
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }

        if (n < 31536000) {
            n = n * 10 + (p[i] - '0');
        }
    }

    return n < 31536000 ? n : 31536000;
}


size_t
kordon_cache_vary_value(const char *value, size_t len, char *out)
{
    size_t       n;
    unsigned     space;
    const char  *p, *end;

    n = 0;
    space = 0;
    end = value + len;

    for (p = value; p < end; p++) {
        if (*p == ' ' || *p == '\t') {
            space = 1;
            continue;
        }

        /* one space between words; none at the ends or around a comma */
        if (space && n > 0 && out[n - 1] != ',' && *p != ',') {
            out[n++] = ' ';
        }

        space = 0;
        out[n++] = *p;
    }

    return n;
}


long
kordon_cache_tags_parse(const char *list, size_t len, kordon_cache_str_t *tags,
    size_t max)
{
    size_t       n;
    const char  *p, *s, *end;

    n = 0;
    p = list;
    end = list + len;

    for ( ;; ) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) {
            p++;
        }

        if (p == end) {
            break;
        }

        for (s = p; p < end && *p != ' ' && *p != ',' && *p != '\t'; p++) {
            /* void */
        }

        if (n == max || !kordon_cache_tag_valid(s, (size_t) (p - s))) {
            return -1;
        }

        tags[n].data = s;
        tags[n].len = (size_t) (p - s);
        n++;
    }

    return n ? (long) n : -1;
}
