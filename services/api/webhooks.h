/* webhooks: the admin API of webhook endpoints (/internal/webhooks): registration behind
 * the SSRF guard, failure figures, test pings, replays and the delivery listing. */
#ifndef PIX_API_WEBHOOKS_H
#define PIX_API_WEBHOOKS_H

#include "api.h"

#define WEBHOOK_URL_MAX 2048    /* bytes of an endpoint's url */
#define WEBHOOK_DESC_MAX 1024   /* bytes of its description */
#define WEBHOOK_EVENTS_MAX 16   /* entries of its events[] */
#define WEBHOOK_SECRET_BYTES 32 /* random bytes of a generated secret */
/* "whsec_" + base64 of 64 bytes (the largest secret accepted) + NUL */
#define WEBHOOK_SECRET_MAX (6 + 88 + 1)

/* An endpoint with its failure figures, endpoints aliased e; the secret is column
 * WEBHOOK_NCOLS. */
#define WEBHOOK_COLS                                                                                                                          \
    "e.endpoint_id, e.url, array_to_json(e.events)::text, e.description, "                                                                    \
    "e.enabled, " API_IMAGE_TS_MS("e.created_at") ", " API_IMAGE_TS_MS(                                                                       \
        "e.updated_at") ", e.failures,"                                                                                                       \
                        " e.last_error, " API_IMAGE_TS_MS("e.last_failure_at") ","                                                            \
                                                                               " " API_IMAGE_TS_MS("e.last_success_at") ", " API_IMAGE_TS_MS( \
                                                                                   "e.disabled_"                                              \
                                                                                   "at") ", "                                                 \
                                                                                         "e."                                                 \
                                                                                         "disable"                                            \
                                                                                         "d_"                                                 \
                                                                                         "reason,"                                            \
                                                                                         " ("                                                 \
                                                                                         "SELECT "                                            \
                                                                                         "count(*"                                            \
                                                                                         ") FROM "                                            \
                                                                                         "webhook"                                            \
                                                                                         "_delive"                                            \
                                                                                         "ries d "                                            \
                                                                                         "WHERE "                                             \
                                                                                         "d."                                                 \
                                                                                         "endpoin"                                            \
                                                                                         "t_id = "                                            \
                                                                                         "e."                                                 \
                                                                                         "endpoin"                                            \
                                                                                         "t_id"                                               \
                                                                                         " AND "                                              \
                                                                                         "d."                                                 \
                                                                                         "status "                                            \
                                                                                         "= "                                                 \
                                                                                         "'pendin"                                            \
                                                                                         "g'), "                                              \
                                                                                         "e."                                                 \
                                                                                         "secret"
#define WEBHOOK_NCOLS 14

/* 1 if type is an event an endpoint may subscribe to: one of issue 19's types, or "*"
 * (every type, present and future; webhook.ping is never subscribed, it goes to the
 * endpoint pinged). */
int webhook_event_known(const char *type);
/* events[] of a request as a text[] literal into out: 1..WEBHOOK_EVENTS_MAX known types,
 * each once. 0, or -1 with msg (a static string). */
int webhook_events_literal(const cJSON *events, buf *out, const char **msg) PIX_WUR;
/* 1 if s is a Standard Webhooks secret: "whsec_" + padded standard base64 of 24..64
 * bytes. */
int webhook_secret_valid(const char *s);
/* A new secret ("whsec_" + base64 of WEBHOOK_SECRET_BYTES CSPRNG bytes) into out. 0/-1. */
int webhook_secret_new(char out[WEBHOOK_SECRET_MAX]) PIX_WUR;

void webhook_create(struct api_call *c);
void webhook_list(struct api_call *c);
void webhook_get(struct api_call *c);
void webhook_patch(struct api_call *c);
void webhook_delete(struct api_call *c);
void webhook_ping(struct api_call *c);
void webhook_replay(struct api_call *c);
void webhook_deliveries(struct api_call *c);

#endif
