/* stats: the service's counters (as one JSON log line, periodically and at exit, and as
 * Prometheus counters) and its histograms and gauges (the metrics registry), for /metrics. */
#include <stddef.h>
#include <stdio.h>

#include "hooks.h"
#include "log.h"

static const struct {
    const char *name, *labels, *help;
    size_t off;
} counters[] = {
#define F(name, labels, field, help)                                                               \
    {                                                                                              \
        name, labels, help, offsetof(struct hooks_stats, field)                                    \
    }
    F("events", "", events, "messages taken from Kafka"),
    F("events_stored", "", events_stored, "new events stored"),
    F("events_seen", "", events_seen, "messages whose event was already stored (redelivered)"),
    F("events_invalid", "", events_invalid, "messages that were not an integration event"),
    F("fanned_out", "", fanned_out, "deliveries created for stored events"),
    F("commits", "", commits, "offset commits"),
    F("commit_errors", "", commit_errors, "failed offset commits"),
    F("store_errors", "", store_errors, "batches whose transaction failed (stored again)"),
    F("deliveries", "result=\"delivered\"", delivered, "delivery attempts by result"),
    F("deliveries", "result=\"attempt_failed\"", attempts_failed, NULL),
    F("deliveries", "result=\"given_up\"", failed, NULL),
    F("refused", "", refused, "attempts the address guard refused before connecting"),
    F("endpoints_disabled", "", disabled, "endpoints this process disabled (they kept failing)"),
    F("pruned", "", pruned, "rows removed past the retention"),
#undef F
};

static const struct {
    const char *name;
    enum metric_type type;
    const char *help;
} families[] = {
    {"pixplane_hooks_request_seconds", METRIC_HISTOGRAM, "delivery requests by result"},
    {"pixplane_hooks_event_lag_seconds", METRIC_HISTOGRAM,
     "from the event's commit (occurred_at) to the receiver's 2xx"},
    {"pixplane_hooks_pending", METRIC_GAUGE, "deliveries not yet delivered nor given up"},
    {"pixplane_hooks_pending_due", METRIC_GAUGE, "pending deliveries due now"},
    {"pixplane_hooks_pending_oldest_seconds", METRIC_GAUGE, "age of the oldest pending delivery"},
    {"pixplane_hooks_endpoints_disabled", METRIC_GAUGE, "endpoints disabled (any reason)"},
};

int hooks_metrics_init(struct hooks *h, char *err)
{
    if (!(h->m = metrics_new())) {
        err_set(err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(families); i++)
        if (metrics_declare(h->m, families[i].name, families[i].type, families[i].help) < 0) {
            err_set(err, "cannot declare %s", families[i].name);
            return -1;
        }
    return 0;
}

static long counter(const struct hooks *h, size_t i)
{
    return __atomic_load_n((const long *)((const char *)&h->stats + counters[i].off),
                           __ATOMIC_RELAXED);
}

int hooks_render_metrics(buf *out, void *ud)
{
    struct hooks *h = ud;
    int rc = 0;

    for (size_t i = 0; i < ARRAY_LEN(counters) && rc == 0; i++) {
        const char *n = counters[i].name, *l = counters[i].labels;
        if (counters[i].help)
            rc = buf_printf(out,
                            "# HELP pixplane_hooks_%s_total %s\n"
                            "# TYPE pixplane_hooks_%s_total counter\n",
                            n, counters[i].help, n);
        if (rc == 0)
            rc = buf_printf(out, "pixplane_hooks_%s_total%s%s%s %ld\n", n, *l ? "{" : "", l,
                            *l ? "}" : "", counter(h, i));
    }
    return rc == 0 ? metrics_render(h->m, out) : -1;
}

void hooks_log_stats(struct hooks *h, const char *event)
{
    char v[ARRAY_LEN(counters)][24];

    for (size_t i = 0; i < ARRAY_LEN(counters); i++)
        snprintf(v[i], sizeof v[i], "%ld", counter(h, i));
    log_info(NULL, event, "counters", "events", v[0], "events_stored", v[1], "events_seen", v[2],
             "events_invalid", v[3], "fanned_out", v[4], "commits", v[5], "commit_errors", v[6],
             "store_errors", v[7], "delivered", v[8], "attempts_failed", v[9], "given_up", v[10],
             "refused", v[11], "endpoints_disabled", v[12], "pruned", v[13]);
}
