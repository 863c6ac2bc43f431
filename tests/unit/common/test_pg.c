/* test_pg: common/pg against a live PostgreSQL named by DATABASE_URL (tests skip without it):
 * pool waits, statement reuse, transactions, SQLSTATEs, reconnect after a killed backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pg.h"

static char scratch[64]; /* table unique to this run */
static char sql_buf[512];

static const struct pg_stmt stmts[] = {
    {"echo", "SELECT $1::text AS v, pg_backend_pid() AS pid"},
    {"add", "SELECT $1::bigint + $2::bigint"},
    {"bad_sql", "SELEC nonsense"},
};

static const char *db_url(void)
{
    const char *u = getenv("DATABASE_URL");

    return u && *u ? u : NULL;
}

/* SQL with the scratch table's name put in for %s. */
static const char *q(const char *fmt)
{
    snprintf(sql_buf, sizeof sql_buf, fmt, scratch);
    return sql_buf;
}

static pg_pool *pool_or_skip(int size)
{
    pg_pool *p;

    if (!db_url())
        skip();
    p = pg_pool_new(db_url(), NULL, size, stmts, ARRAY_LEN(stmts));
    assert_non_null(p);
    return p;
}

static pg_conn *get(pg_pool *p)
{
    char err[ERR_MAX] = "";
    pg_conn *c = pg_acquire(p, 5.0, err);

    if (!c)
        fail_msg("pg_acquire: %s", err);
    return c;
}

static void run(pg_conn *c, const char *sql)
{
    char err[ERR_MAX] = "";

    if (pg_run(c, sql, err) < 0)
        fail_msg("%s: %s", sql, err);
}

static long long count_rows(pg_conn *c, const char *where)
{
    char sql[256], err[ERR_MAX] = "";
    PGresult *r;
    long long n;

    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s", scratch, where);
    r = pg_query(c, sql, 0, NULL, err);
    if (!r)
        fail_msg("%s: %s", sql, err);
    n = pg_i64(r, 0, 0);
    PQclear(r);
    return n;
}

static long long backend_pid(pg_conn *c)
{
    char err[ERR_MAX] = "";
    const char *p[] = {"x"};
    PGresult *r = pg_exec(c, "echo", 1, p, err);
    long long pid;

    if (!r)
        fail_msg("echo: %s", err);
    pid = pg_i64(r, 0, 1);
    PQclear(r);
    return pid;
}

/* Ends backend pid from another connection and waits until it is gone. */
static void kill_backend(pg_pool *p, long long pid)
{
    char arg[32], err[ERR_MAX] = "";
    const char *params[] = {arg};
    pg_conn *k = get(p);
    PGresult *r;
    int i;

    snprintf(arg, sizeof arg, "%lld", pid);
    r = pg_query(k, "SELECT pg_terminate_backend($1::int)", 1, params, err);
    assert_non_null(r);
    PQclear(r);
    for (i = 0; i < 100; i++) {
        r = pg_query(k, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, params,
                     err);
        assert_non_null(r);
        if (pg_i64(r, 0, 0) == 0)
            i = 1000;
        PQclear(r);
        usleep(20000);
    }
    pg_release(k);
}

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int group_setup(void **state)
{
    pg_pool *p;
    pg_conn *c;

    snprintf(scratch, sizeof scratch, "pixtest_pg_%ld", (long)getpid());
    if (!db_url())
        return 0;
    p = pg_pool_new(db_url(), NULL, 1, stmts, ARRAY_LEN(stmts));
    c = p ? pg_acquire(p, 10.0, NULL) : NULL;
    if (!c || pg_run(c, q("CREATE TABLE %s (id int PRIMARY KEY, v text)"), NULL) < 0) {
        fprintf(stderr, "test_pg: cannot create the scratch table\n");
        pg_release(c);
        pg_pool_free(p);
        return -1;
    }
    pg_release(c);
    pg_pool_free(p);
    return 0;
}

static int group_teardown(void **state)
{
    pg_pool *p;
    pg_conn *c;

    if (!db_url())
        return 0;
    p = pg_pool_new(db_url(), NULL, 1, stmts, ARRAY_LEN(stmts));
    c = p ? pg_acquire(p, 10.0, NULL) : NULL;
    if (c && pg_run(c, q("DROP TABLE IF EXISTS %s"), NULL) < 0)
        fprintf(stderr, "test_pg: cannot drop %s\n", scratch);
    pg_release(c);
    pg_pool_free(p);
    return 0;
}

static void test_null_safety(void **state)
{
    char err[ERR_MAX] = "";

    pg_pool_free(NULL);
    pg_release(NULL);
    pg_tx_rollback(NULL);
    assert_string_equal(pg_sqlstate(NULL), "");
    assert_int_equal(pg_conn_lost(NULL), 0);
    assert_null(pg_raw(NULL));
    assert_null(pg_val(NULL, 0, 0));
    assert_int_equal(pg_i64(NULL, 0, 0), 0);
    assert_null(pg_acquire(NULL, 0, err));
    assert_null(pg_exec(NULL, "echo", 0, NULL, err));
    assert_null(pg_query(NULL, "SELECT 1", 0, NULL, err));
    assert_int_equal(pg_run(NULL, "SELECT 1", err), -1);
    assert_int_equal(pg_tx_begin(NULL, err), -1);
    assert_int_equal(pg_tx_commit(NULL, err), -1);
    assert_true(err[0] != '\0');
    assert_null(pg_pool_new(NULL, NULL, 1, NULL, 0));
    assert_null(pg_pool_new("dbname=x", NULL, 0, NULL, 0));
    assert_null(pg_pool_new("dbname=x", NULL, 1, NULL, 3));
}

static void test_unreachable(void **state)
{
    char err[ERR_MAX] = "";
    pg_pool *p = pg_pool_new("postgresql://nobody@127.0.0.1:1/x", NULL, 1, NULL, 0);
    double t0 = now_mono();

    assert_non_null(p);
    assert_null(pg_acquire(p, 1.0, err));
    assert_true(now_mono() - t0 < 8.0);
    assert_non_null(strstr(err, "connect"));
    pg_pool_free(p);

    p = pg_pool_new("this is = not a conninfo '", NULL, 1, NULL, 0);
    assert_non_null(p);
    assert_null(pg_acquire(p, 1.0, err));
    assert_non_null(strstr(err, "pg: connect:"));
    pg_pool_free(p);
}

static void test_acquire_release(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *a = get(p), *b = get(p);

    assert_ptr_not_equal(a, b);
    assert_int_equal(PQstatus(pg_raw(a)), CONNECTION_OK);
    pg_release(a);
    assert_ptr_equal(get(p), a); /* the free slot with a live connection */
    pg_release(a);
    pg_release(b);
    pg_pool_free(p);
}

static void test_exhaustion_times_out(void **state)
{
    pg_pool *p = pool_or_skip(1);
    pg_conn *a = get(p);
    char err[ERR_MAX] = "";
    double t0 = now_mono(), took;

    assert_null(pg_acquire(p, 0.3, err));
    took = now_mono() - t0;
    assert_true(took >= 0.29 && took < 2.0);
    assert_non_null(strstr(err, "exhausted"));
    assert_null(pg_acquire(p, 0, err)); /* no wait at all */
    pg_release(a);
    pg_release(get(p));
    pg_pool_free(p);
}

struct late {
    pg_conn *c;
};

static void *release_later(void *arg)
{
    struct late *l = arg;

    usleep(150000);
    pg_release(l->c);
    return NULL;
}

static void test_waiter_gets_released_slot(void **state)
{
    pg_pool *p = pool_or_skip(1);
    struct late l = {get(p)};
    pthread_t t;
    pg_conn *c;
    double t0 = now_mono();

    assert_int_equal(pthread_create(&t, NULL, release_later, &l), 0);
    c = get(p); /* waits up to 5 s */
    assert_true(now_mono() - t0 < 2.0);
    assert_ptr_equal(c, l.c);
    pthread_join(t, NULL);
    pg_release(c);
    pg_pool_free(p);
}

static void test_prepared_reuse(void **state)
{
    pg_pool *p = pool_or_skip(1);
    pg_conn *c = get(p);
    const char *a[] = {"40", "2"}, *e[] = {"hello"};
    char err[ERR_MAX] = "";
    PGresult *r;
    int i;

    for (i = 0; i < 3; i++) {
        r = pg_exec(c, "add", 2, a, err);
        assert_non_null(r);
        assert_int_equal(pg_i64(r, 0, 0), 42);
        PQclear(r);
    }
    r = pg_exec(c, "echo", 1, e, err);
    assert_non_null(r);
    assert_string_equal(pg_val(r, 0, 0), "hello");
    assert_null(pg_val(r, 0, 9));
    PQclear(r);
    r = pg_query(c, "SELECT count(*) FROM pg_prepared_statements WHERE name IN ('add', 'echo')", 0,
                 NULL, err);
    assert_non_null(r);
    assert_int_equal(pg_i64(r, 0, 0), 2); /* each prepared once, on this connection */
    PQclear(r);
    pg_release(c);
    pg_pool_free(p);
}

static void test_statement_errors(void **state)
{
    pg_pool *p = pool_or_skip(1);
    pg_conn *c = get(p);
    const char *a[] = {"x", "1"};
    char err[ERR_MAX] = "";

    assert_null(pg_exec(c, "no_such_stmt", 0, NULL, err));
    assert_non_null(strstr(err, "no_such_stmt"));
    assert_null(pg_exec(c, "bad_sql", 0, NULL, err));
    assert_string_equal(pg_sqlstate(c), "42601");
    assert_null(pg_exec(c, "add", 2, a, err));
    assert_string_equal(pg_sqlstate(c), "22P02");
    assert_int_equal(pg_conn_lost(c), 0);
    assert_int_equal(backend_pid(c) > 0, 1); /* still usable */
    assert_string_equal(pg_sqlstate(c), "");
    pg_release(c);
    pg_pool_free(p);
}

static void test_tx_commit_rollback(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *c = get(p), *o = get(p);
    char err[ERR_MAX] = "";

    assert_int_equal(pg_tx_begin(c, err), 0);
    run(c, q("INSERT INTO %s VALUES (1, 'committed')"));
    assert_int_equal(count_rows(o, "id = 1"), 0); /* not visible before commit */
    assert_int_equal(pg_tx_commit(c, err), 0);
    assert_int_equal(count_rows(o, "id = 1"), 1);

    assert_int_equal(pg_tx_begin(c, err), 0);
    assert_int_equal(pg_tx_begin(c, err), -1); /* no nesting */
    run(c, q("INSERT INTO %s VALUES (2, 'rolled back')"));
    pg_tx_rollback(c);
    assert_int_equal(count_rows(o, "id = 2"), 0);
    assert_int_equal(PQtransactionStatus(pg_raw(c)), PQTRANS_IDLE);
    assert_int_equal(pg_tx_commit(c, err), -1); /* nothing open */
    assert_string_equal(pg_sqlstate(c), "25000");
    pg_release(c);
    pg_release(o);
    pg_pool_free(p);
}

static void test_release_rolls_back(void **state)
{
    pg_pool *p = pool_or_skip(1);
    pg_conn *c = get(p);
    char err[ERR_MAX] = "";

    assert_int_equal(pg_tx_begin(c, err), 0);
    run(c, q("INSERT INTO %s VALUES (3, 'left open')"));
    pg_release(c);
    c = get(p);
    assert_int_equal(PQtransactionStatus(pg_raw(c)), PQTRANS_IDLE);
    assert_int_equal(count_rows(c, "id = 3"), 0);
    pg_release(c);
    pg_pool_free(p);
}

static void test_unique_violation(void **state)
{
    pg_pool *p = pool_or_skip(1);
    pg_conn *c = get(p);
    char err[ERR_MAX] = "";

    run(c, q("INSERT INTO %s VALUES (10, 'a')"));
    assert_int_equal(pg_run(c, q("INSERT INTO %s VALUES (10, 'b')"), err), -1);
    assert_string_equal(pg_sqlstate(c), "23505");
    assert_int_equal(pg_conn_lost(c), 0);
    assert_non_null(strstr(err, "duplicate key"));

    /* inside a transaction: the failure aborts it and COMMIT turns into a rollback */
    assert_int_equal(pg_tx_begin(c, err), 0);
    run(c, q("INSERT INTO %s VALUES (11, 'a')"));
    assert_int_equal(pg_run(c, q("INSERT INTO %s VALUES (10, 'c')"), err), -1);
    assert_string_equal(pg_sqlstate(c), "23505");
    assert_int_equal(pg_tx_commit(c, err), -1);
    assert_string_equal(pg_sqlstate(c), "25P02");
    assert_int_equal(count_rows(c, "id = 11"), 0);
    pg_release(c);
    pg_pool_free(p);
}

static void test_reconnect_outside_tx(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *c = get(p);
    long long pid = backend_pid(c), pid2;

    kill_backend(p, pid);
    pid2 = backend_pid(c); /* retried once on a new connection, statement re-prepared */
    assert_true(pid2 > 0 && pid2 != pid);
    assert_int_equal(pg_conn_lost(c), 0);
    assert_string_equal(pg_sqlstate(c), "");
    pg_release(c);
    pg_pool_free(p);
}

static void test_no_retry_inside_tx(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *c = get(p);
    const char *e[] = {"x"};
    char err[ERR_MAX] = "";
    long long pid = backend_pid(c);

    assert_int_equal(pg_tx_begin(c, err), 0);
    run(c, q("INSERT INTO %s VALUES (20, 'lost')"));
    kill_backend(p, pid);
    assert_null(pg_exec(c, "echo", 1, e, err));
    assert_int_equal(pg_conn_lost(c), 1);
    assert_string_equal(pg_sqlstate(c), "08006");
    assert_null(pg_exec(c, "echo", 1, e, err)); /* still broken: no silent autocommit */
    assert_int_equal(pg_conn_lost(c), 1);
    assert_int_equal(pg_tx_commit(c, err), -1);
    assert_int_equal(pg_conn_lost(c), 1);
    pg_release(c);
    c = get(p);
    assert_true(backend_pid(c) != pid);
    assert_int_equal(count_rows(c, "id = 20"), 0);
    pg_release(c);
    pg_pool_free(p);
}

/* A pinned connection is not silently replaced (a reader checked its server); the mark
 * kept with a connection starts over on a new one. */
static void test_pin_and_mark(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *c = get(p);
    const char *e[] = {"x"};
    char err[ERR_MAX] = "";
    long long pid = backend_pid(c);

    pg_conn_set_mark(c, 42);
    assert_true(pg_conn_mark(c) == 42);
    pg_conn_pin(c);
    kill_backend(p, pid);
    assert_null(pg_exec(c, "echo", 1, e, err));
    assert_int_equal(pg_conn_lost(c), 1);
    pg_release(c);
    c = get(p); /* the slot reconnects; unpinned and unmarked */
    assert_true(pg_conn_mark(c) == 0);
    pid = backend_pid(c);
    pg_conn_set_mark(c, 7);
    kill_backend(p, pid);
    assert_true(backend_pid(c) != pid); /* not pinned: retried on a new connection */
    assert_true(pg_conn_mark(c) == 0);
    pg_release(c);
    pg_pool_free(p);
}

static void test_rollback_clears_broken(void **state)
{
    pg_pool *p = pool_or_skip(2);
    pg_conn *c = get(p);
    char err[ERR_MAX] = "";

    assert_int_equal(pg_tx_begin(c, err), 0);
    kill_backend(p, backend_pid(c));
    assert_int_equal(pg_run(c, "SELECT 1", err), -1);
    assert_int_equal(pg_conn_lost(c), 1);
    pg_tx_rollback(c);
    assert_true(backend_pid(c) > 0); /* reconnects outside the transaction */
    pg_release(c);
    pg_pool_free(p);
}

struct worker {
    pg_pool *p;
    int id, ok;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char v[32], err[ERR_MAX];
    const char *params[] = {v};
    PGresult *r;
    pg_conn *c;
    int i;

    for (i = 0; i < 40; i++) {
        snprintf(v, sizeof v, "%d-%d", w->id, i);
        c = pg_acquire(w->p, 10.0, err);
        r = c ? pg_exec(c, "echo", 1, params, err) : NULL;
        if (r && strcmp(pg_val(r, 0, 0), v) == 0)
            w->ok++;
        PQclear(r);
        pg_release(c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pg_pool *p = pool_or_skip(3);
    struct worker w[8];
    pthread_t t[8];
    int i;

    for (i = 0; i < 8; i++) {
        w[i] = (struct worker){p, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 40);
    }
    pg_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_acquire_release),
        cmocka_unit_test(test_exhaustion_times_out),
        cmocka_unit_test(test_waiter_gets_released_slot),
        cmocka_unit_test(test_prepared_reuse),
        cmocka_unit_test(test_statement_errors),
        cmocka_unit_test(test_tx_commit_rollback),
        cmocka_unit_test(test_release_rolls_back),
        cmocka_unit_test(test_unique_violation),
        cmocka_unit_test(test_reconnect_outside_tx),
        cmocka_unit_test(test_no_retry_inside_tx),
        cmocka_unit_test(test_rollback_clears_broken),
        cmocka_unit_test(test_pin_and_mark),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
