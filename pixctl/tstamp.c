/* tstamp: a file's mtime as the API's file_modified_at: RFC 3339, UTC, milliseconds
 * (truncated), or nothing for a time outside years 1-9999. */
#include <stdio.h>
#include <time.h>

#include "tstamp.h"

int tstamp_format(long long sec, long long nsec, char out[TSTAMP_LEN])
{
    time_t t = (time_t)sec;
    struct tm tm;

    out[0] = '\0';
    if (nsec < 0 || nsec > 999999999 || !gmtime_r(&t, &tm))
        return -1;
    if (tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return -1;
    if (strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
        return out[0] = '\0', -1;
    snprintf(out + 19, TSTAMP_LEN - 19, ".%03uZ", (unsigned)(nsec / 1000000) % 1000u);
    return 0;
}

void tstamp_add_mtime(cJSON *o, long long sec, long long nsec)
{
    char when[TSTAMP_LEN];

    if (tstamp_format(sec, nsec, when) == 0)
        cJSON_AddStringToObject(o, "file_modified_at", when);
}
