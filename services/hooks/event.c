/* event: reads the envelope of an integration event (pix_event's version-1 object) for the
 * fields the intake files it by; the rest of the payload is stored and sent as it came. */
#include <stdio.h>
#include <string.h>

#include "hooks.h"
#include "json.h"

int hooks_event_parse(const char *json, size_t len, struct hooks_event *ev, char *err)
{
    cJSON *o = json_parse_versioned(json, len, 1, err);
    int rc = -1;

    memset(ev, 0, sizeof *ev);
    if (!o)
        return -1;
    if (json_copy_str(o, "id", ev->id, sizeof ev->id, err) < 0 ||
        json_copy_str(o, "type", ev->type, sizeof ev->type, err) < 0 ||
        json_copy_str(o, "occurred_at", ev->occurred_at, sizeof ev->occurred_at, err) < 0)
        goto fail;
    if (!util_is_uuid(ev->id) || !ev->type[0] || !util_rfc3339_valid(ev->occurred_at)) {
        err_set(err, "event: id not a UUID, type empty or occurred_at not an RFC 3339 time");
        goto fail;
    }
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "data"))) {
        err_set(err, "event: data is not an object");
        goto fail;
    }
    rc = 0;
fail:
    cJSON_Delete(o);
    return rc;
}
