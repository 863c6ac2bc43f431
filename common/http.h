/* http: HTTP/1.1 server on libev + http-parser. The loop thread accepts and parses; each
 * complete request goes to a handler on a worker pool, which answers with http_respond*
 * from its own thread. Keep-alive, pipelining (answers in request order), header and body
 * limits (431/413), timeouts (408), Expect: 100-continue, clean 4xx on malformed input. */
#ifndef PIX_HTTP_H
#define PIX_HTTP_H

#include <cjson/cJSON.h>
#include <ev.h>
#include <stddef.h>
#include "pool.h"
#include "util.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

struct http_limits {
    size_t max_header_bytes; /* request line + headers; over it 431 (default 16 KiB) */
    size_t max_body_bytes;   /* over it 413 (default 1 MiB) */
    double header_timeout;   /* seconds to receive the whole head (default 10) */
    double body_timeout;     /* seconds without progress while reading a body (default 30) */
    double min_body_rate;    /* bytes/s: a body is due, whole, body_timeout + its length /
                                this after the head (default 4096); late: 408 */
    double idle_timeout;     /* keep-alive idle close (default 60) */
    int max_connections;     /* over it: 503 and close (default 10000) */
    int max_conns_per_addr;  /* per client address; over it: 429 and close (0: no cap) */
};

/* Runs on a pool thread with that thread's context; must end in exactly one http_respond*
 * call for req (possibly later, from another thread). */
typedef void (*http_handler_fn)(http_req *req, void *tctx, void *ud);

http_server *http_server_new(struct ev_loop *loop, const struct http_limits *lim, pool *workers,
                             http_handler_fn fn, void *ud);
/* Binds and listens; port 0 picks one (see http_server_port). 0 or -1 with err. */
int http_server_listen(http_server *s, const char *host, int port, char *err) PIX_WUR;
int http_server_port(const http_server *s);
/* Serves an already connected stream socket (a socketpair in tests, socket activation);
 * takes fd, made non-blocking here. 0 or -1 (fd closed). Loop thread. */
int http_server_adopt(http_server *s, int fd) PIX_WUR;
/* Stops accepting new connections (graceful drain); existing ones finish. */
void http_server_stop_accepting(http_server *s);
/* Requests received and not yet answered. */
int http_server_inflight(const http_server *s);
int http_server_connections(const http_server *s);
/* Closes every connection and the listener. NULL-safe. Call on the loop thread. */
void http_server_free(http_server *s);

/* Request accessors: valid until the response is sent. */
const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);  /* percent-decoded path, no query */
const char *http_req_query(const http_req *r); /* raw query string, "" if none */
/* Decoded value of a query parameter into out; 1 found, 0 absent, -1 too long. */
int http_req_query_param(const http_req *r, const char *name, char *out, size_t outlen);
const char *http_req_header(const http_req *r, const char *name); /* case-insensitive */
const char *http_req_body(const http_req *r, size_t *len);
const char *http_req_id(const http_req *r); /* X-Request-Id if sane, else generated */
/* The client's IP address as text ("" for an adopted socket); behind a proxy, the proxy's. */
const char *http_req_peer(const http_req *r);
double http_req_start(const http_req *r); /* monotonic time the head arrived */

/* Adds a response header (before http_respond). 0 or -1. */
int http_resp_header(http_req *r, const char *name, const char *value) PIX_WUR;
/* Sends the response; copies body. Any thread. After it, r is gone. */
void http_respond(http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Takes ownership of body (cJSON_Delete'd). */
void http_respond_json(http_req *r, int status, cJSON *body);
/* {"error":{"code":code,"message":msg}} */
void http_respond_error(http_req *r, int status, const char *code, const char *msg);

/* Called on the answering thread with each handler response's status just before it is
 * sent (metrics, access logs). Set before listening. */
typedef void (*http_observer_fn)(http_req *r, int status, void *ud);
void http_server_set_observer(http_server *s, http_observer_fn fn, void *ud);
/* fn(r, status, arg) runs once on the answering thread just before this request's response
 * is built (it may add headers); NULL clears it. */
void http_req_before_respond(http_req *r, http_observer_fn fn, void *arg);
/* A static string kept with the request, e.g. the matched route pattern. */
void http_req_set_tag(http_req *r, const char *tag);
const char *http_req_tag(const http_req *r);

/* Requests for which fn(method, path) is true are handed to the handler as soon as their
 * head arrives, without reading a body (no 100 Continue): for routes that redirect the
 * bytes elsewhere. The connection closes after the answer. Loop thread. */
typedef int (*http_bodyless_fn)(const char *method, const char *path);
void http_server_set_bodyless(http_server *s, http_bodyless_fn fn);

/* Streams (Server-Sent Events): a handler answers 200 with no length and hands the
 * connection to on_open, called on the loop thread after which http_stream_send queues
 * bytes; on_close runs on the loop thread once the client goes or the stream is closed
 * (with s NULL if the client went before on_open: ud is still the owner's to free).
 * A stream holding more than max_unsent unsent bytes (0: 256 KiB) is closed.
 *
 * The rule (Redis freeClientAsync, OpenSMTPD io_release): nothing is freed under a
 * caller's feet. Closing a connection, from any path, only marks it closed; the loop's
 * prepare step (or http_server_free) calls on_close and frees it. So after
 * http_stream_send fails or http_stream_close returns, s and the owner's ud stay valid
 * for the rest of the current callback; sends to a closed stream return -1 and do
 * nothing, and closing twice is harmless. */
typedef struct http_conn http_stream;
typedef void (*http_stream_fn)(http_stream *s, void *ud);
void http_respond_stream(http_req *r, const char *content_type, size_t max_unsent,
                         http_stream_fn on_open, http_stream_fn on_close, void *ud);
/* Loop thread only. 0, or -1 if the stream was closed (too far behind, or gone). */
int http_stream_send(http_stream *s, const char *data, size_t len);
void http_stream_close(http_stream *s);
/* Request headers stay readable for the stream's life. */
const char *http_stream_header(http_stream *s, const char *name);

const char *http_status_text(int status);

#endif
