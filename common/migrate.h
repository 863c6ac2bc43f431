/* migrate: applies the numbered SQL files of migrations/ (embedded at build time) in order,
 * each in its own transaction, recorded in schema_migrations; safe to rerun concurrently. */
#ifndef PIX_MIGRATE_H
#define PIX_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include "util.h"

struct migration {
    const char *name; /* "001_init" */
    const char *sql;
};

extern const struct migration pix_migrations[];
extern const size_t pix_migrations_count;

/* Applies what is missing; *applied = how many were applied now. 0 or -1 with err. */
int migrate_apply(PGconn *c, int *applied, char *err) PIX_WUR;
/* 1 if every embedded migration is recorded, 0 if not, -1 on error. */
int migrate_current(PGconn *c, char *err) PIX_WUR;

#endif
