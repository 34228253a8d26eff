/*
 * test_ledger_request.c -- backends/ledger/request.c and the batch
 * encoding of post.c: bodies parsed (an integer beyond 64 bits named by
 * its field, not lost in a syntax error), transfer, adjustment and
 * account fields checked with every problem's JSON Pointer, the
 * Idempotency-Key and owner checks, the request hash (what it covers and
 * what it ignores), and the JSON a batch travels in.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/ledger/money.c"
#include "../../backends/ledger/request.c"
#include "../../backends/ledger/http.c"
#include "../../backends/ledger/post.c"

/* main.c's settings, with every fee shard in use (the default). */
ledger_config_t  ledger_cf = { .fee_shards = LEDGER_SHARDS };

#define A  "01a20af9-0532-7808-bb9f-6faf61b1da84"
#define B  "01a20af9-0533-75b3-9a4c-54f0dfd3975e"


/* The pointers of errors, space separated (static buffer). */
static const char *
pointers(json_t *errors)
{
    static char  buf[512];
    json_t      *e;
    size_t       i;

    buf[0] = '\0';
    json_array_foreach(errors, i, e) {
        if (i > 0) {
            strcat(buf, " ");
        }
        strcat(buf, json_string_value(json_object_get(e, "pointer")));
    }
    return buf;
}


static json_t *
parse(const char *body, int *status, json_t **errors)
{
    char  detail[256];

    return ledger_body_parse(body, strlen(body), status, detail,
                             sizeof(detail), errors);
}


static void
test_body(void **state)
{
    json_t  *doc, *errors;
    int      status;

    doc = parse("{\"amount\": 5}", &status, &errors);
    assert_non_null(doc);
    json_decref(doc);

    assert_null(parse("{\"amount\": 5", &status, &errors));
    assert_int_equal(status, 400);
    assert_null(errors);
    assert_null(parse("[1]", &status, &errors));
    assert_int_equal(status, 400);
    assert_null(parse("{\"a\":1,\"a\":2}", &status, &errors));
    assert_int_equal(status, 400);

    assert_null(parse("{\"amount\": 9223372036854775808, \"x\": 1}", &status,
                      &errors));
    assert_int_equal(status, 422);
    assert_string_equal(pointers(errors), "/amount");
    json_decref(errors);
    assert_null(parse("{\"a/b~c\": -99999999999999999999}", &status,
                      &errors));
    assert_int_equal(status, 422);
    assert_string_equal(pointers(errors), "/a~1b~0c");
    json_decref(errors);
    /* Nested too deep to name: a plain 400. */
    assert_null(parse("{\"x\": [99999999999999999999]}", &status, &errors));
    assert_int_equal(status, 400);
    assert_null(errors);
}


/* Reads body as a transfer; returns the pointers of its problems. */
static const char *
transfer(const char *body, ledger_item_t *it)
{
    json_t      *doc, *errors;
    const char  *p;
    int          status, n;

    memset(it, 0, sizeof(*it));
    doc = parse(body, &status, &errors);
    assert_non_null(doc);
    errors = json_array();
    it->op = LEDGER_OP_P2P;
    n = ledger_transfer_read(doc, 1000, it, errors);
    assert_int_equal(n, (int) json_array_size(errors));
    p = pointers(errors);
    json_decref(doc);
    json_decref(errors);
    return p;
}


static void
test_transfer(void **state)
{
    ledger_item_t  it;

    assert_string_equal(transfer("{\"from_account_id\":\"" A "\","
        "\"to_account_id\":\"" B "\",\"amount\":1000,\"currency\":\"EUR\"}",
        &it), "");
    assert_string_equal(it.debit, A);
    assert_string_equal(it.credit, B);
    assert_int_equal(it.amount, 1000);
    assert_string_equal(it.currency, "EUR");
    assert_true(it.must_own);

    assert_string_equal(transfer("{}", &it),
        "/from_account_id /to_account_id /amount /currency");
    assert_string_equal(transfer("{\"from_account_id\":\"" A "\","
        "\"to_account_id\":\"" A "\",\"amount\":1001,\"currency\":\"EUR\","
        "\"memo\":\"x\"}", &it), "/memo /amount /to_account_id");
    assert_string_equal(transfer("{\"from_account_id\":1,"
        "\"to_account_id\":\"" B "\",\"amount\":-1,\"currency\":\"usd\"}",
        &it), "/from_account_id /amount /currency");
}


static const char *
adjustment(const char *body, ledger_item_t *it)
{
    json_t      *doc, *errors;
    const char  *p;
    int          status;

    free(it->reason);
    memset(it, 0, sizeof(*it));
    it->op = LEDGER_OP_ADJUSTMENT;
    doc = parse(body, &status, &errors);
    assert_non_null(doc);
    errors = json_array();
    ledger_adjustment_read(doc, 1000, it, errors);
    p = pointers(errors);
    json_decref(doc);
    json_decref(errors);
    return p;
}


static void
test_adjustment(void **state)
{
    ledger_item_t   it;
    json_t         *errors;
    int             status;

    memset(&it, 0, sizeof(it));
    assert_string_equal(adjustment("{\"account_id\":\"" A "\",\"amount\":5,"
        "\"currency\":\"EUR\",\"direction\":\"credit\",\"reason\":\"r\"}",
        &it), "");
    assert_string_equal(it.credit, A);
    assert_string_equal(it.debit, "");
    assert_string_equal(it.system_kind, "adjustments");
    assert_string_equal(it.reason, "r");
    assert_false(it.must_own);

    assert_string_equal(adjustment("{\"account_id\":\"" A "\",\"amount\":5,"
        "\"currency\":\"EUR\",\"direction\":\"debit\",\"reason\":\"r\"}",
        &it), "");
    assert_string_equal(it.debit, A);
    assert_string_equal(it.credit, "");

    assert_string_equal(adjustment("{}", &it),
        "/account_id /amount /currency /reason /direction");
    assert_string_equal(adjustment("{\"account_id\":\"" A "\",\"amount\":5,"
        "\"currency\":\"EUR\",\"direction\":\"up\",\"reason\":\" \\n \"}",
        &it), "/reason /direction");
    free(it.reason);
    /* A NUL inside a string never gets this far: jansson refuses it. */
    assert_null(parse("{\"reason\":\"a\\u0000b\"}", &status, &errors));
    assert_int_equal(status, 400);
}


static void
test_account(void **state)
{
    char     cur[LEDGER_CURRENCY_LEN + 1];
    json_t  *doc, *errors;

    doc = json_loads("{\"currency\":\"JPY\"}", 0, NULL);
    errors = json_array();
    assert_int_equal(ledger_account_read(doc, cur, errors), 0);
    assert_string_equal(cur, "JPY");
    json_decref(doc);
    doc = json_loads("{\"currency\":\"jpy\",\"owner\":\"x\"}", 0, NULL);
    assert_int_equal(ledger_account_read(doc, cur, errors), 2);
    assert_string_equal(pointers(errors), "/owner /currency");
    json_decref(doc);
    json_decref(errors);
}


static void
test_key_and_owner(void **state)
{
    char  k[LEDGER_IDEM_KEY_MAX + 2];

    assert_true(ledger_idem_key_valid("a"));
    assert_true(ledger_idem_key_valid("order 42/retry ~1"));
    assert_false(ledger_idem_key_valid(""));
    assert_false(ledger_idem_key_valid(NULL));
    assert_false(ledger_idem_key_valid("a\tb"));
    assert_false(ledger_idem_key_valid("caf\xc3\xa9"));
    memset(k, 'k', sizeof(k));
    k[LEDGER_IDEM_KEY_MAX] = '\0';
    assert_true(ledger_idem_key_valid(k));
    k[LEDGER_IDEM_KEY_MAX] = 'k';
    k[LEDGER_IDEM_KEY_MAX + 1] = '\0';
    assert_false(ledger_idem_key_valid(k));

    assert_true(ledger_owner_valid("5f0c2d5e-user"));
    assert_false(ledger_owner_valid(""));
    assert_false(ledger_owner_valid("a b"));
    assert_false(ledger_owner_valid("a\x7f"));
}


static void
item(ledger_item_t *it, ledger_op_t op, const char *debit, const char *credit,
    int64_t amount, const char *currency, const char *reason)
{
    free(it->reason);
    memset(it, 0, sizeof(*it));
    it->op = op;
    snprintf(it->debit, sizeof(it->debit), "%s", debit);
    snprintf(it->credit, sizeof(it->credit), "%s", credit);
    it->system_kind = op == LEDGER_OP_ADJUSTMENT ? "adjustments" : NULL;
    it->amount = amount;
    snprintf(it->currency, sizeof(it->currency), "%s", currency);
    it->reason = reason != NULL ? strdup(reason) : NULL;
    assert_int_equal(ledger_request_hash(it), 0);
    assert_int_equal(strlen(it->idem_hash), LEDGER_HASH_HEX_LEN);
}


static void
test_hash(void **state)
{
    ledger_item_t  x, y;
    char           h[LEDGER_HASH_HEX_LEN + 1];

    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    item(&x, LEDGER_OP_P2P, A, B, 100, "EUR", NULL);
    memcpy(h, x.idem_hash, sizeof(h));
    item(&y, LEDGER_OP_P2P, A, B, 100, "EUR", NULL);
    assert_string_equal(y.idem_hash, h);
    /* Who asks, when, and under which key are not the request. */
    snprintf(y.actor, sizeof(y.actor), "someone");
    snprintf(y.idem_key, sizeof(y.idem_key), "k");
    assert_int_equal(ledger_request_hash(&y), 0);
    assert_string_equal(y.idem_hash, h);

    item(&y, LEDGER_OP_P2P, B, A, 100, "EUR", NULL);
    assert_string_not_equal(y.idem_hash, h);
    item(&y, LEDGER_OP_P2P, A, B, 101, "EUR", NULL);
    assert_string_not_equal(y.idem_hash, h);
    item(&y, LEDGER_OP_P2P, A, B, 100, "USD", NULL);
    assert_string_not_equal(y.idem_hash, h);
    item(&y, LEDGER_OP_ADJUSTMENT, A, B, 100, "EUR", NULL);
    assert_string_not_equal(y.idem_hash, h);

    /* Length prefixes: fields cannot run into each other. */
    item(&x, LEDGER_OP_ADJUSTMENT, "", A, 100, "EUR", "a\n1:b");
    item(&y, LEDGER_OP_ADJUSTMENT, "", A, 100, "EUR", "a");
    assert_string_not_equal(x.idem_hash, y.idem_hash);
    item(&y, LEDGER_OP_ADJUSTMENT, A, "", 100, "EUR", "a\n1:b");
    assert_string_not_equal(x.idem_hash, y.idem_hash);
    free(x.reason);
    free(y.reason);
}


static void
test_batch_json(void **state)
{
    ledger_item_t   x, y, *items[2] = { &x, &y };
    json_t         *a, *o;

    memset(&x, 0, sizeof(x));
    memset(&y, 0, sizeof(y));
    item(&x, LEDGER_OP_P2P, A, B, 100, "EUR", NULL);
    x.must_own = 1;
    snprintf(x.actor, sizeof(x.actor), "alice");
    snprintf(x.idem_key, sizeof(x.idem_key), "k \"1\"");
    item(&y, LEDGER_OP_ADJUSTMENT, "", B, 5, "JPY", "why \"not\"");
    snprintf(y.actor, sizeof(y.actor), "boss");

    a = ledger_items_json(items, 2);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), 2);
    o = json_array_get(a, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "i")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "debit")), A);
    assert_true(json_is_null(json_object_get(o, "debit_system")));
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "p2p");
    assert_string_equal(json_string_value(json_object_get(o, "must_own")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(o, "idem_key")),
                        "k \"1\"");
    assert_string_equal(json_string_value(json_object_get(o, "idem_scope")),
                        "transfer");
    o = json_array_get(a, 1);
    assert_int_equal(json_integer_value(json_object_get(o, "i")), 2);
    assert_true(json_is_null(json_object_get(o, "debit")));
    assert_string_equal(json_string_value(json_object_get(o,
                        "debit_system")), "adjustments");
    assert_true(json_is_null(json_object_get(o, "must_own")));
    assert_true(json_is_null(json_object_get(o, "idem_key")));
    assert_string_equal(json_string_value(json_object_get(o, "reason")),
                        "why \"not\"");
    assert_int_equal(json_integer_value(json_object_get(o, "amount")), 5);
    json_decref(a);
    free(x.reason);
    free(y.reason);
}


/* The shard every item of a ledger_items_json() answer names; -1 if mixed. */
static int
shard_of(json_t *a)
{
    json_t  *o;
    size_t   i;
    int      shard = -1, s;

    json_array_foreach(a, i, o) {
        s = (int) json_integer_value(json_object_get(o, "shard"));
        if (i > 0 && s != shard) {
            return -1;
        }
        shard = s;
    }
    return shard;
}


/*
 * The fee shard the items of one call name: on a thread that set none,
 * one shard for all of them (a batch locks every fee account its items
 * name), the next in turn for the next call, so calls cover all of the
 * fee_shards; on a batcher its own (mod fee_shards); with
 * KORDON_LEDGER_FEE_SHARDS=1 always shard 0.
 */
static void
test_fee_shards(void **state)
{
    ledger_item_t   x[3], *items[3] = { &x[0], &x[1], &x[2] };
    json_t         *a;
    int             k, seen[LEDGER_SHARDS] = { 0 }, shard, n;

    memset(x, 0, sizeof(x));
    for (k = 0; k < 3; k++) {
        item(&x[k], LEDGER_OP_P2P, A, B, 100 + k, "EUR", NULL);
    }
    for (k = 0; k < LEDGER_SHARDS; k++) {
        a = ledger_items_json(items, 3);
        assert_non_null(a);
        shard = shard_of(a);
        json_decref(a);
        assert_true(shard >= 0 && shard < LEDGER_SHARDS);
        seen[shard] = 1;
    }
    for (k = 0, n = 0; k < LEDGER_SHARDS; k++) {
        n += seen[k];
    }
    assert_int_equal(n, LEDGER_SHARDS);         /* each in turn */

    ledger_cf.fee_shards = 1;
    for (k = 0; k < 5; k++) {
        a = ledger_items_json(items, 3);
        assert_int_equal(shard_of(a), 0);
        json_decref(a);
    }
    ledger_post_set_shard(5);
    a = ledger_items_json(items, 3);
    assert_int_equal(shard_of(a), 0);
    json_decref(a);

    ledger_cf.fee_shards = 4;
    ledger_post_set_shard(5);
    a = ledger_items_json(items, 3);
    assert_int_equal(shard_of(a), 1);
    json_decref(a);
    ledger_cf.fee_shards = LEDGER_SHARDS;
    ledger_shard = -1;
    for (k = 0; k < 3; k++) {
        free(x[k].reason);
    }
}


/* POST /v1/holds: the transfer's fields plus an optional expiry. */
static void
test_hold(void **state)
{
    json_t  *body, *args, *errors;

    (void) state;
    body = json_loads("{\"from_account_id\":\"" A "\",\"to_account_id\":"
                      "\"" B "\",\"amount\":5,\"currency\":\"EUR\"}", 0,
                      NULL);
    args = json_object();
    errors = json_array();
    assert_int_equal(ledger_hold_read(body, 100, args, errors), 0);
    assert_int_equal(json_integer_value(json_object_get(args, "expires_in")),
                     LEDGER_HOLD_TTL_S);
    assert_string_equal(json_string_value(json_object_get(args,
                                          "to_account_id")), B);
    json_decref(body);
    json_decref(args);
    json_decref(errors);

    body = json_loads("{\"from_account_id\":\"" A "\",\"to_account_id\":"
                      "\"" A "\",\"amount\":500,\"currency\":\"eur\","
                      "\"expires_in\":0,\"memo\":1}", 0, NULL);
    args = json_object();
    errors = json_array();
    assert_int_equal(ledger_hold_read(body, 100, args, errors), 5);
    assert_string_equal(pointers(errors),
                        "/memo /amount /currency /to_account_id /expires_in");
    assert_int_equal(json_object_size(args), 0);
    json_decref(body);
    json_decref(args);
    json_decref(errors);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_adjustment),
        cmocka_unit_test(test_account),
        cmocka_unit_test(test_key_and_owner),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_batch_json),
        cmocka_unit_test(test_fee_shards),
        cmocka_unit_test(test_hold),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
