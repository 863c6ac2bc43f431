/* kafka: librdkafka producer (idempotent, acks=all, per-message delivery records) and
 * consumer group (manual commits, rebalance hook); client logs go through log.c. */
#include "kafka.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* A delivery record whose waiter gave up: librdkafka may still write its report, so it is
 * freed only after the client is destroyed. */
struct orphan {
    struct kafka_delivery d;
    struct orphan *next;
};

struct kafka_producer {
    rd_kafka_t *rk;
    double delivery_timeout;
    pthread_mutex_t mu;
    struct orphan *orphans;
};

struct kafka_consumer {
    rd_kafka_t *rk;
    kafka_rebalance_fn on_rebalance;
    void *ud;
};

int kafka_parse_kv(const char *list, kafka_kv_fn set, void *ud, char *err)
{
    char *copy, *save = NULL, *item, *eq, *k, *v, *end;
    int rc = 0;

    if (!list || !*list)
        return 0;
    if (!(copy = strdup(list))) {
        err_set(err, "kafka: out of memory");
        return -1;
    }
    for (item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*item))
            item++;
        if (!*item)
            continue;
        if (!(eq = strchr(item, '=')) || eq == item) {
            err_set(err, "kafka: setting \"%s\" is not key=value", item);
            rc = -1;
            break;
        }
        *eq = '\0';
        k = item, v = eq + 1;
        for (end = eq; end > k && isspace((unsigned char)end[-1]);)
            *--end = '\0';
        while (isspace((unsigned char)*v))
            v++;
        for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]);)
            *--end = '\0';
        rc = set(ud, k, v, err);
    }
    free(copy);
    return rc;
}

static int conf_kv(void *ud, const char *key, const char *value, char *err)
{
    char errstr[256];

    if (rd_kafka_conf_set(ud, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        err_set(err, "kafka: %s=%s: %s", key, value, errstr);
        return -1;
    }
    return 0;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *line)
{
    enum log_level lvl = level <= 3 ? LOG_ERROR : level <= 5 ? LOG_WARN : LOG_DEBUG;

    if (log_enabled(lvl))
        log_kv(lvl, NULL, "kafka_log", line, "client", rd_kafka_name(rk), "facility", fac,
               (char *)NULL);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    enum log_level lvl = code == RD_KAFKA_RESP_ERR__FATAL ? LOG_ERROR : LOG_WARN;

    log_kv(lvl, NULL, "kafka_error", reason, "client", rd_kafka_name(rk), "code",
           rd_kafka_err2name(code), (char *)NULL);
}

/* A conf with the common settings, then the fixed ones (kv pairs), then o->extra. */
static rd_kafka_conf_t *conf_build(const struct kafka_opts *o, const char *const *fixed,
                                   size_t nfixed, char *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *id = o->client_id ? o->client_id : "pixplane";

    if (!o->bootstrap || !*o->bootstrap) {
        err_set(err, "kafka: no bootstrap servers");
        goto fail;
    }
    if (conf_kv(conf, "bootstrap.servers", o->bootstrap, err) < 0 ||
        conf_kv(conf, "client.id", id, err) < 0 ||
        conf_kv(conf, "socket.keepalive.enable", "true", err) < 0 ||
        (o->debug && conf_kv(conf, "debug", "broker,cgrp,topic,msg", err) < 0))
        goto fail;
    for (size_t i = 0; i + 1 < nfixed; i += 2)
        if (conf_kv(conf, fixed[i], fixed[i + 1], err) < 0)
            goto fail;
    if (kafka_parse_kv(o->extra, conf_kv, conf, err) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);

    if (!rk) {
        rd_kafka_conf_destroy(conf);
        err_set(err, "kafka: %s", errstr);
    }
    return rk;
}

/* ---- producer ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct kafka_delivery *d = m->_private;

    if (!d)
        return;
    d->failed = m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
    d->partition = m->partition;
    d->offset = m->offset;
    snprintf(d->error, sizeof d->error, "%s", d->failed ? rd_kafka_err2str(m->err) : "");
    __atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
}

kafka_producer *kafka_producer_new(const struct kafka_opts *o, double delivery_timeout, char *err)
{
    char timeout_ms[32];
    const char *fixed[] = {
        "enable.idempotence",
        "true",
        "acks",
        "all",
        "message.timeout.ms",
        timeout_ms,
        "linger.ms",
        "5",
        "partitioner",
        "murmur2_random", /* the Java client's: same key, same partition */
        "queue.buffering.max.messages",
        "100000",
    };
    kafka_producer *p;
    rd_kafka_conf_t *conf;

    snprintf(timeout_ms, sizeof timeout_ms, "%ld",
             (long)(delivery_timeout > 0.001 ? delivery_timeout * 1000 : 30000));
    if (!(p = calloc(1, sizeof *p))) {
        err_set(err, "kafka: out of memory");
        return NULL;
    }
    p->delivery_timeout = delivery_timeout > 0.001 ? delivery_timeout : 30;
    pthread_mutex_init(&p->mu, NULL);
    if (!(conf = conf_build(o, fixed, ARRAY_LEN(fixed), err)))
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (!(p->rk = client_new(RD_KAFKA_PRODUCER, conf, err)))
        goto fail;
    return p;
fail:
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
}

void kafka_producer_free(kafka_producer *p, double flush_timeout)
{
    if (!p)
        return;
    if (rd_kafka_flush(p->rk, (int)(flush_timeout * 1000)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(p->rk, 1000);
    }
    rd_kafka_destroy(p->rk);
    while (p->orphans) {
        struct orphan *o = p->orphans;
        p->orphans = o->next;
        free(o);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static rd_kafka_headers_t *headers_new(const struct kafka_header *h, size_t nh)
{
    rd_kafka_headers_t *hs;

    if (!nh)
        return NULL;
    hs = rd_kafka_headers_new(nh);
    for (size_t i = 0; i < nh; i++)
        rd_kafka_header_add(hs, h[i].name, -1, h[i].value, -1);
    return hs;
}

int kafka_produce(kafka_producer *p, const char *topic, const void *key, size_t key_len,
                  const void *value, size_t value_len, const struct kafka_header *h, size_t nh,
                  struct kafka_delivery *d, char *err)
{
    rd_kafka_headers_t *hs = headers_new(h, nh);
    rd_kafka_resp_err_t e;

    if (d)
        memset(d, 0, sizeof *d);
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hs),
                          RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hs)
            rd_kafka_headers_destroy(hs);
        err_set(err, "kafka: produce to %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

void kafka_producer_poll(kafka_producer *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

int kafka_producer_outq(kafka_producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

void kafka_producer_purge(kafka_producer *p)
{
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

int kafka_producer_fatal(kafka_producer *p, char *err)
{
    char reason[256];

    if (rd_kafka_fatal_error(p->rk, reason, sizeof reason) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    err_set(err, "kafka: fatal producer error: %s", reason);
    return 1;
}

int kafka_delivery_done(const struct kafka_delivery *d)
{
    return __atomic_load_n(&d->done, __ATOMIC_ACQUIRE);
}

static size_t pending_count(struct kafka_delivery *const *ds, size_t n)
{
    size_t left = 0;

    for (size_t i = 0; i < n; i++)
        left += !kafka_delivery_done(ds[i]);
    return left;
}

size_t kafka_wait(kafka_producer *p, struct kafka_delivery *const *ds, size_t n, double timeout,
                  const volatile int *stop)
{
    double deadline = util_now_mono() + timeout;
    size_t left;

    while ((left = pending_count(ds, n)) > 0) {
        if (util_now_mono() >= deadline || (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)))
            break;
        rd_kafka_poll(p->rk, 50);
    }
    return left;
}

int kafka_produce_sync(kafka_producer *p, const char *topic, const void *key, size_t key_len,
                       const void *value, size_t value_len, const struct kafka_header *h, size_t nh,
                       const volatile int *stop, char *err)
{
    struct orphan *o = calloc(1, sizeof *o);
    struct kafka_delivery *one[1];
    int rc = -1;

    if (!o) {
        err_set(err, "kafka: out of memory");
        return -1;
    }
    one[0] = &o->d;
    if (kafka_produce(p, topic, key, key_len, value, value_len, h, nh, &o->d, err) < 0) {
        free(o);
        return -1;
    }
    if (kafka_wait(p, one, 1, p->delivery_timeout + 5, stop) > 0) {
        err_set(err, "kafka: no delivery report for %s yet", topic);
        pthread_mutex_lock(&p->mu);
        o->next = p->orphans;
        p->orphans = o;
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    if (o->d.failed)
        err_set(err, "kafka: delivery to %s failed: %s", topic, o->d.error);
    else
        rc = 0;
    free(o);
    return rc;
}

/* ---- consumer ---- */

void kafka_msg_free(struct kafka_msg *m)
{
    if (!m)
        return;
    free(m->topic);
    free(m->key);
    free(m->value);
    free(m);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static struct kafka_msg *msg_copy(const rd_kafka_message_t *rm)
{
    struct kafka_msg *m = calloc(1, sizeof *m);

    if (!m)
        return NULL;
    m->topic = strdup(rd_kafka_topic_name(rm->rkt));
    m->partition = rm->partition;
    m->offset = rm->offset;
    m->key = dup_bytes(rm->key, rm->key ? rm->key_len : 0);
    m->key_len = rm->key ? rm->key_len : 0;
    m->value = dup_bytes(rm->payload, rm->payload ? rm->len : 0);
    m->value_len = rm->payload ? rm->len : 0;
    if (!m->topic || !m->key || !m->value) {
        kafka_msg_free(m);
        return NULL;
    }
    return m;
}

static struct kafka_tp *tps_from(const rd_kafka_topic_partition_list_t *l)
{
    struct kafka_tp *tps = calloc((size_t)l->cnt + 1, sizeof *tps);

    for (int i = 0; tps && i < l->cnt; i++)
        tps[i] = (struct kafka_tp){l->elems[i].topic, l->elems[i].partition, l->elems[i].offset};
    return tps;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    struct kafka_tp *tps = tps_from(parts);
    rd_kafka_error_t *e = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (c->on_rebalance && tps)
            c->on_rebalance(1, 0, tps, (size_t)parts->cnt, c->ud);
    } else {
        if (c->on_rebalance && tps)
            c->on_rebalance(0, rd_kafka_assignment_lost(rk), tps, (size_t)parts->cnt, c->ud);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_warn(NULL, "kafka_rebalance", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    free(tps);
}

static rd_kafka_topic_partition_list_t *topic_list(const char *const *topics, size_t n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);

    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], RD_KAFKA_PARTITION_UA);
    return l;
}

static void ms_text(char *out, size_t n, double secs, long def_ms)
{
    snprintf(out, n, "%ld", secs > 0 ? (long)(secs * 1000) : def_ms);
}

kafka_consumer *kafka_consumer_new(const struct kafka_opts *o, const struct kafka_consumer_opts *co,
                                   char *err)
{
    char session[32], heartbeat[32], maxpoll[32], kbytes[32];
    const char *fixed[] = {
        "group.id",
        co->group,
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "auto.offset.reset",
        "earliest",
        "enable.partition.eof",
        "false",
        "session.timeout.ms",
        session,
        "heartbeat.interval.ms",
        heartbeat,
        "max.poll.interval.ms",
        maxpoll,
        "queued.max.messages.kbytes",
        kbytes,
    };
    kafka_consumer *c = calloc(1, sizeof *c);
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t e;

    ms_text(session, sizeof session, co->session_timeout, 6000);
    ms_text(heartbeat, sizeof heartbeat, co->heartbeat_interval, 1000);
    ms_text(maxpoll, sizeof maxpoll, co->max_poll_interval, 300000);
    snprintf(kbytes, sizeof kbytes, "%ld",
             co->fetch_queue_kbytes > 0 ? co->fetch_queue_kbytes : 1024);
    if (!c || !co->group || !*co->group || !co->ntopics) {
        err_set(err, c ? "kafka: consumer needs a group and topics" : "kafka: out of memory");
        goto fail;
    }
    c->on_rebalance = co->on_rebalance;
    c->ud = co->ud;
    if (!(conf = conf_build(o, fixed, ARRAY_LEN(fixed), err)))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, c);
    if (!(c->rk = client_new(RD_KAFKA_CONSUMER, conf, err)))
        goto fail;
    rd_kafka_poll_set_consumer(c->rk);
    l = topic_list(co->topics, co->ntopics);
    e = rd_kafka_subscribe(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        err_set(err, "kafka: subscribe: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
        goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

int kafka_consumer_poll(kafka_consumer *c, int timeout_ms, struct kafka_msg **out, char *err)
{
    rd_kafka_message_t *rm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    int rc = 1;

    *out = NULL;
    if (!rm)
        return 0;
    if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        rc = 0;
    } else if (rm->err) {
        err_set(err, "kafka: consume: %s", rd_kafka_message_errstr(rm));
        rc = -1;
    } else if (!(*out = msg_copy(rm))) {
        err_set(err, "kafka: out of memory");
        rc = -1;
    }
    rd_kafka_message_destroy(rm);
    return rc;
}

int kafka_commit(kafka_consumer *c, const struct kafka_tp *tps, size_t n, int async, char *err)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t e;

    if (!n)
        return 0;
    l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, tps[i].topic, tps[i].partition)->offset =
            tps[i].offset;
    e = rd_kafka_commit(c->rk, l, async);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        err_set(err, "kafka: commit: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

void kafka_consumer_free(kafka_consumer *c)
{
    if (!c)
        return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}
