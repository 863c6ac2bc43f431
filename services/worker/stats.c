/* stats: the worker's counters as one JSON log line (periodically and at exit); the lead's
 * /metrics endpoint can read the same struct worker_stats. */
#include <stddef.h>
#include <stdio.h>

#include "log.h"
#include "worker.h"

void worker_log_stats(struct worker *w, const char *event)
{
    char v[16][24];
    long vals[] = {STAT_GET(w, events),
                   STAT_GET(w, events_done),
                   STAT_GET(w, events_invalid),
                   STAT_GET(w, variants_built),
                   STAT_GET(w, variants_skipped),
                   STAT_GET(w, variants_failed),
                   STAT_GET(w, blobs_gone),
                   STAT_GET(w, retries),
                   STAT_GET(w, dlq),
                   STAT_GET(w, commits),
                   STAT_GET(w, commit_errors),
                   STAT_GET(w, relay_sent),
                   STAT_GET(w, relay_failed),
                   STAT_GET(w, relay_batches),
                   STAT_GET(w, captures_stored),
                   STAT_GET(w, capture_field_errors)};

    for (size_t i = 0; i < ARRAY_LEN(vals); i++)
        snprintf(v[i], sizeof v[i], "%ld", vals[i]);
    log_info(NULL, event, "counters", "events", v[0], "events_done", v[1], "events_invalid", v[2],
             "variants_built", v[3], "variants_skipped", v[4], "variants_failed", v[5],
             "blobs_gone", v[6], "retries", v[7], "dlq", v[8], "commits", v[9], "commit_errors",
             v[10], "relay_sent", v[11], "relay_failed", v[12], "relay_batches", v[13],
             "captures_stored", v[14], "capture_field_errors", v[15], "relay_active",
             relay_is_leader(w->relay) ? "1" : "0");
}

static const struct {
    const char *name, *help;
    size_t off;
} counters[] = {
#define F(field, help)                                                                             \
    {                                                                                              \
        "pixplane_worker_" #field "_total", help, offsetof(struct worker_stats, field)             \
    }
    F(events, "messages taken from Kafka"),
    F(events_done, "messages whose work is durable (offset may be committed)"),
    F(events_invalid, "messages that were not a version-1 image.uploaded event"),
    F(variants_built, "variants made and recorded"),
    F(variants_skipped, "variants already ready (duplicate or replayed events)"),
    F(variants_failed, "variants marked failed"),
    F(blobs_gone, "events whose content was purged meanwhile"),
    F(retries, "retried attempts"),
    F(dlq, "events sent to the dead-letter topic"),
    F(commits, "offset commits"),
    F(commit_errors, "failed offset commits"),
    F(relay_sent, "outbox rows delivered to Kafka"),
    F(relay_failed, "outbox rows whose delivery failed"),
    F(relay_batches, "outbox batches"),
    F(captures_stored, "capture metadata rows stored"),
    F(capture_field_errors, "capture metadata fields present but unreadable"),
#undef F
};

int worker_render_metrics(buf *out, void *ud)
{
    struct worker *w = ud;
    int rc = 0;

    for (size_t i = 0; i < ARRAY_LEN(counters) && rc == 0; i++) {
        long v = __atomic_load_n((long *)((char *)&w->stats + counters[i].off), __ATOMIC_RELAXED);
        rc = buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %ld\n", counters[i].name,
                        counters[i].help, counters[i].name, counters[i].name, v);
    }
    if (rc == 0)
        rc = buf_printf(out,
                        "# HELP pixplane_worker_relay_active 1 if this process runs the "
                        "outbox relay\n# TYPE pixplane_worker_relay_active gauge\n"
                        "pixplane_worker_relay_active %d\n",
                        relay_is_leader(w->relay) ? 1 : 0);
    return rc;
}
