/* walk: the files a bulk import takes, one at a time with bounded memory: directory trees
 * walked depth-first (hidden entries and one excluded directory skipped, symlinked
 * directories not followed), single files, or a list of paths (one a line, "-": stdin). */
#ifndef PIXCTL_WALK_H
#define PIXCTL_WALK_H

#include <stddef.h>
#include "util.h"

#define WALK_DEPTH_MAX 128 /* directories deeper than this are reported and skipped */

typedef struct walk walk;

/* A walk over roots (directories are walked, anything else is yielded as is), skipping
 * the directory exclude (absolute; NULL: none). Directories are made absolute. */
walk *walk_roots(char *const *roots, int n, const char *exclude, char *err);
/* A walk over the lines of list ("-": standard input). */
walk *walk_list(const char *list, char *err);
/* The next path into out: 1, 0 at the end, or -1 for an entry that cannot be read (err
 * says which; the walk goes on). */
int walk_next(walk *w, char *out, size_t n, char *err);
void walk_free(walk *w);

/* 1 if a directory entry is skipped: ".", "..", and hidden names (a leading '.'). */
int walk_hidden(const char *name);
/* A list line without its line end and surrounding blanks, in place; NULL for a blank
 * line or a comment (first non-blank '#'). */
char *walk_list_line(char *line);
/* Joins dir and name into out: 0, or -1 if it does not fit. */
int walk_join(const char *dir, const char *name, char *out, size_t n) PIX_WUR;

#endif
