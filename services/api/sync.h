/* sync: device delta cursors over the change log (see sync.c for why they never skip a
 * late commit), shared by GET /sync and the SSE stream. */
#ifndef PIX_API_SYNC_H
#define PIX_API_SYNC_H

#include <stdint.h>

#include "api.h"

struct sync_cursor {
    int snapshot;  /* listing current state (a fresh device) rather than following changes */
    int fresh;     /* since=0: the snapshot starts now */
    uint64_t txid; /* change mode: last position; snapshot mode: watermark at its start */
    long long seq;
    char after[37];      /* snapshot mode: last image id listed (albums: last album) */
    int albums;          /* snapshot mode: past the images, listing albums and their items */
    char after_item[37]; /* albums: last item listed (the zero id: the album itself) */
};

char *sync_cursor_encode(const struct sync_cursor *cur);
/* "" or "0" is a fresh start. 0, or -1 if the text is not a cursor we issued. */
int sync_cursor_decode(const char *text, struct sync_cursor *cur) PIX_WUR;
/* A change-mode cursor at the current position (nothing before it will be delivered). */
int sync_cursor_now(struct api_call *c, struct sync_cursor *cur, char *err) PIX_WUR;
/* The next page after cur (advanced in place) as {added, updated, deleted, albums:
 * {updated, deleted}, album_items, cursor, has_more}. 0, 1 if cur is older than the retention
 * (410), -1 with err. */
int sync_delta(struct api_call *c, struct sync_cursor *cur, int limit, cJSON **out, char *err);
/* After an empty delta: 1 if the change log has entries past cur that the horizon still
 * holds back (a transaction that began before them is in flight, in any database of the
 * cluster), 0 if not, -1 with err. */
int sync_held(struct api_call *c, const struct sync_cursor *cur, char *err) PIX_WUR;

#endif
