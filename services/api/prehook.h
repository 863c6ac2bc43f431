/* prehook: the optional blocking pre-upload hook (tusd's pre-create): an HTTP POST to
 * PIXPLANE_PRE_UPLOAD_HOOK_URL before an upload session is made, which may refuse it. */
#ifndef PIX_PREHOOK_H
#define PIX_PREHOOK_H

#include "api.h"
#include "upload.h"

#define PREHOOK_REASON_MAX 256

/* What the hook said. */
enum prehook_verdict {
    PREHOOK_ALLOW,  /* 2xx, or the hook is off */
    PREHOOK_REFUSE, /* 4xx: reason holds its {reason} (or a default) */
    PREHOOK_FAILED  /* timeout, connection error, 5xx, other status: err says which */
};

/* The hook's settings: URL empty or http(s)://..., fail "open" or "closed". 0 or -1 with err. */
int prehook_config_check(const struct api_config *cfg, char *err) PIX_WUR;

/* One request's use of the hook: every call it makes shares one pre-upload-hook-timeout (a
 * batch of 500 items holds its worker that long at most, not 500 times), and once a call
 * failed the rest are not made. Zero-initialised. */
struct prehook_run {
    double until; /* monotonic deadline, set by the first call */
    int failed;
};

/* Calls the hook (on the calling thread, with its kept curl handle t->hook, bounded by
 * secs) with the request as JSON {user_id, file_name, size, mime_type,
 * content_hash, file_modified_at, idempotency_key, request_id}; absent optional fields are
 * left out. */
enum prehook_verdict prehook_call(struct api_tctx *t, const char *user, const struct upload_req *q,
                                  const char *idem, const char *rid, double secs,
                                  char reason[PREHOOK_REASON_MAX], char *err);

/* For the upload routes: 0 allowed (hook off, 2xx, or failed with fail=open), -1 refused with
 * e set (403 upload_refused, e->msg pointing at reason; or 503 hook_unavailable). A call past
 * run's time budget, or after one of run's calls failed, counts as failed without being made.
 * Logs and counts each call made. */
int prehook_admit(struct api_call *c, const struct upload_req *q, const char *idem,
                  char reason[PREHOOK_REASON_MAX], struct prehook_run *run,
                  struct upload_err *e) PIX_WUR;

#endif
