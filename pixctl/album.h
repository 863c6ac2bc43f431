/* album: `pixctl album SUBCOMMAND ...`: create, list, fill and share albums (the /albums
 * routes). The parts unit tests reach: argument checks and the text row of an album. */
#ifndef PIXCTL_ALBUM_H
#define PIXCTL_ALBUM_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "pixctl.h"

/* Checks argv[0] is a subcommand and the arguments after it fit (whole: --album given).
 * 0, or -1 with a usage message in err. */
int album_check_args(int argc, char **argv, int whole, char *err) PIX_WUR;
/* One album as a text row (no newline): id, your role, item count, last change, name. */
void album_format_row(const cJSON *a, char *out, size_t n);

#endif
