/* feed: the sequential reader behind hash-while-upload: one thread reads the file once in
 * chunk order through a pool of chunk buffers, hashes it (OpenSSL EVP), and publishes each
 * chunk to be sent; the uploaders give buffers back as chunks are stored. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "feed.h"
#include "plan.h"

struct feed {
    int fd, efd, count, nbuf, nfree;
    long long size, chunk_size;
    unsigned char *skip;   /* count flags: 1 = only hash */
    unsigned char **bufs;  /* nbuf buffers of chunk_size */
    unsigned char **spare; /* nfree of them unused */
    unsigned char **held;  /* per chunk: the buffer it was read into, until released */
    EVP_MD_CTX *ctx;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int stop, finished, rc;
    char err[ERR_MAX], hex[65];
};

static void signal_wake(struct feed *f)
{
    uint64_t one = 1;
    ssize_t w = write(f->efd, &one, sizeof one); /* EAGAIN: already signalled */

    (void)w;
}

/* A free buffer, waiting for one; NULL once told to stop. */
static unsigned char *take_buf(struct feed *f)
{
    unsigned char *b = NULL;

    pthread_mutex_lock(&f->mu);
    while (!f->stop && f->nfree == 0)
        pthread_cond_wait(&f->cv, &f->mu);
    if (!f->stop)
        b = f->spare[--f->nfree];
    pthread_mutex_unlock(&f->mu);
    return b;
}

static void put_free(struct feed *f, unsigned char *b)
{
    f->spare[f->nfree++] = b;
    pthread_cond_signal(&f->cv);
}

/* Reads len bytes at off into b. 0, or -1 with err. */
static int read_full(struct feed *f, unsigned char *b, long long off, long long len, char *err)
{
    long long got = 0;

    while (got < len) {
        ssize_t r = pread(f->fd, b + got, (size_t)(len - got), off + got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return err_set(err, "read: %s", strerror(errno)), -1;
        if (r == 0)
            return err_set(err, "the file got shorter during the upload"), -1;
        got += r;
    }
    return 0;
}

/* Reads and hashes chunk n, then publishes it (or frees its buffer when skipped). */
static int read_chunk(struct feed *f, int n, char *err)
{
    long long len = plan_length(f->size, f->chunk_size, n);
    unsigned char *b = take_buf(f);

    int rc;

    if (!b)
        return err_set(err, "stopped"), -1;
    if (n + 1 < f->count) /* the disk fetches the next chunk while this one is hashed */
        (void)posix_fadvise(f->fd, plan_offset(f->chunk_size, n + 1), f->chunk_size,
                            POSIX_FADV_WILLNEED);
    rc = read_full(f, b, plan_offset(f->chunk_size, n), len, err);
    if (rc == 0 && EVP_DigestUpdate(f->ctx, b, (size_t)len) != 1)
        rc = -1, err_set(err, "sha256 failed");
    pthread_mutex_lock(&f->mu);
    if (rc < 0 || f->skip[n])
        put_free(f, b);
    else
        f->held[n] = b;
    pthread_mutex_unlock(&f->mu);
    signal_wake(f);
    return rc;
}

/* The digest, after checking that the file did not grow. 0 or -1 with err. */
static int finish_hash(struct feed *f, char hex[65], char *err)
{
    unsigned char md[32], extra;
    unsigned int n = 0;

    if (pread(f->fd, &extra, 1, f->size) != 0)
        return err_set(err, "the file changed while it was read"), -1;
    if (EVP_DigestFinal_ex(f->ctx, md, &n) != 1 || n != 32)
        return err_set(err, "sha256 failed"), -1;
    util_hex(md, 32, hex);
    return 0;
}

static void *reader(void *arg)
{
    struct feed *f = arg;
    char err[ERR_MAX] = "", hex[65] = "";
    int rc = 0;

    (void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    for (int n = 0; n < f->count && rc == 0; n++)
        rc = read_chunk(f, n, err);
    if (rc == 0)
        rc = finish_hash(f, hex, err);
    pthread_mutex_lock(&f->mu);
    f->finished = 1;
    f->rc = rc == 0 ? PIX_OK : PIX_EIO;
    snprintf(f->err, sizeof f->err, "%s", err);
    snprintf(f->hex, sizeof f->hex, "%s", hex);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    signal_wake(f);
    return NULL;
}

/* Memory and the hash context for f's layout. 0 or -1. */
static int feed_alloc(struct feed *f, const unsigned char *skip)
{
    if (!(f->skip = malloc((size_t)f->count)) ||
        !(f->held = calloc((size_t)f->count, sizeof *f->held)) ||
        !(f->bufs = calloc((size_t)f->nbuf, sizeof *f->bufs)) ||
        !(f->spare = calloc((size_t)f->nbuf, sizeof *f->spare)) || !(f->ctx = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(f->ctx, EVP_sha256(), NULL) != 1)
        return -1;
    memcpy(f->skip, skip, (size_t)f->count);
    for (int i = 0; i < f->nbuf; i++) {
        if (!(f->bufs[i] = malloc((size_t)f->chunk_size)))
            return -1;
        f->spare[f->nfree++] = f->bufs[i];
    }
    return 0;
}

struct feed *feed_start(int fd, long long size, long long chunk_size, const unsigned char *skip,
                        int nbuf, char *err)
{
    struct feed *f = calloc(1, sizeof *f);
    int count = plan_count(size, chunk_size);

    if (!f)
        return err_set(err, "out of memory"), NULL;
    f->efd = -1;
    f->fd = fd, f->size = size, f->chunk_size = chunk_size, f->count = count;
    f->nbuf = nbuf < count ? nbuf : count;
    f->nbuf = f->nbuf < 1 ? 1 : f->nbuf;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if ((f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || count < 1 ||
        feed_alloc(f, skip) < 0) {
        err_set(err, "cannot start the reader: %s", count < 1 ? "no chunks" : strerror(errno));
        goto fail;
    }
    if (pthread_create(&f->th, NULL, reader, f) != 0) {
        err_set(err, "cannot start the reader thread");
        goto fail;
    }
    f->started = 1;
    return f;
fail:
    feed_free(f);
    return NULL;
}

int feed_ready(struct feed *f, struct xfer_chunk *c, char *err)
{
    int rc = 0;

    pthread_mutex_lock(&f->mu);
    if (c->n >= 0 && c->n < f->count && f->held[c->n]) {
        c->buf = f->held[c->n];
        rc = 1;
    } else if (f->finished && f->rc != PIX_OK) {
        err_set(err, "%s", f->err);
        rc = f->rc;
    } else if (f->finished) {
        err_set(err, "chunk %d was not read", c->n); /* asked for a skipped chunk */
        rc = PIX_EIO;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void feed_release(struct feed *f, int n)
{
    pthread_mutex_lock(&f->mu);
    if (n >= 0 && n < f->count && f->held[n]) {
        put_free(f, f->held[n]);
        f->held[n] = NULL;
    }
    pthread_mutex_unlock(&f->mu);
}

int feed_wake_fd(const struct feed *f)
{
    return f->efd;
}

int feed_finish(struct feed *f, char hex[65], char *err)
{
    int rc;

    pthread_mutex_lock(&f->mu);
    while (!f->finished)
        pthread_cond_wait(&f->cv, &f->mu);
    rc = f->rc;
    if (rc == PIX_OK)
        snprintf(hex, 65, "%s", f->hex);
    else
        err_set(err, "%s", f->err);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void feed_free(struct feed *f)
{
    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = 1;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->th, NULL);
    }
    for (int i = 0; f->bufs && i < f->nbuf; i++)
        free(f->bufs[i]);
    if (f->efd >= 0)
        close(f->efd);
    EVP_MD_CTX_free(f->ctx);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->bufs), free(f->spare), free(f->held), free(f->skip);
    free(f);
}
