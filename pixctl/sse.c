/* sse: Server-Sent Events parsing per the HTML standard's event-stream rules: CR, LF or
 * CRLF line ends, comments, data/event/id/retry fields, dispatch on a blank line. */
#include <stdio.h>
#include <string.h>

#include "sse.h"

void sse_init(struct sse *s, sse_event_fn fn, void *ud)
{
    memset(s, 0, sizeof *s);
    s->fn = fn, s->ud = ud;
}

static void dispatch(struct sse *s)
{
    if (s->data.len == 0) { /* nothing to deliver; the event type resets too */
        s->type[0] = '\0';
        return;
    }
    if (s->data.data[s->data.len - 1] == '\n')
        s->data.data[--s->data.len] = '\0';
    s->events++;
    if (s->fn)
        s->fn(s->ud, s->type[0] ? s->type : "message", s->data.data, s->last_id);
    buf_reset(&s->data);
    s->type[0] = '\0';
}

static int field(struct sse *s, const char *name, const char *value)
{
    if (!strcmp(name, "data"))
        return buf_puts(&s->data, value) < 0 || buf_puts(&s->data, "\n") < 0 ? -1 : 0;
    if (!strcmp(name, "event"))
        snprintf(s->type, sizeof s->type, "%s", value);
    else if (!strcmp(name, "id") && strlen(value) < sizeof s->last_id)
        memcpy(s->last_id, value, strlen(value) + 1);
    return 0; /* retry and unknown fields are ignored */
}

static int line(struct sse *s)
{
    char *l = s->line.data ? s->line.data : (char *)"", *colon, *value;

    if (s->line.len == 0)
        return dispatch(s), 0;
    if (l[0] == ':') {
        s->comments++;
        return 0;
    }
    colon = strchr(l, ':');
    value = colon ? colon + 1 : (char *)"";
    if (colon)
        *colon = '\0';
    if (*value == ' ')
        value++;
    return field(s, l, value);
}

static int end_line(struct sse *s)
{
    int rc = s->overlong ? 0 : line(s);

    s->overlong = 0;
    buf_reset(&s->line);
    return rc;
}

int sse_feed(struct sse *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int was_cr = s->cr;

        s->cr = c == '\r';
        if (c == '\n' && was_cr)
            continue;
        if (c == '\r' || c == '\n') {
            if (end_line(s) < 0)
                return -1;
            continue;
        }
        if (s->overlong)
            continue;
        if (s->line.len >= SSE_LINE_MAX) {
            s->overlong = 1;
            continue;
        }
        if (buf_append(&s->line, &c, 1) < 0)
            return -1;
    }
    return 0;
}

void sse_reset(struct sse *s)
{
    buf_reset(&s->line);
    buf_reset(&s->data);
    s->type[0] = '\0';
    s->cr = s->overlong = 0;
}

void sse_free(struct sse *s)
{
    buf_free(&s->line);
    buf_free(&s->data);
}
