/* kafka: librdkafka wrapper: an idempotent producer (enable.idempotence, acks=all) whose
 * delivery reports land in caller-owned records, a consumer group with manual offset
 * commits and a rebalance hook, and helpers for extra "key=value" client settings. */
#ifndef PIX_KAFKA_H
#define PIX_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

typedef struct kafka_producer kafka_producer;
typedef struct kafka_consumer kafka_consumer;

/* Settings shared by producers and consumers. Strings are copied where kept. */
struct kafka_opts {
    const char *bootstrap; /* "host:port,host:port" */
    const char *client_id; /* NULL: "pixplane" */
    const char *extra;     /* more librdkafka settings "k=v,k=v" (security, tuning), or NULL */
    int debug;             /* librdkafka debug logs ("broker,cgrp,topic,msg") */
};

/* Applies "k=v,k=v" (spaces around items ignored) through set(ud, key, value). An empty or
 * NULL list is fine. 0, or -1 with err (malformed item or set refused it). */
typedef int (*kafka_kv_fn)(void *ud, const char *key, const char *value, char *err);
int kafka_parse_kv(const char *list, kafka_kv_fn set, void *ud, char *err) PIX_WUR;

/* ---- producer ---- */

/* A caller-owned record filled by the delivery report of one message. `done` becomes 1
 * (release store; read it with kafka_delivery_done) after the other fields are final. */
struct kafka_delivery {
    int done;
    int failed;
    int32_t partition;
    int64_t offset;
    char error[128];
};

struct kafka_header {
    const char *name;
    const char *value;
};

/* delivery_timeout bounds how long a message may wait for Kafka (message.timeout.ms): every
 * message gets its delivery report within it, success or failure. */
kafka_producer *kafka_producer_new(const struct kafka_opts *o, double delivery_timeout, char *err);
/* Destroys after waiting up to flush_timeout seconds for outstanding messages; what is
 * still queued then is purged (reports as failed). NULL-safe. */
void kafka_producer_free(kafka_producer *p, double flush_timeout);

/* Queues one message. d (may be NULL) must stay valid until its report arrived (done) or
 * the producer is freed. Key and value are copied. 0, or -1 with err (queue full: retry
 * after kafka_producer_poll). */
int kafka_produce(kafka_producer *p, const char *topic, const void *key, size_t key_len,
                  const void *value, size_t value_len, const struct kafka_header *h, size_t nh,
                  struct kafka_delivery *d, char *err) PIX_WUR;
/* Serves delivery reports for up to timeout_ms. Thread-safe. */
void kafka_producer_poll(kafka_producer *p, int timeout_ms);
/* Messages queued or in flight. */
int kafka_producer_outq(kafka_producer *p);
/* Fails every message not yet delivered (their reports arrive on the next poll). */
void kafka_producer_purge(kafka_producer *p);
int kafka_delivery_done(const struct kafka_delivery *d);
/* 1 (and err) if the producer hit a fatal error (e.g. the idempotence sequence broke): it
 * must be freed and created again; 0 if it is usable. */
int kafka_producer_fatal(kafka_producer *p, char *err);
/* Waits until every record in ds is done, polling; gives up after timeout seconds or when
 * *stop becomes non-zero (stop may be NULL). Returns how many are still not done. */
size_t kafka_wait(kafka_producer *p, struct kafka_delivery *const *ds, size_t n, double timeout,
                  const volatile int *stop);
/* Produces one message and waits for its report (bounded by the delivery timeout, or
 * *stop). 0 delivered, -1 with err. */
int kafka_produce_sync(kafka_producer *p, const char *topic, const void *key, size_t key_len,
                       const void *value, size_t value_len, const struct kafka_header *h, size_t nh,
                       const volatile int *stop, char *err) PIX_WUR;

/* ---- consumer ---- */

/* One consumed message, copied out of librdkafka (free with kafka_msg_free). */
struct kafka_msg {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *key; /* NUL-terminated copy, may hold key_len bytes of binary */
    size_t key_len;
    char *value; /* NUL-terminated copy */
    size_t value_len;
};
void kafka_msg_free(struct kafka_msg *m);

struct kafka_tp {
    const char *topic;
    int32_t partition;
    int64_t offset; /* commit: the next offset to consume */
};

/* Called on the polling thread inside kafka_consumer_poll. assigned=0: the partitions are
 * being taken away (finish or drop their work and commit before returning; lost=1 means
 * they already belong to someone else and commits will fail); assigned=1: they are ours. */
typedef void (*kafka_rebalance_fn)(int assigned, int lost, const struct kafka_tp *tps, size_t n,
                                   void *ud);

struct kafka_consumer_opts {
    const char *group;
    const char *const *topics;
    size_t ntopics;
    double session_timeout;    /* session.timeout.ms */
    double heartbeat_interval; /* heartbeat.interval.ms */
    double max_poll_interval;  /* max.poll.interval.ms (0: librdkafka default) */
    long fetch_queue_kbytes;   /* queued.max.messages.kbytes: prefetch bound */
    kafka_rebalance_fn on_rebalance;
    void *ud;
};

/* Subscribes; auto commit and auto offset store are off, auto.offset.reset=earliest. */
kafka_consumer *kafka_consumer_new(const struct kafka_opts *o, const struct kafka_consumer_opts *co,
                                   char *err);
/* 1 and *out (a message), 0 if none arrived within timeout_ms, -1 with err for a consumer
 * error (logged by the caller; most are transient and the consumer recovers by itself). */
int kafka_consumer_poll(kafka_consumer *c, int timeout_ms, struct kafka_msg **out, char *err);
/* Commits offsets (tp->offset = next to consume). async: do not wait for the broker. */
int kafka_commit(kafka_consumer *c, const struct kafka_tp *tps, size_t n, int async,
                 char *err) PIX_WUR;
/* Leaves the group cleanly (the rebalance hook sees the revocation) and frees. NULL-safe. */
void kafka_consumer_free(kafka_consumer *c);

#endif
