/* pg: PostgreSQL through libpq: a pool of persistent connections, statements prepared
 * once per connection from a table, transactions, and transparent reconnect after the
 * server restarts (a statement outside a transaction is retried once on a new connection). */
#ifndef PIX_PG_H
#define PIX_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include "util.h"

typedef struct pg_pool pg_pool;
typedef struct pg_conn pg_conn;

struct pg_stmt {
    const char *name;
    const char *sql;
};

/* How every connection is opened (pool, lock holders, LISTEN, migrate): the conninfo's
 * settings win, then the environment's (PGAPPNAME, PGCONNECT_TIMEOUT), then these, then
 * pixplane's defaults: keepalives (10 s idle, 5 s interval, 3 probes), TCP user timeout
 * 15 s, connect timeout 5 s, application name = the program's. Notices are dropped.
 * options are added to the conninfo's server options, so they hold on every reconnect. */
struct pg_connopts {
    const char *application;     /* NULL: the default */
    const char *connect_timeout; /* seconds, as text; NULL: the default */
    const char *options;         /* e.g. "-c default_transaction_read_only=on"; NULL: none */
    double statement_timeout;    /* seconds; 0: the server's (a conninfo setting wins) */
};

/* A standalone connection (session-level advisory locks, LISTEN, migrations). o may be
 * NULL. NULL with err. */
PGconn *pg_connect(const char *conninfo, const struct pg_connopts *o, char *err);

/* conninfo: a libpq URI or key=value string; o may be NULL. stmts must outlive the pool.
 * Connects lazily. */
pg_pool *pg_pool_new(const char *conninfo, const struct pg_connopts *o, int size,
                     const struct pg_stmt *stmts, size_t nstmts);
void pg_pool_free(pg_pool *p); /* NULL-safe; all connections must be released */

/* Waits up to timeout seconds for a free connection; (re)connects it if needed.
 * NULL with err if the server is unreachable or the pool is exhausted. */
pg_conn *pg_acquire(pg_pool *p, double timeout, char *err);
/* Rolls back an open transaction; drops a broken connection. NULL-safe. */
void pg_release(pg_conn *c);

/* Runs a prepared statement from the table. Returns the result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK; PQclear it) or NULL with err and pg_sqlstate() set. */
PGresult *pg_exec(pg_conn *c, const char *stmt, int nparams, const char *const *params,
                  char *err) PIX_WUR;
/* Same for ad-hoc SQL with parameters (not prepared). */
PGresult *pg_query(pg_conn *c, const char *sql, int nparams, const char *const *params,
                   char *err) PIX_WUR;
/* Ad-hoc SQL, no result wanted. 0 or -1. */
int pg_run(pg_conn *c, const char *sql, char *err) PIX_WUR;

int pg_tx_begin(pg_conn *c, char *err) PIX_WUR;
int pg_tx_commit(pg_conn *c, char *err) PIX_WUR;
void pg_tx_rollback(pg_conn *c);

/* SQLSTATE of the last failure ("" if none, "08006"-style for connection loss). */
const char *pg_sqlstate(const pg_conn *c);
/* True if the last failure was a lost connection (the server went away). */
int pg_conn_lost(const pg_conn *c);
/* Until released, a connection found lost is not replaced: statements fail as lost. For
 * work that must run on the server it was checked against (a standby's replay position). */
void pg_conn_pin(pg_conn *c);
/* A value the caller keeps with the connection (e.g. what its server is known to have
 * replayed); 0 when the connection is new or was reopened. NULL-safe. */
uint64_t pg_conn_mark(const pg_conn *c);
void pg_conn_set_mark(pg_conn *c, uint64_t v);
PGconn *pg_raw(pg_conn *c);

/* Helpers on results. */
const char *pg_val(const PGresult *r, int row, int col); /* NULL if SQL NULL */
long long pg_i64(const PGresult *r, int row, int col);

#endif
