/* link: `pixctl link SUBCOMMAND ...`: public links to an image or an album for people
 * without an account (create, ls, rm); the part unit tests reach: the expiry argument. */
#ifndef PIXCTL_LINK_H
#define PIXCTL_LINK_H

#include <cjson/cJSON.h>
#include "pixctl.h"

/* --expires-in as the request's expires_in into body: "" nothing (the server's default,
 * 7 days), "never" null, else a duration (90s, 30m, 12h, 7d) in whole seconds (>= 1).
 * 0, or -1 when it is none of these. */
int link_expiry(const char *s, cJSON *body) PIX_WUR;

#endif
