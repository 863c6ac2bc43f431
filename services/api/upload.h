/* upload: what POST /uploads and POST /uploads/batch share: request checks, the dedup
 * challenge offered for a declared sha256, the created session's JSON, refills. */
#ifndef PIX_API_UPLOAD_H
#define PIX_API_UPLOAD_H

#include "api.h"
#include "finalize.h"

/* One session request ({file_name, file_size, mime_type, sha256?}); strings point into the
 * parsed body. */
struct upload_req {
    const char *name, *mime, *sha256, *sha256_in;
    const char *modified; /* file_modified_at (RFC 3339) or NULL */
    long long size;
    char mime_lc[128], sha_lc[65];
};

/* Why a request is refused: HTTP status, error code, message (static strings). */
struct upload_err {
    int status;
    const char *code, *msg;
};

/* A fresh challenge for a declared sha256 (nonce, ranges as JSON) and a random answer for
 * when it stays a decoy; nonce "" when none is offered. Free ranges with buf_free. */
struct upload_offer {
    char nonce[33], answer[65];
    buf ranges;
};

int upload_req_check(const struct api_config *cfg, const cJSON *body, struct upload_req *q,
                     struct upload_err *e) PIX_WUR;
/* Made for every declared sha256, whether or not the content exists, so the work is the
 * same (common/pop.h). */
int upload_offer_make(const struct api_config *cfg, const struct upload_req *q,
                      struct upload_offer *f, struct upload_err *e) PIX_WUR;
int upload_idem_ok(const char *key);
cJSON *upload_created_json(const struct upload_row *s);
/* Refills a stored content's dry challenge bank in the background. */
void upload_queue_refill(struct api_call *c, const char *hash);

#endif
