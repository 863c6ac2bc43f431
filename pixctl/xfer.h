/* xfer: parallel chunk uploads straight to storage through presigned PUT URLs on one
 * libcurl multi handle: each chunk is streamed from the file with pread (memory stays at
 * parallel x buffer), failed chunks alone are retried with backoff and jitter, and expired
 * URLs are fetched again. */
#ifndef PIXCTL_XFER_H
#define PIXCTL_XFER_H

#include "client.h"

enum xfer_chunk_state { XC_PENDING, XC_ACTIVE, XC_DONE };

struct xfer_chunk {
    int n; /* 0-based chunk number */
    long long off, len;
    char *url;           /* presigned PUT (malloc'd), NULL until fetched */
    double url_deadline; /* monotonic time after which the URL is not used */
    int url_batch;       /* which URL request it came from */
    int attempts;        /* failed attempts so far */
    double not_before;   /* monotonic time of the next try */
    int state;
    const unsigned char *buf; /* the chunk's bytes in memory (set by ops->ready), else NULL:
                                 read from the file */
};

struct xfer_ops {
    /* Sets url and url_deadline of chunks[0..n); PIX_OK or an exit code with err. */
    int (*get_urls)(void *ud, struct xfer_chunk **chunks, int n, char *err);
    /* A chunk is stored. */
    void (*chunk_done)(void *ud, const struct xfer_chunk *c);
    /* Bytes stored plus bytes in flight in this run, called often (throttle drawing). */
    void (*progress)(void *ud, long long bytes);
    void *ud;
    /* Optional (NULL: every chunk is read from the file): may c start now? 1 yes (c->buf
     * may be set), 0 not yet, else an exit code with err. */
    int (*ready)(void *ud, struct xfer_chunk *c, char *err);
    /* Optional (-1: none): a non-blocking eventfd, readable when a chunk not ready before
     * may be now; polled beside the transfers and drained by xfer. */
    int wake_fd;
};

struct xfer_opts {
    int parallel, max_attempts, verbose;
    long buffer; /* per-transfer read buffer (CURLOPT_UPLOAD_BUFFERSIZE) */
    double backoff_base, backoff_cap;
};

struct xfer_stats {
    int chunks_sent;      /* chunks stored by this run */
    long long bytes_sent; /* their bytes */
    int retries;          /* failed attempts that were retried */
    int url_requests;     /* presigned URL batches asked for */
};

/* Uploads chunks[0..n) (state XC_PENDING) from fd. PIX_OK when all are stored; else the
 * exit code of the first permanent failure (PIX_EAPI, PIX_ENET, PIX_EIO, PIX_EINTR) with
 * err. Chunk URLs are freed before returning. */
int xfer_run(const client *api, int fd, struct xfer_chunk *chunks, int n, const struct xfer_opts *o,
             const struct xfer_ops *ops, struct xfer_stats *st, char *err);

#endif
