/* test_cli: the config file's `key = value` lines, and the content hashes pixctl computes
 * (file SHA-256 and the dedup proof over byte ranges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "hash.h"

static void line_is(const char *in, int rc, const char *key, const char *val)
{
    char line[256], *k = NULL, *v = NULL;

    snprintf(line, sizeof line, "%s", in);
    assert_int_equal(cli_conf_line(line, &k, &v), rc);
    if (rc != 1)
        return;
    assert_string_equal(k, key);
    assert_string_equal(v, val);
}

static void test_conf_line(void **unused)
{
    line_is("api-url = http://127.0.0.1:8080", 1, "api-url", "http://127.0.0.1:8080");
    line_is("  token=abc.def.ghi  ", 1, "token", "abc.def.ghi");
    line_is("api_url = x", 1, "api-url", "x");
    line_is("name = \"my photo.jpg\"", 1, "name", "my photo.jpg");
    line_is("name = 'a=b'", 1, "name", "a=b");
    line_is("empty =", 1, "empty", "");
    line_is("", 0, NULL, NULL);
    line_is("   ", 0, NULL, NULL);
    line_is("# comment = no", 0, NULL, NULL);
    line_is("; comment", 0, NULL, NULL);
    line_is("no equals sign", -1, NULL, NULL);
    line_is("= value", -1, NULL, NULL);
    line_is("bad key = 1", -1, NULL, NULL);
}

static int tmpfile_with(const char *data, size_t n, char *path)
{
    int fd;

    strcpy(path, "/tmp/pixctl-test-hash-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    return fd;
}

static void test_hash_file(void **unused)
{
    char path[64], hex[65], err[ERR_MAX];
    long long n = 0;
    int fd = tmpfile_with("abc", 3, path);

    assert_int_equal(hash_file(fd, hex, &n, NULL, NULL, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    close(fd);
    unlink(path);
}

static void test_hash_proof(void **unused)
{
    char path[64], hex[65], want[65], err[ERR_MAX];
    long long off[] = {1, 4}, len[] = {2, 3}, bad[] = {9};
    int fd = tmpfile_with("0123456789", 10, path);

    /* sha256("nonce" "12" "456") */
    hash_string("nonce12456", want);
    assert_int_equal(hash_proof(fd, "nonce", off, len, 2, hex, err), 0);
    assert_string_equal(hex, want);
    assert_int_not_equal(hash_proof(fd, "nonce", bad, len + 1, 1, hex, err), 0); /* past EOF */
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_line),
        cmocka_unit_test(test_hash_file),
        cmocka_unit_test(test_hash_proof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
