/* albums: named groups of images an owner shares with viewers and contributors (the
 * /albums routes). Reading images through an album is images.c's (image_read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "albums.h"
#include "imgcache.h"
#include "json.h"
#include "log.h"

#define ALBUM_CAP_REACHED -2 /* album_member_put */
#define ALBUM_BAD_REF -1     /* album_patch: the cover or an ordered id is no item */

cJSON *album_json(const PGresult *r, int row)
{
    cJSON *o = cJSON_CreateObject();
    const char *cover = pg_val(r, row, 4);

    cJSON_AddStringToObject(o, "album_id", pg_val(r, row, 0));
    cJSON_AddStringToObject(o, "name", pg_val(r, row, 1));
    cJSON_AddStringToObject(o, "owner_id", pg_val(r, row, 2));
    cJSON_AddStringToObject(o, "role", pg_val(r, row, 3) ? pg_val(r, row, 3) : "viewer");
    if (cover && cover[0])
        cJSON_AddStringToObject(o, "cover_image_id", cover);
    else
        cJSON_AddNullToObject(o, "cover_image_id");
    cJSON_AddStringToObject(o, "sort", pg_val(r, row, 5));
    cJSON_AddBoolToObject(o, "show_location", pg_val(r, row, 6)[0] == 't');
    cJSON_AddNumberToObject(o, "item_count", (double)pg_i64(r, row, 7));
    cJSON_AddStringToObject(o, "created_at", pg_val(r, row, 8));
    cJSON_AddStringToObject(o, "updated_at", pg_val(r, row, 9));
    return o;
}

static void not_found(struct api_call *c)
{
    api_error(c, 404, "not_found", "no such album");
}

static void forbidden(struct api_call *c, const char *why)
{
    api_error(c, 403, "forbidden", why);
}

/* Album {id} as the caller sees it (one row of ALBUM_COLS), or NULL answered (404 when it
 * is not theirs and they are no member: its existence stays hidden). */
static PGresult *album_find(struct api_call *c, const char *id)
{
    const char *p[2] = {id, c->user.sub};
    PGresult *r = id ? api_exec(c, "album_get", 2, p) : NULL;

    if (r && PQntuples(r) != 1) {
        PQclear(r);
        return not_found(c), NULL;
    }
    return r;
}

/* The caller's role in album {id} (owner, contributor, viewer) into role[16]; 0, or -1
 * answered (404). */
static int album_role(struct api_call *c, const char *id, char *role)
{
    PGresult *a = id ? album_find(c, id) : NULL;

    if (!a)
        return -1;
    util_strlcpy(role, 16, pg_val(a, 0, 3));
    PQclear(a);
    return 0;
}

/* 0 if the caller owns album {id}; else -1 answered (404 unseen, 403 `why` a member). */
static int album_owned(struct api_call *c, const char *id, const char *why)
{
    char role[16];

    if (album_role(c, id, role) < 0)
        return -1;
    if (strcmp(role, "owner"))
        return forbidden(c, why), -1;
    return 0;
}

static int valid_sort(const char *s)
{
    return !strcmp(s, "taken_at") || !strcmp(s, "position");
}

static void respond_album(struct api_call *c, int status, PGresult *r)
{
    http_respond_json(c->req, status, album_json(r, 0));
    PQclear(r);
}

/* body[key] as a Postgres text[] literal of 1..max image ids into out. 0, or -1 answered
 * (400 not an array of ids, 413 too many). */
static int ids_parse(struct api_call *c, const cJSON *body, const char *key, buf *out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, key), *it;
    long max = c->api->cfg->album_ids_per_request;
    char msg[128];

    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1) {
        snprintf(msg, sizeof msg, "%s must be a non-empty array of image ids", key);
        return api_error(c, 400, "bad_request", msg), -1;
    }
    if (cJSON_GetArraySize(a) > max) {
        snprintf(msg, sizeof msg, "at most %ld ids per request (PIXPLANE_ALBUM_IDS_PER_REQUEST)",
                 max);
        return api_error(c, 413, "too_many_items", msg), -1;
    }
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it) || !util_is_uuid(it->valuestring)) {
            snprintf(msg, sizeof msg, "%s must hold image ids (UUIDs)", key);
            return api_error(c, 400, "bad_request", msg), -1;
        }
        if (buf_printf(out, "%s%s", it == a->child ? "{" : ",", it->valuestring) < 0)
            return api_error(c, 500, "internal", "out of memory"), -1;
    }
    if (buf_puts(out, "}") < 0)
        return api_error(c, 500, "internal", "out of memory"), -1;
    return 0;
}

/* ---- albums ---- */

static void create_run(struct api_call *c, const char *name, const char *sort)
{
    char id[37], cap[24];
    const char *p[5] = {id, c->user.sub, name, sort, cap};
    PGresult *r;

    if (util_uuid(id) < 0)
        return api_error(c, 500, "internal", "cannot make an id");
    snprintf(cap, sizeof cap, "%ld", c->api->cfg->albums_per_user);
    if (!(r = api_exec(c, "album_create", 5, p)))
        return;
    if (PQntuples(r) == 1)
        return respond_album(c, 201, r);
    PQclear(r);
    api_error(c, 409, "album_limit_reached",
              "album limit reached (PIXPLANE_ALBUMS_PER_USER); delete one first");
}

void album_create(struct api_call *c)
{
    cJSON *body = api_body(c);
    const char *name = NULL, *sort = "taken_at", *err = NULL;

    if (!body)
        return;
    if (json_get_str(body, "name", &name, &err) != 1 || !api_valid_name(name, 255))
        api_error(c, 400, "bad_request",
                  "name must be 1-255 bytes of UTF-8 text without control characters");
    else if (json_get_str(body, "sort", &sort, &err) < 0 || !valid_sort(sort))
        api_error(c, 400, "bad_request", "sort must be taken_at or position");
    else
        create_run(c, name, sort);
    cJSON_Delete(body);
}

/* An album item: the image object and who added it. */
static cJSON *item_json(const PGresult *r, int row)
{
    struct api_img m;
    cJSON *o;

    api_img_from_row(r, row, &m);
    o = api_img_json(&m);
    cJSON_AddStringToObject(o, "added_by", pg_val(r, row, PQfnumber(r, "added_by")));
    return o;
}

/* A paged listing: its statement (params: first, cursor key, cursor id, limit + 1; rows
 * with their key as the column cursor_key), the mark of its cursors, the answer's key and
 * how a row is answered. */
struct album_page {
    const char *stmt;
    char mark;
    const char *key;
    cJSON *(*one)(const PGresult *r, int row);
};

static const struct album_page albums_page = {"album_list", 'L', "albums", album_json};
static const struct album_page by_taken = {"album_items_taken_at", 'I', "items", item_json};
static const struct album_page by_position = {"album_items_position", 'P', "items", item_json};

/* Adds {key: [rows], next_cursor} to o for r (limit + 1 rows at most) and answers it. */
static void respond_page(struct api_call *c, cJSON *o, const struct album_page *pg, PGresult *r,
                         long limit)
{
    int n = PQntuples(r) > limit ? (int)limit : PQntuples(r);
    cJSON *a = cJSON_AddArrayToObject(o, pg->key);
    char *cur = NULL;

    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, pg->one(r, i));
    if (PQntuples(r) > limit)
        cur = api_cursor_make(pg->mark, pg_val(r, n - 1, PQfnumber(r, "cursor_key")),
                              pg_val(r, n - 1, 0));
    if (cur)
        cJSON_AddStringToObject(o, "next_cursor", cur);
    else
        cJSON_AddNullToObject(o, "next_cursor");
    free(cur);
    PQclear(r);
    http_respond_json(c->req, 200, o);
}

/* Runs a listing's page after ?cursor=; the rows, or NULL answered. */
static PGresult *page_run(struct api_call *c, const struct album_page *pg, const char *first,
                          long *limit)
{
    char key[64], id[37], lim[24], err[ERR_MAX];
    const char *p[4] = {first, NULL, NULL, lim};
    PGresult *r;

    if ((*limit = api_page_limit(c)) < 0 ||
        api_cursor_parse(c, pg->mark, key, sizeof key, id) < 0 || !api_db(c))
        return NULL;
    snprintf(lim, sizeof lim, "%ld", *limit + 1);
    p[1] = key[0] ? key : NULL;
    p[2] = id[0] ? id : NULL;
    if ((r = pg_exec(c->db, pg->stmt, 4, p, err)))
        return r;
    if (!strncmp(pg_sqlstate(c->db), "22", 2))
        return api_error(c, 400, "bad_cursor", "cursor is not valid for this listing"), NULL;
    return api_db_fail(c, pg->stmt, err), NULL;
}

void album_list(struct api_call *c)
{
    long limit;
    PGresult *r = page_run(c, &albums_page, c->user.sub, &limit);

    if (r)
        respond_page(c, cJSON_CreateObject(), &albums_page, r, limit);
}

void album_get(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    char sort[16] = "";
    const struct album_page *pg;
    PGresult *a, *r;
    long limit;
    cJSON *o;

    if (http_req_query_param(c->req, "sort", sort, sizeof sort) < 0 ||
        (sort[0] && !valid_sort(sort)))
        return api_error(c, 400, "bad_request", "sort must be taken_at or position");
    if (!id || !(a = album_find(c, id)))
        return;
    if (!sort[0])
        util_strlcpy(sort, sizeof sort, pg_val(a, 0, 5));
    o = album_json(a, 0);
    PQclear(a);
    pg = strcmp(sort, "position") ? &by_taken : &by_position;
    if (!(r = page_run(c, pg, id, &limit)))
        return cJSON_Delete(o);
    respond_page(c, o, pg, r, limit);
}

/* ---- the owner's changes ---- */

struct album_patch {
    const char *name, *cover, *sort, *show;
    buf order; /* text[] literal, empty: unchanged */
};

/* cover_image_id: an id, or null to clear ("" in the statement); absent: NULL. */
static int patch_cover(struct api_call *c, const cJSON *body, struct album_patch *pa)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "cover_image_id");

    if (cJSON_IsNull(v))
        pa->cover = "";
    else if (cJSON_IsString(v) && util_is_uuid(v->valuestring))
        pa->cover = v->valuestring;
    else if (v)
        return api_error(c, 400, "bad_request", "cover_image_id must be an image id or null"), -1;
    return 0;
}

static int patch_parse(struct api_call *c, const cJSON *body, struct album_patch *pa)
{
    const char *err = NULL;
    int show = 0, hs;

    if (json_get_str(body, "name", &pa->name, &err) < 0 ||
        (pa->name && !api_valid_name(pa->name, 255)))
        return api_error(c, 400, "bad_request",
                         "name must be 1-255 bytes of UTF-8 text without control characters"),
               -1;
    if (json_get_str(body, "sort", &pa->sort, &err) < 0 || (pa->sort && !valid_sort(pa->sort)))
        return api_error(c, 400, "bad_request", "sort must be taken_at or position"), -1;
    if ((hs = json_get_bool(body, "show_location", &show, &err)) < 0)
        return api_error(c, 400, "bad_request", "show_location must be true or false"), -1;
    pa->show = hs ? (show ? "true" : "false") : NULL;
    if (patch_cover(c, body, pa) < 0)
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(body, "order") &&
        ids_parse(c, body, "order", &pa->order) < 0)
        return -1;
    if (!pa->name && !pa->sort && !pa->show && !pa->cover && !pa->order.len)
        return api_error(c, 400, "bad_request",
                         "give name, cover_image_id, sort, show_location and/or order"),
               -1;
    return 0;
}

static void patch_run(struct api_call *c, const char *id, struct album_patch *pa)
{
    const char *p[7] = {id,
                        c->user.sub,
                        pa->name,
                        pa->cover,
                        pa->sort,
                        pa->show,
                        pa->order.len ? pa->order.data : NULL};
    PGresult *a, *r;
    long rc;

    if (album_owned(c, id, "only the album's owner can change it") < 0)
        return;
    if (!(r = api_exec(c, "album_patch", 7, p)))
        return;
    rc = pg_i64(r, 0, 0);
    PQclear(r);
    if (rc == ALBUM_BAD_REF)
        return api_error(c, 400, "bad_request",
                         "cover_image_id and the ids of order must be items of the album "
                         "(each once)");
    if (rc == 0 || !(a = album_find(c, id)))
        return rc == 0 ? not_found(c) : (void)0;
    respond_album(c, 200, a);
}

void album_patch(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    cJSON *body = id ? api_body(c) : NULL;
    struct album_patch pa = {0};

    if (!body)
        return;
    if (patch_parse(c, body, &pa) == 0)
        patch_run(c, id, &pa);
    buf_free(&pa.order);
    cJSON_Delete(body);
}

/* Access through an album ended: no worker's image cache may serve it any longer. */
static void access_reduced(struct api_call *c)
{
    imgcache_changed(c->api->gens, "*");
}

static void respond_done(struct api_call *c, const char *id, const char *key, const char *val)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "album_id", id);
    cJSON_AddStringToObject(o, key, val);
    http_respond_json(c->req, 200, o);
}

void album_delete(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[2] = {id, c->user.sub};
    PGresult *r;

    if (album_owned(c, id, "only the album's owner can delete it") < 0)
        return;
    if (!(r = api_exec(c, "album_delete", 2, p)))
        return;
    PQclear(r);
    access_reduced(c);
    log_info(c->rid, "album_deleted", "album deleted", "album_id", id);
    respond_done(c, id, "status", "deleted");
}

/* ---- items ---- */

/* 0 if the caller may add to or remove from album {id}; else -1 answered (404 unseen, 403
 * a viewer). */
static int album_writable(struct api_call *c, const char *id)
{
    char role[16];

    if (album_role(c, id, role) < 0)
        return -1;
    if (!strcmp(role, "viewer"))
        return forbidden(c, "viewers cannot change the album's items"), -1;
    return 0;
}

static void respond_count(struct api_call *c, const char *id, const char *key, long long n)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "album_id", id);
    cJSON_AddNumberToObject(o, key, (double)n);
    http_respond_json(c->req, 200, o);
}

/* 400 naming the ids (comma-separated) that are not the caller's active images. */
static void respond_bad_ids(struct api_call *c, const char *csv)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON *ids = cJSON_CreateArray();
    char id[37];

    cJSON_AddStringToObject(e, "code", "invalid_images");
    cJSON_AddStringToObject(e, "message",
                            "only your own active images can be added; nothing was added");
    for (const char *s = csv; *s; s += strcspn(s, ",") + (s[strcspn(s, ",")] == ',')) {
        snprintf(id, sizeof id, "%.*s", (int)strcspn(s, ","), s);
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    }
    cJSON_AddItemToObject(e, "image_ids", ids);
    http_respond_json(c->req, 400, o);
}

static void add_run(struct api_call *c, const char *id, const char *ids)
{
    char cap[24];
    const char *p[4] = {id, c->user.sub, ids, cap};
    PGresult *r;

    snprintf(cap, sizeof cap, "%ld", c->api->cfg->album_items);
    if (!(r = api_exec(c, "album_items_add", 4, p)))
        return;
    if (pg_val(r, 0, 1)[0] != 't')
        not_found(c); /* gone or no longer theirs to add to */
    else if (pg_val(r, 0, 3)[0])
        respond_bad_ids(c, pg_val(r, 0, 3));
    else if (pg_val(r, 0, 2)[0] != 't')
        api_error(c, 409, "album_full", "the album is full (PIXPLANE_ALBUM_ITEMS items)");
    else
        respond_count(c, id, "added", pg_i64(r, 0, 0));
    PQclear(r);
}

static void remove_run(struct api_call *c, const char *id, const char *ids)
{
    const char *p[3] = {id, c->user.sub, ids};
    PGresult *r = api_exec(c, "album_items_remove", 3, p);

    if (!r)
        return;
    if (pg_val(r, 0, 1)[0] != 't')
        not_found(c);
    else if (pg_i64(r, 0, 2) > 0)
        forbidden(c, "contributors remove only the items they added");
    else
        respond_count(c, id, "removed", pg_i64(r, 0, 0));
    if (pg_i64(r, 0, 0) > 0)
        access_reduced(c);
    PQclear(r);
}

/* Both item routes: the ids of the body, then run on an album the caller may change. */
static void items_change(struct api_call *c,
                         void (*change)(struct api_call *, const char *, const char *))
{
    const char *id = api_param_uuid(c, "id");
    cJSON *body = id ? api_body(c) : NULL;
    buf ids = {0};

    if (!body)
        return;
    if (ids_parse(c, body, "image_ids", &ids) == 0 && album_writable(c, id) == 0)
        change(c, id, ids.data);
    buf_free(&ids);
    cJSON_Delete(body);
}

void album_items_add(struct api_call *c)
{
    items_change(c, add_run);
}

void album_items_remove(struct api_call *c)
{
    items_change(c, remove_run);
}

/* ---- members ---- */

static void member_put_run(struct api_call *c, const char *id, const char *user, const char *role)
{
    char cap[24];
    const char *p[5] = {id, c->user.sub, user, role, cap};
    PGresult *r;
    long long rc;
    cJSON *o;

    snprintf(cap, sizeof cap, "%ld", c->api->cfg->album_members);
    if (!(r = api_exec(c, "album_member_put", 5, p)))
        return;
    rc = pg_i64(r, 0, 0);
    PQclear(r);
    if (rc == 0)
        return not_found(c);
    if (rc == ALBUM_CAP_REACHED)
        return api_error(c, 409, "member_limit_reached",
                         "member limit reached (PIXPLANE_ALBUM_MEMBERS per album)");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "album_id", id);
    cJSON_AddStringToObject(o, "user_id", user);
    cJSON_AddStringToObject(o, "role", role);
    http_respond_json(c->req, 200, o);
}

/* Like shares, any well-formed user id is accepted (ids come from the identity provider;
 * refusing unknown ones would tell which accounts exist). */
static void member_put(struct api_call *c, const char *id, const cJSON *body)
{
    const char *user = NULL, *role = NULL, *err = NULL;

    if (json_get_str(body, "user", &user, &err) < 0 ||
        (!user && json_get_str(body, "user_id", &user, &err) < 0) || !user || !auth_valid_sub(user))
        return api_error(c, 400, "bad_request", "user must be a valid user id");
    if (json_get_str(body, "role", &role, &err) != 1 ||
        (strcmp(role, "viewer") && strcmp(role, "contributor")))
        return api_error(c, 400, "bad_request", "role must be viewer or contributor");
    if (!strcmp(user, c->user.sub))
        return api_error(c, 400, "bad_request", "the owner cannot be a member of their album");
    if (album_owned(c, id, "only the album's owner can add members") < 0)
        return;
    member_put_run(c, id, user, role);
}

void album_member_put(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    cJSON *body = id ? api_body(c) : NULL;

    if (!body)
        return;
    member_put(c, id, body);
    cJSON_Delete(body);
}

void album_member_remove(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id"), *user = route_param(&c->params, "user_id");
    const char *p[3] = {id, c->user.sub, user};
    char role[16];
    PGresult *r;

    if (album_role(c, id, role) < 0)
        return;
    if (strcmp(role, "owner") && strcmp(user, c->user.sub))
        return forbidden(c, "members can only remove themselves");
    if (!(r = api_exec(c, "album_member_remove", 3, p)))
        return;
    if (pg_i64(r, 0, 0) == 0) {
        PQclear(r);
        return api_error(c, 404, "not_found", "no such member");
    }
    PQclear(r);
    access_reduced(c);
    log_info(c->rid, "album_member_removed", "album member removed", "album_id", id, "user_id",
             user);
    respond_done(c, id, "status", "removed");
}
