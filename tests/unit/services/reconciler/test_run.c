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
    *cfg = (struct rec_config){.database_url = (char *)url,
                               .s3_endpoint = "http://127.0.0.1:1",
                               .s3_bucket = "b",
                               .s3_region = "us-east-1",
                               .s3_access_key = "",
                               .s3_secret_key = "",
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
    };

    log_init("test", "error");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
