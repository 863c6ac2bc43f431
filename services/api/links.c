/* links: public links: an owner makes one for an image or an album (its token is shown once,
 * in the url), lists and revokes them; anyone holding the token reads the item, no account. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "linkauth.h"
#include "links.h"
#include "log.h"

#define DEFAULT_TTL (7 * 86400.0) /* expires_in when the request gives none */
#define PASSWORD_MAX 1024
#define MAX_VIEWS_MAX 1000000000LL
#define TICKET_HEADER "X-Link-Ticket"
#define LINK_CAP_REACHED -2 /* link_create */

/* What POST /images/{id}/links or /albums/{id}/links asks for. */
struct link_req {
    const char *kind;     /* "image" or "album" */
    const char *id;       /* the image's or album's id */
    char ttl[24];         /* seconds to expiry, "" never */
    const char *password; /* NULL: none */
    int allow_download;
    long long max_views; /* 0: no limit */
};

/* A live link found by its token (link_resolve). */
struct link_hit {
    char id[37], image[37], album[37], expires[32];
    char pwhash[LINK_PWHASH_MAX]; /* "" no password */
    int download;
    double wait; /* resolved for an unlock: 0 an attempt taken, else seconds until one is */
};

/* A listing's position: ?limit= and ?cursor=. */
struct page_pos {
    long limit;
    char key[64], id[37];
};

/* A listing: its statement (params: first, cursor key, cursor id, limit + 1; rows with
 * their key as column cursor_key), its cursors' mark, the answer's key, and a row's object
 * (NULL: a URL could not be signed). */
struct link_page {
    const char *stmt;
    char mark;
    const char *key;
    cJSON *(*one)(struct api_call *c, const PGresult *r, int row, int download);
};

static void link_gone(struct api_call *c)
{
    api_error(c, 404, "link_not_found", "no such link (unknown, expired, used up or revoked)");
}

static void bad_request(struct api_call *c, const char *msg)
{
    api_error(c, 400, "bad_request", msg);
}

/* key: the string, or null when val is empty. */
static void add_opt(cJSON *o, const char *key, const char *val)
{
    if (val[0])
        cJSON_AddStringToObject(o, key, val);
    else
        cJSON_AddNullToObject(o, key);
}

/* ---- the owner's routes ---- */

/* expires_in: absent, the default (7 days, or link-max-ttl if shorter); null or 0, never
 * (only if link-allow-forever); else 1..link-max-ttl seconds. 0, or -1 answered. */
static int parse_expiry(struct api_call *c, const cJSON *body, struct link_req *lr)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "expires_in");
    long long max = (long long)c->api->cfg->link_max_ttl, secs = 0;
    const char *err = NULL;
    char msg[128];

    if (!v) {
        snprintf(lr->ttl, sizeof lr->ttl, "%lld", max < DEFAULT_TTL ? max : (long long)DEFAULT_TTL);
        return 0;
    }
    if (!cJSON_IsNull(v) && json_get_i64(body, "expires_in", &secs, &err) != 1)
        secs = -1;
    if (secs == 0 && !c->api->cfg->link_allow_forever)
        return api_error(c, 400, "forever_not_allowed",
                         "links must expire: give expires_in in seconds "
                         "(PIXPLANE_LINK_ALLOW_FOREVER is off)"),
               -1;
    if (secs < 0 || secs > max) {
        snprintf(msg, sizeof msg, "expires_in must be 1 to %lld seconds (null or 0: never)", max);
        return bad_request(c, msg), -1;
    }
    lr->ttl[0] = '\0';
    if (secs > 0)
        snprintf(lr->ttl, sizeof lr->ttl, "%lld", secs);
    return 0;
}

/* A password: 1..PASSWORD_MAX bytes. */
static int valid_password(const char *pw)
{
    return pw[0] && strlen(pw) <= PASSWORD_MAX;
}

static int parse_request(struct api_call *c, const cJSON *body, struct link_req *lr)
{
    const char *err = NULL;
    int hv;

    if (parse_expiry(c, body, lr) < 0)
        return -1;
    if (json_get_str(body, "password", &lr->password, &err) < 0 ||
        (lr->password && !valid_password(lr->password)))
        return bad_request(c, "password must be a string of 1 to 1024 bytes"), -1;
    lr->allow_download = 1;
    if (json_get_bool(body, "allow_download", &lr->allow_download, &err) < 0)
        return bad_request(c, "allow_download must be true or false"), -1;
    hv = json_get_i64(body, "max_views", &lr->max_views, &err);
    if (hv < 0 || (hv == 1 && (lr->max_views < 1 || lr->max_views > MAX_VIEWS_MAX)))
        return bad_request(c, "max_views must be a whole number from 1 to 1000000000, or null"), -1;
    if (hv == 0)
        lr->max_views = 0;
    return 0;
}

/* A Host header fit to put in a URL: 1..255 of letters, digits, '.', '-', ':', '[', ']'. */
static int valid_host(const char *h)
{
    size_t n = strlen(h);

    return n > 0 && n <= 255 &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
}

/* <public-url>/s/<token>; without public-url, http:// and the request's Host (else the
 * listen address). 0 or -1. */
static int link_url(struct api_call *c, const char *token, buf *out)
{
    const char *base = c->api->cfg->public_url, *host = http_req_header(c->req, "Host");
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n > 0)
        return buf_printf(out, "%.*s/s/%s", (int)n, base, token);
    if (!host || !valid_host(host))
        host = c->api->cfg->listen;
    return buf_printf(out, "http://%s/s/%s", host, token);
}

static void respond_created(struct api_call *c, const struct link_req *lr, const char *id,
                            const char *token, const char *expires)
{
    char key[16];
    buf url = {0};
    cJSON *o;

    if (link_url(c, token, &url) < 0) {
        buf_free(&url);
        return api_error(c, 500, "internal", "out of memory");
    }
    snprintf(key, sizeof key, "%s_id", lr->kind);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "link_id", id);
    cJSON_AddStringToObject(o, "url", url.data);
    cJSON_AddStringToObject(o, "type", lr->kind);
    cJSON_AddStringToObject(o, key, lr->id);
    add_opt(o, "expires_at", expires);
    cJSON_AddBoolToObject(o, "allow_download", lr->allow_download);
    cJSON_AddBoolToObject(o, "has_password", lr->password != NULL);
    if (lr->max_views)
        cJSON_AddNumberToObject(o, "max_views", (double)lr->max_views);
    else
        cJSON_AddNullToObject(o, "max_views");
    log_info(c->rid, "link_created", "public link created", "link_id", id, key, lr->id);
    http_respond_json(c->req, 201, o);
    buf_free(&url);
}

/* Nothing was made: 404 if the caller cannot see the item, 403 if it is another's they
 * see (shared with them, an album they are a member of), 409 their image is not active. */
static void not_owned(struct api_call *c, const struct link_req *lr)
{
    int image = !strcmp(lr->kind, "image");
    char ttl[24];
    const char *p[3] = {lr->id, c->user.sub, ttl};
    PGresult *r;

    snprintf(ttl, sizeof ttl, "%.0f", c->api->cfg->retention);
    if (!(r = api_exec(c, image ? "image_read" : "album_get", image ? 3 : 2, p)))
        return;
    if (PQntuples(r) != 1)
        api_error(c, 404, "not_found", image ? "no such image" : "no such album");
    else if (!strcmp(pg_val(r, 0, image ? 1 : 2), c->user.sub))
        api_error(c, 409, "image_not_active", "only an active image can be shared by link");
    else
        api_error(c, 403, "forbidden", "only the owner can share it by link");
    PQclear(r);
}

/* scrypt (creating a password link, checking a password) keeps a request worker busy for
 * ~0.1-0.3 s: at most a quarter of the workers (at least one) run it at once, so neither
 * one user's creates nor anonymous unlocks from many addresses can occupy them all. */
#define SCRYPT_MAX(workers) ((workers) / 4 > 0 ? (workers) / 4 : 1)

/* Takes a scrypt slot: 1, or 0 answered 429 `code` (all taken). scrypt_end gives it back. */
static int scrypt_begin(struct api_call *c, const char *code)
{
    int *n = &c->api->unlocks;

    if (__atomic_add_fetch(n, 1, __ATOMIC_ACQ_REL) <= SCRYPT_MAX(c->api->cfg->workers))
        return 1;
    __atomic_sub_fetch(n, 1, __ATOMIC_ACQ_REL);
    api_retry_after(c, 1, code, "too many passwords being hashed or checked; retry shortly");
    return 0;
}

static void scrypt_end(struct api_call *c)
{
    __atomic_sub_fetch(&c->api->unlocks, 1, __ATOMIC_ACQ_REL);
}

static void create_run(struct api_call *c, const struct link_req *lr)
{
    char id[37], token[LINK_TOKEN_LEN + 1], hex[65], pw[LINK_PWHASH_MAX], cap[24], views[24];
    char err[ERR_MAX];
    const char *p[10] = {id,
                         c->user.sub,
                         lr->kind,
                         lr->id,
                         hex,
                         lr->ttl,
                         lr->password ? pw : NULL,
                         lr->allow_download ? "true" : "false",
                         lr->max_views ? views : NULL,
                         cap};
    PGresult *r;
    long long rc;

    if (util_uuid(id) < 0 || linkauth_token_new(token) < 0 || linkauth_token_hash(token, hex) < 0)
        return api_error(c, 500, "internal", "cannot make a link token");
    if (lr->password) {
        if (!scrypt_begin(c, "password_busy"))
            return;
        rc = linkauth_password_hash(lr->password, strlen(lr->password), pw, err);
        scrypt_end(c);
        if (rc < 0) {
            log_error(c->rid, "link_password_hash", err);
            return api_error(c, 500, "internal", "cannot hash the password");
        }
    }
    snprintf(cap, sizeof cap, "%ld", c->api->cfg->links_per_user);
    snprintf(views, sizeof views, "%lld", lr->max_views);
    if (!(r = api_exec(c, "link_create", 10, p)))
        return;
    rc = pg_i64(r, 0, 0);
    if (rc == 1)
        respond_created(c, lr, id, token, pg_val(r, 0, 1));
    else if (rc == LINK_CAP_REACHED)
        api_error(c, 409, "link_limit_reached",
                  "link limit reached (PIXPLANE_LINKS_PER_USER); revoke one first");
    else
        not_owned(c, lr);
    PQclear(r);
}

static void create(struct api_call *c, const char *kind)
{
    struct link_req lr = {.kind = kind};
    cJSON *body;

    if (!(lr.id = api_param_uuid(c, "id")) || !(body = api_body(c)))
        return;
    if (parse_request(c, body, &lr) == 0)
        create_run(c, &lr);
    cJSON_Delete(body);
}

void link_create_image(struct api_call *c)
{
    create(c, "image");
}

void link_create_album(struct api_call *c)
{
    create(c, "album");
}

/* ---- listings ---- */

/* ?limit= and ?cursor= of a listing with mark into pos. 0, or -1 answered. */
static int page_pos(struct api_call *c, char mark, struct page_pos *pos)
{
    if ((pos->limit = api_page_limit(c)) < 0)
        return -1;
    return api_cursor_parse(c, mark, pos->key, sizeof pos->key, pos->id);
}

/* Runs pg's page after pos and answers o with {key: [rows], next_cursor} added. */
static void page_answer(struct api_call *c, cJSON *o, const struct link_page *pg, const char *first,
                        const struct page_pos *pos, int download)
{
    char lim[24], err[ERR_MAX], *cur = NULL;
    const char *p[4] = {first, pos->key[0] ? pos->key : NULL, pos->id[0] ? pos->id : NULL, lim};
    cJSON *a = cJSON_AddArrayToObject(o, pg->key), *one;
    PGresult *r;
    int n;

    snprintf(lim, sizeof lim, "%ld", pos->limit + 1);
    if (!api_db(c) || !(r = pg_exec(c->db, pg->stmt, 4, p, err))) {
        if (c->db && !strncmp(pg_sqlstate(c->db), "22", 2))
            api_error(c, 400, "bad_cursor", "cursor is not valid for this listing");
        else if (c->db)
            api_db_fail(c, pg->stmt, err);
        return cJSON_Delete(o);
    }
    n = PQntuples(r) > pos->limit ? (int)pos->limit : PQntuples(r);
    for (int i = 0; i < n && (one = pg->one(c, r, i, download)); i++)
        cJSON_AddItemToArray(a, one);
    if (cJSON_GetArraySize(a) == n && PQntuples(r) > n)
        cur = api_cursor_make(pg->mark, pg_val(r, n - 1, PQfnumber(r, "cursor_key")),
                              pg_val(r, n - 1, 0));
    add_opt(o, "next_cursor", cur ? cur : "");
    if (cJSON_GetArraySize(a) == n) {
        http_respond_json(c->req, 200, o);
    } else {
        cJSON_Delete(o);
        api_error(c, 500, "internal", "cannot sign the URLs");
    }
    free(cur);
    PQclear(r);
}

/* A link as its owner lists it (columns of link_list); never its token. */
static cJSON *link_json(struct api_call *c, const PGresult *r, int row, int download)
{
    cJSON *o = cJSON_CreateObject();
    const char *type = pg_val(r, row, 1), *max = pg_val(r, row, 6);

    cJSON_AddStringToObject(o, "link_id", pg_val(r, row, 0));
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, !strcmp(type, "image") ? "image_id" : "album_id", pg_val(r, row, 2));
    add_opt(o, "expires_at", pg_val(r, row, 3));
    cJSON_AddBoolToObject(o, "has_password", pg_val(r, row, 4)[0] == 't');
    cJSON_AddBoolToObject(o, "allow_download", pg_val(r, row, 5)[0] == 't');
    if (max[0])
        cJSON_AddNumberToObject(o, "max_views", (double)atoll(max));
    else
        cJSON_AddNullToObject(o, "max_views");
    cJSON_AddNumberToObject(o, "views", (double)pg_i64(r, row, 7));
    cJSON_AddStringToObject(o, "created_at", pg_val(r, row, 8));
    cJSON_AddStringToObject(o, "status", pg_val(r, row, 9));
    return o;
}

static const struct link_page links_page = {"link_list", 'K', "links", link_json};

void link_list(struct api_call *c)
{
    struct page_pos pos;

    if (page_pos(c, links_page.mark, &pos) == 0)
        page_answer(c, cJSON_CreateObject(), &links_page, c->user.sub, &pos, 0);
}

void link_revoke(struct api_call *c)
{
    const char *id = api_param_uuid(c, "id");
    const char *p[2] = {id, c->user.sub};
    PGresult *r = id ? api_exec(c, "link_revoke", 2, p) : NULL;

    if (!r)
        return;
    if (atol(PQcmdTuples(r)) == 0) {
        api_error(c, 404, "not_found", "no such link");
    } else {
        log_info(c->rid, "link_revoked", "public link revoked", "link_id", id);
        http_respond(c->req, 204, NULL, NULL, 0);
    }
    PQclear(r);
}

/* ---- anyone with the token ---- */

/* Answers 429 code with Retry-After: retry seconds. */
static void refuse(struct api_call *c, double retry, const char *code)
{
    api_count(c->api, "pixplane_ratelimited_total", "", 1);
    api_retry_after(c, retry, code, "too many requests or password attempts; retry later");
}

/* Takes a token of who's bucket in rl (scope "a:" a client address, "addr:" the general
 * per-address limit), in this instance's memory. 1, or 0 answered 429 code. */
static int take(struct api_call *c, ratelimit *rl, const char *scope, const char *who,
                const char *code)
{
    char key[96];
    double retry = 0;

    snprintf(key, sizeof key, "%s%s", scope, who);
    if (ratelimit_take(rl, key, util_now_mono(), &retry))
        return 1;
    refuse(c, retry, code);
    return 0;
}

/* One password attempt of a client address (PIXPLANE_LINK_UNLOCK_ATTEMPTS), counted per
 * instance; a link's attempts are counted in PostgreSQL for all of them (resolve). */
static int attempt_allowed(struct api_call *c)
{
    return take(c, c->api->link_rl, "a:", http_req_peer(c->req), "too_many_attempts");
}

/* A presigned GET of key as o[field] (attach: as an attachment named so). 0, or -1
 * logged. */
static int add_signed(struct api_call *c, cJSON *o, const char *field, const char *key,
                      const char *mime, const char *attach)
{
    buf url = {0}, disp = {0};
    char err[ERR_MAX] = "out of memory";
    long ttl = (long)c->api->cfg->download_url_ttl;
    int rc = -1;

    if ((attach && api_disposition(attach, &disp) < 0) ||
        s3_presign_get(c->t->s3, key, mime, attach ? disp.data : NULL, time(NULL), ttl, &url, err) <
            0) {
        log_error(c->rid, "presign_failed", err);
        goto fail;
    }
    cJSON_AddStringToObject(o, field, url.data);
    rc = 0;
fail:
    buf_free(&url);
    buf_free(&disp);
    return rc;
}

/* The ready variants of a row (a JSON array of [type, path, mime]) with signed URLs; only
 * the preview without download (the issue: "only the preview variant is served"). */
static int add_variants(struct api_call *c, cJSON *o, const char *json, int download)
{
    cJSON *vs = cJSON_Parse(json), *v, *a = cJSON_AddArrayToObject(o, "variants");
    int rc = vs ? 0 : -1;

    cJSON_ArrayForEach(v, vs)
    {
        const char *type = cJSON_GetStringValue(cJSON_GetArrayItem(v, 0));
        const char *path = cJSON_GetStringValue(cJSON_GetArrayItem(v, 1));
        const char *mime = cJSON_GetStringValue(cJSON_GetArrayItem(v, 2));
        cJSON *one;
        if (!type || !path || (!download && strcmp(type, "preview")))
            continue;
        one = cJSON_CreateObject();
        cJSON_AddItemToArray(a, one);
        cJSON_AddStringToObject(one, "variant_type", type);
        add_opt(one, "mime_type", mime ? mime : "");
        if ((rc = add_signed(c, one, "url", path, mime, NULL)) < 0)
            break;
    }
    cJSON_Delete(vs);
    return rc;
}

/* An image as a link shows it (columns of LINK_ITEM_COLS): name, size, type, capture time,
 * its variants' signed URLs, and the original's when downloads are allowed. Never its
 * owner or location. NULL if a URL could not be signed. */
static cJSON *item_json(struct api_call *c, const PGresult *r, int row, int download)
{
    cJSON *o = cJSON_CreateObject();
    const char *name = pg_val(r, row, 1), *mime = pg_val(r, row, 3);

    cJSON_AddStringToObject(o, "image_id", pg_val(r, row, 0));
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "size", (double)pg_i64(r, row, 2));
    cJSON_AddStringToObject(o, "mime_type", mime);
    cJSON_AddStringToObject(o, "taken_at", pg_val(r, row, 4));
    if (add_variants(c, o, pg_val(r, row, 6), download) < 0 ||
        (download && add_signed(c, o, "original_url", pg_val(r, row, 5), mime, name) < 0)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const struct link_page items_page = {"link_album_items", 'S', "items", item_json};

/* The live link of the route's {token} into h; attempt: also take one password attempt of
 * the link's budget, shared by every instance (h->wait). 0, or -1 answered (404
 * link_not_found). */
static int resolve(struct api_call *c, struct link_hit *h, int attempt)
{
    const char *token = route_param(&c->params, "token");
    char hex[65], burst[24], every[32];
    const char *p[3] = {hex, burst, every};
    PGresult *r;
    int found;

    if (!token || linkauth_token_hash(token, hex) < 0)
        return link_gone(c), -1;
    snprintf(burst, sizeof burst, "%ld", c->api->cfg->link_unlock_attempts);
    snprintf(every, sizeof every, "%.6f", c->api->cfg->link_unlock_refill);
    if (!(r = api_exec(c, attempt ? "link_unlock_resolve" : "link_resolve", attempt ? 3 : 1, p)))
        return -1;
    found = PQntuples(r) == 1; /* found by the hash itself: an index lookup, no compare */
    if (found) {
        util_strlcpy(h->id, sizeof h->id, pg_val(r, 0, 0));
        util_strlcpy(h->pwhash, sizeof h->pwhash, pg_val(r, 0, 1));
        h->download = pg_val(r, 0, 2)[0] == 't';
        util_strlcpy(h->image, sizeof h->image, pg_val(r, 0, 3));
        util_strlcpy(h->album, sizeof h->album, pg_val(r, 0, 4));
        util_strlcpy(h->expires, sizeof h->expires, pg_val(r, 0, 5));
        h->wait = attempt ? atof(pg_val(r, 0, 6)) : 0;
    }
    PQclear(r);
    if (!found)
        link_gone(c);
    return found ? 0 : -1;
}

/* No password, or a valid ticket for h (X-Link-Ticket, or ?ticket=). */
static int unlocked(struct api_call *c, const struct link_hit *h)
{
    const char *t = http_req_header(c->req, TICKET_HEADER);
    char q[LINK_TICKET_MAX];

    if (!h->pwhash[0])
        return 1;
    if (!t && http_req_query_param(c->req, "ticket", q, sizeof q) == 1)
        t = q;
    return t && linkauth_ticket_valid(c->api->jwt_key, c->api->jwt_keylen, t, h->id, time(NULL));
}

/* Counts the view and answers {..., image}. */
static void open_image(struct api_call *c, const struct link_hit *h, cJSON *o)
{
    const char *p[1] = {h->id};
    PGresult *r = api_exec(c, "link_view_image", 1, p);
    cJSON *item = r && PQntuples(r) == 1 ? item_json(c, r, 0, h->download) : NULL;

    if (item) {
        cJSON_AddItemToObject(o, "image", item);
        http_respond_json(c->req, 200, o);
    } else {
        cJSON_Delete(o);
        if (r && PQntuples(r) != 1)
            link_gone(c);
        else if (r)
            api_error(c, 500, "internal", "cannot sign the URLs");
    }
    PQclear(r);
}

/* Counts the view and answers {..., album, items, next_cursor}: a page of its owner's
 * active items, newest capture first. */
static void open_album(struct api_call *c, const struct link_hit *h, cJSON *o)
{
    const char *p[1] = {h->id};
    struct page_pos pos;
    PGresult *r;
    cJSON *a;

    if (page_pos(c, items_page.mark, &pos) < 0 || !(r = api_exec(c, "link_view_album", 1, p)))
        return cJSON_Delete(o);
    if (PQntuples(r) != 1) {
        PQclear(r);
        cJSON_Delete(o);
        return link_gone(c);
    }
    a = cJSON_AddObjectToObject(o, "album");
    cJSON_AddStringToObject(a, "album_id", pg_val(r, 0, 0));
    cJSON_AddStringToObject(a, "name", pg_val(r, 0, 1));
    cJSON_AddNumberToObject(a, "item_count", (double)pg_i64(r, 0, 2));
    PQclear(r);
    page_answer(c, o, &items_page, h->album, &pos, h->download);
}

void link_open(struct api_call *c)
{
    struct link_hit h;
    cJSON *o;

    /* anonymous: limited per client address at the users' rate (PIXPLANE_RATE_LIMIT) */
    if (!take(c, c->api->rl, "addr:", http_req_peer(c->req), "rate_limited") ||
        resolve(c, &h, 0) < 0)
        return;
    if (!unlocked(c, &h))
        return api_error(c, 401, "password_required",
                         "the link has a password: POST /s/{token}/unlock gives a ticket to "
                         "send as X-Link-Ticket or ?ticket= (missing, expired or not this "
                         "link's)");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "link_id", h.id);
    cJSON_AddStringToObject(o, "type", h.image[0] ? "image" : "album");
    add_opt(o, "expires_at", h.expires);
    cJSON_AddBoolToObject(o, "allow_download", h.download);
    cJSON_AddNumberToObject(o, "url_expires_in", c->api->cfg->download_url_ttl);
    if (h.image[0])
        open_image(c, &h, o);
    else
        open_album(c, &h, o);
}

static void respond_ticket(struct api_call *c, const struct link_hit *h)
{
    double ttl = c->api->cfg->link_ticket_ttl;
    time_t exp = time(NULL) + (time_t)ttl;
    char ticket[LINK_TICKET_MAX], at[21];
    cJSON *o;

    if (linkauth_ticket_make(c->api->jwt_key, c->api->jwt_keylen, h->id, exp, ticket) < 0)
        return api_error(c, 500, "internal", "cannot make a ticket");
    util_rfc3339(exp, at);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ticket", ticket);
    cJSON_AddStringToObject(o, "expires_at", at);
    cJSON_AddNumberToObject(o, "expires_in", (double)(long long)ttl);
    http_respond_json(c->req, 200, o);
}

static void unlock_run(struct api_call *c, const char *pw)
{
    struct link_hit h;
    int ok;

    if (resolve(c, &h, 1) < 0)
        return;
    if (!h.pwhash[0])
        return api_error(c, 409, "no_password", "the link has no password: GET it directly");
    if (h.wait > 0)
        return refuse(c, h.wait, "too_many_attempts");
    pg_release(c->db); /* scrypt takes a while: not with a pooled connection held */
    c->db = NULL;
    if (!scrypt_begin(c, "unlock_busy"))
        return;
    ok = linkauth_password_verify(pw, strlen(pw), h.pwhash);
    scrypt_end(c);
    if (ok < 0) {
        log_error(c->rid, "link_password_verify", "unreadable hash or scrypt failed", "link_id",
                  h.id);
        return api_error(c, 500, "internal", "cannot check the password");
    }
    if (!ok) {
        log_info(c->rid, "link_wrong_password", "wrong password for a public link", "link_id",
                 h.id);
        return api_error(c, 403, "wrong_password", "wrong password");
    }
    respond_ticket(c, &h);
}

void link_unlock(struct api_call *c)
{
    cJSON *body = api_body(c);
    const char *pw = NULL, *err = NULL;

    if (!body)
        return;
    if (json_get_str(body, "password", &pw, &err) != 1 || !valid_password(pw))
        bad_request(c, "password must be a string of 1 to 1024 bytes");
    else if (attempt_allowed(c))
        unlock_run(c, pw);
    cJSON_Delete(body);
}
