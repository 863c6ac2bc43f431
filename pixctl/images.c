/* images: the image commands that are one API call or a listing: ls (following pages),
 * info, rename, share, rm and restore; ls by upload or capture time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "dl.h"
#include "images.h"
#include "progress.h"
#include "resource.h"

/* --sort values of ls: the API's sort keys (the default is left out of the query). */
static const struct {
    const char *flag, *api;
} sorts[] = {{"uploaded", "created_at"}, {"taken", "taken_at"}};

static const char *image_id(const cJSON *o)
{
    return *dl_jstr(o, "image_id") ? dl_jstr(o, "image_id") : dl_jstr(o, "id");
}

/* The image's state: verifying, active, failed or deleted ("-" from a server without it). */
static const char *image_state(const cJSON *img)
{
    return *dl_jstr(img, "status") ? dl_jstr(img, "status") : "-";
}

/* Where taken_at came from: the image's capture object, if the listing carries it. */
static const char *time_source(const cJSON *img)
{
    const char *s = dl_jstr(cJSON_GetObjectItemCaseSensitive(img, "capture"), "time_source");

    if (!*s)
        s = dl_jstr(img, "time_source");
    return *s ? s : "-";
}

void images_format_row(const cJSON *img, int taken, char *out, size_t n)
{
    char size[24], when[48];
    const char *t = dl_jstr(img, taken ? "taken_at" : "created_at");

    progress_fmt_bytes((double)dl_jnum(img, "size"), size, sizeof size);
    if (taken)
        snprintf(when, sizeof when, "%-24s  %-13s", *t ? t : "-", time_source(img));
    else
        snprintf(when, sizeof when, "%-20s", *t ? t : "-");
    snprintf(out, n, "%-36s  %10s  %s  %-9s  %s", image_id(img), size, when, image_state(img),
             dl_jstr(img, "name"));
}

void images_print(const struct pix *px, const cJSON *img, int taken)
{
    char row[1024];

    if (px->cfg->json) {
        res_json_line(img);
        return;
    }
    images_format_row(img, taken, row, sizeof row);
    printf("%s\n", row);
}

static void ls_row(const struct pix *px, const cJSON *img, void *ud)
{
    images_print(px, img, *(const int *)ud);
}

/* Appends "&name=value" (value URL-escaped) to the query in q when value is set. */
static int add_param(struct pix *px, char *q, size_t n, const char *name, const char *value)
{
    char *esc;
    size_t len = strlen(q);

    if (!value || !*value)
        return 0;
    if (!(esc = client_escape(px->api, value)))
        return -1;
    snprintf(q + len, n - len, "%c%s=%s", strchr(q, '?') ? '&' : '?', name, esc);
    curl_free(esc);
    return strlen(q) + 1 < n ? 0 : -1;
}

/* The listing's query from the options: PIX_OK, or PIX_EUSAGE with err. */
static int ls_query(struct pix *px, char *q, size_t n, int *taken, char *err)
{
    const struct pixctl_config *c = px->cfg;
    const char *sort = c->sort && *c->sort ? c->sort : "uploaded";
    size_t i = 0;

    while (i < ARRAY_LEN(sorts) && strcmp(sorts[i].flag, sort))
        i++;
    if (i == ARRAY_LEN(sorts))
        return err_set(err, "--sort must be uploaded or taken"), PIX_EUSAGE;
    if (c->order && *c->order && strcmp(c->order, "desc") && strcmp(c->order, "asc"))
        return err_set(err, "--order must be desc or asc"), PIX_EUSAGE;
    if ((c->taken_after && *c->taken_after && !util_rfc3339_valid(c->taken_after)) ||
        (c->taken_before && *c->taken_before && !util_rfc3339_valid(c->taken_before)))
        return err_set(err, "--taken-after/--taken-before take an RFC 3339 time, e.g. "
                            "2021-07-04T12:00:00Z"),
               PIX_EUSAGE;
    *taken = i == 1;
    if (!*taken && ((c->order && !strcmp(c->order, "asc")) || (c->taken_after && *c->taken_after) ||
                    (c->taken_before && *c->taken_before)))
        return err_set(err, "--order asc, --taken-after and --taken-before go with --sort taken"),
               PIX_EUSAGE;
    snprintf(q, n, "/images");
    if (add_param(px, q, n, "sort", *taken ? sorts[i].api : NULL) < 0 ||
        add_param(px, q, n, "status", c->deleted ? "deleted" : NULL) < 0 ||
        add_param(px, q, n, "order", c->order) < 0 ||
        add_param(px, q, n, "taken_after", c->taken_after) < 0 ||
        add_param(px, q, n, "taken_before", c->taken_before) < 0)
        return err_set(err, "the query is too long"), PIX_EUSAGE;
    return PIX_OK;
}

int cmd_ls(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX], q[1024];
    int taken = 0;
    struct res_pages p = {.path = q, .key = "images", .row = ls_row, .ud = &taken};
    int rc = ls_query(px, q, sizeof q, &taken, err);

    if (rc == PIX_OK)
        rc = res_pages_run(px, &p, err);
    if (rc != PIX_OK && rc != PIX_EINTR)
        pix_errorf("ls: %s", err);
    return rc;
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

/* A string, number or boolean as "key: value", the value at column width (else nothing). */
static void print_scalar(const char *indent, int width, const cJSON *it)
{
    char key[40];

    snprintf(key, sizeof key, "%s:", it->string);
    if (cJSON_IsString(it))
        printf("%s%-*s %s\n", indent, width, key, it->valuestring);
    if (cJSON_IsNumber(it))
        printf("%s%-*s %.15g\n", indent, width, key, it->valuedouble);
    if (cJSON_IsBool(it))
        printf("%s%-*s %s\n", indent, width, key, cJSON_IsTrue(it) ? "true" : "false");
}

/* The capture object's fields in the order info shows them; others follow as they come. */
static const char *const capture_order[] = {
    "status",          "taken_at",         "time_source", "taken_at_local", "offset",
    "time_zone_known", "file_modified_at", "width",       "height",         "orientation",
    "format",          "color_space",      "make",        "model",          "lens",
    "f_number",        "exposure_time",    "iso",         "focal_length",   "gps",
    "errors"};

static int capture_known(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(capture_order); i++)
        if (!strcmp(capture_order[i], key))
            return 1;
    return 0;
}

/* One capture field below "capture:" (null, empty and unknown-shape fields left out). */
static void print_capture_field(const cJSON *it)
{
    const cJSON *e;

    print_scalar("  ", 17, it);
    if (cJSON_IsObject(it) && !strcmp(it->string, "gps"))
        printf("  %-17s %.15g, %.15g (altitude %.15g m)\n",
               "gps:", cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "latitude")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "longitude")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(it, "altitude")));
    if (!cJSON_IsArray(it) || !cJSON_GetArraySize(it))
        return;
    printf("  %-17s", "errors:");
    cJSON_ArrayForEach(e, it)
    {
        printf(" %s", cJSON_IsString(e) ? e->valuestring : "?");
    }
    printf("\n");
}

/* capture: its fields indented below it, in capture_order, then any others. */
static void print_capture(const cJSON *cap)
{
    const cJSON *it;

    printf("capture:\n");
    for (size_t i = 0; i < ARRAY_LEN(capture_order); i++)
        if ((it = cJSON_GetObjectItemCaseSensitive(cap, capture_order[i])))
            print_capture_field(it);
    cJSON_ArrayForEach(it, cap)
    {
        if (!capture_known(it->string))
            print_capture_field(it);
    }
}

/* One metadata field as "key:  value" (arrays other than variants are left out). */
static void print_field(const cJSON *it)
{
    char key[40];

    snprintf(key, sizeof key, "%s:", it->string);
    print_scalar("", 12, it);
    if (cJSON_IsArray(it) && !strcmp(it->string, "variants"))
        print_variants(it);
    if (cJSON_IsNull(it) && !strcmp(it->string, "sha256"))
        printf("%-12s - (not verified yet)\n", key);
    if (cJSON_IsObject(it) && !strcmp(it->string, "error"))
        printf("%-12s %s: %s\n", key, dl_jstr(it, "code"), dl_jstr(it, "message"));
    if (cJSON_IsObject(it) && !strcmp(it->string, "capture"))
        print_capture(it);
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
        res_json_line(meta);
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
    struct res_req rq = {method, "/images", id, suffix, body, CLIENT_RETRY, cmd, what};

    return res_call(px, &rq, NULL);
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
