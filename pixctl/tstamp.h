/* tstamp: the RFC 3339 time pixctl sends at upload: a file's mtime as file_modified_at,
 * UTC with milliseconds. */
#ifndef PIXCTL_TSTAMP_H
#define PIXCTL_TSTAMP_H

#include <cjson/cJSON.h>
#include "util.h"

#define TSTAMP_LEN 25 /* "2021-07-04T12:34:56.123Z" and its NUL */

/* sec.nsec since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (milliseconds truncated). 0, or
 * -1 for a time outside years 1-9999 (out left ""). */
int tstamp_format(long long sec, long long nsec, char out[TSTAMP_LEN]) PIX_WUR;
/* Adds "file_modified_at" (the file's mtime) to an upload session's body o; a time
 * tstamp_format refuses is left out (the server then uses the upload time). */
void tstamp_add_mtime(cJSON *o, long long sec, long long nsec);

#endif
