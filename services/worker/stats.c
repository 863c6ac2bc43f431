/* stats: the worker's counters as one JSON log line (periodically and at exit); the lead's
 * /metrics endpoint can read the same struct worker_stats. */
#include <stdio.h>

#include "log.h"
#include "worker.h"

void worker_log_stats(struct worker *w, const char *event)
{
    char v[14][24];
    long vals[] = {
        STAT_GET(w, events),         STAT_GET(w, events_done),      STAT_GET(w, events_invalid),
        STAT_GET(w, variants_built), STAT_GET(w, variants_skipped), STAT_GET(w, variants_failed),
        STAT_GET(w, blobs_gone),     STAT_GET(w, retries),          STAT_GET(w, dlq),
        STAT_GET(w, commits),        STAT_GET(w, commit_errors),    STAT_GET(w, relay_sent),
        STAT_GET(w, relay_failed),   STAT_GET(w, relay_batches)};

    for (size_t i = 0; i < ARRAY_LEN(vals); i++)
        snprintf(v[i], sizeof v[i], "%ld", vals[i]);
    log_info(NULL, event, "counters", "events", v[0], "events_done", v[1], "events_invalid", v[2],
             "variants_built", v[3], "variants_skipped", v[4], "variants_failed", v[5],
             "blobs_gone", v[6], "retries", v[7], "dlq", v[8], "commits", v[9], "commit_errors",
             v[10], "relay_sent", v[11], "relay_failed", v[12], "relay_batches", v[13],
             "relay_active", relay_is_leader(w->relay) ? "1" : "0");
}
