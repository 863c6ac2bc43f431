/* Unit tests for services/reconciler/config.c: defaults load and pass the checks; the rule
 * that orphan-grace covers session-ttl + complete-lease; --only names; report formats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rec.h"

/* Loads the table from defaults and the given flags (no environment). 0 or -1. */
static int load(int argc, char **argv, char *err)
{
    static const char *const envs[] = {"DATABASE_URL",
                                       "PIXPLANE_SESSION_TTL",
                                       "PIXPLANE_COMPLETE_LEASE",
                                       "PIXPLANE_RECONCILE_ONLY",
                                       "PIXPLANE_RECONCILE_ORPHAN_GRACE",
                                       "PIXPLANE_SYNC_RETENTION",
                                       "PIXPLANE_OUTBOX_RETENTION",
                                       "PIXPLANE_PARTITIONS_AHEAD"};

    for (size_t i = 0; i < ARRAY_LEN(envs); i++)
        unsetenv(envs[i]);
    conf_free(rec_conf, rec_conf_count);
    if (conf_load(rec_conf, rec_conf_count, argc, argv, NULL, NULL, err) != 0)
        return -1;
    return rec_config_check(&rec_cfg, err);
}

static void test_defaults_are_safe(void **state)
{
    char *argv[] = {"rec"};
    char err[ERR_MAX] = "";

    assert_int_equal(load(1, argv, err), 0);
    assert_true(rec_cfg.orphan_grace >= rec_cfg.session_ttl + rec_cfg.complete_lease);
    assert_true(rec_cfg.multipart_grace >= 60);
    assert_true(rec_cfg.retention >= 30 * 86400);
    assert_false(rec_cfg.dry_run);
    assert_false(rec_cfg.once);
}

static void test_orphan_grace_must_cover_an_upload(void **state)
{
    char *short_grace[] = {"rec", "--orphan-grace", "1h"};
    char *short_ttl[] = {"rec", "--orphan-grace",   "3s", "--session-ttl",
                         "1s",  "--complete-lease", "2s"};
    char *too_short[] = {"rec", "--orphan-grace",   "2s", "--session-ttl",
                         "1s",  "--complete-lease", "2s"};
    char err[ERR_MAX] = "";

    assert_int_equal(load(3, short_grace, err), -1);
    assert_non_null(strstr(err, "orphan-grace"));
    assert_int_equal(load(7, short_ttl, err), 0);
    assert_int_equal(load(7, too_short, err), -1);
}

static void test_only_and_report(void **state)
{
    char *good[] = {"rec", "--only", "refcount,stuck", "--report", "json"};
    char *bad_only[] = {"rec", "--only", "refcount,nope"};
    char *bad_report[] = {"rec", "--report", "xml"};
    char err[ERR_MAX] = "";

    assert_int_equal(load(5, good, err), 0);
    assert_int_equal(load(3, bad_only, err), -1);
    assert_non_null(strstr(err, "nope"));
    assert_int_equal(load(3, bad_report, err), -1);
}

static void test_batch_and_interval_limits(void **state)
{
    char *zero[] = {"rec", "--batch", "0"};
    char *huge[] = {"rec", "--batch", "10001"};
    char *fast[] = {"rec", "--interval", "0"};
    char *once[] = {"rec", "--interval", "0", "--once"};
    char err[ERR_MAX] = "";

    assert_int_equal(load(3, zero, err), -1);
    assert_int_equal(load(3, huge, err), -1);
    assert_int_equal(load(3, fast, err), -1);
    assert_int_equal(load(4, once, err), 0);
}

/* The partitions sweep: a week ahead, the API's 30-day sync retention, a week of sent
 * outbox; at least one day ahead; named by --only like the others. */
static void test_partitions(void **state)
{
    char *only[] = {"rec", "--only", "partitions"};
    char *none_ahead[] = {"rec", "--partitions-ahead", "0"};
    char err[ERR_MAX] = "";

    assert_int_equal(load(1, only, err), 0);
    assert_int_equal(rec_cfg.partitions_ahead, 7);
    assert_true(rec_cfg.sync_retention == 30 * 86400.0);
    assert_true(rec_cfg.outbox_retention == 7 * 86400.0);
    assert_int_equal(load(3, only, err), 0);
    assert_int_equal(rec_sweeps_parse(rec_cfg.only, err), 1L << REC_PARTITIONS);
    assert_string_equal(rec_sweep_name(REC_PARTITIONS), "partitions");
    assert_int_equal(load(3, none_ahead, err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_safe),
        cmocka_unit_test(test_orphan_grace_must_cover_an_upload),
        cmocka_unit_test(test_only_and_report),
        cmocka_unit_test(test_batch_and_interval_limits),
        cmocka_unit_test(test_partitions),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    conf_free(rec_conf, rec_conf_count);
    return rc;
}
