/*
 * ledger_fuzz.c -- libFuzzer target for the ledger's request parsing
 * (backends/ledger/request.c and money.c): the bytes of a request body
 * as they come off the wire, through ledger_body_parse() and the field
 * readers every money-moving route uses.  Build and run: fuzz/run.
 *
 * The first byte of an input picks the reader:
 *
 *     0x00  POST /v1/transfers (and the request hash)
 *     0x01  POST /v1/admin/adjustments
 *     0x02  POST /v1/holds
 *     0x03  POST /v1/accounts
 *     else  the rest as an Idempotency-Key, an owner id and a UUID
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../backends/ledger/money.c"
#include "../backends/ledger/request.c"

#define FUZZ_TEXT_MAX  4096


static void
fuzz_body(uint8_t kind, const char *body, size_t len)
{
    ledger_item_t  it;
    json_t        *doc, *errors, *args, *big;
    char           detail[LEDGER_DETAIL_MAX], cur[LEDGER_CURRENCY_LEN + 1];
    int            status;

    big = NULL;
    doc = ledger_body_parse(body, len, &status, detail, sizeof(detail), &big);
    json_decref(big);
    if (doc == NULL) {
        return;
    }
    memset(&it, 0, sizeof(it));
    errors = json_array();
    args = json_object();
    switch (kind) {
    case 0:
        if (ledger_transfer_read(doc, 1000000000, &it, errors) == 0) {
            (void) ledger_request_hash(&it);
        }
        break;
    case 1:
        (void) ledger_adjustment_read(doc, 1000000000, &it, errors);
        break;
    case 2:
        (void) ledger_hold_read(doc, 1000000000, args, errors);
        break;
    default:
        (void) ledger_account_read(doc, cur, errors);
        break;
    }
    free(it.reason);
    json_decref(args);
    json_decref(errors);
    json_decref(doc);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char  text[FUZZ_TEXT_MAX + 1], uuid[LEDGER_UUID_LEN + 1];
    size_t  n;

    if (size == 0) {
        return 0;
    }
    if (data[0] <= 3) {
        fuzz_body(data[0], (const char *) data + 1, size - 1);
        return 0;
    }
    n = size - 1 < FUZZ_TEXT_MAX ? size - 1 : FUZZ_TEXT_MAX;
    memcpy(text, data + 1, n);
    text[n] = '\0';
    (void) ledger_idem_key_valid(text);
    (void) ledger_owner_valid(text);
    (void) ledger_uuid_parse(text, uuid);
    return 0;
}
