/* stream: the SSE hub behind GET /sync/stream (loop-thread registry of streams, a
 * LISTEN thread for change notifications, deltas computed on worker threads). */
#ifndef PIX_API_STREAM_H
#define PIX_API_STREAM_H

#include "api.h"

/* Without api->loop (tests): the caps and the registry only; no listener, no timers. */
struct stream_hub *stream_hub_new(struct api *api);
/* Closes every stream (drain); clients reconnect with Last-Event-ID. Loop thread. */
void stream_hub_close_all(struct stream_hub *h);
long stream_hub_count(const struct stream_hub *h);
/* NULL-safe; loop thread; after http_server_free, which runs every stream's on_close. */
void stream_hub_free(struct stream_hub *h);

#endif
