/* Unit tests for common/kafka.c (kept with the worker, its only user, because this rule
 * links librdkafka): "k=v" settings, and a round trip through librdkafka's in-process mock
 * cluster: idempotent produce with delivery records, consumer group, manual commit, and a
 * second consumer resuming after the committed offset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

struct kv_seen {
    char text[256];
};

static int kv_collect(void *ud, const char *k, const char *v, char *err)
{
    struct kv_seen *s = ud;
    size_t n = strlen(s->text);

    snprintf(s->text + n, sizeof s->text - n, "[%s=%s]", k, v);
    return 0;
}

static void test_parse_kv(void **state)
{
    struct kv_seen s = {""};
    char err[ERR_MAX] = "";

    assert_int_equal(kafka_parse_kv(" a=1 , b = two,,c=x=y ", kv_collect, &s, err), 0);
    assert_string_equal(s.text, "[a=1][b=two][c=x=y]");
    assert_int_equal(kafka_parse_kv(NULL, kv_collect, &s, err), 0);
    assert_int_equal(kafka_parse_kv("a=1,novalue", kv_collect, &s, err), -1);
    assert_non_null(strstr(err, "novalue"));
    assert_int_equal(kafka_parse_kv("=1", kv_collect, &s, err), -1);
}

static void test_bad_settings_refused(void **state)
{
    struct kafka_opts o = {.bootstrap = "127.0.0.1:1", .extra = "no.such.setting=1"};
    char err[ERR_MAX] = "";

    assert_null(kafka_producer_new(&o, 5, err));
    assert_non_null(strstr(err, "no.such.setting"));
    o.extra = NULL;
    o.bootstrap = "";
    assert_null(kafka_producer_new(&o, 5, err));
}

static int rebalances;

static void on_rebalance(int assigned, int lost, const struct kafka_tp *tps, size_t n, void *ud)
{
    rebalances++;
}

/* Consumes until want messages arrived (bounded); returns how many. */
static int consume(kafka_consumer *c, struct kafka_msg **got, int want, double timeout)
{
    double end = util_now_mono() + timeout;
    char err[ERR_MAX];
    int n = 0;

    while (n < want && util_now_mono() < end) {
        struct kafka_msg *m = NULL;
        if (kafka_consumer_poll(c, 100, &m, err) == 1)
            got[n++] = m;
    }
    return n;
}

static void test_mock_roundtrip(void **state)
{
    char errstr[256], err[ERR_MAX] = "", key[16], val[32];
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof errstr);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, 1);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "t", 2, 1), 0);
    struct kafka_opts o = {.bootstrap = rd_kafka_mock_cluster_bootstraps(mc)};
    kafka_producer *p = kafka_producer_new(&o, 10, err);
    struct kafka_delivery d[10], *dp[10];
    const char *topics[] = {"t"};
    struct kafka_consumer_opts co = {
        .group = "g", .topics = topics, .ntopics = 1, .on_rebalance = on_rebalance};
    struct kafka_msg *got[16];
    struct kafka_tp tps[2];
    kafka_consumer *c;
    int n;

    assert_non_null(p);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i % 3);
        snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(
            kafka_produce(p, "t", key, strlen(key), val, strlen(val), NULL, 0, &d[i], err), 0);
        dp[i] = &d[i];
    }
    assert_int_equal(kafka_wait(p, dp, 10, 20, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_false(d[i].failed);
    assert_int_equal(kafka_produce_sync(p, "t", "k0", 2, "last", 4, NULL, 0, NULL, err), 0);

    c = kafka_consumer_new(&o, &co, err);
    assert_non_null(c);
    n = consume(c, got, 11, 30);
    assert_int_equal(n, 11);
    assert_true(rebalances >= 1);
    /* commit everything but the last message of each partition */
    size_t nt = 0;
    for (int i = 0; i < n; i++) {
        size_t k;
        for (k = 0; k < nt && tps[k].partition != got[i]->partition; k++)
            ;
        if (k == nt)
            tps[nt++] = (struct kafka_tp){"t", got[i]->partition, -1};
        if (got[i]->offset > tps[k].offset)
            tps[k].offset = got[i]->offset; /* the last one stays unconsumed */
    }
    assert_int_equal(kafka_commit(c, tps, nt, 0, err), 0);
    for (int i = 0; i < n; i++)
        kafka_msg_free(got[i]);
    kafka_consumer_free(c);

    /* a new member of the group resumes at the committed offsets */
    c = kafka_consumer_new(&o, &co, err);
    n = consume(c, got, (int)nt + 1, 15);
    assert_int_equal(n, (int)nt);
    for (int i = 0; i < n; i++)
        kafka_msg_free(got[i]);
    kafka_consumer_free(c);
    kafka_producer_free(p, 5);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kv),
        cmocka_unit_test(test_bad_settings_refused),
        cmocka_unit_test(test_mock_roundtrip),
    };
    log_init("test", "error");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
