/* migrate: applies the embedded migrations missing from schema_migrations, each with its record
 * in one transaction, under a session advisory lock so that concurrent migrators serialize. */
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

/* The advisory lock key: "pixmigr\0" as a big-endian int64 (0x7069786d69677200). */
#define MIGRATE_LOCK_KEY "8100137816117703168"
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")"
#define MIGRATE_UNLOCK_SQL "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"

#define MIGRATE_TABLE_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, "                        \
    "applied_at timestamptz NOT NULL DEFAULT now())"

/* Line (1-based) of the character position pos (1-based, in characters) of a UTF-8 text. */
static long sql_line(const char *sql, long pos)
{
    long line = 1, ch = 0;
    const unsigned char *s;

    for (s = (const unsigned char *)sql; *s && ch < pos - 1; s++) {
        if ((*s & 0xC0) == 0x80)
            continue; /* continuation byte */
        ch++;
        if (*s == '\n')
            line++;
    }
    return line;
}

/* Fills err from a failed result: "migrate: what: [line N: ]message". */
static void err_result(char *err, const char *what, const char *sql, PGconn *c, const PGresult *r)
{
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    size_t n;

    if (!msg)
        msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    if (!msg || !*msg)
        msg = PQerrorMessage(c);
    n = strcspn(msg, "\n");
    if (n > ERR_MAX)
        n = ERR_MAX;
    if (sql && pos)
        err_set(err, "migrate: %s: line %ld: %.*s", what, sql_line(sql, atol(pos)), (int)n, msg);
    else
        err_set(err, "migrate: %s: %.*s", what, (int)n, msg);
}

/* PQexec that wants PGRES_COMMAND_OK or PGRES_TUPLES_OK. */
static int exec_ok(PGconn *c, const char *sql, const char *what, char *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        err_result(err, what, sql, c, r);
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* The recorded names; an empty result while the table does not exist. */
static PGresult *recorded(PGconn *c, char *err)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int exists;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        goto fail;
    exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    r = PQexec(c, exists ? "SELECT name FROM schema_migrations" : "SELECT ''::text WHERE false");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
fail:
    err_result(err, "schema_migrations", NULL, c, r);
    PQclear(r);
    return NULL;
}

static int is_recorded(const PGresult *r, const char *name)
{
    int i;

    for (i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 0), name) == 0)
            return 1;
    return 0;
}

/* One migration and its record in one transaction; rolled back on failure. */
static int apply_one(PGconn *c, const struct migration *m, char *err)
{
    const char *params[1] = {m->name};
    PGresult *r = NULL;

    if (exec_ok(c, "BEGIN", m->name, err) < 0)
        return -1;
    if (exec_ok(c, m->sql, m->name, err) < 0)
        goto fail;
    if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
        err_set(err, "migrate: %s: must not end the transaction itself", m->name);
        goto fail;
    }
    r = PQexecParams(c, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, NULL, params, NULL,
                     NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        err_result(err, m->name, NULL, c, r);
        goto fail;
    }
    PQclear(r);
    return exec_ok(c, "COMMIT", m->name, err);
fail:
    PQclear(r);
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    return -1;
}

/* Under the lock: creates the table and applies what is missing, in order. */
static int apply_locked(PGconn *c, int *applied, char *err)
{
    PGresult *done;
    size_t i;
    int rc = 0;

    if (exec_ok(c, MIGRATE_TABLE_SQL, "schema_migrations", err) < 0)
        return -1;
    done = recorded(c, err);
    if (!done)
        return -1;
    for (i = 0; i < pix_migrations_count && rc == 0; i++) {
        if (is_recorded(done, pix_migrations[i].name))
            continue;
        rc = apply_one(c, &pix_migrations[i], err);
        if (rc == 0)
            (*applied)++;
    }
    PQclear(done);
    return rc;
}

int migrate_apply(PGconn *c, int *applied, char *err)
{
    int n = 0, rc;

    if (applied)
        *applied = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        err_set(err, "migrate: no database connection");
        return -1;
    }
    if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        err_set(err, "migrate: the connection is inside a transaction");
        return -1;
    }
    if (exec_ok(c, MIGRATE_LOCK_SQL, "advisory lock", err) < 0)
        return -1;
    rc = apply_locked(c, &n, err);
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, MIGRATE_UNLOCK_SQL));
    if (applied)
        *applied = n;
    return rc;
}

int migrate_current(PGconn *c, char *err)
{
    PGresult *r;
    size_t i;
    int all = 1;

    if (PQstatus(c) != CONNECTION_OK) {
        err_set(err, "migrate: no database connection");
        return -1;
    }
    r = recorded(c, err);
    if (!r)
        return -1;
    for (i = 0; i < pix_migrations_count && all; i++)
        all = is_recorded(r, pix_migrations[i].name);
    PQclear(r);
    return all;
}
