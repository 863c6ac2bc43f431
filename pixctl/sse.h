/* sse: an incremental parser for Server-Sent Events (text/event-stream): bytes in any
 * pieces, events out through a callback, the last event id kept for Last-Event-ID. */
#ifndef PIXCTL_SSE_H
#define PIXCTL_SSE_H

#include <stddef.h>
#include "util.h"

#define SSE_LINE_MAX (64 * 1024)
#define SSE_ID_MAX 256

/* An event: type ("message" when the stream gives none), data (lines joined by '\n', no
 * trailing newline) and the last event id in force. */
typedef void (*sse_event_fn)(void *ud, const char *type, const char *data, const char *id);

struct sse {
    buf line, data;
    char type[64];
    char last_id[SSE_ID_MAX];
    int cr;       /* the previous byte was '\r' (a following '\n' belongs to it) */
    int overlong; /* the current line is being skipped: over SSE_LINE_MAX */
    long events, comments;
    sse_event_fn fn;
    void *ud;
};

void sse_init(struct sse *s, sse_event_fn fn, void *ud);
/* Feeds n bytes. 0, or -1 when out of memory. */
int sse_feed(struct sse *s, const char *p, size_t n) PIX_WUR;
/* Forgets a partial event (after a disconnect); keeps last_id. */
void sse_reset(struct sse *s);
void sse_free(struct sse *s);

#endif
