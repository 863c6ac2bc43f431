/* naming: local file names for images: a server name made safe as one path component, the
 * `NAME (ID-PREFIX).EXT` form for collisions, and a deterministic assignment so two
 * folders synced from the same server state pick the same names. */
#ifndef PIXCTL_NAMING_H
#define PIXCTL_NAMING_H

#include <stddef.h>

#define NAMING_MAX 255 /* bytes in one file name (NAME_MAX) */

/* A safe file name for a server-side name into out (room for NAMING_MAX + 1): '/', '\\'
 * and control characters become '_'; "", "." and ".." become "_", "_." and "_.."; a name
 * starting with ".pixplane" gets a leading '_'; longer than NAMING_MAX bytes: the stem is
 * cut at a UTF-8 boundary and the extension kept. */
void naming_sanitize(const char *name, char *out, size_t n);
/* Where the extension of a file name starts (its '.'), or strlen(name) if none; a leading
 * dot does not start an extension and an extension is at most 16 bytes without spaces. */
size_t naming_ext_at(const char *name);
/* "STEM (TAG).EXT" for a sanitized name, cut to NAMING_MAX bytes like naming_sanitize. */
void naming_suffixed(const char *name, const char *tag, char *out, size_t n);

struct naming_entry {
    const char *id;           /* image id */
    const char *name;         /* the name on the server */
    char out[NAMING_MAX + 1]; /* the assigned file name */
};

/* 1 if fname is occupied by a file that is none of the entries' (it must not be touched). */
typedef int (*naming_taken_fn)(void *ud, const char *fname);

/* Assigns out for every entry. Among entries whose sanitized names are equal, the one with
 * the smallest id gets the plain name and the others "STEM (first 8 of id).EXT"; if that is
 * taken (by a foreign file or another entry) the full id is used. taken may be NULL.
 * 0 or -1 (out of memory). */
int naming_assign(struct naming_entry *e, int n, naming_taken_fn taken, void *ud);

#endif
