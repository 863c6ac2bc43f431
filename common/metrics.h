/* metrics: a small thread-safe registry of counters, gauges and histograms with labels,
 * rendered in the Prometheus text exposition format for /metrics. */
#ifndef PIX_METRICS_H
#define PIX_METRICS_H

#include "util.h"

typedef struct metrics metrics;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

metrics *metrics_new(void);
void metrics_free(metrics *m); /* NULL-safe */

/* Declares a family (name, type, help); series of undeclared names are refused. */
int metrics_declare(metrics *m, const char *name, enum metric_type type, const char *help) PIX_WUR;
/* labels: Prometheus label text without braces, e.g. route="/uploads",status="201", or "".
 * Values in labels must already be escaped (no quotes, backslashes or newlines). */
void metrics_add(metrics *m, const char *name, const char *labels, double v);
void metrics_set(metrics *m, const char *name, const char *labels, double v);
void metrics_observe(metrics *m, const char *name, const char *labels, double seconds);

/* Appends the exposition text to out. 0 or -1. */
int metrics_render(metrics *m, buf *out) PIX_WUR;

#endif
