/* Unit tests for services/worker/parts.c: per-partition order (one in flight), round-robin
 * dispatch, commit positions, stalls after an abandoned event, revocation and stale jobs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "worker.h"

static struct kafka_msg *msg(const char *topic, int32_t part, int64_t off)
{
    struct kafka_msg *m = calloc(1, sizeof *m);

    m->topic = strdup(topic);
    m->partition = part;
    m->offset = off;
    m->key = strdup("");
    m->value = strdup("{}");
    return m;
}

static struct job fake_job;

/* Pops the next dispatchable message and marks it in flight. */
static struct part *take(struct parts *ps, int64_t *off)
{
    struct kafka_msg *m = NULL;
    struct part *p = parts_next(ps, &m);

    if (!p)
        return NULL;
    *off = m->offset;
    p->inflight = &fake_job;
    kafka_msg_free(m);
    return p;
}

static void test_order_and_commits(void **state)
{
    struct parts ps = {0};
    struct kafka_tp tps[8];
    struct part *p;
    int64_t off;

    assert_non_null(parts_assign(&ps, "t", 0));
    assert_non_null(parts_assign(&ps, "t", 1));
    for (int i = 0; i < 3; i++)
        assert_int_equal(parts_push(&ps, msg("t", 0, 10 + i)), 0);
    assert_int_equal(parts_push(&ps, msg("t", 1, 5)), 0);
    assert_int_equal(ps.buffered, 4);
    /* one per partition in flight */
    p = take(&ps, &off);
    assert_int_equal(p->partition, 0);
    assert_int_equal(off, 10);
    p = take(&ps, &off);
    assert_int_equal(p->partition, 1);
    assert_int_equal(off, 5);
    assert_null(take(&ps, &off));
    assert_int_equal(parts_inflight(&ps), 2);
    assert_int_equal(parts_pending_commits(&ps, tps, 8), 0);
    parts_done(&ps, "t", 0, parts_find(&ps, "t", 0)->gen, 10, 1);
    assert_int_equal(parts_pending_commits(&ps, tps, 8), 1);
    assert_int_equal(tps[0].offset, 11); /* the next offset to consume */
    parts_committed(&ps, tps, 1);
    assert_int_equal(parts_pending_commits(&ps, tps, 8), 0);
    p = take(&ps, &off);
    assert_non_null(p);
    assert_int_equal(off, 11);
    assert_int_equal(ps.buffered, 3);
    parts_free(&ps);
}

static void test_abandoned_stalls_partition(void **state)
{
    struct parts ps = {0};
    struct kafka_tp tps[8];
    struct part *p;
    int64_t off;

    p = parts_assign(&ps, "t", 0);
    assert_int_equal(parts_push(&ps, msg("t", 0, 1)), 0);
    assert_int_equal(parts_push(&ps, msg("t", 0, 2)), 0);
    take(&ps, &off);
    parts_done(&ps, "t", 0, p->gen, 1, 0); /* abandoned */
    assert_null(take(&ps, &off));          /* offset 2 must not run past it */
    assert_int_equal(parts_pending_commits(&ps, tps, 8), 0);
    parts_free(&ps);
}

static void test_revoke_and_stale_completion(void **state)
{
    struct parts ps = {0};
    struct kafka_tp tps[8];
    struct part *p;
    unsigned old;
    int64_t off;

    p = parts_assign(&ps, "t", 3);
    old = p->gen;
    assert_int_equal(parts_push(&ps, msg("t", 3, 7)), 0);
    assert_int_equal(parts_push(&ps, msg("t", 3, 8)), 0);
    take(&ps, &off);
    parts_revoke(&ps, "t", 3);
    assert_int_equal(ps.n, 0);
    assert_int_equal(ps.buffered, 0);
    /* a message for a partition not assigned here is refused (and freed) */
    assert_int_equal(parts_push(&ps, msg("t", 3, 9)), -1);
    /* assigned again: the old job's completion changes nothing */
    p = parts_assign(&ps, "t", 3);
    assert_int_not_equal(p->gen, old);
    parts_done(&ps, "t", 3, old, 7, 1);
    assert_int_equal(parts_pending_commits(&ps, tps, 8), 0);
    parts_free(&ps);
}

static void test_many_partitions_grow(void **state)
{
    struct parts ps = {0};
    int64_t off;
    int seen = 0;

    for (int i = 0; i < 40; i++)
        assert_non_null(parts_assign(&ps, i % 2 ? "a" : "b", i));
    for (int i = 0; i < 40; i++)
        for (int k = 0; k < 20; k++)
            assert_int_equal(parts_push(&ps, msg(i % 2 ? "a" : "b", i, k)), 0);
    assert_int_equal(ps.buffered, 800);
    while (take(&ps, &off))
        seen++;
    assert_int_equal(seen, 40);
    parts_free(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_commits),
        cmocka_unit_test(test_abandoned_stalls_partition),
        cmocka_unit_test(test_revoke_and_stale_completion),
        cmocka_unit_test(test_many_partitions_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
