/* cors: Cross-Origin Resource Sharing for the API: allowed origins, the headers on their
 * answers, and preflight (OPTIONS) answers with exactly the methods a route takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"

#define CORS_MAX_ORIGINS 64
#define CORS_ORIGIN_MAX 256
/* The request headers the routes read; Content-Type for JSON bodies. */
#define CORS_ALLOW_HEADERS                                                                         \
    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id, X-Link-Ticket, "   \
    "Pixplane-Read-After"
#define CORS_EXPOSE_HEADERS                                                                        \
    "Retry-After, X-Request-Id, Location, Idempotent-Replayed, Pixplane-Read-After"
#define CORS_MAX_AGE "600"

struct cors {
    int n;
    char origin[CORS_MAX_ORIGINS][CORS_ORIGIN_MAX];
};

/* "http://host[:port]" or "https://...": a scheme, an authority, nothing after it. */
static int origin_valid(const char *s, size_t n)
{
    size_t i, start;

    if (n > 7 && !strncmp(s, "http://", 7))
        start = 7;
    else if (n > 8 && !strncmp(s, "https://", 8))
        start = 8;
    else
        return 0;
    for (i = start; i < n; i++)
        if (s[i] == '/' || s[i] == '?' || s[i] == '#' || s[i] == '@' ||
            (unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

cors *cors_new(const char *origins, char *err)
{
    cors *c = calloc(1, sizeof *c);
    const char *p = origins ? origins : "";

    if (!c)
        return err_set(err, "out of memory"), NULL;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p;

        p += n + (p[n] == ',');
        while (n && (*s == ' ' || *s == '\t'))
            s++, n--;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        if (!origin_valid(s, n) || n >= CORS_ORIGIN_MAX || c->n == CORS_MAX_ORIGINS) {
            err_set(err, "cors-origins: '%.*s' is not an origin like https://app.example.com",
                    (int)(n > 80 ? 80 : n), s);
            goto fail;
        }
        memcpy(c->origin[c->n++], s, n);
    }
    return c;
fail:
    free(c);
    return NULL;
}

void cors_free(cors *c)
{
    free(c);
}

int cors_allowed(const cors *c, const char *origin)
{
    int i;

    if (!c || !origin)
        return 0;
    for (i = 0; i < c->n; i++)
        if (!strcasecmp(c->origin[i], origin))
            return 1;
    return 0;
}

int cors_headers(const cors *c, http_req *r)
{
    const char *origin = http_req_header(r, "Origin");

    if (!c || c->n == 0)
        return 0;
    if (http_resp_header(r, "Vary", "Origin") < 0)
        return -1;
    if (!cors_allowed(c, origin))
        return 0;
    if (http_resp_header(r, "Access-Control-Allow-Origin", origin) < 0 ||
        http_resp_header(r, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS) < 0)
        return -1;
    return 0;
}

/* Whether method is one of the comma-separated methods in allow. */
static int method_listed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    const char *p = allow;

    while (*p) {
        size_t len = strcspn(p, ", ");
        if (len == n && !strncmp(p, method, n))
            return 1;
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

/* The preflight grant: what the routes take, cached by the browser for a while. */
static int grant(http_req *r, const char *allow)
{
    if (http_resp_header(r, "Access-Control-Allow-Methods", allow) < 0 ||
        http_resp_header(r, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS) < 0 ||
        http_resp_header(r, "Access-Control-Max-Age", CORS_MAX_AGE) < 0)
        return -1;
    return 0;
}

void cors_preflight(const cors *c, http_req *r, const char *allow)
{
    const char *want = http_req_header(r, "Access-Control-Request-Method");
    char methods[96];

    snprintf(methods, sizeof methods, "%s, OPTIONS", allow);
    if (http_resp_header(r, "Allow", methods) < 0)
        goto fail;
    if (cors_allowed(c, http_req_header(r, "Origin")) && want && method_listed(allow, want) &&
        grant(r, allow) < 0)
        goto fail;
    http_respond(r, 204, NULL, NULL, 0);
    return;
fail:
    http_respond_error(r, 500, "internal", "could not build the preflight answer");
}
