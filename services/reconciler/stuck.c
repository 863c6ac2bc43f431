/* stuck: outbox rows unsent too long get their attempts reset; variants pending or failed too
 * long go back to pending with a fresh outbox event; both up to requeue-max times. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

/* ---- outbox ---- */

static void outbox_one(struct rec *r, const PGresult *page, int i, const char *max)
{
    const char *id = pg_val(page, i, 0), *attempts = pg_val(page, i, 1);
    const char *p[2] = {id, max};
    char err[ERR_MAX];
    PGresult *res;

    if (atol(pg_val(page, i, 2)) >= r->cfg->requeue_max)
        return rec_unrepaired(r, "outbox_stuck", id, pg_val(page, i, 3));
    if (!r->cfg->dry_run) {
        if (!(res = rec_exec(r, "outbox_reset", 2, p, err)))
            return rec_failed(r, "reset_outbox", id, err);
        int n = PQntuples(res);
        PQclear(res);
        if (n == 0)
            return; /* sent meanwhile */
    }
    rec_did(r, "reset_outbox", id, "attempts", attempts, "last_error", pg_val(page, i, 3), NULL);
}

static int outbox_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    for (int i = 0; i < PQntuples(page); i++)
        outbox_one(r, page, i, ud);
    return 0;
}

/* ---- variants ---- */

/* The stuck variants of one content, gathered over its rows (which may span pages). */
struct content {
    char hash[65];
    buf types; /* requeueable ones, comma-separated */
    int capped;
};

/* Dry run: does the content have an image to put in the event? 1, 0, -1. */
static int has_image(struct rec *r, const char *hash, char *err)
{
    const char *p[1] = {hash};
    PGresult *res = rec_exec(r, "blob_used", 1, p, err);
    int yes;

    if (!res)
        return -1;
    yes = pg_val(res, 0, 0)[0] == 't';
    PQclear(res);
    return yes;
}

/* Real run: the requeue transaction. 1 requeued (types, outbox id set), 0 no image to
 * requeue for, 2 nothing stuck any more, -1 with err. */
static int requeue(struct rec *r, const char *hash, char *types, size_t tlen, char *oid, char *err)
{
    char max[24], stuck[32];
    const char *p[4] = {hash, max, stuck, r->cfg->upload_topic};
    PGresult *res;
    int rc;

    snprintf(max, sizeof max, "%ld", r->cfg->requeue_max);
    rec_secs(stuck, r->cfg->variant_stuck);
    if (!(res = rec_exec(r, "variants_requeue", 4, p, err)))
        return -1;
    rc = pg_val(res, 0, 0) ? 1 : pg_val(res, 0, 2)[0] == 't' ? 2 : 0;
    util_strlcpy(types, tlen, pg_val(res, 0, 0));
    util_strlcpy(oid, 24, pg_val(res, 0, 1));
    PQclear(res);
    return rc;
}

static void content_done(struct rec *r, struct content *c)
{
    char err[ERR_MAX], types[256] = "", oid[24] = "";
    int rc = 0;

    if (c->capped)
        rec_unrepaired(r, "variants_stuck", c->hash, "requeued requeue-max times already");
    if (c->types.len > 0) {
        util_strlcpy(types, sizeof types, c->types.data);
        rc = r->cfg->dry_run ? has_image(r, c->hash, err)
                             : requeue(r, c->hash, types, sizeof types, oid, err);
    }
    if (rc < 0)
        rec_failed(r, "requeue_variants", c->hash, err);
    else if (rc == 0 && c->types.len > 0)
        rec_unrepaired(r, "variants_stuck", c->hash, "no image row to requeue the content for");
    else if (rc == 1)
        rec_did(r, "requeue_variants", c->hash, "variants", types, "outbox_id",
                r->cfg->dry_run ? NULL : oid, NULL);
    c->hash[0] = '\0', c->capped = 0;
    buf_reset(&c->types);
}

static int variants_page(struct rec *r, const PGresult *page, void *ud, char *err)
{
    struct content *c = ud;

    for (int i = 0; i < PQntuples(page); i++) {
        const char *hash = pg_val(page, i, 0);
        if (c->hash[0] && strcmp(hash, c->hash))
            content_done(r, c);
        util_strlcpy(c->hash, sizeof c->hash, hash);
        if (atol(pg_val(page, i, 2)) >= r->cfg->requeue_max)
            c->capped = 1;
        else if (buf_printf(&c->types, "%s%s", c->types.len ? "," : "", pg_val(page, i, 1)) < 0)
            return err_set(err, "out of memory"), -1;
    }
    if (PQntuples(page) < r->cfg->batch && c->hash[0])
        content_done(r, c); /* the last page: nothing of this content can follow */
    return 0;
}

int sweep_stuck(struct rec *r, char *err)
{
    char ostuck[32], vstuck[32], max[24];
    struct content c = {.hash = ""};
    struct rec_pager outbox = {.stmt = "outbox_stuck",
                               .nfixed = 1,
                               .fixed = {ostuck},
                               .nkeys = 1,
                               .keys = {"0"},
                               .fn = outbox_page,
                               .ud = max};
    struct rec_pager variants = {.stmt = "variants_stuck",
                                 .nfixed = 1,
                                 .fixed = {vstuck},
                                 .nkeys = 2,
                                 .key_cols = {0, 1},
                                 .keys = {"", ""},
                                 .fn = variants_page,
                                 .ud = &c};
    int rc;

    rec_secs(ostuck, r->cfg->outbox_stuck);
    rec_secs(vstuck, r->cfg->variant_stuck);
    snprintf(max, sizeof max, "%ld", r->cfg->requeue_max);
    rc = rec_pages(r, &outbox, err) < 0 ? -1 : rec_pages(r, &variants, err);
    if (rc == 0 && c.hash[0])
        content_done(r, &c);
    buf_free(&c.types);
    return rc;
}
