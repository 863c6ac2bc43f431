/* album: the album subcommands: create, ls (your albums, or one album's images page by
 * page), add and rm images, delete, share and unshare, as text or JSON lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "album.h"
#include "client.h"
#include "dl.h"
#include "images.h"
#include "resource.h"

#define IDS_PER_CALL 100 /* image ids per POST/DELETE /albums/{id}/items */

typedef int (*album_fn)(struct pix *px, int argc, char **argv);

static int album_create(struct pix *px, int argc, char **argv);
static int album_ls(struct pix *px, int argc, char **argv);
static int album_add(struct pix *px, int argc, char **argv);
static int album_rm(struct pix *px, int argc, char **argv);
static int album_delete(struct pix *px, int argc, char **argv);
static int album_share(struct pix *px, int argc, char **argv);
static int album_unshare(struct pix *px, int argc, char **argv);

/* The subcommands; the counts are the arguments after the subcommand (max -1: any). */
static const struct {
    const char *name;
    album_fn fn;
    int min, max;
    const char *usage;
} subs[] = {
    {"create", album_create, 1, 1, "album create NAME"},
    {"ls", album_ls, 0, 1, "album ls [ALBUM_ID]"},
    {"add", album_add, 2, -1, "album add ALBUM_ID IMAGE_ID..."},
    {"rm", album_rm, 2, -1, "album rm ALBUM_ID IMAGE_ID... (or rm --album ALBUM_ID)"},
    {"delete", album_delete, 1, 1, "album delete ALBUM_ID"},
    {"share", album_share, 2, 2, "album share ALBUM_ID USER [--role viewer|contributor]"},
    {"unshare", album_unshare, 2, 2, "album unshare ALBUM_ID USER"},
};

static int find_sub(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(subs); i++)
        if (!strcmp(subs[i].name, name))
            return (int)i;
    return -1;
}

int album_check_args(int argc, char **argv, int whole, char *err)
{
    int k = argc > 0 ? find_sub(argv[0]) : -1, n = argc - 1;

    if (k < 0) {
        err_set(err,
                "album: unknown subcommand '%.32s' (create, ls, add, rm, delete, share, "
                "unshare; see pixctl album --help)",
                argc > 0 ? argv[0] : "");
        return -1;
    }
    if (whole && strcmp(subs[k].name, "rm")) {
        err_set(err, "--album goes with album rm only");
        return -1;
    }
    if (whole ? n == 1 : n >= subs[k].min && (subs[k].max < 0 || n <= subs[k].max))
        return 0;
    err_set(err, "usage: pixctl %s", whole ? "album rm --album ALBUM_ID" : subs[k].usage);
    return -1;
}

void album_format_row(const cJSON *a, char *out, size_t n)
{
    const char *when = dl_jstr(a, "updated_at");

    snprintf(out, n, "%-36s  %-11s  %6lld  %-24s  %s", dl_jstr(a, "album_id"),
             *dl_jstr(a, "role") ? dl_jstr(a, "role") : "-",
             dl_jnum(a, "item_count") < 0 ? 0 : dl_jnum(a, "item_count"), *when ? when : "-",
             dl_jstr(a, "name"));
}

int cmd_album(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX];

    if (album_check_args(argc, argv, px->cfg->album, err) < 0) {
        pix_errorf("%s", err);
        return PIX_EUSAGE;
    }
    if (px->cfg->album)
        return album_delete(px, argc - 1, argv + 1);
    return subs[find_sub(argv[0])].fn(px, argc - 1, argv + 1);
}

/* ---- create, delete ---- */

static int album_create(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX];
    cJSON *body = cJSON_CreateObject(), *o = NULL;
    int rc;

    cJSON_AddStringToObject(body, "name", argv[0]);
    /* not retried: a retry after a lost answer would make a second album */
    rc = client_json(px->api, "POST", "/albums", body, 0, &o, NULL, err);
    cJSON_Delete(body);
    if (rc != PIX_OK)
        pix_errorf("album create: %s", err);
    else if (px->cfg->json)
        res_json_line(o);
    else
        printf("%s\n", dl_jstr(o, "album_id"));
    fflush(stdout);
    cJSON_Delete(o);
    return rc;
}

static int album_delete(struct pix *px, int argc, char **argv)
{
    struct res_req rq = {"DELETE", "/albums",    argv[0],        "",
                         NULL,     CLIENT_RETRY, "album delete", "deleted"};

    return res_call(px, &rq, NULL);
}

/* ---- ls ---- */

static void album_row(const struct pix *px, const cJSON *a, void *ud)
{
    char row[1024];

    if (px->cfg->json) {
        res_json_line(a);
        return;
    }
    album_format_row(a, row, sizeof row);
    printf("%s\n", row);
}

/* The album itself, before its images: a JSON line (without items), or a note. */
static void album_head(const struct pix *px, const cJSON *page, void *ud)
{
    cJSON *a;

    if (!px->cfg->json) {
        pix_note(px, "album %s \"%s\": %lld images, owner %s, your role %s, sorted by %s",
                 dl_jstr(page, "album_id"), dl_jstr(page, "name"), dl_jnum(page, "item_count"),
                 dl_jstr(page, "owner_id"), dl_jstr(page, "role"), dl_jstr(page, "sort"));
        return;
    }
    if (!(a = cJSON_Duplicate(page, 1)))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(a, "items");
    cJSON_DeleteItemFromObjectCaseSensitive(a, "next_cursor");
    res_json_line(a);
    cJSON_Delete(a);
}

static void item_row(const struct pix *px, const cJSON *img, void *ud)
{
    images_print(px, img, 1);
}

/* "/albums/ID[?sort=...]" from --sort: PIX_OK or PIX_EUSAGE with err. */
static int items_path(struct pix *px, const char *id, char **path, char *err)
{
    const char *s = px->cfg->sort ? px->cfg->sort : "";
    const char *api = !strcmp(s, "taken") ? "taken_at" : !strcmp(s, "position") ? "position" : NULL;
    char *esc;
    int n;

    if (*s && !api)
        return err_set(err, "--sort must be taken or position"), PIX_EUSAGE;
    if (!(esc = client_escape(px->api, id)))
        return err_set(err, "out of memory"), PIX_EIO;
    n = asprintf(path, "/albums/%s%s%s", esc, api ? "?sort=" : "", api ? api : "");
    curl_free(esc);
    if (n < 0)
        return *path = NULL, err_set(err, "out of memory"), PIX_EIO;
    return PIX_OK;
}

static int album_ls(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX], *path = NULL;
    struct res_pages p = {.path = "/albums", .key = "albums", .row = album_row};
    int rc = PIX_OK;

    if (argc == 1 && (rc = items_path(px, argv[0], &path, err)) == PIX_OK) {
        p.path = path;
        p.key = "items";
        p.row = item_row;
        p.first = album_head;
    }
    if (rc == PIX_OK)
        rc = res_pages_run(px, &p, err);
    if (rc != PIX_OK && rc != PIX_EINTR)
        pix_errorf("album ls%s%s: %s", argc ? " " : "", argc ? argv[0] : "", err);
    free(path);
    return rc;
}

/* ---- items ---- */

/* POST (add) or DELETE (rm) /albums/{id}/items for ids[0..n), IDS_PER_CALL at a time; the
 * answers' counts (key: "added" or "removed") summed into *total. */
static int items_call(struct pix *px, const char *method, const char *key, const char *album,
                      char **ids, int n, long long *total)
{
    int rc = PIX_OK;

    for (int at = 0; at < n && rc == PIX_OK && !pix_interrupted; at += IDS_PER_CALL) {
        cJSON *body = cJSON_CreateObject(), *o = NULL;
        cJSON *arr = cJSON_AddArrayToObject(body, "image_ids");
        struct res_req rq = {method, "/albums", album, "/items", body, CLIENT_RETRY, NULL, NULL};
        for (int i = at; i < n && i < at + IDS_PER_CALL; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(ids[i]));
        rq.cmd = !strcmp(key, "added") ? "album add" : "album rm";
        if ((rc = res_call(px, &rq, &o)) == PIX_OK && px->cfg->json)
            res_json_line(o);
        if (rc == PIX_OK && dl_jnum(o, key) > 0)
            *total += dl_jnum(o, key);
        cJSON_Delete(o);
    }
    return rc == PIX_OK && pix_interrupted ? PIX_EINTR : rc;
}

static int items_change(struct pix *px, const char *method, const char *key, int argc, char **argv)
{
    long long total = 0;
    int rc = items_call(px, method, key, argv[0], argv + 1, argc - 1, &total);

    if (rc == PIX_OK && !px->cfg->json)
        printf("%s %s %lld of %d images\n", argv[0], key, total, argc - 1);
    fflush(stdout);
    return rc;
}

static int album_add(struct pix *px, int argc, char **argv)
{
    return items_change(px, "POST", "added", argc, argv);
}

static int album_rm(struct pix *px, int argc, char **argv)
{
    return items_change(px, "DELETE", "removed", argc, argv);
}

/* ---- members ---- */

static int album_share(struct pix *px, int argc, char **argv)
{
    const char *role = px->cfg->role && *px->cfg->role ? px->cfg->role : "viewer";
    cJSON *body;
    char what[400];
    struct res_req rq = {"POST", "/albums",    argv[0],       "/members",
                         NULL,   CLIENT_RETRY, "album share", what};

    if (strcmp(role, "viewer") && strcmp(role, "contributor")) {
        pix_errorf("--role must be viewer or contributor");
        return PIX_EUSAGE;
    }
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "user", argv[1]);
    cJSON_AddStringToObject(body, "role", role);
    rq.body = body;
    snprintf(what, sizeof what, "shared with %.256s (%s)", argv[1], role);
    return res_call(px, &rq, NULL);
}

static int album_unshare(struct pix *px, int argc, char **argv)
{
    char suffix[400], what[300];
    char *esc = client_escape(px->api, argv[1]);
    struct res_req rq = {"DELETE", "/albums",    argv[0],         suffix,
                         NULL,     CLIENT_RETRY, "album unshare", what};

    if (!esc)
        return pix_errorf("out of memory"), PIX_EIO;
    snprintf(suffix, sizeof suffix, "/members/%.300s", esc);
    curl_free(esc);
    snprintf(what, sizeof what, "unshared with %.256s", argv[1]);
    return res_call(px, &rq, NULL);
}
