/* Unit tests for services/reconciler/act.c and run.c helpers: array literals, counting of
 * actions and failures, sweep names, exit codes, and the report as JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rec.h"

static void test_array_literal_escapes(void **state)
{
    buf b = {0};

    assert_int_equal(buf_puts(&b, "{"), 0);
    assert_int_equal(rec_array_add(&b, "blobs/a"), 0);
    assert_int_equal(rec_array_add(&b, "x\"y\\z"), 0);
    assert_int_equal(rec_array_add(&b, ""), 0);
    assert_int_equal(buf_puts(&b, "}"), 0);
    assert_string_equal(b.data, "{\"blobs/a\",\"x\\\"y\\\\z\",\"\"}");
    buf_free(&b);
}

static void test_sweep_names_round_trip(void **state)
{
    char err[ERR_MAX] = "";

    assert_int_equal(rec_sweeps_parse("", err), (1L << REC_NSWEEPS) - 1);
    assert_int_equal(rec_sweeps_parse(NULL, err), (1L << REC_NSWEEPS) - 1);
    for (int i = 0; i < REC_NSWEEPS; i++)
        assert_int_equal(rec_sweeps_parse(rec_sweep_name(i), err), 1L << i);
    assert_int_equal(rec_sweeps_parse("stuck,refcount", err),
                     (1L << REC_STUCK) | (1L << REC_REFCOUNT));
    assert_int_equal(rec_sweeps_parse("stuc", err), -1);
    assert_int_equal(rec_sweeps_parse("stuck,", err), 1L << REC_STUCK);
    assert_string_equal(rec_sweep_name(REC_NSWEEPS), "?");
}

static void test_actions_are_counted(void **state)
{
    struct rec_config cfg = {.dry_run = 1};
    struct rec r = {.cfg = &cfg, .cur = REC_RETENTION};

    rec_did(&r, "purge_image", "id-1", "content_hash", "abc", NULL);
    rec_did(&r, "purge_image", "id-2", NULL);
    rec_failed(&r, "purge_image", "id-3", "boom");
    rec_unrepaired(&r, "refcount_drift", "h", "why");
    rec_examined(&r, 4);
    assert_int_equal(r.rep.sweep[REC_RETENTION].actions, 2);
    assert_int_equal(r.rep.sweep[REC_RETENTION].errors, 1);
    assert_int_equal(r.rep.sweep[REC_RETENTION].unrepaired, 1);
    assert_int_equal(r.rep.sweep[REC_RETENTION].examined, 4);
    assert_int_equal(r.rep.sweep[REC_STUCK].actions, 0);
}

static void test_exit_codes(void **state)
{
    struct rec_report rep = {.locked = 1};

    assert_int_equal(rec_exit_code(&rep), 0);
    rep.sweep[REC_STUCK].unrepaired = 3; /* problems for a human are not repairs */
    assert_int_equal(rec_exit_code(&rep), 0);
    rep.sweep[REC_REFCOUNT].actions = 1;
    assert_int_equal(rec_exit_code(&rep), 1);
    rep.sweep[REC_RETENTION].errors = 1;
    assert_int_equal(rec_exit_code(&rep), 2);
    rep.sweep[REC_RETENTION].errors = 0;
    rep.sweep[REC_HALF_COMMITTED].state = REC_FAILED;
    assert_int_equal(rec_exit_code(&rep), 2);
}

static void test_dry_zero_list_grows(void **state)
{
    struct rec_config cfg = {.dry_run = 1};
    struct rec r = {.cfg = &cfg};
    char h[65];

    for (int i = 0; i < 200; i++) {
        snprintf(h, sizeof h, "%064d", i);
        rec_dry_zero_add(&r, h);
    }
    assert_int_equal(r.ndry_zero, 200);
    assert_string_equal(r.dry_zero[199] + 61, "199");
    free(r.dry_zero);
}

static void test_report_json(void **state)
{
    struct rec_report rep = {.dry_run = 1, .locked = 1, .seconds = 1.5};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cJSON *o, *s;

    rep.sweep[REC_ORPHAN_OBJECTS] =
        (struct rec_counts){.examined = 10, .actions = 2, .state = REC_DONE};
    rep.sweep[REC_REFCOUNT].state = REC_NOT_DUE;
    rec_report_print(&rep, 1, f);
    fclose(f);
    o = cJSON_Parse(text);
    assert_non_null(o);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "dry_run")));
    assert_int_equal(cJSON_GetObjectItem(o, "actions")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(o, "exit_code")->valueint, 1);
    s = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "sweeps"), "orphan_objects");
    assert_string_equal(cJSON_GetObjectItem(s, "state")->valuestring, "done");
    assert_int_equal(cJSON_GetObjectItem(s, "examined")->valueint, 10);
    s = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "sweeps"), "refcount");
    assert_string_equal(cJSON_GetObjectItem(s, "state")->valuestring, "not_due");
    cJSON_Delete(o);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_literal_escapes), cmocka_unit_test(test_sweep_names_round_trip),
        cmocka_unit_test(test_actions_are_counted),   cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_dry_zero_list_grows),   cmocka_unit_test(test_report_json),
    };

    log_init("test", "error");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
