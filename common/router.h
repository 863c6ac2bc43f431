/* router: method + path-pattern table ("/uploads/{id}/chunks/{n}"); a {name} segment
 * matches one non-empty path segment. Distinguishes 404 (no path) from 405 (no method). */
#ifndef PIX_ROUTER_H
#define PIX_ROUTER_H

#include <stddef.h>

#define ROUTE_MAX_PARAMS 4
#define ROUTE_PARAM_MAX 160

struct route {
    const char *method;
    const char *pattern;
    void *handler; /* opaque to the router */
    int flags;     /* opaque to the router */
};

struct route_params {
    int n;
    const char *names[ROUTE_MAX_PARAMS];
    char values[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
};

/* Returns the route, or NULL with *status 404 or 405 (and *allow listing methods for 405,
 * comma separated, in a caller buffer of allow_len bytes). */
const struct route *router_match(const struct route *table, size_t n, const char *method,
                                 const char *path, struct route_params *p, char *allow,
                                 size_t allow_len, int *status);
const char *route_param(const struct route_params *p, const char *name);

#endif
