/* links: public links to an image or an album for people without an account (issue 19):
 * the owner's routes (create, list, revoke) and the anonymous GET /s/{token} and unlock. */
#ifndef PIX_API_LINKS_H
#define PIX_API_LINKS_H

#include "api.h"

void link_create_image(struct api_call *c);
void link_create_album(struct api_call *c);
void link_list(struct api_call *c);
void link_revoke(struct api_call *c);
void link_open(struct api_call *c);   /* GET /s/{token}, no auth */
void link_unlock(struct api_call *c); /* POST /s/{token}/unlock, no auth */

#endif
