/* metrics: families with labelled series in a mutex-guarded list (a service has tens of
 * series, not thousands); histograms use fixed latency buckets from 1 ms to 10 s. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 12
static const double bucket_le[NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,   0.25,   0.5,   1,    2.5,   10};

struct series {
    struct series *next;
    double value, sum;
    unsigned long long buckets[NBUCKETS + 1], count;
    char labels[];
};

struct family {
    struct family *next;
    enum metric_type type;
    char *name, *help;
    struct series *series;
};

struct metrics {
    pthread_mutex_t mu;
    struct family *families;
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);

    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_free(metrics *m)
{
    struct family *f, *fn;
    struct series *s, *sn;

    if (!m)
        return;
    for (f = m->families; f; f = fn) {
        fn = f->next;
        for (s = f->series; s; s = sn)
            sn = s->next, free(s);
        free(f->name), free(f->help), free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int metrics_declare(metrics *m, const char *name, enum metric_type type, const char *help)
{
    struct family *f = calloc(1, sizeof *f);

    if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help))) {
        if (f)
            free(f->name);
        free(f);
        return -1;
    }
    f->type = type;
    pthread_mutex_lock(&m->mu);
    f->next = m->families;
    m->families = f;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* The series for (name, labels), created on first use; NULL if undeclared. Under mu. */
static struct series *lookup(metrics *m, const char *name, const char *labels)
{
    struct family *f = m->families;
    struct series *s;
    size_t n = strlen(labels);

    while (f && strcmp(f->name, name))
        f = f->next;
    if (!f)
        return NULL;
    for (s = f->series; s; s = s->next)
        if (!strcmp(s->labels, labels))
            return s;
    if (!(s = calloc(1, sizeof *s + n + 1)))
        return NULL;
    memcpy(s->labels, labels, n + 1);
    s->next = f->series;
    f->series = s;
    return s;
}

void metrics_add(metrics *m, const char *name, const char *labels, double v)
{
    struct series *s;

    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if ((s = lookup(m, name, labels)))
        s->value += v;
    pthread_mutex_unlock(&m->mu);
}

void metrics_set(metrics *m, const char *name, const char *labels, double v)
{
    struct series *s;

    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if ((s = lookup(m, name, labels)))
        s->value = v;
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe(metrics *m, const char *name, const char *labels, double seconds)
{
    struct series *s;
    int i = 0;

    if (!m)
        return;
    while (i < NBUCKETS && seconds > bucket_le[i])
        i++;
    pthread_mutex_lock(&m->mu);
    if ((s = lookup(m, name, labels))) {
        s->buckets[i]++;
        s->count++;
        s->sum += seconds;
    }
    pthread_mutex_unlock(&m->mu);
}

static int render_histogram(buf *out, const struct family *f, const struct series *s)
{
    const char *sep = s->labels[0] ? "," : "";
    unsigned long long cum = 0;
    int rc = 0;

    for (int i = 0; i < NBUCKETS && rc == 0; i++) {
        cum += s->buckets[i];
        rc = buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, sep,
                        bucket_le[i], cum);
    }
    if (rc == 0)
        rc =
            buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep, s->count);
    if (rc == 0)
        rc =
            buf_printf(out, "%s_sum%s%s%s %.9g\n%s_count%s%s%s %llu\n", f->name,
                       s->labels[0] ? "{" : "", s->labels, s->labels[0] ? "}" : "", s->sum, f->name,
                       s->labels[0] ? "{" : "", s->labels, s->labels[0] ? "}" : "", s->count);
    return rc;
}

static int render_family(buf *out, const struct family *f)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc =
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);

    for (const struct series *s = f->series; s && rc == 0; s = s->next) {
        if (f->type == METRIC_HISTOGRAM)
            rc = render_histogram(out, f, s);
        else
            rc = buf_printf(out, "%s%s%s%s %.17g\n", f->name, s->labels[0] ? "{" : "", s->labels,
                            s->labels[0] ? "}" : "", s->value);
    }
    return rc;
}

int metrics_render(metrics *m, buf *out)
{
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->families; f && rc == 0; f = f->next)
        rc = render_family(out, f);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
