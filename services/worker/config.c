/* config: the worker's configuration table (flags, environment, defaults, help) and the
 * variant table it carries ("name:box[:format[:quality]],..."), plus variant object keys. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

struct worker_config worker_cfg;

#define C(field) (&worker_cfg.field)

const struct conf_opt worker_conf[] = {
    {"listen", "PIXPLANE_WORKER_LISTEN", CONF_STR, C(listen), "",
     "address:port for /healthz, /readyz and /metrics (empty: no listener)"},
    CONF_OPTS_STORE(C),
    CONF_OPTS_KAFKA(C),
    {"upload-topic", "PIXPLANE_UPLOAD_TOPIC", CONF_STR, C(upload_topic), "image-uploaded",
     "topic of image.uploaded events (consumed)"},
    {"dlq-topic", "PIXPLANE_DLQ_TOPIC", CONF_STR, C(dlq_topic), "image-uploaded-dlq",
     "dead-letter topic: events whose variants failed after every attempt, or unreadable"},
    {"group", "PIXPLANE_WORKER_GROUP", CONF_STR, C(group), "pixplane-worker",
     "Kafka consumer group id"},
    {"threads", "PIXPLANE_WORKER_THREADS", CONF_INT, C(threads), "2",
     "image processing threads (partitions are processed in order, one image each at a time)", 1,
     256},
    {"variants", "PIXPLANE_VARIANTS", CONF_STR, C(variants),
     "thumbnail_small:256,thumbnail_large:1024,preview:2048",
     "variant table: name:box[:webp|jpeg[:quality]],... (box: fits in box x box px)"},
    {"webp-quality", "PIXPLANE_WEBP_QUALITY", CONF_INT, C(webp_quality), "80",
     "WebP quality of variants that do not set one"},
    {"webp-effort", "PIXPLANE_WEBP_EFFORT", CONF_INT, C(webp_effort), "4",
     "WebP encoder effort 0..6: lower is faster, files a little larger (2: ~40% less CPU, +6%)", 0,
     6},
    {"jpeg-quality", "PIXPLANE_JPEG_QUALITY", CONF_INT, C(jpeg_quality), "85",
     "JPEG quality of variants that do not set one"},
    {"max-pixels", "PIXPLANE_MAX_PIXELS", CONF_INT, C(max_pixels), "100000000",
     "largest image decoded, width x height from the header (larger: failed)", 1, 0},
    {"max-input-size", "PIXPLANE_MAX_INPUT_SIZE", CONF_SIZE, C(max_input_size), "256MiB",
     "largest original decoded (larger: failed)", 1, 0},
    {"read-block", "PIXPLANE_READ_BLOCK", CONF_SIZE, C(read_block), "4MiB",
     "originals are read from S3 in ranged GETs of this size", 65536, 268435456},
    {"max-attempts", "PIXPLANE_MAX_ATTEMPTS", CONF_INT, C(max_attempts), "5",
     "attempts per event before its variants are marked failed and it is dead-lettered", 1, 0},
    {"retry-backoff", "PIXPLANE_RETRY_BACKOFF", CONF_SECS, C(retry_backoff), "1s",
     "wait after the first failed attempt (doubles each time)"},
    {"retry-backoff-max", "PIXPLANE_RETRY_BACKOFF_MAX", CONF_SECS, C(retry_backoff_max), "30s",
     "longest wait between attempts"},
    CONF_OPTS_KAFKA_GROUP(C),
    {"max-buffered", "PIXPLANE_WORKER_MAX_BUFFERED", CONF_INT, C(max_buffered), "256",
     "events held in memory (queued or in progress) before the consumer stops fetching"},
    {"relay", "PIXPLANE_RELAY", CONF_BOOL, C(relay), "true",
     "run the outbox relay thread (one process in the fleet is the active relay)"},
    {"relay-batch", "PIXPLANE_RELAY_BATCH", CONF_INT, C(relay_batch), "500",
     "outbox rows published per batch (bounds the relay's memory)", 1, 100000},
    {"relay-poll", "PIXPLANE_RELAY_POLL", CONF_SECS, C(relay_poll), "200ms",
     "how often an idle relay looks for new outbox rows"},
    {"relay-delivery-timeout", "PIXPLANE_RELAY_DELIVERY_TIMEOUT", CONF_SECS,
     C(relay_delivery_timeout), "30s",
     "how long a batch waits for Kafka before its rows are retried (message.timeout.ms)"},
    {"relay-standby-retry", "PIXPLANE_RELAY_STANDBY_RETRY", CONF_SECS, C(relay_standby_retry), "3s",
     "how often a standby relay tries to become the active one"},
    {"shutdown-timeout", "PIXPLANE_SHUTDOWN_TIMEOUT", CONF_SECS, C(shutdown_timeout), "20s",
     "on SIGTERM, how long in-progress images may take before they are abandoned"},
    {"vips-concurrency", "PIXPLANE_VIPS_CONCURRENCY", CONF_INT, C(vips_concurrency), "1",
     "libvips threads per image (0: libvips default)"},
    {"stats-interval", "PIXPLANE_STATS_INTERVAL", CONF_SECS, C(stats_interval), "60s",
     "how often counters are logged (0: only at exit)"},
    CONF_OPT_LOG_LEVEL(C),
};
const size_t worker_conf_count = ARRAY_LEN(worker_conf);

static int valid_name(const char *s, size_t n)
{
    if (n < 1 || n > VARIANT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    if (!*s)
        return -1;
    v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* One "name:box[:format[:quality]]" item. */
static int parse_variant(char *item, int webp_q, int jpeg_q, struct variant *v, char *err)
{
    char *f[5] = {0}, *save = NULL, *end;
    int nf = 0;

    while (isspace((unsigned char)*item))
        item++;
    for (end = item + strlen(item); end > item && isspace((unsigned char)end[-1]);)
        *--end = '\0';
    for (char *t = strtok_r(item, ":", &save); t; t = strtok_r(NULL, ":", &save))
        if (nf < 5)
            f[nf++] = t;
    if (nf < 2 || nf > 4 || !valid_name(f[0], strlen(f[0])))
        goto bad;
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", f[0]);
    if (parse_int(f[1], 16, 8192, &v->box) < 0)
        goto bad;
    v->format = nf > 2 && strcmp(f[2], "jpeg") == 0 ? VARIANT_JPEG : VARIANT_WEBP;
    if (nf > 2 && strcmp(f[2], "jpeg") != 0 && strcmp(f[2], "webp") != 0)
        goto bad;
    v->quality = v->format == VARIANT_JPEG ? jpeg_q : webp_q;
    v->effort = 4;
    if (nf > 3 && parse_int(f[3], 1, 100, &v->quality) < 0)
        goto bad;
    return 0;
bad:
    err_set(err,
            "variant \"%s\" is not name:box[:webp|jpeg[:quality]] (name [a-z0-9_], "
            "box 16..8192, quality 1..100)",
            f[0] ? f[0] : "");
    return -1;
}

static int by_box_desc(const void *a, const void *b)
{
    return ((const struct variant *)b)->box - ((const struct variant *)a)->box;
}

int variants_parse(const char *spec, int webp_q, int jpeg_q, struct variant *v, size_t max,
                   char *err)
{
    char *copy = strdup(spec ? spec : ""), *save = NULL;
    size_t n = 0;

    if (!copy) {
        err_set(err, "out of memory");
        return -1;
    }
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == max) {
            err_set(err, "more than %zu variants", max);
            goto fail;
        }
        if (parse_variant(t, webp_q, jpeg_q, &v[n], err) < 0)
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].name, v[n].name) == 0) {
                err_set(err, "variant %s listed twice", v[n].name);
                goto fail;
            }
        n++;
    }
    free(copy);
    if (!n) {
        err_set(err, "no variants configured");
        return -1;
    }
    qsort(v, n, sizeof *v, by_box_desc);
    return (int)n;
fail:
    free(copy);
    return -1;
}

const char *variant_mime(const struct variant *v)
{
    return v->format == VARIANT_JPEG ? "image/jpeg" : "image/webp";
}

const char *variant_ext(const struct variant *v)
{
    return v->format == VARIANT_JPEG ? "jpg" : "webp";
}

int variant_key(buf *out, const char *content_hash, long long blob_id, const struct variant *v)
{
    return buf_printf(out, "variants/%s/%lld/%s.%s", content_hash, blob_id, v->name,
                      variant_ext(v));
}
