/* gc: deletes objects that committed transactions made unreachable (rows of gc_objects,
 * "tombstones"), then forgets them. A key ending in '/' stands for every object under it. */
#ifndef PIX_GC_H
#define PIX_GC_H

#include "pg.h"
#include "s3.h"
#include "util.h"

struct gc_stats {
    long tombstones; /* tombstones settled */
    long objects;    /* objects deleted from storage */
    long failures;   /* tombstones left for a later run */
};

/* Settles up to limit tombstones (only those whose path is in paths[0..npaths) if npaths > 0).
 * Each object is deleted from storage before its tombstone row: a crash in between leaves
 * the tombstone, and deleting again is harmless. 0, or -1 if the database failed. */
int gc_drain(pg_conn *db, s3_client *s3, const char *const *paths, int npaths, int limit,
             struct gc_stats *st, char *err) PIX_WUR;

#endif
