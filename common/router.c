/* router: linear match of method + path against a table of patterns with {name} segments;
 * no normalisation (a trailing slash is just another, empty, segment). */
#include "router.h"

#include <string.h>

/* Matches path against pattern, filling p. 1 on match, 0 otherwise (also when a value is
 * ROUTE_PARAM_MAX bytes or more, or the pattern has too many parameters). Names point into
 * the pattern just after '{' and end at '}'. */
static int route_path_match(const char *pat, const char *path, struct route_params *p)
{
    p->n = 0;
    while (*pat) {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            size_t len = strcspn(path, "/");
            if (!close || !len || len >= ROUTE_PARAM_MAX || p->n >= ROUTE_MAX_PARAMS)
                return 0;
            p->names[p->n] = pat + 1;
            memcpy(p->values[p->n], path, len);
            p->values[p->n++][len] = '\0';
            pat = close + 1;
            path += len;
        } else if (*pat++ != *path++) {
            return 0;
        }
    }
    return *path == '\0';
}

/* Appends method to the comma-separated allow list unless already there. -1 if it does
 * not fit (the list is left as it was). */
static int allow_add(char *allow, size_t allow_len, const char *method)
{
    size_t used = strlen(allow), mlen = strlen(method);

    for (const char *s = allow; (s = strstr(s, method)) != NULL; s += mlen)
        if ((s == allow || s[-1] == ' ') && (s[mlen] == ',' || s[mlen] == '\0'))
            return 0;
    if (used + (used ? 2 : 0) + mlen + 1 > allow_len)
        return -1;
    if (used)
        memcpy(allow + used, ", ", 2), used += 2;
    memcpy(allow + used, method, mlen + 1);
    return 0;
}

const struct route *router_match(const struct route *table, size_t n, const char *method,
                                 const char *path, struct route_params *p, char *allow,
                                 size_t allow_len, int *status)
{
    struct route_params tmp;
    int path_seen = 0, allow_full = !allow || !allow_len;

    if (!allow_full)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!route_path_match(table[i].pattern, path, &tmp))
            continue;
        path_seen = 1;
        if (strcmp(table[i].method, method) == 0) {
            if (p)
                *p = tmp;
            return &table[i];
        }
        if (!allow_full && allow_add(allow, allow_len, table[i].method) < 0)
            allow_full = 1; /* truncated: a prefix of the list, still well-formed */
    }
    if (status)
        *status = path_seen ? 405 : 404;
    return NULL;
}

const char *route_param(const struct route_params *p, const char *name)
{
    size_t len = strlen(name);

    for (int i = 0; i < p->n; i++)
        if (strncmp(p->names[i], name, len) == 0 && p->names[i][len] == '}')
            return p->values[i];
    return NULL;
}
