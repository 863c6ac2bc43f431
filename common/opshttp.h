/* opshttp: a small HTTP server on a thread of its own serving /healthz, /readyz and
 * /metrics, for services whose main loop is not an HTTP server (worker, reconciler). */
#ifndef PIX_OPSHTTP_H
#define PIX_OPSHTTP_H

#include "util.h"

typedef struct opshttp opshttp;
typedef int (*opshttp_render_fn)(buf *out, void *ud); /* Prometheus text; 0 or -1 */
typedef int (*opshttp_ready_fn)(void *ud);            /* 1 ready, 0 not */

/* Listens on "host:port" (port 0: any). ready may be NULL (always ready). NULL with err. */
opshttp *opshttp_start(const char *listen, opshttp_render_fn render, opshttp_ready_fn ready,
                       void *ud, char *err);
int opshttp_port(const opshttp *h);
void opshttp_stop(opshttp *h); /* NULL-safe; answers requests in flight first */

#endif
