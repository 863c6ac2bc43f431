/* config: the reconciler's configuration table (flags, environment variables, defaults,
 * help) and the safety rules between settings. `pixplane-reconciler --help` prints it. */
#include <string.h>

#include "rec.h"

struct rec_config rec_cfg;

#define C(field) (&rec_cfg.field)

const struct conf_opt rec_conf[] = {
    CONF_OPTS_STORE(C),
    {"upload-topic", "PIXPLANE_UPLOAD_TOPIC", CONF_STR, C(upload_topic), "image-uploaded",
     "topic of the image.uploaded events written to the outbox (commits, variant requeues)"},
    CONF_OPT_LOG_LEVEL(C),
    {"once", NULL, CONF_BOOL, C(once), "false",
     "one pass, then exit: 0 clean, 1 repaired something, 2 error"},
    {"dry-run", "PIXPLANE_RECONCILE_DRY_RUN", CONF_BOOL, C(dry_run), "false",
     "change nothing; report the repairs a real run would make"},
    {"only", "PIXPLANE_RECONCILE_ONLY", CONF_STR, C(only), "",
     "comma-separated sweeps to run (default all): expired_sessions, orphan_multipart, "
     "half_committed, orphan_objects, retention, refcount, stuck, capture, usage, partitions; "
     "audits named here run whatever audit-every says"},
    {"report", NULL, CONF_STR, C(report), "text",
     "summary printed on stdout at the end of --once: text or json"},
    {"interval", "PIXPLANE_RECONCILE_INTERVAL", CONF_SECS, C(interval), "5m",
     "daemon mode: pause between passes (a standby retries the lock every 10s at most)"},
    {"listen", "PIXPLANE_RECONCILER_LISTEN", CONF_STR, C(listen), "127.0.0.1:9464",
     "daemon mode: address:port of /metrics, /healthz and /readyz (empty: none)"},
    {"batch", "PIXPLANE_RECONCILE_BATCH", CONF_INT, C(batch), "500",
     "rows or objects per query and per batch of repairs", 1, 10000},
    {"session-ttl", "PIXPLANE_SESSION_TTL", CONF_SECS, C(session_ttl), "24h",
     "the API's upload session lifetime (orphan-grace must cover it)"},
    {"complete-lease", "PIXPLANE_COMPLETE_LEASE", CONF_SECS, C(complete_lease), "15m",
     "the API's completion lease; the reconciler takes leases this long", 1, 0},
    {"retention", "PIXPLANE_RETENTION", CONF_SECS, C(retention), "30d",
     "soft-deleted images older than this are purged (the API's restore window)"},
    {"expired-grace", "PIXPLANE_RECONCILE_EXPIRED_GRACE", CONF_SECS, C(expired_grace), "10m",
     "sessions are expired this long after expires_at"},
    {"lease-grace", "PIXPLANE_RECONCILE_LEASE_GRACE", CONF_SECS, C(lease_grace), "1m",
     "a completion lease must have run out this long before the reconciler takes over"},
    {"multipart-grace", "PIXPLANE_RECONCILE_MULTIPART_GRACE", CONF_SECS, C(multipart_grace), "1h",
     "multipart uploads without a live session are aborted once this old"},
    {"orphan-grace", "PIXPLANE_RECONCILE_ORPHAN_GRACE", CONF_SECS, C(orphan_grace), "48h",
     "objects without a row are deleted once this old (>= session-ttl + complete-lease)"},
    {"audit-every", "PIXPLANE_RECONCILE_AUDIT_EVERY", CONF_SECS, C(audit_every), "6h",
     "the full passes (refcount over all blobs, orphan_objects over the bucket) run at most "
     "this often (0: every pass)"},
    {"outbox-stuck", "PIXPLANE_RECONCILE_OUTBOX_STUCK", CONF_SECS, C(outbox_stuck), "15m",
     "outbox rows unsent this long are reported and their attempts reset"},
    {"variant-stuck", "PIXPLANE_RECONCILE_VARIANT_STUCK", CONF_SECS, C(variant_stuck), "2h",
     "variants pending or failed this long are requeued (a fresh outbox event)"},
    {"s3-workers", "PIXPLANE_RECONCILE_S3_WORKERS", CONF_INT, C(s3_workers), "8",
     "threads (each with its own connection) for a page's aborts and deletes", 1, 64},
    {"s3-page-size", "PIXPLANE_RECONCILE_S3_PAGE_SIZE", CONF_INT, C(s3_page_size), "0",
     "entries per listing page (1..1000; 0: the server's default, 1000)", 0, 1000},
    {"capture-batch", "PIXPLANE_RECONCILE_CAPTURE_BATCH", CONF_INT, C(capture_batch), "1000",
     "most contents per pass that get an event for reading their capture metadata (the "
     "backfill of content stored before the worker read it; 0: off); an audit, due again "
     "on the next pass while a pass reaches this cap",
     0, 100000},
    {"capture-grace", "PIXPLANE_RECONCILE_CAPTURE_GRACE", CONF_SECS, C(capture_grace), "10m",
     "content younger than this is left to its own upload event (no capture backfill yet)"},
    {"requeue-max", "PIXPLANE_RECONCILE_REQUEUE_MAX", CONF_INT, C(requeue_max), "3",
     "most resets of one outbox row and requeues of one variant"},
    /* partitions: change_log and outbox by day */
    {"partitions-ahead", "PIXPLANE_PARTITIONS_AHEAD", CONF_INT, C(partitions_ahead), "7",
     "days of change_log and outbox partitions kept created ahead of today (rows of a day "
     "without one go to the DEFAULT partition and move out when it is created)",
     1, 365},
    {"sync-retention", "PIXPLANE_SYNC_RETENTION", CONF_SECS, C(sync_retention), "30d",
     "the API's change-log retention: change_log partitions entirely older are dropped "
     "(older cursors answer 410 full_resync_required)"},
    {"outbox-retention", "PIXPLANE_OUTBOX_RETENTION", CONF_SECS, C(outbox_retention), "7d",
     "outbox partitions entirely older than this are dropped once every row in them is sent"},
};
const size_t rec_conf_count = ARRAY_LEN(rec_conf);

int rec_config_check(const struct rec_config *c, char *err)
{
    if (strcmp(c->report, "text") && strcmp(c->report, "json"))
        err_set(err, "report must be text or json");
    else if (!c->once && c->interval < 1)
        err_set(err, "interval must be at least 1s");
    else if (c->requeue_max < 0)
        err_set(err, "requeue-max must not be negative");
    else if (c->orphan_grace < c->session_ttl + c->complete_lease)
        err_set(err,
                "orphan-grace (%.0fs) must be at least session-ttl + complete-lease "
                "(%.0fs): an upload may legitimately be that old",
                c->orphan_grace, c->session_ttl + c->complete_lease);
    else if (rec_sweeps_parse(c->only, err) < 0)
        return -1;
    else
        return 0;
    return -1;
}
