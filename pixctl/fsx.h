/* fsx: small file-system helpers for pixctl: whole-file reads, atomic replacement (temporary
 * file + rename), mkdir -p and path pieces. */
#ifndef PIXCTL_FSX_H
#define PIXCTL_FSX_H

#include <stddef.h>
#include <sys/types.h>
#include "util.h"

/* The whole file (NUL-terminated, at most max bytes), malloc'd; NULL with errno and err set
 * (errno ENOENT when it does not exist). */
char *fsx_read_file(const char *path, size_t max, size_t *len, char *err);
/* Replaces path atomically: writes path.tmp-PID, fsyncs it when durable, renames it over
 * path. Readers see the old or the new content, never a mix. 0 or -1 with err. */
int fsx_write_atomic(const char *path, const void *data, size_t len, int durable,
                     char *err) PIX_WUR;
/* Creates path and its parents (like mkdir -p). 0 or -1 with err. */
int fsx_mkdir_p(const char *path, mode_t mode, char *err) PIX_WUR;
/* Directory part of path ("." if none) into out. */
void fsx_dirname(const char *path, char *out, size_t n);
/* The last component of path (a pointer into it). */
const char *fsx_basename(const char *path);
/* Writes all n bytes (retrying short writes). 0 or -1 with errno. */
int fsx_write_all(int fd, const void *p, size_t n) PIX_WUR;

#endif
