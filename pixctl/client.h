/* client: pixctl's HTTP client for the pixplane API: bearer token, JSON bodies, the
 * {"error":{"code","message"}} convention, keep-alive and retries of idempotent calls. */
#ifndef PIXCTL_CLIENT_H
#define PIXCTL_CLIENT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "pixctl.h"

struct client_resp {
    long status;
    cJSON *json;        /* the body if it is JSON, else NULL */
    char code[64];      /* error.code of an error answer, else "" */
    char message[200];  /* error.message */
    double retry_after; /* Retry-After seconds, 0 if none */
};

enum client_flags {
    CLIENT_RETRY = 1, /* safe to repeat: retry network errors, 429, 502-504 with backoff */
    CLIENT_SLOW = 2,  /* may take long on the server: at least 10 minutes' timeout */
};

client *client_new(const struct pixctl_config *cfg, char *err);
void client_free(client *c);
const char *client_base(const client *c);
/* "Authorization: Bearer ..." for handles the caller makes itself. */
const char *client_auth_header(const client *c);
/* Timeouts and options every pixctl transfer shares (no signals, connect timeout, TCP
 * keepalive, stall detection). */
void client_transfer_opts(const client *c, CURL *k);
/* URL-escaped copy of s (curl_free it). */
char *client_escape(client *c, const char *s);

/* One API call (path starts with '/'; body may be NULL; idem: Idempotency-Key or NULL).
 * PIX_OK when an HTTP answer arrived, whatever its status (r filled; client_resp_free it),
 * else PIX_ENET or PIX_EINTR with err. */
int client_call(client *c, const char *method, const char *path, const cJSON *body,
                const char *idem, int flags, struct client_resp *r, char *err);
/* client_call that wants a 2xx: PIX_OK with *out the JSON body (may be NULL; cJSON_Delete
 * it), else PIX_EAPI (message from the error body) or the network code. *status, if not
 * NULL, gets the HTTP status. */
int client_json(client *c, const char *method, const char *path, const cJSON *body, int flags,
                cJSON **out, long *status, char *err);
/* "HTTP 404 not_found: no such image" into err; returns PIX_EAPI. */
int client_error(const struct client_resp *r, char *err);
void client_resp_free(struct client_resp *r);
/* Classifies a libcurl error: PIX_EINTR if we aborted it for a signal, else PIX_ENET. */
int client_curl_exit(CURLcode rc);

#endif
