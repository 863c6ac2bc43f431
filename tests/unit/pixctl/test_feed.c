/* test_feed: hash while uploading: the reader hashes every byte in order whatever is
 * skipped, hands out exactly the chunks to send with their bytes, stays within its buffers,
 * and reports a file that got shorter. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "feed.h"
#include "plan.h"

#define CHUNK 4096LL
#define SIZE (CHUNK * 9 + 123)

static int temp_file(unsigned char *data, long long size, char *path)
{
    int fd;

    strcpy(path, "/tmp/pixctl-test-feed-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    for (long long i = 0; i < size; i++)
        data[i] = (unsigned char)(i * 131 + i / 7);
    assert_int_equal(write(fd, data, (size_t)size), size);
    return fd;
}

/* Takes every chunk not skipped, in any order the reader allows, checking its bytes. */
static void drain(struct feed *f, const unsigned char *data, const unsigned char *skip)
{
    int count = plan_count(SIZE, CHUNK), got = 0, want = 0;
    char err[ERR_MAX];

    for (int n = 0; n < count; n++)
        want += !skip[n];
    for (int spins = 0; got < want && spins < 100000; spins++) { /* 10 s at most */
        usleep(100);
        for (int n = 0; n < count; n++) {
            struct xfer_chunk c = {.n = n};
            if (skip[n] || feed_ready(f, &c, err) != 1)
                continue;
            assert_memory_equal(c.buf, data + plan_offset(CHUNK, n),
                                (size_t)plan_length(SIZE, CHUNK, n));
            feed_release(f, n);
            got++;
        }
    }
    assert_int_equal(got, want);
}

static void test_hash_and_chunks(void **unused)
{
    unsigned char *data = malloc(SIZE), md[32], skip[10] = {1, 0, 0, 1, 1, 0, 0, 0, 1, 0};
    char path[64], hex[65], want[65], err[ERR_MAX];
    int fd = temp_file(data, SIZE, path);
    struct feed *f = feed_start(fd, SIZE, CHUNK, skip, 2, err);

    assert_non_null(f);
    assert_true(feed_wake_fd(f) >= 0);
    drain(f, data, skip);
    assert_int_equal(feed_finish(f, hex, err), PIX_OK);
    EVP_Digest(data, SIZE, md, NULL, EVP_sha256(), NULL);
    util_hex(md, 32, want);
    assert_string_equal(hex, want);
    feed_free(f);
    close(fd);
    unlink(path);
    free(data);
}

static void test_shorter_file(void **unused)
{
    unsigned char *data = malloc(SIZE), skip[10] = {0};
    char path[64], err[ERR_MAX] = "", hex[65];
    int fd = temp_file(data, SIZE - CHUNK, path), rc = 0;
    struct feed *f = feed_start(fd, SIZE, CHUNK, skip, 20, err);

    assert_non_null(f);
    for (int spins = 0; rc == 0 && spins < 100000; spins++) { /* 10 s at most */
        struct xfer_chunk c = {.n = 9};
        usleep(100);
        rc = feed_ready(f, &c, err);
    }
    assert_int_equal(rc, PIX_EIO);
    assert_non_null(strstr(err, "shorter"));
    assert_int_equal(feed_finish(f, hex, err), PIX_EIO);
    feed_free(f);
    feed_free(NULL);
    close(fd);
    unlink(path);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_chunks),
        cmocka_unit_test(test_shorter_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
