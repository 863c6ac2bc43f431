/* event: reads the envelope of an integration event (pix_event's version-1 object) for the
 * fields the intake files it by; the rest of the payload is stored and sent as it came. */
#include <stdio.h>
#include <string.h>

#include "hooks.h"
#include "json.h"

/* A required string field of at most outlen-1 bytes. */
static int field(const cJSON *o, const char *key, char *out, size_t outlen, char *err)
{
    const char *s = NULL, *e = NULL;

    if (json_get_str(o, key, &s, &e) != 1 || !*s || strlen(s) >= outlen) {
        err_set(err, "event: field %s missing, empty, not a string or too long", key);
        return -1;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

int hooks_event_parse(const char *json, size_t len, struct hooks_event *ev, char *err)
{
    const char *e = NULL;
    long long version = 0;
    cJSON *o = json_parse_object(json, len, &e);
    int rc = -1;

    memset(ev, 0, sizeof *ev);
    if (!o) {
        err_set(err, "event: %s", e);
        return -1;
    }
    if (json_get_i64(o, "version", &version, &e) != 1 || version != 1) {
        err_set(err, "event: unsupported version");
        goto fail;
    }
    if (field(o, "id", ev->id, sizeof ev->id, err) < 0 ||
        field(o, "type", ev->type, sizeof ev->type, err) < 0 ||
        field(o, "occurred_at", ev->occurred_at, sizeof ev->occurred_at, err) < 0)
        goto fail;
    if (!util_is_uuid(ev->id) || !util_rfc3339_valid(ev->occurred_at)) {
        err_set(err, "event: id is not a UUID or occurred_at not an RFC 3339 time");
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
