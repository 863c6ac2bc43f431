/* images: the image commands that are one API call or a listing: ls (following pages),
 * info, rename, share, rm and restore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "dl.h"
#include "progress.h"

#define LS_PAGE 100
#define LS_MAX_PAGES 100000

static void print_json_line(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    if (s)
        printf("%s\n", s);
    free(s);
}

static const char *image_id(const cJSON *o)
{
    return *dl_jstr(o, "image_id") ? dl_jstr(o, "image_id") : dl_jstr(o, "id");
}

/* The image's state: verifying, active, failed or deleted ("-" from a server without it). */
static const char *image_state(const cJSON *img)
{
    return *dl_jstr(img, "status") ? dl_jstr(img, "status") : "-";
}

static void print_row(const cJSON *img)
{
    char size[24];
    const char *when = dl_jstr(img, "created_at");

    progress_fmt_bytes((double)dl_jnum(img, "size"), size, sizeof size);
    printf("%-36s  %10s  %-20s  %-9s  %s\n", image_id(img), size, *when ? when : "-",
           image_state(img), dl_jstr(img, "name"));
}

/* Prints one page; *count is the images printed so far. */
static void print_page(const struct pix *px, const cJSON *page, long *count)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "images"))
    {
        if (px->cfg->limit > 0 && *count >= px->cfg->limit)
            return;
        if (px->cfg->json)
            print_json_line(it);
        else
            print_row(it);
        (*count)++;
    }
}

int cmd_ls(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX], path[1024], cursor[512] = "";
    long count = 0;
    int rc = PIX_OK;

    for (int page = 0; page < LS_MAX_PAGES && !pix_interrupted; page++) {
        cJSON *o = NULL;
        const char *next;
        char *esc = client_escape(px->api, cursor);
        snprintf(path, sizeof path, "/images?limit=%d%s%s%s", LS_PAGE,
                 px->cfg->deleted ? "&status=deleted" : "", cursor[0] ? "&cursor=" : "",
                 cursor[0] && esc ? esc : "");
        curl_free(esc);
        if ((rc = client_json(px->api, "GET", path, NULL, CLIENT_RETRY, &o, NULL, err)) != PIX_OK)
            break;
        print_page(px, o, &count);
        next = dl_jstr(o, "next_cursor");
        if (!*next || !strcmp(next, cursor) || (px->cfg->limit > 0 && count >= px->cfg->limit)) {
            cJSON_Delete(o);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        cJSON_Delete(o);
    }
    fflush(stdout);
    if (rc != PIX_OK)
        pix_errorf("ls: %s", err);
    return rc == PIX_OK && pix_interrupted ? PIX_EINTR : rc;
}

static void print_variants(const cJSON *a)
{
    const cJSON *it;
    int first = 1;

    printf("%-12s", "variants:");
    cJSON_ArrayForEach(it, a)
    {
        printf("%s%s (%s)", first ? " " : ", ", dl_jstr(it, "variant_type"), dl_jstr(it, "status"));
        first = 0;
    }
    printf("%s\n", first ? " -" : "");
}

/* One metadata field as "key:  value" (arrays other than variants are left out). */
static void print_field(const cJSON *it)
{
    char key[40];

    snprintf(key, sizeof key, "%s:", it->string);
    if (cJSON_IsString(it))
        printf("%-12s %s\n", key, it->valuestring);
    if (cJSON_IsNumber(it))
        printf("%-12s %.0f\n", key, it->valuedouble);
    if (cJSON_IsBool(it))
        printf("%-12s %s\n", key, cJSON_IsTrue(it) ? "true" : "false");
    if (cJSON_IsArray(it) && !strcmp(it->string, "variants"))
        print_variants(it);
    if (cJSON_IsNull(it) && !strcmp(it->string, "sha256"))
        printf("%-12s - (not verified yet)\n", key);
    if (cJSON_IsObject(it) && !strcmp(it->string, "error"))
        printf("%-12s %s: %s\n", key, dl_jstr(it, "code"), dl_jstr(it, "message"));
}

int cmd_info(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX];
    cJSON *meta = NULL;
    const cJSON *it;
    int rc = dl_metadata(px, argv[0], &meta, err);

    if (rc != PIX_OK) {
        pix_errorf("info %s: %s", argv[0], err);
        return rc;
    }
    if (px->cfg->json) {
        print_json_line(meta);
    } else {
        cJSON_ArrayForEach(it, meta)
        {
            print_field(it);
        }
    }
    fflush(stdout);
    cJSON_Delete(meta);
    return PIX_OK;
}

/* One call on /images/{id}[suffix]; prints "ID what" (or the JSON answer). */
static int image_call(struct pix *px, const char *method, const char *id, const char *suffix,
                      cJSON *body, const char *cmd, const char *what)
{
    char err[ERR_MAX], path[256];
    char *esc = client_escape(px->api, id);
    cJSON *o = NULL;
    int rc;

    if (!esc)
        return pix_errorf("out of memory"), PIX_EIO;
    snprintf(path, sizeof path, "/images/%.100s%s", esc, suffix);
    curl_free(esc);
    rc = client_json(px->api, method, path, body, CLIENT_RETRY, &o, NULL, err);
    if (rc != PIX_OK)
        pix_errorf("%s %s: %s", cmd, id, err);
    else if (px->cfg->json && o)
        print_json_line(o);
    else
        printf("%s %s\n", id, what);
    fflush(stdout);
    cJSON_Delete(o);
    cJSON_Delete(body);
    return rc;
}

int cmd_rename(struct pix *px, int argc, char **argv)
{
    cJSON *body = cJSON_CreateObject();

    cJSON_AddStringToObject(body, "name", argv[1]);
    return image_call(px, "PATCH", argv[0], "", body, "rename", "renamed");
}

int cmd_share(struct pix *px, int argc, char **argv)
{
    cJSON *body = cJSON_CreateObject();
    char what[300];

    cJSON_AddStringToObject(body, "user_id", argv[1]);
    snprintf(what, sizeof what, "shared with %.256s", argv[1]);
    return image_call(px, "POST", argv[0], "/shares", body, "share", what);
}

int cmd_rm(struct pix *px, int argc, char **argv)
{
    int worst = PIX_OK;

    for (int i = 0; i < argc && !pix_interrupted; i++)
        worst = pix_worst(worst, image_call(px, "DELETE", argv[i], "", NULL, "rm", "deleted"));
    return worst;
}

int cmd_restore(struct pix *px, int argc, char **argv)
{
    int worst = PIX_OK;

    for (int i = 0; i < argc && !pix_interrupted; i++)
        worst = pix_worst(worst,
                          image_call(px, "POST", argv[i], "/restore", NULL, "restore", "restored"));
    return worst;
}
