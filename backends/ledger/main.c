/*
 * ledger -- money: accounts, double-entry transfers (alone, in batches,
 * with fees and cashback), holds, refunds, limits, statements and
 * reports.  Payments in and out through providers come later (system
 * clearing accounts and transfer kinds are their seams).
 *
 * The service is its route table, its settings and its schema.  P2P
 * transfers and adjustments move money in one PL/pgSQL function,
 * ledger.post_transfers() (sql/ledger/008, 012, 014), reached through
 * post.c -- one request at a time ("inline" mode), in batches gathered from
 * concurrent requests ("batch" mode, batch.c), or a client's own batch
 * (POST /v1/transfers/batch).  Holds, refunds, statements, rules and
 * reports are one SQL function each (sql/ledger/007-011) run by ops.c.
 * One sweeper thread (holds.c) expires holds, keeps the partitions of
 * transfers ahead and prunes sent events and idempotency keys older than
 * the retention (sql/ledger/015).
 * Every one of them takes idempotency keys, then hold rows, then
 * accounts in id order, so none can deadlock another.  ledger.h shows
 * how the files fit.  Its speed, and where a batch's time goes, are in
 * docs/ledger.md ("Speed"; scripts/bench-ledger measures it).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

#define LEDGER_ERR_MAX  256

ledger_config_t  ledger_cf;


static const kit_route_t ledger_routes[] = {
    { "POST", "/v1/accounts", ledger_accounts_create, 0 },
    { "GET", "/v1/accounts", ledger_accounts_list, 0 },
    { "GET", "/v1/accounts/{id}", ledger_accounts_get, 0 },
    { "GET", "/v1/accounts/{id}/statement", ledger_accounts_statement, 0 },
    { "GET", "/v1/accounts/{id}/balance", ledger_accounts_balance, 0 },
    { "GET", "/v1/admin/reports/daily", ledger_reports_daily, 0 },
    { "POST", "/v1/transfers", ledger_transfers_create, 0 },
    { "POST", "/v1/transfers/batch", ledger_transfers_batch, 0 },
    { "GET", "/v1/transfers/{id}", ledger_transfers_get, 0 },
    { "POST", "/v1/transfers/{id}/refund", ledger_transfers_refund, 0 },
    { "POST", "/v1/admin/adjustments", ledger_adjustments_create, 0 },
    { "POST", "/v1/holds", ledger_holds_create, 0 },
    { "GET", "/v1/holds/{id}", ledger_holds_get, 0 },
    { "POST", "/v1/holds/{id}/capture", ledger_holds_capture, 0 },
    { "POST", "/v1/holds/{id}/void", ledger_holds_void, 0 },
    { "GET", "/v1/admin/fee-rules", ledger_fee_rules_list, 0 },
    { "PUT", "/v1/admin/fee-rules/{kind}/{currency}", ledger_fee_rules_put,
      0 },
    { "DELETE", "/v1/admin/fee-rules/{kind}/{currency}",
      ledger_fee_rules_delete, 0 },
    { "GET", "/v1/admin/limits", ledger_limits_list, 0 },
    { "PUT", "/v1/admin/limits/{currency}", ledger_limits_put, 0 },
    { "PUT", "/v1/admin/accounts/{id}/merchant", ledger_merchant_put, 0 },
};


/* Reads the KORDON_LEDGER_* variables into ledger_cf; 0, or -1 with err. */
static int
ledger_config_load(char *err, size_t errlen)
{
    const char  *mode;
    long         max, size, wait, batchers, shards, sweep, keep, prune;

    if (kit_env_int("KORDON_LEDGER_TRANSFER_MAX", "1000000000", 1,
                    INT64_MAX, &max, err, errlen) != 0
        || kit_env_str("KORDON_LEDGER_MODE", "batch", &mode, err,
                       errlen) != 0
        || kit_env_int("KORDON_LEDGER_BATCH_SIZE", "256", 1,
                       LEDGER_BATCH_SIZE_MAX, &size, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_BATCH_WAIT_US", "1000", 0,
                       LEDGER_BATCH_WAIT_US_MAX, &wait, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_BATCHERS", "2", 1,
                       LEDGER_BATCHERS_MAX, &batchers, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_FEE_SHARDS", LEDGER_STR(LEDGER_SHARDS),
                       1, LEDGER_SHARDS, &shards, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_HOLD_SWEEP_MS", "1000", 10, 3600000,
                       &sweep, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_RETENTION_S", "604800", 1,
                       LEDGER_RETENTION_S_MAX, &keep, err, errlen) != 0
        || kit_env_int("KORDON_LEDGER_PRUNE_MS", "60000", 10,
                       LEDGER_PRUNE_MS_MAX, &prune, err, errlen) != 0)
    {
        return -1;
    }
    if (strcmp(mode, "batch") != 0 && strcmp(mode, "inline") != 0) {
        snprintf(err, errlen, "environment variable \"KORDON_LEDGER_MODE\" "
                 "is malformed: expected \"batch\" or \"inline\"");
        return -1;
    }
    ledger_cf = (ledger_config_t) {
        .transfer_max = (int64_t) max,
        .batch = strcmp(mode, "batch") == 0,
        .batch_size = (int) size,
        .batch_wait_us = wait,
        .batchers = (int) batchers,
        .fee_shards = (int) shards,
        .hold_sweep_ms = sweep,
        .retention_s = keep,
        .prune_ms = prune,
    };
    return 0;
}


static int
ledger_init(const kit_config_t *cf)
{
    char  err[LEDGER_ERR_MAX];

    if (ledger_config_load(err, sizeof(err)) != 0) {
        kit_log(KIT_LOG_ERROR, "%s", err);
        return -1;
    }
    if ((ledger_cf.batch && ledger_batch_start() != 0)
        || ledger_holds_start() != 0)
    {
        return -1;
    }
    kit_log(KIT_LOG_INFO, "posting transfers %s, at most %lld minor units "
            "each, over %d fee shards",
            ledger_cf.batch ? "in batches" : "one at a time",
            (long long) ledger_cf.transfer_max, ledger_cf.fee_shards);
    return 0;
}


int
main(void)
{
    /*
     * POST /v1/transfers/batch carries up to 1,000 transfers (~200 kB):
     * the kit's default body limit (64 kB) is raised for the ledger
     * unless the environment sets one.
     */
    if (setenv("KORDON_BODY_MAX", LEDGER_BODY_MAX_DEFAULT, 0) != 0) {
        return 1;
    }

    static const kit_service_t  svc = {
        .name = "ledger",
        .schema = "ledger",
        .outbox = 1,
        .routes = ledger_routes,
        .nroutes = sizeof(ledger_routes) / sizeof(ledger_routes[0]),
        .init = ledger_init,
    };

    return kit_main(&svc);
}
