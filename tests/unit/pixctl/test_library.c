/* test_library: pixctl's photo-library parts: file_modified_at from an mtime, the timeline
 * and album rows, album arguments and the new options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "album.h"
#include "cli.h"
#include "images.h"
#include "tstamp.h"

static void test_tstamp_format(void **unused)
{
    char s[TSTAMP_LEN];

    assert_int_equal(tstamp_format(0, 0, s), 0);
    assert_string_equal(s, "1970-01-01T00:00:00.000Z");
    /* 2021-07-04T12:34:56Z; 123999999 ns truncate to 123 ms */
    assert_int_equal(tstamp_format(1625402096, 123999999, s), 0);
    assert_string_equal(s, "2021-07-04T12:34:56.123Z");
    assert_int_equal(tstamp_format(951782400, 7000000, s), 0); /* a leap day */
    assert_string_equal(s, "2000-02-29T00:00:00.007Z");
    assert_int_equal(tstamp_format(253402300799LL, 999000000, s), 0);
    assert_string_equal(s, "9999-12-31T23:59:59.999Z");
    assert_int_equal(tstamp_format(253402300800LL, 0, s), -1); /* year 10000 */
    assert_string_equal(s, "");
    assert_int_equal(tstamp_format(0, -1, s), -1);
    assert_int_equal(tstamp_format(0, 1000000000, s), -1);
}

static void test_tstamp_add_mtime(void **unused)
{
    cJSON *o = cJSON_CreateObject();

    tstamp_add_mtime(o, 1625402096, 5000000);
    assert_string_equal(cJSON_GetObjectItem(o, "file_modified_at")->valuestring,
                        "2021-07-04T12:34:56.005Z");
    cJSON_Delete(o);
    o = cJSON_CreateObject();
    tstamp_add_mtime(o, 253402300800LL, 0); /* unsendable: left out */
    assert_null(cJSON_GetObjectItem(o, "file_modified_at"));
    cJSON_Delete(o);
}

static cJSON *parse(const char *s)
{
    cJSON *o = cJSON_Parse(s);

    assert_non_null(o);
    return o;
}

static void test_image_rows(void **unused)
{
    char row[512];
    cJSON *img = parse("{\"image_id\":\"0b0e6f0e-8f5c-4a3e-9a51-3c1f2b7d9e01\",\"size\":2048,"
                       "\"created_at\":\"2026-12-03T05:00:00Z\",\"status\":\"active\","
                       "\"name\":\"beach.jpg\",\"taken_at\":\"2021-07-04T12:34:56.123Z\","
                       "\"capture\":{\"time_source\":\"exif\"}}");

    images_format_row(img, 0, row, sizeof row);
    assert_string_equal(row, "0b0e6f0e-8f5c-4a3e-9a51-3c1f2b7d9e01     2.0 KiB  "
                             "2026-12-03T05:00:00Z  active     beach.jpg");
    images_format_row(img, 1, row, sizeof row);
    assert_string_equal(row, "0b0e6f0e-8f5c-4a3e-9a51-3c1f2b7d9e01     2.0 KiB  "
                             "2021-07-04T12:34:56.123Z  exif           active     beach.jpg");
    cJSON_DeleteItemFromObject(img, "capture");
    cJSON_DeleteItemFromObject(img, "taken_at");
    images_format_row(img, 1, row, sizeof row); /* a server without capture fields */
    assert_string_equal(row, "0b0e6f0e-8f5c-4a3e-9a51-3c1f2b7d9e01     2.0 KiB  "
                             "-                         -              active     beach.jpg");
    cJSON_Delete(img);
}

static void test_album_row(void **unused)
{
    char row[512];
    cJSON *a = parse("{\"album_id\":\"5d3f0c62-1b7e-4d0a-8f6e-2a9c7b1e4f00\",\"name\":\"Summer\","
                     "\"role\":\"contributor\",\"item_count\":12,"
                     "\"updated_at\":\"2026-12-03T05:00:00.000Z\"}");

    album_format_row(a, row, sizeof row);
    assert_string_equal(row, "5d3f0c62-1b7e-4d0a-8f6e-2a9c7b1e4f00  contributor      12  "
                             "2026-12-03T05:00:00.000Z  Summer");
    cJSON_Delete(a);
}

static int check(int whole, int argc, ...)
{
    char *argv[8], err[ERR_MAX] = "";
    va_list ap;
    int rc;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    rc = album_check_args(argc, argv, whole, err);
    assert_true(rc == 0 ? err[0] == '\0' : err[0] != '\0');
    return rc;
}

static void test_album_args(void **unused)
{
    assert_int_equal(check(0, 2, "create", "Summer"), 0);
    assert_int_equal(check(0, 1, "create"), -1);
    assert_int_equal(check(0, 3, "create", "a", "b"), -1);
    assert_int_equal(check(0, 1, "ls"), 0);
    assert_int_equal(check(0, 2, "ls", "A"), 0);
    assert_int_equal(check(0, 3, "ls", "A", "B"), -1);
    assert_int_equal(check(0, 2, "add", "A"), -1);
    assert_int_equal(check(0, 4, "add", "A", "I1", "I2"), 0);
    assert_int_equal(check(0, 3, "rm", "A", "I1"), 0);
    assert_int_equal(check(0, 2, "rm", "A"), -1); /* the album goes only with --album */
    assert_int_equal(check(1, 2, "rm", "A"), 0);
    assert_int_equal(check(1, 3, "rm", "A", "I1"), -1);
    assert_int_equal(check(1, 2, "delete", "A"), -1); /* --album belongs to rm */
    assert_int_equal(check(0, 2, "delete", "A"), 0);
    assert_int_equal(check(0, 3, "share", "A", "bob"), 0);
    assert_int_equal(check(0, 2, "share", "A"), -1);
    assert_int_equal(check(0, 3, "unshare", "A", "bob"), 0);
    assert_int_equal(check(0, 2, "frob", "A"), -1);
    assert_int_equal(check(0, 0), -1);
}

/* cli_parse of a command line (no config file; token from the environment). */
static int parse_line(struct pixctl_config *cfg, struct cli *c, int argc, char **argv)
{
    char err[ERR_MAX] = "";

    memset(cfg, 0, sizeof *cfg);
    return cli_parse(argc, argv, cfg, c, err);
}

static void test_cli_options(void **unused)
{
    static struct pixctl_config cfg;
    struct cli c;
    char *ls[] = {"pixctl",     "ls", "--sort", "taken", "--taken-after", "2021-01-01T00:00:00Z",
                  "--order=asc"};
    char *share[] = {"pixctl", "album", "share", "A", "bob", "--role", "contributor"};
    char *rm[] = {"pixctl", "album", "rm", "--album", "A"};
    char *bad[] = {"pixctl", "ls", "--album"};

    setenv("PIXPLANE_TOKEN", "t", 1);
    setenv("PIXPLANE_CONFIG", "/dev/null", 1);
    assert_int_equal(parse_line(&cfg, &c, 7, ls), CLI_RUN);
    assert_string_equal(cfg.sort, "taken");
    assert_string_equal(cfg.taken_after, "2021-01-01T00:00:00Z");
    assert_string_equal(cfg.order, "asc");
    cli_free(&c, &cfg);
    assert_int_equal(parse_line(&cfg, &c, 7, share), CLI_RUN);
    assert_string_equal(c.cmd->name, "album");
    assert_int_equal(c.nargs, 3);
    assert_string_equal(c.args[0], "share");
    assert_string_equal(cfg.role, "contributor");
    cli_free(&c, &cfg);
    assert_int_equal(parse_line(&cfg, &c, 5, rm), CLI_RUN);
    assert_true(cfg.album);
    assert_int_equal(c.nargs, 2);
    cli_free(&c, &cfg);
    assert_int_equal(parse_line(&cfg, &c, 3, bad), PIX_EUSAGE); /* --album is album's */
    cli_free(&c, &cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tstamp_format), cmocka_unit_test(test_tstamp_add_mtime),
        cmocka_unit_test(test_image_rows),    cmocka_unit_test(test_album_row),
        cmocka_unit_test(test_album_args),    cmocka_unit_test(test_cli_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
