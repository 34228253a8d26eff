/*
 * test_ledger_money.c -- backends/ledger/money.c: minor units formatted
 * with each exponent (signs, padding, the int64 extremes, buffers too
 * small), JSON amounts (only positive integers up to the maximum; reals,
 * strings, booleans and null refused), currency codes and UUIDs.
 *
 * The ledger's pure files are compiled into the test itself: the Makefile
 * links unit tests with the kit only.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/ledger/money.c"


static const char *
fmt(int64_t minor, int exponent)
{
    static char  buf[LEDGER_MONEY_TEXT_MAX];

    assert_true(ledger_money_format(minor, exponent, buf, sizeof(buf)) > 0);
    return buf;
}


static void
test_format(void **state)
{
    assert_string_equal(fmt(123456, 2), "1234.56");
    assert_string_equal(fmt(5, 2), "0.05");
    assert_string_equal(fmt(50, 2), "0.50");
    assert_string_equal(fmt(0, 2), "0.00");
    assert_string_equal(fmt(100, 2), "1.00");
    assert_string_equal(fmt(-1, 2), "-0.01");
    assert_string_equal(fmt(-123456, 2), "-1234.56");
    assert_string_equal(fmt(7, 0), "7");
    assert_string_equal(fmt(0, 0), "0");
    assert_string_equal(fmt(-7, 0), "-7");
    assert_string_equal(fmt(1234, 3), "1.234");
    assert_string_equal(fmt(-5, 3), "-0.005");
    assert_string_equal(fmt(1, 4), "0.0001");
    assert_string_equal(fmt(INT64_MAX, 2), "92233720368547758.07");
    assert_string_equal(fmt(INT64_MIN, 2), "-92233720368547758.08");
    assert_string_equal(fmt(INT64_MIN, 0), "-9223372036854775808");
    assert_string_equal(fmt(INT64_MIN, 4), "-922337203685477.5808");
}


static void
test_format_limits(void **state)
{
    char  buf[8];

    assert_int_equal(ledger_money_format(1, -1, buf, sizeof(buf)), -1);
    assert_int_equal(ledger_money_format(1, 5, buf, sizeof(buf)), -1);
    assert_string_equal(buf, "");
    /* "1234.56" is 7 characters and a NUL: fits exactly. */
    assert_int_equal(ledger_money_format(123456, 2, buf, sizeof(buf)), 7);
    assert_string_equal(buf, "1234.56");
    assert_int_equal(ledger_money_format(-123456, 2, buf, sizeof(buf)), -1);
    assert_string_equal(buf, "");
    assert_int_equal(ledger_money_format(1, 2, buf, 0), -1);
}


static int64_t
amount(const char *json, int64_t max, const char **why)
{
    json_t   *doc, *v;
    int64_t   out;
    int       rc;

    doc = json_loads(json, JSON_DECODE_ANY, NULL);
    v = doc != NULL && json_is_object(doc) ? json_object_get(doc, "a") : doc;
    out = -1;
    *why = NULL;
    rc = ledger_amount_parse(v, max, &out, why);
    json_decref(doc);
    return rc == 0 ? out : -1;
}


static void
test_amount(void **state)
{
    const char  *why;

    assert_int_equal(amount("1", 100, &why), 1);
    assert_int_equal(amount("100", 100, &why), 100);
    assert_int_equal(amount("9223372036854775807", INT64_MAX, &why),
                     INT64_MAX);

    assert_int_equal(amount("101", 100, &why), -1);
    assert_string_equal(why, "exceeds the largest amount allowed per "
                        "transfer");
    assert_int_equal(amount("0", 100, &why), -1);
    assert_string_equal(why, "must be positive");
    assert_int_equal(amount("-5", 100, &why), -1);
    assert_string_equal(why, "must be positive");
    assert_int_equal(amount("-9223372036854775808", 100, &why), -1);
    assert_string_equal(why, "must be positive");

    assert_int_equal(amount("1.5", 100, &why), -1);
    assert_string_equal(why, "must be an integer number of minor units");
    assert_int_equal(amount("100.0", 100, &why), -1);
    assert_int_equal(amount("1e2", 100, &why), -1);
    assert_int_equal(amount("\"100\"", 100, &why), -1);
    assert_int_equal(amount("true", 100, &why), -1);
    assert_int_equal(amount("null", 100, &why), -1);
    assert_int_equal(amount("[1]", 100, &why), -1);
    assert_int_equal(amount("{}", 100, &why), -1);      /* no "a" */
    assert_string_equal(why, "is required");
}


static const char *
currency(const char *json)
{
    static char  out[LEDGER_CURRENCY_LEN + 1];
    const char  *why;
    json_t      *v;
    int          rc;

    v = json_loads(json, JSON_DECODE_ANY, NULL);
    rc = ledger_currency_parse(v, out, &why);
    json_decref(v);
    return rc == 0 ? out : NULL;
}


static void
test_currency(void **state)
{
    assert_string_equal(currency("\"EUR\""), "EUR");
    assert_string_equal(currency("\"JPY\""), "JPY");
    assert_null(currency("\"eur\""));
    assert_null(currency("\"EU\""));
    assert_null(currency("\"EURO\""));
    assert_null(currency("\"E1R\""));
    assert_null(currency("\"EU\\u0000\""));
    assert_null(currency("978"));
    assert_null(currency("null"));
    assert_null(currency("[\"EUR\"]"));
}


static void
test_uuid(void **state)
{
    char  out[LEDGER_UUID_LEN + 1];

    assert_int_equal(ledger_uuid_parse(
        "01a20af9-0532-7808-bb9f-6faf61b1da84", out), 0);
    assert_string_equal(out, "01a20af9-0532-7808-bb9f-6faf61b1da84");
    assert_int_equal(ledger_uuid_parse(
        "01A20AF9-0532-7808-BB9F-6FAF61B1DA84", out), 0);
    assert_string_equal(out, "01a20af9-0532-7808-bb9f-6faf61b1da84");

    assert_int_equal(ledger_uuid_parse(NULL, out), -1);
    assert_int_equal(ledger_uuid_parse("", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "01a20af905327808bb9f6faf61b1da84", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "{01a20af9-0532-7808-bb9f-6faf61b1da84}", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "01a20af9-0532-7808-bb9f-6faf61b1da8g", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "01a20af9-0532-7808-bb9f-6faf61b1da8", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "01a20af9-0532-7808-bb9f-6faf61b1da845", out), -1);
    assert_int_equal(ledger_uuid_parse(
        "01a20af9+0532-7808-bb9f-6faf61b1da84", out), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_limits),
        cmocka_unit_test(test_amount),
        cmocka_unit_test(test_currency),
        cmocka_unit_test(test_uuid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
