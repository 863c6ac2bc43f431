/* fuzz_worker_event: the worker's image.uploaded event parser (services/worker/event.c) on raw
 * Kafka message bytes: accepted events are well-formed and survive a round trip. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "worker.h"

static void check_event(const struct upload_event *ev)
{
    CHECK(terminated(ev->image_id, sizeof ev->image_id) &&
              terminated(ev->owner_id, sizeof ev->owner_id) &&
              terminated(ev->content_hash, sizeof ev->content_hash) &&
              terminated(ev->mime_type, sizeof ev->mime_type),
          "fields are NUL-terminated in their arrays");
    CHECK(strlen(ev->content_hash) == 64 && strspn(ev->content_hash, "0123456789abcdef") == 64,
          "content_hash is 64 lower-case hex digits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct upload_event ev, again;
    char err[ERR_MAX] = "", *text;
    cJSON *o;

    /* the message value is not NUL-terminated: parse from an exact-size copy so ASan sees
     * any read past its end */
    char *msg = malloc(size ? size : 1);
    if (!msg)
        abort();
    memcpy(msg, data, size);
    if (event_parse(msg, size, &ev, err) < 0) {
        CHECK(err[0] != '\0', "a rejected event says why (for the dead-letter record)");
        free(msg);
        return 0;
    }
    free(msg);
    check_event(&ev);

    /* what was taken is what the API's outbox would have written: it parses back the same */
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "type", "image.uploaded");
    cJSON_AddStringToObject(o, "image_id", ev.image_id);
    cJSON_AddStringToObject(o, "owner_id", ev.owner_id);
    cJSON_AddStringToObject(o, "content_hash", ev.content_hash);
    if (ev.mime_type[0])
        cJSON_AddStringToObject(o, "mime_type", ev.mime_type);
    if (ev.size != -1)
        cJSON_AddNumberToObject(o, "size", (double)ev.size);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        abort();
    CHECK(event_parse(text, strlen(text), &again, err) == 0, "the event's own form parses");
    CHECK(!strcmp(ev.image_id, again.image_id) && !strcmp(ev.owner_id, again.owner_id) &&
              !strcmp(ev.content_hash, again.content_hash) &&
              !strcmp(ev.mime_type, again.mime_type) && ev.size == again.size,
          "round trip");
    free(text);
    return 0;
}
