/* Unit tests for services/reconciler/run.c against a live PostgreSQL named by DATABASE_URL
 * (skipped without it): the advisory lock admits one reconciler at a time, and a run that
 * lost its lock connection notices before its next batch. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rec.h"

static volatile sig_atomic_t no_stop;

static int setup(struct rec *r, struct rec_config *cfg)
{
    const char *url = getenv("DATABASE_URL");
    char err[ERR_MAX] = "";

    if (!url)
        return -1;
    *cfg = (struct rec_config){.store.database_url = (char *)url,
                               .store.s3_endpoint = "http://127.0.0.1:1",
                               .store.s3_bucket = "b",
                               .store.s3_region = "us-east-1",
                               .store.s3_access_key = "",
                               .store.s3_secret_key = "",
                               .only = "",
                               .batch = 10};
    assert_int_equal(rec_init(r, cfg, &no_stop, err), 0);
    return 0;
}

static void test_one_lock_holder(void **state)
{
    struct rec_config c1, c2;
    struct rec a, b;
    char err[ERR_MAX] = "";

    if (setup(&a, &c1) < 0 || setup(&b, &c2) < 0)
        skip();
    if (rec_lock_take(&a, err) != 1) { /* a reconciler runs against this database */
        rec_fini(&a), rec_fini(&b);
        skip();
    }
    assert_int_equal(rec_lock_take(&b, err), 0);
    assert_int_equal(rec_lock_take(&b, err), 0); /* retrying does not steal it */
    rec_lock_drop(&a);
    assert_int_equal(rec_lock_take(&b, err), 1);
    assert_int_equal(rec_lock_take(&a, err), 0);
    rec_fini(&a);
    rec_fini(&b);
}

static void test_lost_lock_stops_the_run(void **state)
{
    struct rec_config c1, c2;
    struct rec a, b;
    char err[ERR_MAX] = "", sql[128];
    PGresult *res;

    if (setup(&a, &c1) < 0 || setup(&b, &c2) < 0)
        skip();
    if (rec_lock_take(&a, err) != 1) {
        rec_fini(&a), rec_fini(&b);
        skip();
    }
    assert_int_equal(rec_stopping(&a, err), 0);
    /* the server ends the lock's session (a failover, an admin): the lock is gone */
    assert_int_equal(rec_lock_take(&b, err), 0);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(a.lock));
    res = PQexec(b.lock, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    a.lock_checked = 0; /* do not wait for the next periodic check */
    assert_int_equal(rec_stopping(&a, err), 1);
    assert_non_null(strstr(err, "lock"));
    assert_int_equal(rec_lock_take(&b, err), 1);
    rec_fini(&a);
    rec_fini(&b);
}

static char *show_read_only(struct rec *r)
{
    char err[ERR_MAX] = "";
    pg_conn *c = pg_acquire(r->pg, 5, err);
    PGresult *res = c ? pg_query(c, "SHOW default_transaction_read_only", 0, NULL, err) : NULL;
    char *v = res ? strdup(pg_val(res, 0, 0)) : NULL;

    if (!v)
        fail_msg("%s", err);
    PQclear(res);
    pg_release(c);
    return v;
}

/* The dry run's read-only setting is in the connection options: a reconnect keeps it. */
static void test_dry_run_read_only_survives_reconnect(void **state)
{
    struct rec_config cfg = {0};
    struct rec r;
    char err[ERR_MAX] = "", *v;
    PGconn *killer;
    PGresult *res;
    const char *params[1];
    char pid[32];
    pg_conn *c;

    if (setup(&r, &cfg) < 0)
        skip();
    rec_fini(&r);
    cfg.dry_run = 1;
    assert_int_equal(rec_init(&r, &cfg, &no_stop, err), 0);
    v = show_read_only(&r);
    assert_string_equal(v, "on");
    free(v);
    c = pg_acquire(r.pg, 5, err); /* the pool's connection goes away under it */
    assert_non_null(c);
    snprintf(pid, sizeof pid, "%d", PQbackendPID(pg_raw(c)));
    pg_release(c);
    killer = pg_connect(cfg.store.database_url, NULL, err);
    assert_non_null(killer);
    params[0] = pid;
    res = PQexecParams(killer, "SELECT pg_terminate_backend($1::int, 5000)", 1, NULL, params, NULL,
                       NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    PQfinish(killer);
    v = show_read_only(&r); /* a new connection, made by the pool itself */
    assert_string_equal(v, "on");
    free(v);
    rec_fini(&r);
}

static void test_stop_signal(void **state)
{
    static volatile sig_atomic_t stop = 1;
    struct rec_config cfg = {0};
    struct rec r = {.cfg = &cfg, .stop = &stop};
    char err[ERR_MAX] = "";

    assert_int_equal(rec_stopping(&r, err), 1);
    assert_non_null(strstr(err, "signal"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_lock_holder),
        cmocka_unit_test(test_lost_lock_stops_the_run),
        cmocka_unit_test(test_stop_signal),
        cmocka_unit_test(test_dry_run_read_only_survives_reconnect),
    };

    log_init("test", "error");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
