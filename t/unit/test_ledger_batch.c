/*
 * test_ledger_batch.c -- ledger_batch_take() of backends/ledger/batch.c:
 * a batch takes the oldest items up to its size, and leaves behind, in
 * order, every item whose idempotency key (per caller and operation) is
 * already in the batch, so post_transfers() never sees one key twice.
 * The queue's head and tail stay consistent whatever is taken.  The
 * log's batch-size buckets are powers of two.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../backends/ledger/batch.c"

/* What batch.c needs from the rest of the ledger, never called here. */
ledger_config_t  ledger_cf;

int
ledger_post(ledger_item_t *const *items, int n)
{
    return LEDGER_POST_FAILED;
}

void
ledger_item_reply(ledger_item_t *it, int rc)
{
}


void
ledger_post_set_shard(int shard)
{
}

#define N  8

static ledger_item_t  items[N];
static ledger_item_t *head, *tail;


/* A queue of n items with the given actors and keys ("" for none). */
static void
queue(int n, const char *const *actors, const char *const *keys)
{
    int  i;

    memset(items, 0, sizeof(items));
    head = tail = NULL;
    for (i = 0; i < n; i++) {
        snprintf(items[i].actor, sizeof(items[i].actor), "%s", actors[i]);
        snprintf(items[i].idem_key, sizeof(items[i].idem_key), "%s",
                 keys[i]);
        items[i].op = LEDGER_OP_P2P;
        if (tail != NULL) {
            tail->next = &items[i];
        } else {
            head = &items[i];
        }
        tail = &items[i];
    }
}


/* The indexes of a list, e.g. "0 2 3" (static buffer). */
static const char *
which(ledger_item_t *const *out, int n)
{
    static char  buf[64];
    size_t       o;
    int          i;

    o = 0;
    buf[0] = '\0';
    for (i = 0; i < n; i++) {
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%s%d",
                               i ? " " : "", (int) (out[i] - items));
    }
    return buf;
}


static const char *
left(void)
{
    ledger_item_t  *rest[N], *it;
    int             n;

    n = 0;
    for (it = head; it != NULL; it = it->next) {
        rest[n++] = it;
    }
    assert_true(n == 0 ? tail == NULL : tail == rest[n - 1]);
    return which(rest, n);
}


static void
test_takes_oldest_up_to_max(void **state)
{
    static const char *const  a[] = { "u", "u", "u", "u" };
    static const char *const  k[] = { "1", "2", "3", "4" };
    ledger_item_t            *out[N];

    queue(4, a, k);
    assert_int_equal(ledger_batch_take(&head, &tail, out, 3), 3);
    assert_string_equal(which(out, 3), "0 1 2");
    assert_string_equal(left(), "3");
    assert_int_equal(ledger_batch_take(&head, &tail, out, 3), 1);
    assert_string_equal(which(out, 1), "3");
    assert_string_equal(left(), "");
    assert_int_equal(ledger_batch_take(&head, &tail, out, 3), 0);
}


static void
test_leaves_repeated_keys(void **state)
{
    static const char *const  a[] = { "u", "u", "v", "u", "u", "u" };
    static const char *const  k[] = { "1", "1", "1", "2", "1", "" };
    ledger_item_t            *out[N];

    /* 1 repeats 0's key; 2 is another caller; 4 repeats again; 5 has none. */
    queue(6, a, k);
    assert_int_equal(ledger_batch_take(&head, &tail, out, N), 4);
    assert_string_equal(which(out, 4), "0 2 3 5");
    assert_string_equal(left(), "1 4");
    assert_int_equal(ledger_batch_take(&head, &tail, out, N), 1);
    assert_string_equal(which(out, 1), "1");
    assert_string_equal(left(), "4");
    assert_int_equal(ledger_batch_take(&head, &tail, out, N), 1);
    assert_string_equal(left(), "");
}


static void
test_operation_scopes_a_key(void **state)
{
    static const char *const  a[] = { "u", "u" };
    static const char *const  k[] = { "1", "1" };
    ledger_item_t            *out[N];

    queue(2, a, k);
    items[1].op = LEDGER_OP_ADJUSTMENT;
    assert_int_equal(ledger_batch_take(&head, &tail, out, N), 2);
    assert_string_equal(left(), "");
}


static void
test_tail_when_last_stays(void **state)
{
    static const char *const  a[] = { "u", "u", "u" };
    static const char *const  k[] = { "1", "2", "1" };
    ledger_item_t            *out[N];

    queue(3, a, k);
    assert_int_equal(ledger_batch_take(&head, &tail, out, N), 2);
    assert_string_equal(left(), "2");
    assert_ptr_equal(tail, &items[2]);
}


/*
 * A batch is held open only while another batcher is posting, the window
 * is set and the batch is not full: a lone request never waits.
 */
static void
test_waits_only_when_busy(void **state)
{
    ledger_cf.batch_size = 256;
    ledger_cf.batch_wait_us = 1000;
    assert_false(ledger_batch_should_wait(1, 0));
    assert_false(ledger_batch_should_wait(200, 0));
    assert_true(ledger_batch_should_wait(1, 1));
    assert_true(ledger_batch_should_wait(255, 1));
    assert_false(ledger_batch_should_wait(256, 1));
    assert_false(ledger_batch_should_wait(300, 3));
    ledger_cf.batch_wait_us = 0;
    assert_false(ledger_batch_should_wait(1, 1));
}


/* The log's batch sizes: bucket b holds 2^b to 2^(b+1) - 1, the last all. */
static void
test_size_buckets(void **state)
{
    assert_int_equal(ledger_size_bucket(1), 0);
    assert_int_equal(ledger_size_bucket(2), 1);
    assert_int_equal(ledger_size_bucket(3), 1);
    assert_int_equal(ledger_size_bucket(16), 4);
    assert_int_equal(ledger_size_bucket(31), 4);
    assert_int_equal(ledger_size_bucket(32), 5);
    assert_int_equal(ledger_size_bucket(1023), 9);
    assert_int_equal(ledger_size_bucket(1024), 10);
    assert_int_equal(ledger_size_bucket(100000), LEDGER_SIZE_BUCKETS - 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_takes_oldest_up_to_max),
        cmocka_unit_test(test_leaves_repeated_keys),
        cmocka_unit_test(test_operation_scopes_a_key),
        cmocka_unit_test(test_tail_when_last_stays),
        cmocka_unit_test(test_waits_only_when_busy),
        cmocka_unit_test(test_size_buckets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
