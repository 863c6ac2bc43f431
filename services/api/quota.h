/* quota: per-user quotas on bytes and images, usage (GET /me/usage), the admin override
 * (PUT /internal/users/{id}/quota) and the 403 quota_exceeded answer of the upload routes. */
#ifndef PIX_QUOTA_H
#define PIX_QUOTA_H

#include "api.h"

/* Usage and effective limits as migrations/013_quota.sql's quota_usage returns them (NULL
 * limit: unlimited), in the order quota_usage_json reads them. */
#define QUOTA_COLS                                                                                 \
    "bytes_used, images, trash_bytes, trash_images, reserved_bytes, reserved_images, max_bytes,"   \
    " max_images"
#define QUOTA_NCOLS 8

/* The quota parameters every admitting statement takes, as text: default byte and image
 * limits (0: unlimited) and the quota.exceeded event interval in seconds. */
struct quota_params {
    char bytes[24], images[24], every[24];
};
void quota_params_of(const struct api_config *cfg, struct quota_params *q);

/* The usage object from row `row`, columns col..col+QUOTA_NCOLS-1. */
cJSON *quota_usage_json(const PGresult *r, int row, int col);
/* The error object of a refusal for `kind` ("bytes" or "images"): code quota_exceeded,
 * message, kind, used (usage and reservations), limit, requested and the usage object. */
cJSON *quota_error_json(const PGresult *r, int row, int col, const char *kind, long long requested);
/* Answers 403 quota_exceeded for `kind`, usage at columns col.. of row (and counts it). */
void quota_refuse(struct api_call *c, const PGresult *r, int row, int col, const char *kind,
                  long long requested);
/* Counts a refusal in pixplane_quota_refusals_total. */
void quota_count(struct api *api, const char *kind);

void quota_usage_get(struct api_call *c);
void quota_put(struct api_call *c);

/* Statements of this module (listed in api_stmts). */
#define QUOTA_STMTS                                                                                \
    {"quota_usage", "SELECT " QUOTA_COLS " FROM quota_usage($1, $2::bigint, $3::bigint)"},         \
    {                                                                                              \
        "quota_set", "WITH u AS (INSERT INTO users (user_id) VALUES ($1) ON CONFLICT DO NOTHING)"  \
                     " INSERT INTO user_usage AS x (user_id, max_bytes, max_images)"               \
                     " VALUES ($1, $2::bigint, $3::bigint) ON CONFLICT (user_id) DO UPDATE"        \
                     " SET max_bytes = excluded.max_bytes, max_images = excluded.max_images,"      \
                     " updated_at = now()"                                                         \
    }

#endif
