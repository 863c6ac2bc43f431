/* pg: a fixed pool of lazily connected libpq connections; statements prepared per connection
 * on first use, transactions, and one transparent retry after a connection lost outside one. */
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg.h"

#define PG_LOST_STATE "08006"
#define PG_MAX_WAIT (86400.0 * 365)

struct pg_conn {
    pg_pool *pool;
    PGconn *pg;              /* NULL until connected, and after a failed or dropped one */
    unsigned char *prepared; /* bitmap over pool->stmts: prepared on this connection */
    int busy;                /* under pool->mu */
    int broken;              /* lost inside a transaction: fails until rollback/release */
    int lost;
    int pinned;    /* pg_conn_pin: a lost connection is not replaced until release */
    uint64_t mark; /* pg_conn_set_mark; 0 whenever the connection is (re)opened */
    char sqlstate[6];
};

/* Connection parameters: the conninfo's, then pixplane's defaults, then the caller's. */
struct pg_params {
    PQconninfoOption *opts; /* parsed conninfo (owns most strings of keys/vals) */
    const char **keys;      /* NULL-terminated, for PQconnectdbParams */
    const char **vals;
    char *options; /* the conninfo's server options and the caller's, joined */
    char err[256]; /* the conninfo did not parse: libpq's reason, reported at connect */
};

struct pg_pool {
    struct pg_params params;
    const struct pg_stmt *stmts;
    size_t nstmts;
    int size;
    struct pg_conn *conns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

enum call_kind { CALL_PREPARED, CALL_PARAMS, CALL_SIMPLE };

struct call {
    enum call_kind kind;
    size_t stmt; /* CALL_PREPARED: index into the table */
    const char *sql;
    int nparams;
    const char *const *params;
};

/* Settings added to the conninfo when it (and the environment) does not set them. */
static const struct {
    const char *key, *env, *val;
} pg_defaults[] = {
    {"connect_timeout", "PGCONNECT_TIMEOUT", "5"},
    {"keepalives", NULL, "1"},
    {"keepalives_idle", NULL, "10"},
    {"keepalives_interval", NULL, "5"},
    {"keepalives_count", NULL, "3"},
    {"tcp_user_timeout", NULL, "15000"},
    {"application_name", "PGAPPNAME", NULL}, /* NULL: the program's name */
};

static int bit_get(const unsigned char *m, size_t i)
{
    return (m[i / 8] >> (i % 8)) & 1;
}

static void bit_set(unsigned char *m, size_t i)
{
    m[i / 8] |= (unsigned char)(1u << (i % 8));
}

static size_t bitmap_size(size_t n)
{
    return n / 8 + 1;
}

/* "pg: what: tag" and the first line of a libpq message ("FATAL:  x\n\tmore" -> "FATAL:  x"). */
static void err_pq(char *err, const char *what, const char *tag, const char *msg)
{
    size_t n;

    if (!msg || !*msg)
        msg = "unknown error";
    n = strcspn(msg, "\n");
    err_set(err, "pg: %s: %s%.*s", what, tag, (int)(n > ERR_MAX ? ERR_MAX : n), msg);
}

static void set_state(pg_conn *c, const char *state)
{
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
}

static const PQconninfoOption *opt_find(const PQconninfoOption *o, const char *key)
{
    for (; o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o;
    return NULL;
}

static int opt_is_set(const PQconninfoOption *opts, const char *key, const char *env)
{
    const PQconninfoOption *o = opt_find(opts, key);
    const char *e = env ? getenv(env) : NULL;

    if (o && o->val && *o->val)
        return 1;
    return e && *e;
}

static void params_free(struct pg_params *pp)
{
    free(pp->keys);
    free(pp->vals);
    free(pp->options);
    PQconninfoFree(pp->opts);
    memset(pp, 0, sizeof *pp);
}

static void params_add(struct pg_params *pp, size_t *k, const char *key, const char *val)
{
    pp->keys[*k] = key;
    pp->vals[(*k)++] = val;
}

/* Server options: the statement timeout, the conninfo's (if any, so they win over it), then
 * o->options, e.g. "-c x=y". 0 or -1. */
static int params_options(struct pg_params *pp, size_t *k, const struct pg_connopts *o)
{
    const PQconninfoOption *c = opt_find(pp->opts, "options");
    const char *mine = c && c->val && *c->val ? c->val : "";
    const char *theirs = o && o->options ? o->options : "";
    char st[48] = "";

    if (o && o->statement_timeout > 0)
        snprintf(st, sizeof st, "-c statement_timeout=%.0f", ceil(o->statement_timeout * 1000));
    if (!st[0] && !theirs[0])
        return 0;
    if (asprintf(&pp->options, "%s%s%s%s%s", st, st[0] && (mine[0] || theirs[0]) ? " " : "", mine,
                 mine[0] && theirs[0] ? " " : "", theirs) < 0) {
        pp->options = NULL;
        return -1;
    }
    params_add(pp, k, "options", pp->options);
    return 0;
}

/* The default for key: the caller's, then pg_defaults (NULL value: the program's name). */
static const char *params_default(size_t i, const struct pg_connopts *o)
{
    const char *key = pg_defaults[i].key;

    if (o && o->application && !strcmp(key, "application_name"))
        return o->application;
    if (o && o->connect_timeout && !strcmp(key, "connect_timeout"))
        return o->connect_timeout;
    return pg_defaults[i].val ? pg_defaults[i].val : program_invocation_short_name;
}

/* Parses conninfo, keeps what it sets, adds pg_defaults it (and the environment) leaves
 * unset and the caller's options. 0, or -1 out of memory. A conninfo that does not parse
 * is not an error here: pp->err holds libpq's reason and every connect reports it. */
static int params_build(struct pg_params *pp, const char *conninfo, const struct pg_connopts *o)
{
    const PQconninfoOption *opt;
    char *perr = NULL;
    size_t n = ARRAY_LEN(pg_defaults) + 2, k = 0, i;

    memset(pp, 0, sizeof *pp);
    if (!(pp->opts = PQconninfoParse(conninfo, &perr))) {
        snprintf(pp->err, sizeof pp->err, "%s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return 0;
    }
    for (opt = pp->opts; opt->keyword; opt++)
        n++;
    pp->keys = calloc(n, sizeof *pp->keys);
    pp->vals = calloc(n, sizeof *pp->vals);
    if (!pp->keys || !pp->vals || params_options(pp, &k, o) < 0)
        return -1;
    for (opt = pp->opts; opt->keyword; opt++)
        if (opt->val && *opt->val && !(pp->options && !strcmp(opt->keyword, "options")))
            params_add(pp, &k, opt->keyword, opt->val);
    for (i = 0; i < ARRAY_LEN(pg_defaults); i++)
        if (!opt_is_set(pp->opts, pg_defaults[i].key, pg_defaults[i].env))
            params_add(pp, &k, pg_defaults[i].key, params_default(i, o));
    return 0;
}

/* Server notices (NOTICE, WARNING) are dropped: libpq would print them on stderr, where
 * the programs write their JSON log lines. Errors come back through err. */
static void notice_drop(void *arg, const char *msg) {}

/* The one place a connection is opened. NULL with err ("pg: connect: ..."). */
static PGconn *params_connect(const struct pg_params *pp, char *err)
{
    PGconn *c;

    if (!pp->keys) {
        err_pq(err, "connect", "bad conninfo: ", pp->err);
        return NULL;
    }
    c = PQconnectdbParams(pp->keys, pp->vals, 0);
    if (PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, notice_drop, NULL);
        return c;
    }
    err_pq(err, "connect", "", c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    return NULL;
}

PGconn *pg_connect(const char *conninfo, const struct pg_connopts *o, char *err)
{
    struct pg_params pp;
    PGconn *c = NULL;

    if (params_build(&pp, conninfo, o) < 0)
        err_set(err, "pg: connect: out of memory");
    else
        c = params_connect(&pp, err);
    params_free(&pp);
    return c;
}

static int pool_sync_init(pg_pool *p)
{
    if (util_cond_init(&p->cv) != 0)
        return -1;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        pthread_cond_destroy(&p->cv);
        return -1;
    }
    return 0;
}

static int pool_slots(pg_pool *p)
{
    int i;

    p->conns = calloc((size_t)p->size, sizeof *p->conns);
    if (!p->conns)
        return -1;
    for (i = 0; i < p->size; i++) {
        p->conns[i].pool = p;
        p->conns[i].prepared = calloc(1, bitmap_size(p->nstmts));
        if (!p->conns[i].prepared)
            return -1;
    }
    return 0;
}

static void pool_release_mem(pg_pool *p)
{
    int i;

    for (i = 0; p->conns && i < p->size; i++)
        free(p->conns[i].prepared);
    free(p->conns);
    params_free(&p->params);
    free(p);
}

pg_pool *pg_pool_new(const char *conninfo, const struct pg_connopts *o, int size,
                     const struct pg_stmt *stmts, size_t nstmts)
{
    pg_pool *p;

    if (!conninfo || size < 1 || (nstmts && !stmts))
        return NULL;
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->size = size;
    p->stmts = stmts;
    p->nstmts = nstmts;
    if (params_build(&p->params, conninfo, o) < 0 || pool_slots(p) < 0)
        goto fail;
    if (pool_sync_init(p) < 0)
        goto fail;
    return p;
fail:
    pool_release_mem(p);
    return NULL;
}

static void conn_close(pg_conn *c)
{
    PQfinish(c->pg);
    c->pg = NULL;
    c->mark = 0;
    memset(c->prepared, 0, bitmap_size(c->pool->nstmts));
}

void pg_pool_free(pg_pool *p)
{
    int i;

    if (!p)
        return;
    for (i = 0; i < p->size; i++)
        conn_close(&p->conns[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pool_release_mem(p);
}

/* A fresh connection for the slot; prepared statements start over. */
static int conn_connect(pg_conn *c, char *err)
{
    conn_close(c);
    if ((c->pg = params_connect(&c->pool->params, err)))
        return 0;
    c->lost = 1;
    set_state(c, PG_LOST_STATE);
    return -1;
}

static void deadline(struct timespec *ts, double timeout)
{
    util_deadline(ts, timeout > PG_MAX_WAIT ? PG_MAX_WAIT : timeout);
}

/* A free slot, preferring one that already holds a connection. Under p->mu. */
static pg_conn *slot_find(pg_pool *p)
{
    pg_conn *idle = NULL;
    int i;

    for (i = 0; i < p->size; i++) {
        if (p->conns[i].busy)
            continue;
        if (p->conns[i].pg)
            return &p->conns[i];
        if (!idle)
            idle = &p->conns[i];
    }
    return idle;
}

static pg_conn *slot_take(pg_pool *p, double timeout)
{
    struct timespec until;
    pg_conn *c;
    int rc = 0;

    deadline(&until, timeout);
    pthread_mutex_lock(&p->mu);
    while (!(c = slot_find(p)) && rc != ETIMEDOUT)
        rc = timeout > 0 ? pthread_cond_timedwait(&p->cv, &p->mu, &until) : ETIMEDOUT;
    if (c)
        c->busy = 1;
    pthread_mutex_unlock(&p->mu);
    return c;
}

static void slot_put(pg_conn *c)
{
    pg_pool *p = c->pool;

    pthread_mutex_lock(&p->mu);
    c->busy = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

pg_conn *pg_acquire(pg_pool *p, double timeout, char *err)
{
    pg_conn *c;

    if (!p) {
        err_set(err, "pg: no pool");
        return NULL;
    }
    c = slot_take(p, timeout);
    if (!c) {
        err_set(err, "pg: pool exhausted: all %d connections busy for %.3g s", p->size, timeout);
        return NULL;
    }
    c->broken = 0;
    c->lost = 0;
    c->pinned = 0;
    c->sqlstate[0] = '\0';
    if (PQstatus(c->pg) != CONNECTION_OK && conn_connect(c, err) < 0) {
        slot_put(c);
        return NULL;
    }
    return c;
}

static int conn_in_tx(const pg_conn *c)
{
    PGTransactionStatusType st = PQtransactionStatus(c->pg);

    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

void pg_release(pg_conn *c)
{
    PGresult *r;

    if (!c || !c->busy)
        return;
    if (c->broken || PQstatus(c->pg) != CONNECTION_OK) {
        conn_close(c);
    } else if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        r = conn_in_tx(c) ? PQexec(c->pg, "ROLLBACK") : NULL;
        if (PQresultStatus(r) != PGRES_COMMAND_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            conn_close(c);
        PQclear(r);
    }
    slot_put(c);
}

static int stmt_find(const pg_pool *p, const char *name, size_t *idx)
{
    size_t i;

    for (i = 0; i < p->nstmts; i++) {
        if (strcmp(p->stmts[i].name, name) == 0) {
            *idx = i;
            return 0;
        }
    }
    return -1;
}

static PGresult *call_prepared(pg_conn *c, const struct call *q)
{
    const struct pg_stmt *s = &c->pool->stmts[q->stmt];
    PGresult *r;

    if (!bit_get(c->prepared, q->stmt)) {
        r = PQprepare(c->pg, s->name, s->sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return r;
        PQclear(r);
        bit_set(c->prepared, q->stmt);
    }
    return PQexecPrepared(c->pg, s->name, q->nparams, q->params, NULL, NULL, 0);
}

static PGresult *call_once(pg_conn *c, const struct call *q)
{
    switch (q->kind) {
    case CALL_PREPARED:
        return call_prepared(c, q);
    case CALL_PARAMS:
        return PQexecParams(c->pg, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
    default:
        return PQexec(c->pg, q->sql);
    }
}

static PGresult *call_lost(pg_conn *c, const PGresult *r, const char *what, char *err)
{
    const char *msg = r ? PQresultErrorMessage(r) : "";

    if (!*msg && c->pg)
        msg = PQerrorMessage(c->pg);
    if (!*msg)
        msg = "broken inside a transaction; roll back or release";
    err_pq(err, what, "connection lost: ", msg);
    c->lost = 1;
    set_state(c, PG_LOST_STATE);
    return NULL;
}

/* The result if it succeeded; otherwise NULL with err, sqlstate and lost/broken set. */
static PGresult *call_check(pg_conn *c, PGresult *r, int in_tx, const char *what, char *err)
{
    ExecStatusType st = PQresultStatus(r);
    const char *msg;

    if (r && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
        return r;
    if (PQstatus(c->pg) != CONNECTION_OK) {
        c->broken = in_tx;
        call_lost(c, r, what, err);
    } else if (r && st != PGRES_FATAL_ERROR && st != PGRES_EMPTY_QUERY) {
        c->broken = 1; /* COPY and the like: protocol state unknown, closed at release */
        err_set(err, "pg: %s: unexpected result %s", what, PQresStatus(st));
    } else {
        set_state(c, PQresultErrorField(r, PG_DIAG_SQLSTATE));
        msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (!msg || !*msg)
            msg = *PQerrorMessage(c->pg) ? PQerrorMessage(c->pg) : PQresStatus(st);
        err_pq(err, what, "", msg);
    }
    PQclear(r);
    return NULL;
}

/* Runs q; a connection found lost outside a transaction is replaced and q retried once. */
static PGresult *call_run(pg_conn *c, const struct call *q, const char *what, char *err)
{
    PGresult *r;
    int in_tx, fresh = 0;

    if (!c) {
        err_set(err, "pg: %s: no connection", what);
        return NULL;
    }
    c->lost = 0;
    c->sqlstate[0] = '\0';
    if (c->broken || (c->pinned && PQstatus(c->pg) != CONNECTION_OK))
        return call_lost(c, NULL, what, err);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        if (conn_connect(c, err) < 0)
            return NULL;
        fresh = 1;
    }
    in_tx = conn_in_tx(c);
    r = call_once(c, q);
    if (!fresh && !in_tx && !c->pinned && PQstatus(c->pg) == CONNECTION_BAD) {
        PQclear(r);
        if (conn_connect(c, err) < 0)
            return NULL;
        r = call_once(c, q);
    }
    return call_check(c, r, in_tx, what, err);
}

PGresult *pg_exec(pg_conn *c, const char *stmt, int nparams, const char *const *params, char *err)
{
    struct call q = {.kind = CALL_PREPARED, .nparams = nparams, .params = params};

    if (c && (!stmt || stmt_find(c->pool, stmt, &q.stmt) < 0)) {
        err_set(err, "pg: unknown statement %s", stmt ? stmt : "(null)");
        c->lost = 0;
        set_state(c, "26000"); /* invalid_sql_statement_name */
        return NULL;
    }
    return call_run(c, &q, stmt ? stmt : "exec", err);
}

PGresult *pg_query(pg_conn *c, const char *sql, int nparams, const char *const *params, char *err)
{
    struct call q = {.kind = CALL_PARAMS, .sql = sql, .nparams = nparams, .params = params};

    return call_run(c, &q, "query", err);
}

static int run_what(pg_conn *c, const char *sql, const char *what, char *err)
{
    struct call q = {.kind = CALL_SIMPLE, .sql = sql};
    PGresult *r = call_run(c, &q, what, err);

    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int pg_run(pg_conn *c, const char *sql, char *err)
{
    return run_what(c, sql, "query", err);
}

/* For a transaction verb used where no transaction (or already one) is open. */
static int tx_misuse(pg_conn *c, const char *what, const char *why, char *err)
{
    if (c && c->broken) {
        call_lost(c, NULL, what, err);
        return -1;
    }
    err_set(err, "pg: %s: %s", what, why);
    if (c) {
        c->lost = 0;
        set_state(c, "25000"); /* invalid_transaction_state */
    }
    return -1;
}

int pg_tx_begin(pg_conn *c, char *err)
{
    if (!c || c->broken || conn_in_tx(c))
        return tx_misuse(c, "begin", "a transaction is already open", err);
    return run_what(c, "BEGIN", "begin", err);
}

int pg_tx_commit(pg_conn *c, char *err)
{
    struct call q = {.kind = CALL_SIMPLE, .sql = "COMMIT"};
    PGresult *r;
    int rolled_back;

    if (!c || c->broken || !conn_in_tx(c))
        return tx_misuse(c, "commit", "no transaction is open", err);
    r = call_run(c, &q, "commit", err);
    if (!r)
        return -1;
    rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (!rolled_back)
        return 0;
    err_set(err, "pg: commit: the transaction had failed and was rolled back");
    set_state(c, "25P02"); /* in_failed_sql_transaction */
    return -1;
}

void pg_tx_rollback(pg_conn *c)
{
    if (!c)
        return;
    if (c->broken) {
        conn_close(c); /* the server dropped the transaction with the connection */
        c->broken = 0;
        return;
    }
    if (conn_in_tx(c))
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

const char *pg_sqlstate(const pg_conn *c)
{
    return c ? c->sqlstate : "";
}

int pg_conn_lost(const pg_conn *c)
{
    return c ? c->lost : 0;
}

void pg_conn_pin(pg_conn *c)
{
    if (c)
        c->pinned = 1;
}

uint64_t pg_conn_mark(const pg_conn *c)
{
    return c ? c->mark : 0;
}

void pg_conn_set_mark(pg_conn *c, uint64_t v)
{
    if (c && c->pg)
        c->mark = v;
}

PGconn *pg_raw(pg_conn *c)
{
    return c ? c->pg : NULL;
}

const char *pg_val(const PGresult *r, int row, int col)
{
    if (!r || PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

long long pg_i64(const PGresult *r, int row, int col)
{
    const char *v = pg_val(r, row, col);

    return v ? strtoll(v, NULL, 10) : 0;
}
