/* cors: Cross-Origin Resource Sharing for the API: the origins allowed to call it from a
 * browser (PIXPLANE_CORS_ORIGINS), their answer headers, and preflight answers. */
#ifndef PIX_API_CORS_H
#define PIX_API_CORS_H

#include "http.h"
#include "util.h"

typedef struct cors cors;

/* origins: comma-separated "scheme://host[:port]" (no path, no trailing slash); "" allows
 * none (same-origin only). NULL with err for a malformed entry. */
cors *cors_new(const char *origins, char *err);
void cors_free(cors *c); /* NULL-safe */
int cors_allowed(const cors *c, const char *origin);
/* On a request from an allowed origin, the headers that let its page read the answer.
 * Every answer varies with Origin once any origin is allowed. */
int cors_headers(const cors *c, http_req *r) PIX_WUR;
/* Answers an OPTIONS request (after cors_headers) for a path whose methods are `allow`:
 * 204 with Allow, plus the preflight grant when the origin is allowed and asks for one of
 * them. */
void cors_preflight(const cors *c, http_req *r, const char *allow);

#endif
