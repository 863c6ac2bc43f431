/* process: one image.uploaded event on a pool thread: claim the pending variants, build them
 * from the original streamed out of S3, store the objects, then commit rows and change-log
 * entries in one transaction; retry transient failures, dead-letter after max-attempts. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"
#include "thumb.h"
#include "worker.h"

#define PG_WAIT 5.0 /* seconds to wait for a pooled connection */
#define SQL_FK_VIOLATION "23503"

enum step {
    STEP_DONE,  /* nothing more to do for this event: commit its offset */
    STEP_RETRY, /* a counted attempt failed transiently */
    STEP_INFRA, /* the database could not be used: retry, not counted */
};

struct evctx {
    struct worker *w;
    struct worker_tctx *t;
    struct job *j;
    struct upload_event ev;
    long long blob_id, size;
    char storage_path[1100];
    int capture_due; /* the content has no capture metadata from this reader's version */
    size_t pending[VARIANT_MAX]; /* indices into w->variants still to build */
    size_t npending;
    int attempts;            /* highest attempt count among the pending variants */
    long long wrote_blob_id; /* an earlier attempt stored objects under this generation */
    char last_err[ERR_MAX];
};

static const char *rid(const struct evctx *e)
{
    return e->ev.image_id[0] ? e->ev.image_id : NULL;
}

/* "{a,b}" of the pending variant names (names are [a-z0-9_], no quoting needed). */
static int pending_array(const struct evctx *e, buf *out)
{
    int rc = buf_puts(out, "{");

    for (size_t i = 0; i < e->npending && rc == 0; i++)
        rc = buf_printf(out, "%s%s", i ? "," : "", e->w->variants[e->pending[i]].name);
    return rc < 0 ? -1 : buf_puts(out, "}");
}

static void note_error(struct evctx *e, const char *err)
{
    snprintf(e->last_err, sizeof e->last_err, "%s", err);
}

/* Runs a statement on the pending variants with a message ($3). 0 or -1. */
static int pending_update(struct evctx *e, pg_conn *db, const char *stmt, const char *msg)
{
    buf arr = {0};
    char err[ERR_MAX] = "";
    PGresult *r = NULL;

    if (pending_array(e, &arr) == 0) {
        const char *p[] = {e->ev.content_hash, arr.data, msg};
        r = pg_exec(db, stmt, 3, p, err);
    }
    buf_free(&arr);
    if (!r) {
        log_warn(rid(e), "variant_update_failed", err, "statement", stmt);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* Marks the pending variants failed for good. STEP_DONE, or STEP_INFRA. */
static enum step fail_pending(struct evctx *e, pg_conn *db, const char *reason)
{
    if (pending_update(e, db, "variants_fail", reason) < 0)
        return STEP_INFRA;
    STAT_ADD(e->w, variants_failed, (long)e->npending);
    log_warn(rid(e), "variants_failed", reason, "content_hash", e->ev.content_hash);
    return STEP_DONE;
}

/* 1 found, 0 gone (purged), -1 error. */
static int load_blob(struct evctx *e, pg_conn *db, char *err)
{
    const char *p[] = {e->ev.content_hash};
    PGresult *r = pg_exec(db, "blob_get", 1, p, err);

    e->capture_due = 0;
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 0;
    }
    e->blob_id = pg_i64(r, 0, 0);
    snprintf(e->storage_path, sizeof e->storage_path, "%s", pg_val(r, 0, 1));
    e->size = pg_i64(r, 0, 2);
    e->capture_due = pg_i64(r, 0, 3) < CAPTURE_VERSION;
    PQclear(r);
    return 1;
}

static int variant_index(const struct worker *w, const char *name)
{
    for (size_t i = 0; i < w->nvariants; i++)
        if (strcmp(w->variants[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Counts one more attempt on every pending variant. 1 claimed (npending may be 0: all
 * ready or failed), 0 blob gone, -1 error. */
static int claim(struct evctx *e, pg_conn *db, char *err)
{
    buf arr = {0};
    PGresult *r = NULL;
    int idx;

    for (size_t i = 0; i < e->w->nvariants; i++)
        e->pending[i] = i;
    e->npending = e->w->nvariants;
    if (pending_array(e, &arr) == 0) {
        const char *p[] = {e->ev.content_hash, arr.data};
        r = pg_exec(db, "variants_claim", 2, p, err);
    }
    buf_free(&arr);
    e->npending = 0;
    e->attempts = 0;
    if (!r) {
        e->capture_due = 0;
        return strcmp(pg_sqlstate(db), SQL_FK_VIOLATION) == 0 ? 0 : -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        if ((idx = variant_index(e->w, pg_val(r, i, 0))) < 0)
            continue;
        e->pending[e->npending++] = (size_t)idx;
        if (pg_i64(r, i, 1) > e->attempts)
            e->attempts = (int)pg_i64(r, i, 1);
    }
    PQclear(r);
    /* keep the table's order (largest first) */
    for (size_t i = 1; i < e->npending; i++)
        for (size_t k = i; k > 0 && e->pending[k] < e->pending[k - 1]; k--) {
            size_t tmp = e->pending[k];
            e->pending[k] = e->pending[k - 1];
            e->pending[k - 1] = tmp;
        }
    return 1;
}

/* The blocked reader over the event's original in S3. */
static void original_reader(struct evctx *e, struct rsrc *r, struct rsrc_s3 *s3)
{
    *s3 = (struct rsrc_s3){e->t->s3, e->storage_path};
    *r = (struct rsrc){.fetch = rsrc_s3_fetch,
                       .ud = s3,
                       .size = e->size,
                       .block_size = (size_t)e->w->cfg->read_block,
                       .abort = &e->w->aborting};
}

/* Builds the pending variants into out. THUMB_* codes; THUMB_ERROR means transient (the
 * original could not be read, or an encoder failed). */
static int build(struct evctx *e, struct thumb_out *out, char *err)
{
    const struct worker_config *cfg = e->w->cfg;
    struct rsrc_s3 s3;
    struct rsrc r;
    struct variant vs[VARIANT_MAX];
    VipsSource *src;
    int rc;

    original_reader(e, &r, &s3);
    for (size_t i = 0; i < e->npending; i++)
        vs[i] = e->w->variants[e->pending[i]];
    if (!(src = rsrc_source(&r))) {
        err_set(err, "cannot create a libvips source");
        return THUMB_ERROR;
    }
    rc = thumb_build(src, vs, e->npending, cfg->max_pixels, out, err);
    if (rc != THUMB_OK && r.failed) {
        err_set(err, "reading the original: %s", r.err);
        rc = THUMB_ERROR;
    }
    g_object_unref(src);
    rsrc_fini(&r);
    return rc;
}

static void delete_objects(struct evctx *e, buf *keys, size_t n)
{
    char err[ERR_MAX] = "";

    for (size_t i = 0; i < n; i++)
        if (keys[i].len && s3_delete_object(e->t->s3, keys[i].data, err) != S3_OK)
            log_warn(rid(e), "variant_delete_failed", err, "key", keys[i].data);
}

/* The content vanished after an earlier attempt of ours stored objects (its commit failed):
 * remove them (the purge's prefix sweep would too, but nothing should depend on timing). */
static void forget_written(struct evctx *e)
{
    buf keys[VARIANT_MAX] = {{0}};
    size_t n = 0;

    if (!e->wrote_blob_id)
        return;
    for (size_t i = 0; i < e->w->nvariants; i++)
        if (variant_key(&keys[n], e->ev.content_hash, e->wrote_blob_id, &e->w->variants[i]) == 0)
            n++;
    delete_objects(e, keys, n);
    for (size_t i = 0; i < n; i++)
        buf_free(&keys[i]);
    e->wrote_blob_id = 0;
}

static int put_objects(struct evctx *e, const struct thumb_out *out, buf *keys, char *err)
{
    for (size_t i = 0; i < e->npending; i++) {
        const struct variant *v = &e->w->variants[e->pending[i]];

        if (variant_key(&keys[i], e->ev.content_hash, e->blob_id, v) < 0) {
            err_set(err, "out of memory");
            return -1;
        }
        if (s3_put_object(e->t->s3, keys[i].data, out[i].data, out[i].len, variant_mime(v), err) !=
            S3_OK)
            return -1;
    }
    return 0;
}

/* Inside the transaction: one ready row per variant; how many changed, or -1. */
static int mark_ready(struct evctx *e, pg_conn *db, const struct thumb_out *out, const buf *keys,
                      char *err)
{
    int changed = 0;

    for (size_t i = 0; i < e->npending; i++) {
        const struct variant *v = &e->w->variants[e->pending[i]];
        char wd[16], ht[16], sz[24];
        const char *p[] = {e->ev.content_hash, v->name, keys[i].data, variant_mime(v), wd, ht, sz};
        PGresult *r;

        snprintf(wd, sizeof wd, "%d", out[i].width);
        snprintf(ht, sizeof ht, "%d", out[i].height);
        snprintf(sz, sizeof sz, "%zu", out[i].len);
        if (!(r = pg_exec(db, "variant_ready", 7, p, err)))
            return -1;
        changed += PQntuples(r);
        PQclear(r);
    }
    return changed;
}

/* 1 committed, 0 blob gone or replaced by a new generation, -1 error. The variant rows are
 * written before the blob row is locked: the same order as a purge (variants, then blob),
 * so the two serialize instead of deadlocking; a purge that won leaves an FK violation. */
static int commit_rows(struct evctx *e, pg_conn *db, const struct thumb_out *out, const buf *keys,
                       char *err)
{
    const char *p[] = {e->ev.content_hash};
    PGresult *r = NULL;
    int changed, same;

    if (pg_tx_begin(db, err) < 0)
        return -1;
    if ((changed = mark_ready(e, db, out, keys, err)) < 0)
        goto fail;
    if (!(r = pg_exec(db, "blob_lock", 1, p, err)))
        goto fail;
    same = PQntuples(r) == 1 && pg_i64(r, 0, 0) == e->blob_id;
    PQclear(r);
    if (!same) {
        pg_tx_rollback(db);
        return 0;
    }
    if (changed > 0 && !(r = pg_exec(db, "variant_changes", 1, p, err)))
        goto fail;
    if (changed > 0)
        PQclear(r);
    if (pg_tx_commit(db, err) < 0)
        goto fail;
    STAT_ADD(e->w, variants_built, changed);
    STAT_ADD(e->w, variants_skipped, (long)e->npending - changed);
    return 1;
fail:
    same = strcmp(pg_sqlstate(db), SQL_FK_VIOLATION) == 0;
    pg_tx_rollback(db);
    return same ? 0 : -1;
}

/* Objects are written first; the rows then point at them. If the content was purged
 * meanwhile, the objects are removed again (nothing may point at them). */
static enum step store(struct evctx *e, const struct thumb_out *out)
{
    buf keys[VARIANT_MAX] = {{0}};
    char err[ERR_MAX] = "";
    enum step st = STEP_RETRY;
    pg_conn *db = NULL;
    int rc;

    e->wrote_blob_id = e->blob_id; /* even a partial write leaves objects behind */
    if (put_objects(e, out, keys, err) < 0)
        goto out;
    if (!(db = pg_acquire(e->w->pg, PG_WAIT, err))) {
        st = STEP_INFRA;
        goto out;
    }
    rc = commit_rows(e, db, out, keys, err);
    if (rc < 0) {
        st = STEP_INFRA;
    } else if (rc == 0) {
        delete_objects(e, keys, e->npending);
        e->wrote_blob_id = 0;
        STAT_ADD(e->w, blobs_gone, 1);
        log_info(rid(e), "blob_gone", "content purged during the build; variants dropped",
                 "content_hash", e->ev.content_hash);
        st = STEP_DONE;
    } else {
        st = STEP_DONE;
    }
out:
    if (st != STEP_DONE)
        note_error(e, err);
    pg_release(db);
    for (size_t i = 0; i < VARIANT_MAX; i++)
        buf_free(&keys[i]);
    return st;
}

/* Build and store; classification of the outcome. The connection is released before the
 * (long) build so the pool is not held by image decoding. */
static enum step build_and_store(struct evctx *e)
{
    struct thumb_out out[VARIANT_MAX];
    char err[ERR_MAX] = "", ms[32];
    double t0 = util_now_mono();
    enum step st;
    pg_conn *db;
    int rc = build(e, out, err);

    if (rc == THUMB_BAD_INPUT || rc == THUMB_TOO_LARGE) {
        if (!(db = pg_acquire(e->w->pg, PG_WAIT, err)))
            return STEP_INFRA;
        st = fail_pending(e, db, err);
        pg_release(db);
        return st;
    }
    if (rc != THUMB_OK) {
        note_error(e, err);
        return STEP_RETRY;
    }
    st = store(e, out);
    thumb_out_free(out, e->npending);
    if (st == STEP_DONE) {
        snprintf(ms, sizeof ms, "%.0f", (util_now_mono() - t0) * 1000);
        log_info(rid(e), "variants_ready", "variants stored", "content_hash", e->ev.content_hash,
                 "ms", ms);
    }
    return st;
}

/* ---- capture metadata ---- */

/* Inside the transaction of capture_commit: the row, the timeline keys, the change log.
 * 1 written, 0 a row of this version was there already, -1 error. */
static int capture_insert(struct evctx *e, pg_conn *db, const struct capture *c, char *err)
{
    struct capture_params cp;
    const char *p[1 + CAPTURE_NPARAMS] = {e->ev.content_hash};
    PGresult *r;
    int written;

    if (capture_params(c, &cp, p + 1) < 0) {
        capture_params_fini(&cp);
        return err_set(err, "out of memory"), -1;
    }
    r = pg_exec(db, "capture_store", 1 + CAPTURE_NPARAMS, p, err);
    capture_params_fini(&cp);
    if (!r)
        return -1;
    written = pg_i64(r, 0, 0) > 0;
    PQclear(r);
    return written;
}

/* 2 stored, 1 already there (a concurrent event of the same content), 0 content gone, -1
 * error. */
static int capture_commit(struct evctx *e, pg_conn *db, const struct capture *c, char *err)
{
    const char *p[] = {e->ev.content_hash};
    PGresult *r;
    int found, written;

    if (pg_tx_begin(db, err) < 0)
        return -1;
    if (!(r = pg_exec(db, "capture_lock", 1, p, err)))
        goto fail;
    found = PQntuples(r) == 1;
    PQclear(r);
    if (!found) {
        pg_tx_rollback(db);
        return 0;
    }
    if ((written = capture_insert(e, db, c, err)) < 0 || pg_tx_commit(db, err) < 0)
        goto fail;
    return 1 + written;
fail:
    found = strcmp(pg_sqlstate(db), SQL_FK_VIOLATION) == 0;
    pg_tx_rollback(db);
    return found ? 0 : -1;
}

static enum step capture_store(struct evctx *e, const struct capture *c, double t0)
{
    char err[ERR_MAX] = "", ms[32];
    pg_conn *db = pg_acquire(e->w->pg, PG_WAIT, err);
    buf errors = {0};
    int rc = db ? capture_commit(e, db, c, err) : -1;

    pg_release(db);
    if (rc < 0) {
        note_error(e, err);
        return STEP_INFRA;
    }
    if (rc == 0) {
        STAT_ADD(e->w, blobs_gone, 1);
        log_info(rid(e), "blob_gone", "content purged; capture metadata dropped", "content_hash",
                 e->ev.content_hash);
        return STEP_DONE;
    }
    if (rc == 1) {
        log_debug(rid(e), "capture_exists", "stored meanwhile by another event", "content_hash",
                  e->ev.content_hash);
        return STEP_DONE;
    }
    STAT_ADD(e->w, captures_stored, 1);
    STAT_ADD(e->w, capture_field_errors, capture_error_count(c));
    snprintf(ms, sizeof ms, "%.1f", (util_now_mono() - t0) * 1000);
    if (capture_errors_array(c, &errors) == 0)
        log_info(rid(e), "capture_stored", "capture metadata stored", "content_hash",
                 e->ev.content_hash, "ms", ms, "errors", errors.data);
    buf_free(&errors);
    return STEP_DONE;
}

/* Reads the original's capture metadata (header and EXIF only) and stores it. A failed
 * read of the original is transient; what the file holds never is. */
static enum step capture_step(struct evctx *e)
{
    double t0 = util_now_mono();
    struct rsrc_s3 s3;
    struct rsrc r;
    struct capture c;
    VipsSource *src;

    original_reader(e, &r, &s3);
    if (r.block_size > CAPTURE_READ_BLOCK)
        r.block_size = CAPTURE_READ_BLOCK;
    if (!(src = rsrc_source(&r))) {
        note_error(e, "cannot create a libvips source");
        return STEP_RETRY;
    }
    capture_read(src, &c);
    g_object_unref(src);
    if (r.failed)
        err_set(e->last_err, "reading the original for its capture: %s", r.err);
    rsrc_fini(&r);
    return r.failed ? STEP_RETRY : capture_store(e, &c, t0);
}

/* One attempt at the event's variants. */
static enum step variants_attempt(struct evctx *e)
{
    const struct worker_config *cfg = e->w->cfg;
    char err[ERR_MAX] = "";
    pg_conn *db = pg_acquire(e->w->pg, PG_WAIT, err);
    int rc;

    if (!db) {
        note_error(e, err);
        return STEP_INFRA;
    }
    if ((rc = load_blob(e, db, err)) > 0)
        rc = claim(e, db, err);
    if (rc <= 0) {
        pg_release(db);
        if (rc < 0) {
            note_error(e, err);
            return STEP_INFRA;
        }
        forget_written(e);
        STAT_ADD(e->w, blobs_gone, 1);
        log_info(rid(e), "blob_gone", "content already purged; nothing to build", "content_hash",
                 e->ev.content_hash);
        return STEP_DONE;
    }
    STAT_ADD(e->w, variants_skipped, (long)(e->w->nvariants - e->npending));
    if (e->npending == 0)
        log_info(rid(e), "variants_skipped", "every variant already ready or failed",
                 "content_hash", e->ev.content_hash);
    if (e->npending == 0 || e->attempts > cfg->max_attempts) {
        pg_release(db);
        if (e->npending)
            snprintf(e->last_err, sizeof e->last_err,
                     "attempt %d over the limit (earlier attempts died or kept failing)",
                     e->attempts);
        return e->npending ? STEP_RETRY : STEP_DONE;
    }
    if (e->size > cfg->max_input_size) {
        err_set(err, "original too large: %lld bytes (limit %lld)", e->size, cfg->max_input_size);
        enum step st = fail_pending(e, db, err);
        pg_release(db);
        return st;
    }
    pg_release(db);
    return build_and_store(e);
}

/* One attempt at the whole event: the variants, then (independently of them, so an event
 * whose variants are all ready still brings it: the backfill) the capture metadata. */
static enum step attempt(struct evctx *e)
{
    enum step st = variants_attempt(e);

    if (st == STEP_DONE && e->capture_due)
        st = capture_step(e);
    return st;
}

static int dead_letter(struct evctx *e, const char *reason)
{
    const struct kafka_msg *m = e->j->msg;
    char attempts[16], source[300], err[ERR_MAX] = "";
    struct kafka_header h[] = {
        {"pixplane-error", reason},
        {"pixplane-attempts", attempts},
        {"pixplane-source", source},
    };

    snprintf(attempts, sizeof attempts, "%d", e->attempts);
    snprintf(source, sizeof source, "%s/%d/%lld", m->topic, (int)m->partition,
             (long long)m->offset);
    if (kafka_produce_sync(e->w->dlq, e->w->cfg->dlq_topic, m->key, m->key_len, m->value,
                           m->value_len, h, ARRAY_LEN(h), &e->w->aborting, err) < 0) {
        log_warn(rid(e), "dead_letter_failed", err);
        return -1;
    }
    STAT_ADD(e->w, dlq, 1);
    log_error(rid(e), "dead_lettered", reason, "topic", e->w->cfg->dlq_topic, "source", source);
    return 0;
}

/* After the last attempt: dead-letter first (so a crash in between re-sends rather than
 * loses it), then mark the variants failed. 0, or -1 to try again later. */
static int give_up(struct evctx *e)
{
    char reason[ERR_MAX + 64], err[ERR_MAX] = "";
    pg_conn *db;
    enum step st;

    snprintf(reason, sizeof reason, "gave up after %d attempts: %s", e->attempts, e->last_err);
    if (dead_letter(e, reason) < 0)
        return -1;
    if (!(db = pg_acquire(e->w->pg, PG_WAIT, err)))
        return -1;
    st = fail_pending(e, db, reason);
    pg_release(db);
    return st == STEP_DONE ? 0 : -1;
}

/* Shutdown began or the partition was taken away (flags other threads set). */
static int cut_short(const struct evctx *e)
{
    return __atomic_load_n(&e->w->stopping, __ATOMIC_RELAXED) ||
           __atomic_load_n(&e->j->revoked, __ATOMIC_RELAXED);
}

/* Sleeps before try number `tries` (1, 2, ...); 0 if the wait was cut short (shutdown or
 * the partition was taken away): the event is then left for its next owner. */
static int backoff(struct evctx *e, int tries)
{
    const struct worker_config *cfg = e->w->cfg;
    double wait = cfg->retry_backoff, until;

    for (int i = 1; i < tries && wait < cfg->retry_backoff_max; i++)
        wait *= 2;
    if (wait > cfg->retry_backoff_max)
        wait = cfg->retry_backoff_max;
    until = util_now_mono() + wait;
    while (util_now_mono() < until) {
        if (cut_short(e))
            return 0;
        usleep(20000);
    }
    return !cut_short(e);
}

static enum job_result process_invalid(struct evctx *e, const char *why)
{
    STAT_ADD(e->w, events_invalid, 1);
    for (int tries = 1;; tries++) {
        if (dead_letter(e, why) == 0)
            return JOB_DONE;
        if (!backoff(e, tries))
            return JOB_ABANDONED;
    }
}

static enum job_result process_event(struct evctx *e)
{
    const struct kafka_msg *m = e->j->msg;
    char err[ERR_MAX] = "";
    enum step st;

    if (event_parse(m->value, m->value_len, &e->ev, err) < 0)
        return process_invalid(e, err);
    for (int tries = 1;; tries++) {
        st = attempt(e);
        if (st == STEP_DONE)
            return JOB_DONE;
        if (st == STEP_RETRY) {
            STAT_ADD(e->w, retries, 1);
            log_warn(rid(e), "attempt_failed", e->last_err, "content_hash", e->ev.content_hash);
            if (e->attempts >= e->w->cfg->max_attempts && give_up(e) == 0)
                return JOB_DONE;
        } else {
            log_warn(rid(e), "database_unavailable", e->last_err);
        }
        if (!backoff(e, tries))
            return JOB_ABANDONED;
    }
}

void process_job(void *arg, void *tctx)
{
    struct job *j = arg;
    struct evctx e = {.w = j->w, .t = tctx, .j = j};
    struct worker *w = j->w;

    j->result = process_event(&e);
    pthread_mutex_lock(&w->mu);
    j->next = w->done_head;
    w->done_head = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
