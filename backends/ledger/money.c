/*
 * money.c -- amounts, currencies and ids as they cross the API, with no
 * state: parsing from JSON, formatting minor units with a currency's
 * exponent, canonical UUIDs.
 *
 * An amount is a count of minor units and never a float: JSON reals are
 * refused even when whole ("100.0"), and formatting is integer
 * arithmetic on the magnitude as unsigned, so INT64_MIN formats too.
 */

#include <stdio.h>
#include <string.h>

#include "ledger.h"


int
ledger_money_format(int64_t minor, int exponent, char *buf, size_t len)
{
    char      digits[24];
    uint64_t  mag;
    int       n, lead, i, o;

    if (len > 0) {
        buf[0] = '\0';
    }
    if (exponent < 0 || exponent > LEDGER_EXPONENT_MAX) {
        return -1;
    }
    mag = minor < 0 ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;
    n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) mag);

    /* Pad to exponent + 1 digits, so there is a "0" before the point. */
    lead = n <= exponent ? exponent + 1 - n : 0;
    if ((size_t) (n + lead + (minor < 0) + (exponent > 0)) + 1 > len) {
        return -1;
    }
    o = 0;
    if (minor < 0) {
        buf[o++] = '-';
    }
    for (i = 0; i < lead + n; i++) {
        if (exponent > 0 && i == lead + n - exponent) {
            buf[o++] = '.';
        }
        buf[o++] = i < lead ? '0' : digits[i - lead];
    }
    buf[o] = '\0';
    return o;
}


int
ledger_amount_parse(const json_t *v, int64_t max, int64_t *out,
    const char **why)
{
    json_int_t  a;

    if (v == NULL) {
        *why = "is required";
        return -1;
    }
    if (!json_is_integer(v)) {
        *why = "must be an integer number of minor units";
        return -1;
    }
    a = json_integer_value(v);
    if (a <= 0) {
        *why = "must be positive";
        return -1;
    }
    if ((int64_t) a > max) {
        *why = "exceeds the largest amount allowed per transfer";
        return -1;
    }
    *out = (int64_t) a;
    return 0;
}


int
ledger_currency_parse(const json_t *v, char out[LEDGER_CURRENCY_LEN + 1],
    const char **why)
{
    const char  *s;
    int          i;

    if (v == NULL) {
        *why = "is required";
        return -1;
    }
    s = json_string_value(v);
    if (s == NULL || json_string_length(v) != LEDGER_CURRENCY_LEN) {
        *why = "must be an ISO 4217 code of three capital letters";
        return -1;
    }
    for (i = 0; i < LEDGER_CURRENCY_LEN; i++) {
        if (s[i] < 'A' || s[i] > 'Z') {
            *why = "must be an ISO 4217 code of three capital letters";
            return -1;
        }
    }
    memcpy(out, s, LEDGER_CURRENCY_LEN + 1);
    return 0;
}


int
ledger_uuid_parse(const char *s, char out[LEDGER_UUID_LEN + 1])
{
    char  c, buf[LEDGER_UUID_LEN + 1];
    int   i;

    if (s == NULL || strlen(s) != LEDGER_UUID_LEN) {
        return -1;
    }
    for (i = 0; i < LEDGER_UUID_LEN; i++) {
        c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return -1;
            }
        } else if (c >= 'A' && c <= 'F') {
            c = (char) (c - 'A' + 'a');
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return -1;
        }
        buf[i] = c;
    }
    buf[LEDGER_UUID_LEN] = '\0';
    memcpy(out, buf, sizeof(buf));
    return 0;
}
