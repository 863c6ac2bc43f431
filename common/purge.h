/* purge: the hard delete shared by the API's cleanup route and the reconciler: rows go in
 * one transaction that leaves tombstones (gc_objects) for the objects; gc_drain removes them. */
#ifndef PIX_PURGE_H
#define PIX_PURGE_H

#include "pg.h"
#include "util.h"

#define PURGE_PATHS 2 /* a blob's object and its variants prefix */

/* What a purge did: the content it touched and the tombstones it left (if the blob went). */
struct purge_result {
    char hash[65];
    int blob_gone;
    int npaths;
    char paths[PURGE_PATHS][512];
};

/* Drops a soft-deleted image and its reference on the blob; at zero references also the
 * blob and its variant rows, leaving tombstones. 1 purged, 0 nothing to purge (not
 * soft-deleted, or already gone), -1 with err (rolled back). */
int purge_image(pg_conn *db, const char *image_id, struct purge_result *out, char *err) PIX_WUR;

/* Drops a blob nobody references (ref_count 0 and no image row) with its variant rows,
 * leaving tombstones. 1 purged, 0 not purgeable (referenced again, gone, or images still
 * point at it: *drift set), -1 with err (rolled back). */
int purge_blob(pg_conn *db, const char *hash, struct purge_result *out, int *drift,
               char *err) PIX_WUR;

/* out->paths as an array of pointers for gc_drain (returns out->npaths). */
int purge_paths(const struct purge_result *out, const char *paths[PURGE_PATHS]);

#endif
