/* quota: GET /me/usage, the admin's PUT /internal/users/{id}/quota, and the quota_exceeded
 * answer; the counters and admission live in SQL (migrations/013_quota.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "quota.h"

static const char *const usage_names[QUOTA_NCOLS] = {
    "bytes_used",     "images",          "trash_bytes", "trash_images",
    "reserved_bytes", "reserved_images", "max_bytes",   "max_images"};

void quota_params_of(const struct api_config *cfg, struct quota_params *q)
{
    snprintf(q->bytes, sizeof q->bytes, "%lld", cfg->quota_bytes);
    snprintf(q->images, sizeof q->images, "%ld", cfg->quota_images);
    snprintf(q->every, sizeof q->every, "%.3f", cfg->quota_event_interval);
}

/* A column as a JSON number, or null when NULL (an unlimited limit). */
static cJSON *num_or_null(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return cJSON_CreateNull();
    return cJSON_CreateNumber((double)pg_i64(r, row, col));
}

cJSON *quota_usage_json(const PGresult *r, int row, int col)
{
    cJSON *o = cJSON_CreateObject();

    for (int i = 0; i < QUOTA_NCOLS; i++)
        cJSON_AddItemToObject(o, usage_names[i], num_or_null(r, row, col + i));
    return o;
}

cJSON *quota_error_json(const PGresult *r, int row, int col, const char *kind, long long requested)
{
    int bytes = !strcmp(kind, "bytes");
    /* bytes: used + reserved against max_bytes; images: the same for images */
    long long used = pg_i64(r, row, col + (bytes ? 0 : 1)) + pg_i64(r, row, col + (bytes ? 4 : 5));
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "code", "quota_exceeded");
    cJSON_AddStringToObject(e, "message",
                            bytes ? "the upload does not fit in the byte quota; delete and purge "
                                    "some images (trash counts until purged)"
                                  : "the upload does not fit in the image quota; delete and "
                                    "purge some images (trash counts until purged)");
    cJSON_AddStringToObject(e, "kind", kind);
    cJSON_AddNumberToObject(e, "used", (double)used);
    cJSON_AddItemToObject(e, "limit", num_or_null(r, row, col + (bytes ? 6 : 7)));
    cJSON_AddNumberToObject(e, "requested", (double)(bytes ? requested : 1));
    cJSON_AddItemToObject(e, "usage", quota_usage_json(r, row, col));
    return e;
}

void quota_count(struct api *api, const char *kind)
{
    char labels[48];

    snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
    api_count(api, "pixplane_quota_refusals_total", labels, 1);
}

void quota_refuse(struct api_call *c, const PGresult *r, int row, int col, const char *kind,
                  long long requested)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, "error", quota_error_json(r, row, col, kind, requested));
    quota_count(c->api, kind);
    log_info(c->rid, "quota_exceeded", "upload refused by a quota", "user_id", c->user.sub, "kind",
             kind);
    http_respond_json(c->req, 403, o);
}

/* Answers 200 with user's usage; -1 answered an error. */
static int respond_usage(struct api_call *c, const char *user)
{
    struct quota_params q;
    const char *p[3] = {user, q.bytes, q.images};
    char err[ERR_MAX];
    PGresult *r;

    quota_params_of(c->api->cfg, &q);
    if (!api_db(c))
        return -1;
    if (!(r = pg_exec(c->db, "quota_usage", 3, p, err)))
        return api_db_fail(c, "quota_usage", err), -1;
    http_respond_json(c->req, 200, quota_usage_json(r, 0, 0));
    PQclear(r);
    return 0;
}

void quota_usage_get(struct api_call *c)
{
    (void)respond_usage(c, c->user.sub); /* a failure is answered there */
}

/* A user id as users.user_id accepts it (1-128 of A-Z a-z 0-9 . _ @ -). */
/* A limit field: absent or null "" (the default), else a whole number 0..2^53-1 as text.
 * 0, or -1 (msg set). */
static int limit_field(const cJSON *body, const char *name, char out[24], const char **msg)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    long long n;

    out[0] = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if ((n = json_count(v)) < 0) {
        *msg = "max_bytes and max_images must be null or whole numbers from 0 to 2^53-1 "
               "(0: unlimited)";
        return -1;
    }
    snprintf(out, 24, "%lld", n);
    return 0;
}

/* Stores the override; -1 answered. */
static int store_limits(struct api_call *c, const char *user, const cJSON *body)
{
    char bytes[24], images[24], err[ERR_MAX];
    const char *p[3] = {user, NULL, NULL};
    const char *msg = NULL;
    PGresult *r;

    if (limit_field(body, "max_bytes", bytes, &msg) < 0 ||
        limit_field(body, "max_images", images, &msg) < 0)
        return api_error(c, 400, "bad_request", msg), -1;
    p[1] = bytes[0] ? bytes : NULL;
    p[2] = images[0] ? images : NULL;
    if (!api_db(c))
        return -1;
    if (!(r = pg_exec(c->db, "quota_set", 3, p, err)))
        return api_db_fail(c, "quota_set", err), -1;
    PQclear(r);
    log_info(c->rid, "quota_set", "quota override stored", "user_id", user, "max_bytes",
             bytes[0] ? bytes : "default", "max_images", images[0] ? images : "default");
    return 0;
}

void quota_put(struct api_call *c)
{
    const char *user = route_param(&c->params, "id");
    cJSON *body;

    if (!auth_valid_sub(user))
        return api_error(c, 400, "bad_request",
                         "a user id is 1-128 characters of A-Z, a-z, 0-9, '.', '_', '@', '-'");
    if (!(body = api_body(c)))
        return;
    if (store_limits(c, user, body) == 0 && respond_usage(c, user) < 0)
        log_warn(c->rid, "quota_usage_failed", "stored, usage not read", "user_id", user);
    cJSON_Delete(body);
}
