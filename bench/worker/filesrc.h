/* filesrc: the benches' fetch function for the worker's blocked reader (rsrc): pread from a
 * local file instead of a ranged S3 GET, so the rest of the worker's read path is the same. */
#ifndef PIX_BENCH_FILESRC_H
#define PIX_BENCH_FILESRC_H

#include <unistd.h>

#include "thumb.h"

/* ud: the file descriptor (int *). Appends exactly len bytes at off to out. 0 or -1. */
static inline int filesrc_fetch(void *ud, long long off, size_t len, buf *out, char *err)
{
    int fd = *(int *)ud;
    size_t got = 0;

    if (buf_reserve(out, len) < 0)
        return -1;
    while (got < len) {
        ssize_t n = pread(fd, out->data + out->len + got, len - got, off + (long long)got);
        if (n <= 0) {
            err_set(err, "short read");
            return -1;
        }
        got += (size_t)n;
    }
    out->len += len;
    return 0;
}

#endif
