/* hash: one-pass streaming SHA-256 (OpenSSL EVP, so the CPU's SHA extensions are used) of a
 * file through a fixed 1 MiB buffer, and the dedup proof over pread ranges. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "pixctl.h"

#define HASH_BUF (1024 * 1024)

static int digest_hex(EVP_MD_CTX *ctx, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != 32)
        return -1;
    util_hex(md, 32, hex);
    return 0;
}

int hash_file(int fd, char hex[65], long long *size, hash_tick_fn tick, void *ud, char *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *b = malloc(HASH_BUF);
    long long total = 0;
    int rc = PIX_EIO;

    if (!ctx || !b || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        err_set(err, "out of memory");
        goto done;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (;;) {
        ssize_t r = pread(fd, b, HASH_BUF, total);
        if (r < 0 && errno == EINTR && !pix_interrupted)
            continue;
        if (pix_interrupted) {
            rc = PIX_EINTR, err_set(err, "interrupted");
            goto done;
        }
        if (r < 0) {
            err_set(err, "read: %s", strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        if (EVP_DigestUpdate(ctx, b, (size_t)r) != 1)
            goto done;
        total += r;
        if (tick)
            tick(ud, total);
    }
    if (digest_hex(ctx, hex) < 0) {
        err_set(err, "sha256 failed");
        goto done;
    }
    *size = total;
    rc = PIX_OK;
done:
    EVP_MD_CTX_free(ctx);
    free(b);
    return rc;
}

static int hash_range(EVP_MD_CTX *ctx, int fd, long long off, long long len, unsigned char *b,
                      size_t bsize, char *err)
{
    while (len > 0) {
        size_t want = (size_t)len < bsize ? (size_t)len : bsize;
        ssize_t r = pread(fd, b, want, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return err_set(err, "read: %s", strerror(errno)), -1;
        if (r == 0)
            return err_set(err, "the file is shorter than the range asked for"), -1;
        if (EVP_DigestUpdate(ctx, b, (size_t)r) != 1)
            return err_set(err, "sha256 failed"), -1;
        off += r, len -= r;
    }
    return 0;
}

int hash_proof(int fd, const char *nonce, const long long *off, const long long *len, int n,
               char hex[65], char *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t bsize = 64 * 1024;
    unsigned char *b = malloc(bsize);
    int rc = PIX_EIO;

    if (!ctx || !b || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, nonce, strlen(nonce)) != 1) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (off[i] < 0 || len[i] < 0) {
            err_set(err, "bad range in the challenge");
            goto done;
        }
        if (hash_range(ctx, fd, off[i], len[i], b, bsize, err) < 0)
            goto done;
    }
    if (digest_hex(ctx, hex) == 0)
        rc = PIX_OK;
done:
    EVP_MD_CTX_free(ctx);
    free(b);
    return rc;
}

void hash_string(const char *s, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    util_hex(md, 32, hex);
}
