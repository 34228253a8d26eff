/*
 * ledger.h -- what the ledger's files share: its limits and settings, the
 * posting item that carries one money-moving request from its handler to
 * the database and back, and the pure helpers the unit tests reach.
 *
 * The path of a transfer: a handler checks the request (request.c),
 * fills a ledger_item_t and either posts it itself (ledger_post(), a batch
 * of one) or hands it to the batcher (batch.c), which posts many at once.
 * Both end in post.c, which runs ledger.post_transfers() -- the only code
 * that moves money -- and in ledger_item_reply(), which answers from the
 * item's outcome.  So the two modes share every rule and every answer.
 */

#ifndef KORDON_LEDGER_H
#define KORDON_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "kit.h"

#define LEDGER_UUID_LEN            36
#define LEDGER_CURRENCY_LEN        3
#define LEDGER_OWNER_MAX           255     /* bytes of X-Kordon-User */
#define LEDGER_IDEM_KEY_MAX        255     /* bytes of Idempotency-Key */
#define LEDGER_REASON_MAX          500     /* bytes of an adjustment reason */
#define LEDGER_HASH_HEX_LEN        64      /* SHA-256 */
#define LEDGER_CODE_MAX            32
#define LEDGER_KIND_MAX            16
#define LEDGER_TS_MAX              40
#define LEDGER_REQUEST_ID_MAX      64
#define LEDGER_MONEY_TEXT_MAX      32      /* "-92233720368547758.08" */
#define LEDGER_EXPONENT_MAX        4
#define LEDGER_DETAIL_MAX          512
#define LEDGER_LIST_MAX            100     /* accounts in one list */
#define LEDGER_DB_ACQUIRE_MS       2000
#define LEDGER_POST_ATTEMPTS_MAX   4       /* on a concurrent same key */
#define LEDGER_BATCH_SIZE_MAX      1024
#define LEDGER_BATCH_ROUTE_MAX     1000    /* POST /v1/transfers/batch */
#define LEDGER_BODY_MAX_DEFAULT    "1048576"
#define LEDGER_BATCH_WAIT_US_MAX   100000
#define LEDGER_QUEUE_MAX           8192    /* requests waiting for a batch */
#define LEDGER_BATCHERS_MAX        8
#define LEDGER_RETRY_AFTER_S       "1"
#define LEDGER_SHARDS              8       /* fee revenue, cashback */
#define LEDGER_HOLD_TTL_MAX_S      2592000 /* 30 days */
#define LEDGER_HOLD_TTL_S          604800  /* 7 days, by default */
#define LEDGER_SWEEP_BATCH_MAX     500     /* holds expired per call */
#define LEDGER_PARTITION_MONTHS    24      /* transfers partitions ahead */
#define LEDGER_PARTITION_CHECK_S   86400
#define LEDGER_PRUNE_BATCH_MAX     10000   /* rows of each pruned per call */
#define LEDGER_PRUNE_CALLS_MAX     100     /* calls per round, then rest */
#define LEDGER_RETENTION_S_MAX     315360000   /* 10 years */
#define LEDGER_PRUNE_MS_MAX        86400000

#define LEDGER_STR_(x)             #x
#define LEDGER_STR(x)              LEDGER_STR_(x)

/* Invariants, checked in debug builds (make asan defines KIT_DEBUG). */
#ifdef KIT_DEBUG
#include <assert.h>
#define LEDGER_ASSERT(e)  assert(e)
#else
#define LEDGER_ASSERT(e)  ((void) 0)
#endif


/* ---- settings (main.c) ------------------------------------------------
 *
 *   KORDON_LEDGER_TRANSFER_MAX    largest amount of one transfer or
 *                                 adjustment, minor units, default 10^9
 *   KORDON_LEDGER_MODE            "batch" (default): concurrent transfers
 *                                 share transactions; "inline": each
 *                                 request posts its own
 *   KORDON_LEDGER_BATCH_SIZE      transfers per transaction, default 256
 *   KORDON_LEDGER_BATCH_WAIT_US   how long a batcher holds a batch open
 *                                 for more while another batch is being
 *                                 posted, default 1000 (0: take what is
 *                                 there); never with none in flight
 *   KORDON_LEDGER_BATCHERS        batcher threads (each a connection),
 *                                 default 2
 *   KORDON_LEDGER_FEE_SHARDS      fee revenue and cashback expense
 *                                 sub-accounts in use, 1..8, default 8;
 *                                 1 makes every batch lock the same one
 *                                 (the bench's case without sharding)
 *   KORDON_LEDGER_HOLD_SWEEP_MS   how often expired holds are released,
 *                                 default 1000
 *   KORDON_LEDGER_RETENTION_S     how long sent outbox events and
 *                                 idempotency keys are kept, default
 *                                 604800 (7 days); a key older than that
 *                                 is forgotten (sql/ledger/015)
 *   KORDON_LEDGER_PRUNE_MS        how often the sweeper prunes them,
 *                                 default 60000
 */

typedef struct {
    int64_t  transfer_max;
    int      batch;
    int      batch_size;
    long     batch_wait_us;
    int      batchers;
    int      fee_shards;
    long     hold_sweep_ms;
    long     retention_s;
    long     prune_ms;
} ledger_config_t;

extern ledger_config_t  ledger_cf;


/* ---- a transfer as the database answers it --------------------------- */

typedef struct {
    char      id[LEDGER_UUID_LEN + 1];
    char      debit[LEDGER_UUID_LEN + 1];
    char      credit[LEDGER_UUID_LEN + 1];
    int64_t   amount;
    char      currency[LEDGER_CURRENCY_LEN + 1];
    int       exponent;
    char      kind[LEDGER_KIND_MAX];
    char      status[LEDGER_KIND_MAX];
    char     *reason;                      /* malloc()ed, or NULL */
    char      created_at[LEDGER_TS_MAX];
    int64_t   fee;                         /* linked to a p2p payment */
    int64_t   cashback;
} ledger_transfer_t;


/* ---- the posting item ------------------------------------------------ */

typedef enum {
    LEDGER_OP_P2P,                         /* POST /v1/transfers */
    LEDGER_OP_ADJUSTMENT                   /* POST /v1/admin/adjustments */
} ledger_op_t;

typedef struct ledger_item_s  ledger_item_t;

struct ledger_item_s {
    ledger_item_t      *next;              /* the batch queue's */
    kit_req_t          *req;               /* answered by ledger_item_reply */
    ledger_op_t         op;

    /* The request, checked.  An empty debit or credit names the system
     * account of kind system_kind in the currency instead. */
    char                debit[LEDGER_UUID_LEN + 1];
    char                credit[LEDGER_UUID_LEN + 1];
    const char         *system_kind;
    int64_t             amount;
    char                currency[LEDGER_CURRENCY_LEN + 1];
    int                 must_own;          /* debit must be actor's */
    char               *reason;            /* adjustments; malloc()ed */
    char                actor[LEDGER_OWNER_MAX + 1];
    char                request_id[LEDGER_REQUEST_ID_MAX + 1];
    char                idem_key[LEDGER_IDEM_KEY_MAX + 1];
    char                idem_hash[LEDGER_HASH_HEX_LEN + 1];

    /* The outcome: code "" until ledger_post() read one. */
    char                code[LEDGER_CODE_MAX];
    int                 replayed;
    ledger_transfer_t   t;
};

/* A zeroed item, or NULL when out of memory. */
ledger_item_t *ledger_item_new(kit_req_t *req, ledger_op_t op);
void ledger_item_free(ledger_item_t *it);
/* The idempotency scope of the item's operation. */
const char *ledger_item_scope(const ledger_item_t *it);


/* ---- money and identifiers, pure (money.c) --------------------------- */

/*
 * minor units as a decimal with exponent digits after the point:
 * (123456, 2) -> "1234.56", (-5, 3) -> "-0.005", (7, 0) -> "7".  Returns
 * the length, or -1 when exponent is out of 0..LEDGER_EXPONENT_MAX or buf
 * is too small (buf is then "").
 */
int ledger_money_format(int64_t minor, int exponent, char *buf,
    size_t len);

/*
 * A JSON amount: an integer in 1..max.  Returns 0 and sets *out, or -1
 * and points *why at the message for the field (a static string).
 */
int ledger_amount_parse(const json_t *v, int64_t max, int64_t *out,
    const char **why);

/* A JSON currency code: three letters A-Z.  0 and out, or -1 and *why. */
int ledger_currency_parse(const json_t *v, char out[LEDGER_CURRENCY_LEN + 1],
    const char **why);

/*
 * A UUID in its 8-4-4-4-12 hex form, any case, into out in lower case.
 * 0, or -1 for anything else (braces, URNs and missing dashes included),
 * leaving out untouched.
 */
int ledger_uuid_parse(const char *s, char out[LEDGER_UUID_LEN + 1]);


/* ---- requests, pure (request.c) -------------------------------------- */

/*
 * Parses a request body.  Returns the JSON object, or NULL with *status
 * and detail set: 400 for malformed JSON or a body that is not an object,
 * 422 with *errors (an array, new) when an integer does not fit in 64
 * bits -- jansson refuses those as a syntax error, which would hide the
 * field's name.
 */
json_t *ledger_body_parse(const char *body, size_t len, int *status,
    char *detail, size_t dlen, json_t **errors);

/* Appends {pointer, message} to the errors array. */
void ledger_error_add(json_t *errors, const char *pointer,
    const char *message);

/*
 * Fills it's request fields from a POST /v1/transfers body; every
 * problem found is appended to errors.  Returns the number of problems.
 */
int ledger_transfer_read(const json_t *body, int64_t max, ledger_item_t *it,
    json_t *errors);
/* The same for POST /v1/admin/adjustments. */
int ledger_adjustment_read(const json_t *body, int64_t max,
    ledger_item_t *it, json_t *errors);
/* POST /v1/accounts: the currency. */
int ledger_account_read(const json_t *body,
    char currency[LEDGER_CURRENCY_LEN + 1], json_t *errors);

/* 1 when s is a usable Idempotency-Key: 1..255 printable ASCII bytes. */
int ledger_idem_key_valid(const char *s);
/* 1 when s is a usable owner id: 1..255 visible ASCII bytes. */
int ledger_owner_valid(const char *s);

/*
 * The SHA-256, in hex, of the fields that define the item's request
 * (operation, accounts, amount, currency, reason), each length-prefixed,
 * into it->idem_hash.  0, or -1 when the digest failed.
 */
int ledger_request_hash(ledger_item_t *it);


/* ---- posting (post.c) ------------------------------------------------ */

#define LEDGER_POST_OK           0
#define LEDGER_POST_UNAVAILABLE  -1     /* no outcome: answer 503 */
#define LEDGER_POST_FAILED       -2     /* no outcome: answer 500 */

/*
 * Reads a transfer from the ten columns of row r starting at col: id,
 * debit, credit, amount, currency, exponent, kind, status, reason,
 * created_at.  0, or -1 when a value does not fit.
 */
int ledger_transfer_from_row(const PGresult *res, int r, int col,
    ledger_transfer_t *t);

/* The batch as post_transfers() takes it; NULL when out of memory. */
json_t *ledger_items_json(ledger_item_t *const *items, int n);

/*
 * Posts n items in one transaction and reads each one's outcome into it.
 * Returns LEDGER_POST_OK when every item has its code, or one of the
 * failures above, when none has and nothing was written.
 */
int ledger_post(ledger_item_t *const *items, int n);
/*
 * Which fee revenue and cashback expense sub-account the calling
 * thread's batches use (mod fee_shards): each batcher its own, so
 * concurrent batches never lock the same one.  Threads that never set
 * it take the next of the fee_shards in turn per call, one for all its
 * items (a batch locks every fee account its items name).
 */
void ledger_post_set_shard(int shard);


/* ---- answers (transfers.c) ------------------------------------------- */

json_t *ledger_transfer_json(const ledger_transfer_t *t);
/* Answers it->req from the outcome of ledger_post() (rc) and frees it. */
void ledger_item_reply(ledger_item_t *it, int rc);


/* ---- the batcher (batch.c) ------------------------------------------- */

int ledger_batch_start(void);
/* Queues it for a batch; 0, or -1 when the queue is full. */
int ledger_batch_submit(ledger_item_t *it);
/*
 * Moves up to max items from the list *head into out, oldest first,
 * leaving behind (in order) any item whose idempotency key is already in
 * out: post_transfers() must not see one key twice.  Returns how many.
 */
int ledger_batch_take(ledger_item_t **head, ledger_item_t **tail,
    ledger_item_t **out, int max);
/*
 * 1 when a batcher that found queued items should hold its batch open for
 * more: batch_wait_us is set, busy other batchers are posting (so the
 * database is busy anyway) and the batch is not full.  A lone request
 * (busy 0) never waits.
 */
int ledger_batch_should_wait(int queued, int busy);


/* ---- what every handler shares (http.c) ------------------------------ */

/* The caller's user id, or NULL after answering 401. */
const char *ledger_caller(kit_req_t *req);
/* 1 for the support and admin roles, who may read any account. */
int ledger_is_staff(kit_req_t *req);
/* The JSON object of a POST, or NULL after answering 400, 415 or 422. */
json_t *ledger_request_body(kit_req_t *req);
/* 503 with Retry-After: the database or the queue cannot take it now. */
void ledger_reply_unavailable(kit_req_t *req, const char *detail);
/* Sets key to a JSON string of s, or to null when s is NULL or "". */
int ledger_json_set_str(json_t *o, const char *key, const char *s);
/* Sets key to minor units formatted with exponent; 0 or -1. */
int ledger_json_set_money(json_t *o, const char *key, int64_t minor,
    int exponent);


/* ---- operations that are one SQL function (ops.c) --------------------- */

/* How an operation's refusal code is answered; a table ends with NULL. */
typedef struct {
    const char  *code;
    int          status;            /* 422: errors names pointer */
    const char  *pointer;
    const char  *message;
    const char  *detail;
} ledger_code_t;

/*
 * The arguments every operation takes: actor, request_id, admin, and
 * idem_key from the Idempotency-Key header (answering 400 when need_key
 * and it is missing, or when it is malformed).  NULL after answering.
 */
json_t *ledger_op_args(kit_req_t *req, const char *caller, int need_key);

/*
 * Runs `sql` (one statement taking $1::jsonb, answering one jsonb) with
 * args in a READ COMMITTED transaction and answers req: data with
 * ok_status, a refusal through codes, 409 for a reused key, 503 when the
 * database is away or a lock waited too long.  args is stolen.
 */
void ledger_op_reply(kit_req_t *req, const char *name, const char *sql,
    json_t *args, int ok_status, const ledger_code_t *codes);


/* ---- holds (holds.c) ------------------------------------------------- */

/*
 * The optional body of a capture or refund ({"amount": n}, when
 * with_amount) or a void ({}) into args; 0, or -1 after answering.  No
 * body at all is the same as {}.
 */
int ledger_amount_body(kit_req_t *req, int with_amount, json_t *args);
/* Starts the thread that releases expired holds; 0 or -1. */
int ledger_holds_start(void);
/* The body of POST /v1/holds into args; the number of problems. */
int ledger_hold_read(const json_t *body, int64_t max, json_t *args,
    json_t *errors);


/* ---- handlers (accounts.c, transfers.c, holds.c) ---------------------- */

void ledger_accounts_create(kit_req_t *req);
void ledger_accounts_list(kit_req_t *req);
void ledger_accounts_get(kit_req_t *req);
void ledger_transfers_create(kit_req_t *req);
void ledger_transfers_get(kit_req_t *req);
void ledger_adjustments_create(kit_req_t *req);
void ledger_holds_create(kit_req_t *req);
void ledger_holds_get(kit_req_t *req);
void ledger_holds_capture(kit_req_t *req);
void ledger_holds_void(kit_req_t *req);
void ledger_transfers_refund(kit_req_t *req);
void ledger_transfers_batch(kit_req_t *req);
void ledger_accounts_statement(kit_req_t *req);
void ledger_accounts_balance(kit_req_t *req);
void ledger_reports_daily(kit_req_t *req);
void ledger_fee_rules_list(kit_req_t *req);
void ledger_fee_rules_put(kit_req_t *req);
void ledger_fee_rules_delete(kit_req_t *req);
void ledger_limits_list(kit_req_t *req);
void ledger_limits_put(kit_req_t *req);
void ledger_merchant_put(kit_req_t *req);

#endif /* KORDON_LEDGER_H */
