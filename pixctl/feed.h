/* feed: hash while uploading. One reader thread reads a file once, in chunk order, hashes
 * every byte, and hands the chunks still to be sent to the parallel uploaders (xfer) in a
 * bounded pool of chunk buffers; the SHA-256 is known when the last chunk has been read. */
#ifndef PIXCTL_FEED_H
#define PIXCTL_FEED_H

#include "xfer.h"

struct feed;

/* Starts reading fd (size bytes in chunk_size chunks) on a thread. Chunks with skip[n] set
 * are only hashed; the others wait in one of nbuf buffers (nbuf >= 2) until feed_release.
 * skip (chunk count flags) is copied. NULL with err. */
struct feed *feed_start(int fd, long long size, long long chunk_size, const unsigned char *skip,
                        int nbuf, char *err);
/* For xfer_ops.ready: 1 with c->buf set when chunk c->n has been read, 0 not yet, else the
 * reader's exit code (PIX_EIO) with err. Main thread only. */
int feed_ready(struct feed *f, struct xfer_chunk *c, char *err);
/* Chunk n is stored: its buffer goes back to the reader. */
void feed_release(struct feed *f, int n);
/* For xfer_ops.wake_fd: a non-blocking eventfd signalled after each chunk read. */
int feed_wake_fd(const struct feed *f);
/* Waits for the reader to reach the end of the file: PIX_OK with the lower-case hex
 * SHA-256, else the exit code with err. */
int feed_finish(struct feed *f, char hex[65], char *err);
/* Stops the reader (if still running), joins it and frees everything. NULL is fine. */
void feed_free(struct feed *f);

#endif
