/*
 * request.c -- what a money-moving request must look like before it may
 * reach the database, with no state: the body parsed and its fields
 * checked (every problem reported at once, each with the JSON Pointer of
 * its field), the Idempotency-Key and owner id checked, and the request
 * hash that tells a retry from a reuse of the key.
 *
 * The hash covers the meaning of the request, not its bytes: the same
 * fields in another order or with other white space are the same request,
 * while any change of account, amount, currency, direction or reason is
 * another.  Each field goes in length-prefixed, so no two different
 * requests can run together into the same input.
 *
 * The posting item's life (new, free, scope) is here too: the handler
 * makes it, the answer frees it.
 */

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ledger.h"

#define LEDGER_POINTER_MAX   256
#define LEDGER_HASH_INPUT_MAX \
    (16 * 8 + 2 * LEDGER_UUID_LEN + LEDGER_KIND_MAX + 24 \
     + LEDGER_CURRENCY_LEN + LEDGER_REASON_MAX + 64)
/* 2^63 as a double: a real at least this large came from an integer
 * that does not fit in int64. */
#define LEDGER_INT64_BOUND   9223372036854775808.0

static const char  ledger_uuid_why[] = "must be an account id (a UUID)";


void
ledger_error_add(json_t *errors, const char *pointer, const char *message)
{
    json_t  *e;

    e = json_pack("{s:s, s:s}", "pointer", pointer, "message", message);
    if (e != NULL) {
        json_array_append_new(errors, e);
    }
}


/* "/" + key with '~' and '/' escaped (RFC 6901), cut at the buffer. */
static void
ledger_pointer(const char *key, char *buf, size_t len)
{
    size_t  o;

    o = 0;
    buf[o++] = '/';
    for ( ; *key != '\0' && o + 3 < len; key++) {
        if (*key == '~' || *key == '/') {
            buf[o++] = '~';
            buf[o++] = *key == '~' ? '0' : '1';
        } else {
            buf[o++] = *key;
        }
    }
    buf[o] = '\0';
}


/*
 * The fields of a body whose integers overflowed int64: parsed again with
 * integers as reals, each top-level field holding one beyond 64 bits is
 * named.  NULL when none can be named.
 */
static json_t *
ledger_big_integers(const char *body, size_t len)
{
    const char  *key;
    json_t      *doc, *v, *errors;
    char         ptr[LEDGER_POINTER_MAX];

    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES
                                | JSON_DECODE_INT_AS_REAL, NULL);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    errors = json_array();
    json_object_foreach(doc, key, v) {
        if (json_is_real(v) && fabs(json_real_value(v))
                               >= LEDGER_INT64_BOUND)
        {
            ledger_pointer(key, ptr, sizeof(ptr));
            ledger_error_add(errors, ptr, "is beyond the 64-bit range");
        }
    }
    json_decref(doc);
    if (errors != NULL && json_array_size(errors) == 0) {
        json_decref(errors);
        return NULL;
    }
    return errors;
}


json_t *
ledger_body_parse(const char *body, size_t len, int *status, char *detail,
    size_t dlen, json_t **errors)
{
    json_error_t  e;
    json_t       *doc;

    *errors = NULL;
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (doc == NULL) {
        if (strncmp(e.text, "too big", 7) == 0
            && (*errors = ledger_big_integers(body, len)) != NULL)
        {
            *status = 422;
            snprintf(detail, dlen, "request body has an integer beyond the "
                     "64-bit range");
            return NULL;
        }
        *status = 400;
        snprintf(detail, dlen, "request body is not valid JSON: %s at "
                 "line %d, column %d", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        *status = 400;
        snprintf(detail, dlen, "request body must be a JSON object");
        return NULL;
    }
    return doc;
}


/* Reports each field of body not in known; returns how many. */
static int
ledger_unknown_fields(const json_t *body, const char *const *known,
    json_t *errors)
{
    const char  *key;
    json_t      *v;
    char         ptr[LEDGER_POINTER_MAX];
    int          n, i, found;

    n = 0;
    json_object_foreach((json_t *) body, key, v) {
        found = 0;
        for (i = 0; known[i] != NULL && !found; i++) {
            found = strcmp(known[i], key) == 0;
        }
        if (!found) {
            ledger_pointer(key, ptr, sizeof(ptr));
            ledger_error_add(errors, ptr, "is not a known field");
            n++;
        }
    }
    return n;
}


/* An account id field into out; 0, or 1 after reporting it. */
static int
ledger_uuid_field(const json_t *body, const char *name,
    char out[LEDGER_UUID_LEN + 1], json_t *errors)
{
    json_t  *v;
    char     ptr[LEDGER_POINTER_MAX];

    v = json_object_get(body, name);
    if (v != NULL && ledger_uuid_parse(json_string_value(v), out) == 0) {
        return 0;
    }
    ledger_pointer(name, ptr, sizeof(ptr));
    ledger_error_add(errors, ptr, v == NULL ? "is required" : ledger_uuid_why);
    return 1;
}


/* amount and currency, common to every money-moving body. */
static int
ledger_money_fields(const json_t *body, int64_t max, ledger_item_t *it,
    json_t *errors)
{
    const char  *why;
    int          n;

    n = 0;
    if (ledger_amount_parse(json_object_get(body, "amount"), max,
                            &it->amount, &why) != 0)
    {
        ledger_error_add(errors, "/amount", why);
        n++;
    }
    if (ledger_currency_parse(json_object_get(body, "currency"),
                              it->currency, &why) != 0)
    {
        ledger_error_add(errors, "/currency", why);
        n++;
    }
    return n;
}


int
ledger_transfer_read(const json_t *body, int64_t max, ledger_item_t *it,
    json_t *errors)
{
    static const char *const  known[] = {
        "from_account_id", "to_account_id", "amount", "currency", NULL
    };
    int                       n;

    n = ledger_unknown_fields(body, known, errors);
    n += ledger_uuid_field(body, "from_account_id", it->debit, errors);
    n += ledger_uuid_field(body, "to_account_id", it->credit, errors);
    n += ledger_money_fields(body, max, it, errors);
    if (it->debit[0] != '\0' && strcmp(it->debit, it->credit) == 0) {
        ledger_error_add(errors, "/to_account_id",
                         "must differ from from_account_id");
        n++;
    }
    it->must_own = 1;
    it->system_kind = NULL;
    return n;
}


/* 1 when s holds something besides white space. */
static int
ledger_not_blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] != '\0';
}


/* The reason field into it->reason; 0, or 1 after reporting it. */
static int
ledger_reason_field(const json_t *body, ledger_item_t *it, json_t *errors)
{
    const json_t  *v;
    const char    *s;

    v = json_object_get(body, "reason");
    s = json_string_value(v);
    if (s == NULL || !ledger_not_blank(s)) {
        ledger_error_add(errors, "/reason", v == NULL ? "is required"
                         : "must be a non-empty string");
        return 1;
    }
    if (json_string_length(v) > LEDGER_REASON_MAX
        || strlen(s) != json_string_length(v))
    {
        ledger_error_add(errors, "/reason", "must be at most 500 bytes, "
                         "without NUL characters");
        return 1;
    }
    it->reason = strdup(s);
    if (it->reason == NULL) {
        ledger_error_add(errors, "/reason", "could not be read (out of "
                         "memory)");
        return 1;
    }
    return 0;
}


int
ledger_adjustment_read(const json_t *body, int64_t max, ledger_item_t *it,
    json_t *errors)
{
    static const char *const  known[] = {
        "account_id", "amount", "currency", "direction", "reason", NULL
    };
    const char               *dir;
    char                      account[LEDGER_UUID_LEN + 1];
    int                       n;

    n = ledger_unknown_fields(body, known, errors);
    n += ledger_uuid_field(body, "account_id", account, errors);
    n += ledger_money_fields(body, max, it, errors);
    n += ledger_reason_field(body, it, errors);
    dir = json_string_value(json_object_get(body, "direction"));
    it->must_own = 0;
    it->system_kind = "adjustments";
    if (dir != NULL && strcmp(dir, "credit") == 0) {
        memcpy(it->credit, account, sizeof(account));
        it->debit[0] = '\0';
    } else if (dir != NULL && strcmp(dir, "debit") == 0) {
        memcpy(it->debit, account, sizeof(account));
        it->credit[0] = '\0';
    } else {
        ledger_error_add(errors, "/direction", json_object_get(body,
                         "direction") == NULL ? "is required"
                         : "must be \"credit\" or \"debit\"");
        n++;
    }
    return n;
}


int
ledger_account_read(const json_t *body,
    char currency[LEDGER_CURRENCY_LEN + 1], json_t *errors)
{
    static const char *const  known[] = { "currency", NULL };
    const char               *why;
    int                       n;

    n = ledger_unknown_fields(body, known, errors);
    if (ledger_currency_parse(json_object_get(body, "currency"), currency,
                              &why) != 0)
    {
        ledger_error_add(errors, "/currency", why);
        n++;
    }
    return n;
}


/* 1 when s is 1..max bytes, each in lo..0x7e. */
static int
ledger_ascii_valid(const char *s, size_t max, char lo)
{
    size_t  i;

    if (s == NULL) {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if (i == max || s[i] < lo || s[i] > '~') {
            return 0;
        }
    }
    return i > 0;
}


int
ledger_idem_key_valid(const char *s)
{
    return ledger_ascii_valid(s, LEDGER_IDEM_KEY_MAX, ' ');
}


int
ledger_owner_valid(const char *s)
{
    return ledger_ascii_valid(s, LEDGER_OWNER_MAX, '!');
}


/* Appends "<len>:<s>\n" to buf at *o; -1 when it does not fit. */
static int
ledger_hash_field(char *buf, size_t len, size_t *o, const char *s)
{
    int  n;

    n = snprintf(buf + *o, len - *o, "%zu:%s\n", strlen(s), s);
    if (n < 0 || (size_t) n >= len - *o) {
        return -1;
    }
    *o += (size_t) n;
    return 0;
}


/*
 * SHA-256, fetched from OpenSSL's providers once: EVP_sha256() in every
 * EVP_Digest() call fetches it again (OpenSSL 3's implicit fetch), which
 * cost more than hashing the request itself (callgrind, 1,000 requests).
 */
static EVP_MD           *ledger_sha256;
static pthread_once_t    ledger_sha256_once = PTHREAD_ONCE_INIT;

static void
ledger_sha256_fetch(void)
{
    ledger_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}


int
ledger_request_hash(ledger_item_t *it)
{
    static const char   hex[] = "0123456789abcdef";
    unsigned char       md[EVP_MAX_MD_SIZE];
    unsigned int        mdlen;
    char                buf[LEDGER_HASH_INPUT_MAX], amount[24];
    size_t              o;
    unsigned int        i;

    snprintf(amount, sizeof(amount), "%" PRId64, it->amount);
    o = 0;
    if (ledger_hash_field(buf, sizeof(buf), &o, "kordon-ledger-v1") != 0
        || ledger_hash_field(buf, sizeof(buf), &o, ledger_item_scope(it))
        || ledger_hash_field(buf, sizeof(buf), &o, it->debit)
        || ledger_hash_field(buf, sizeof(buf), &o, it->credit)
        || ledger_hash_field(buf, sizeof(buf), &o,
                             it->system_kind ? it->system_kind : "")
        || ledger_hash_field(buf, sizeof(buf), &o, amount)
        || ledger_hash_field(buf, sizeof(buf), &o, it->currency)
        || ledger_hash_field(buf, sizeof(buf), &o,
                             it->reason ? it->reason : ""))
    {
        return -1;
    }
    pthread_once(&ledger_sha256_once, ledger_sha256_fetch);
    if (ledger_sha256 == NULL
        || EVP_Digest(buf, o, md, &mdlen, ledger_sha256, NULL) != 1
        || mdlen * 2 != LEDGER_HASH_HEX_LEN)
    {
        return -1;
    }
    for (i = 0; i < mdlen; i++) {
        it->idem_hash[2 * i] = hex[md[i] >> 4];
        it->idem_hash[2 * i + 1] = hex[md[i] & 0x0f];
    }
    it->idem_hash[LEDGER_HASH_HEX_LEN] = '\0';
    return 0;
}


ledger_item_t *
ledger_item_new(kit_req_t *req, ledger_op_t op)
{
    ledger_item_t  *it;

    it = calloc(1, sizeof(*it));
    if (it != NULL) {
        it->req = req;
        it->op = op;
    }
    return it;
}


void
ledger_item_free(ledger_item_t *it)
{
    if (it != NULL) {
        free(it->reason);
        free(it->t.reason);
        free(it);
    }
}


const char *
ledger_item_scope(const ledger_item_t *it)
{
    return it->op == LEDGER_OP_ADJUSTMENT ? "adjustment" : "transfer";
}


int
ledger_hold_read(const json_t *body, int64_t max, json_t *args,
    json_t *errors)
{
    static const char *const  known[] = {
        "from_account_id", "to_account_id", "amount", "currency",
        "expires_in", NULL
    };
    ledger_item_t             it;
    const json_t             *v;
    json_int_t                ttl;
    int                       n;

    memset(&it, 0, sizeof(it));
    n = ledger_unknown_fields(body, known, errors);
    n += ledger_uuid_field(body, "from_account_id", it.debit, errors);
    n += ledger_uuid_field(body, "to_account_id", it.credit, errors);
    n += ledger_money_fields(body, max, &it, errors);
    if (it.debit[0] != '\0' && strcmp(it.debit, it.credit) == 0) {
        ledger_error_add(errors, "/to_account_id",
                         "must differ from from_account_id");
        n++;
    }
    ttl = LEDGER_HOLD_TTL_S;
    v = json_object_get(body, "expires_in");
    if (v != NULL) {
        ttl = json_is_integer(v) ? json_integer_value(v) : 0;
        if (ttl < 1 || ttl > LEDGER_HOLD_TTL_MAX_S) {
            ledger_error_add(errors, "/expires_in", "must be an integer "
                             "number of seconds in 1.."
                             LEDGER_STR(LEDGER_HOLD_TTL_MAX_S));
            n++;
        }
    }
    if (n == 0
        && (json_object_set_new(args, "from_account_id",
                                json_string(it.debit)) != 0
            || json_object_set_new(args, "to_account_id",
                                   json_string(it.credit)) != 0
            || json_object_set_new(args, "amount",
                                   json_integer(it.amount)) != 0
            || json_object_set_new(args, "currency",
                                   json_string(it.currency)) != 0
            || json_object_set_new(args, "expires_in",
                                   json_integer(ttl)) != 0))
    {
        ledger_error_add(errors, "", "could not be read (out of memory)");
        n++;
    }
    return n;
}
