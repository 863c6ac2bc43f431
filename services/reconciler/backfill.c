/* backfill: content without capture metadata (stored before the worker read it) gets one
 * image.uploaded event like complete writes, at most capture-batch per pass; the worker
 * then reads and stores it. Not again while an unsent event for that content waits. An
 * audit (a scan of every blob): a pass that stopped at the cap leaves it due for the next. */
#include <stdio.h>

#include "rec.h"

/* Real run: one statement enqueues the events and returns (content, outbox id); a dry run
 * lists the same candidates (content, image) without writing. */
static void enqueue_row(struct rec *r, const PGresult *res, int i)
{
    const char *id = r->cfg->dry_run ? NULL : pg_val(res, i, 1);

    rec_did(r, "enqueue_capture", pg_val(res, i, 0), "image_id", pg_val(res, i, 2), "outbox_id", id,
            NULL);
}

int sweep_capture(struct rec *r, char *err)
{
    char limit[24], grace[32];
    const char *p[3] = {limit, grace, r->cfg->upload_topic};
    const char *stmt = r->cfg->dry_run ? "capture_missing" : "capture_enqueue";
    PGresult *res;

    if (r->cfg->capture_batch <= 0)
        return 0;
    snprintf(limit, sizeof limit, "%ld", r->cfg->capture_batch);
    rec_secs(grace, r->cfg->capture_grace);
    if (!(res = rec_exec(r, stmt, r->cfg->dry_run ? 2 : 3, p, err)))
        return -1;
    rec_examined(r, PQntuples(res));
    r->more = PQntuples(res) >= r->cfg->capture_batch;
    for (int i = 0; i < PQntuples(res); i++)
        enqueue_row(r, res, i);
    PQclear(res);
    return 0;
}
