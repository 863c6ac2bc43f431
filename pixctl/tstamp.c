/* tstamp: RFC 3339 times for the API: a file's mtime as file_modified_at (UTC, milliseconds)
 * and a light check of the time filters a user types. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
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

/* s matches pat, where '9' is a digit and any other character itself. */
static int shape(const char *s, const char *pat)
{
    for (; *pat; s++, pat++) {
        if (*pat == '9' ? !isdigit((unsigned char)*s) : *s != *pat)
            return 0;
    }
    return 1;
}

int tstamp_valid(const char *s)
{
    const char *p = s + 19;

    if (strlen(s) < 20 || !shape(s, "9999-99-99") || !shape(s + 11, "99:99:99"))
        return 0;
    if (!strchr("Tt ", s[10]))
        return 0;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++)
            ;
        if (p == s + 20)
            return 0;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    return (*p == '+' || *p == '-') && strlen(p) == 6 && shape(p + 1, "99:99");
}
