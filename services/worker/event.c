/* event: parses the image.uploaded event (version 1) the API writes to the outbox; anything
 * else is reported so the caller can dead-letter it instead of retrying forever. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "worker.h"

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int event_parse(const char *json, size_t len, struct upload_event *ev, char *err)
{
    const char *e = NULL, *type = NULL;
    cJSON *o = json_parse_versioned(json, len, 1, err);
    int rc = -1;

    memset(ev, 0, sizeof *ev);
    if (!o)
        return -1;
    if (json_get_str(o, "type", &type, &e) != 1 || strcmp(type, "image.uploaded") != 0) {
        err_set(err, "event: not an image.uploaded event");
        goto out;
    }
    if (json_copy_str(o, "content_hash", ev->content_hash, sizeof ev->content_hash, err) < 0 ||
        json_copy_str(o, "image_id", ev->image_id, sizeof ev->image_id, err) < 0 ||
        json_copy_str(o, "owner_id", ev->owner_id, sizeof ev->owner_id, err) < 0)
        goto out;
    if (!is_hex64(ev->content_hash)) {
        err_set(err, "event: content_hash is not 64 lower-case hex digits");
        goto out;
    }
    /* informative only: the blob row is the authority on size and storage path */
    if (json_get_str(o, "mime_type", &type, &e) == 1)
        snprintf(ev->mime_type, sizeof ev->mime_type, "%s", type);
    if (json_get_i64(o, "size", &ev->size, &e) != 1)
        ev->size = -1;
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}
