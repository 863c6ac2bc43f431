/* ticket: single-use stream tickets (POST /sync/stream-ticket, GET /sync/stream?ticket=):
 * 256 random bits, stored only as a hash, valid PIXPLANE_STREAM_TICKET_TTL (<= 60 s). */
#ifndef PIX_API_TICKET_H
#define PIX_API_TICKET_H

#include "api.h"

void ticket_issue(struct api_call *c);
/* Spends the ticket: 0 and the claims it was issued for, or -1 with *why "invalid_ticket"
 * (unknown, used or expired), or *why NULL when a response (503, 500) was already sent. */
int ticket_redeem(struct api_call *c, const char *ticket, struct auth_claims *out,
                  const char **why) PIX_WUR;

#endif
