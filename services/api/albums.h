/* albums: named groups of images an owner shares with viewers and contributors; the
 * /albums routes, and the album object sync.c also hands to devices. */
#ifndef PIX_API_ALBUMS_H
#define PIX_API_ALBUMS_H

#include "api.h"

/* An album as viewer (a SQL parameter) sees it, albums aliased a: id, name, owner, role,
 * cover ('' none), sort, show_location, active item count, created, updated. */
#define ALBUM_COLS(viewer)                                                                         \
    "a.album_id, a.name, a.owner_id, CASE WHEN a.owner_id = " viewer " THEN 'owner'"               \
    " ELSE (SELECT m.role FROM album_members m WHERE m.album_id = a.album_id"                      \
    " AND m.user_id = " viewer ") END, coalesce(a.cover_image_id::text, ''), a.sort,"              \
    " a.show_location, (SELECT count(*) FROM album_items ai JOIN images i"                         \
    " ON i.image_id = ai.image_id WHERE ai.album_id = a.album_id AND i.status = "                  \
    "'active'), " API_IMAGE_TS("a.created_at") ", " API_IMAGE_TS("a.updated_at")
/* The album a is viewer's (owner) or viewer is one of its members. */
#define ALBUM_VISIBLE(viewer)                                                                      \
    " (a.owner_id = " viewer " OR EXISTS (SELECT 1 FROM album_members m"                           \
    " WHERE m.album_id = a.album_id AND m.user_id = " viewer "))"

/* The album object of row `row` (columns of ALBUM_COLS from column 0). */
cJSON *album_json(const PGresult *r, int row);

void album_create(struct api_call *c);
void album_list(struct api_call *c);
void album_get(struct api_call *c);
void album_patch(struct api_call *c);
void album_delete(struct api_call *c);
void album_items_add(struct api_call *c);
void album_items_remove(struct api_call *c);
void album_member_put(struct api_call *c);
void album_member_remove(struct api_call *c);

#endif
