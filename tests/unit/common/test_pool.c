/* Unit tests for common/pool.c: every task runs, FIFO order, per-thread init/fini contexts,
 * a full queue refuses, batches, pool_free drains the queue and is NULL-safe. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "pool.h"

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, entered;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static int counter, order[64], norder, inits, finis;
static int bad; /* set by worker threads (no cmocka asserts off the main thread) */

static void gate_reset(void)
{
    gate.open = gate.entered = 0;
}

/* Task: waits until the gate opens. */
static void task_wait_gate(void *arg, void *tctx)
{
    pthread_mutex_lock(&gate.mu);
    gate.entered++;
    pthread_cond_broadcast(&gate.cv);
    while (!gate.open)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
}

static void gate_wait_entered(int n)
{
    pthread_mutex_lock(&gate.mu);
    while (gate.entered < n)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.open = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static void task_count(void *arg, void *tctx)
{
    __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
}

static void task_record(void *arg, void *tctx)
{
    order[norder++] = (int)(intptr_t)arg; /* single worker: no race */
}

static void task_slow(void *arg, void *tctx)
{
    usleep(1000);
    __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
}

static void *ctx_init(void *ud)
{
    int *ctx = malloc(sizeof *ctx);

    *ctx = 0;
    __atomic_add_fetch(&inits, 1, __ATOMIC_SEQ_CST);
    if (ud != &inits)
        __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
    return ctx;
}

static void ctx_fini(void *tctx)
{
    __atomic_add_fetch(&finis, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&counter, *(int *)tctx, __ATOMIC_SEQ_CST);
    free(tctx);
}

static void task_ctx(void *arg, void *tctx)
{
    if (!tctx) {
        __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
        return;
    }
    (*(int *)tctx)++; /* each context belongs to one thread: no race */
}

static int setup(void **state)
{
    counter = norder = inits = finis = bad = 0;
    gate_reset();
    return 0;
}

static void test_all_tasks_run(void **state)
{
    pool *p = pool_new(4, 2000, NULL, NULL, NULL);

    assert_non_null(p);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pool_submit(p, task_count, NULL), 0);
    pool_free(p);
    assert_int_equal(counter, 1000);
}

static void test_fifo(void **state)
{
    pool *p = pool_new(1, 64, NULL, NULL, NULL);

    for (intptr_t i = 0; i < 50; i++)
        assert_int_equal(pool_submit(p, task_record, (void *)i), 0);
    pool_free(p);
    assert_int_equal(norder, 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(order[i], i);
}

static void test_init_fini(void **state)
{
    pool *p = pool_new(3, 100, ctx_init, ctx_fini, &inits);

    for (int i = 0; i < 90; i++)
        assert_int_equal(pool_submit(p, task_ctx, NULL), 0);
    pool_free(p);
    assert_int_equal(inits, 3);
    assert_int_equal(finis, 3);
    assert_int_equal(counter, 90); /* fini summed every context's task count */
    assert_int_equal(bad, 0);
}

static void test_queue_full(void **state)
{
    pool *p = pool_new(1, 2, NULL, NULL, NULL);

    assert_int_equal(pool_submit(p, task_wait_gate, NULL), 0);
    gate_wait_entered(1); /* the only worker is busy now */
    assert_int_equal(pool_submit(p, task_count, NULL), 0);
    assert_int_equal(pool_submit(p, task_count, NULL), 0);
    assert_int_equal(pool_submit(p, task_count, NULL), -1);
    assert_int_equal(pool_pending(p), 3);
    gate_open();
    pool_free(p);
    assert_int_equal(counter, 3);
}

static void test_batch(void **state)
{
    pool *p = pool_new(2, 4, NULL, NULL, NULL);
    void *args[10] = {0};

    assert_int_equal(pool_submit(p, task_wait_gate, NULL), 0);
    assert_int_equal(pool_submit(p, task_wait_gate, NULL), 0);
    gate_wait_entered(2);
    assert_int_equal(pool_submit_batch(p, task_count, args, 10), 4);
    assert_int_equal(pool_submit_batch(p, task_count, args, 1), 0);
    gate_open();
    pool_free(p);
    assert_int_equal(counter, 6);
}

static void test_free_drains_queue(void **state)
{
    pool *p = pool_new(2, 0, NULL, NULL, NULL); /* 0: default queue size */

    for (int i = 0; i < 100; i++)
        assert_int_equal(pool_submit(p, task_slow, NULL), 0);
    pool_free(p);
    assert_int_equal(counter, 100);
}

static void test_bad_args_and_null(void **state)
{
    assert_null(pool_new(0, 10, NULL, NULL, NULL));
    assert_null(pool_new(-1, 10, NULL, NULL, NULL));
    pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_all_tasks_run, setup),
        cmocka_unit_test_setup(test_fifo, setup),
        cmocka_unit_test_setup(test_init_fini, setup),
        cmocka_unit_test_setup(test_queue_full, setup),
        cmocka_unit_test_setup(test_batch, setup),
        cmocka_unit_test_setup(test_free_drains_queue, setup),
        cmocka_unit_test_setup(test_bad_args_and_null, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
