/* fsx: whole-file reads, atomic replacement through a temporary file and rename, mkdir -p
 * and path helpers used by the resume state, the sync index and downloads. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsx.h"

char *fsx_read_file(const char *path, size_t max, size_t *len, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;
    char *data = NULL;
    size_t n = 0;
    struct stat st;

    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (st.st_size < 0 || (size_t)st.st_size > max) {
        errno = EFBIG;
        goto fail;
    }
    if (!(data = malloc((size_t)st.st_size + 1)))
        goto fail;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, data + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    data[n] = '\0';
    close(fd);
    if (len)
        *len = n;
    return data;
fail:
    e = errno;
    err_set(err, "%s: %s", path, strerror(e));
    free(data);
    if (fd >= 0)
        close(fd);
    errno = e;
    return NULL;
}

int fsx_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

int fsx_write_atomic(const char *path, const void *data, size_t len, int durable, char *err)
{
    char tmp[PATH_MAX];
    int fd = -1, e;

    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fsx_write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0))
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail:
    e = errno;
    err_set(err, "cannot write %s: %s", path, strerror(e));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

int fsx_mkdir_p(const char *path, mode_t mode, char *err)
{
    char p[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof p)
        return err_set(err, "bad directory path"), -1;
    memcpy(p, path, n + 1);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return err_set(err, "cannot create %s: %s", p, strerror(errno)), -1;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return err_set(err, "cannot create %s: %s", p, strerror(errno)), -1;
    return 0;
}

void fsx_dirname(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

const char *fsx_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}
