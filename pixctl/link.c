/* link: the link subcommands: create a public link to an image or an album (prints its url),
 * ls your links, rm (revoke) them, as text or JSON lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "conf.h"
#include "dl.h"
#include "link.h"
#include "resource.h"

int link_expiry(const char *s, cJSON *body)
{
    double secs = 0;

    if (!*s)
        return 0;
    if (!strcmp(s, "never")) {
        cJSON_AddNullToObject(body, "expires_in");
        return 0;
    }
    if (conf_parse_secs(s, &secs) < 0 || secs < 1 || secs > 1e12 || secs != floor(secs))
        return -1;
    cJSON_AddNumberToObject(body, "expires_in", secs);
    return 0;
}

/* The body of POST .../links from the options; NULL after a usage error (printed). */
static cJSON *create_body(const struct pixctl_config *cfg)
{
    cJSON *body = cJSON_CreateObject();

    if (link_expiry(cfg->expires_in ? cfg->expires_in : "", body) < 0) {
        pix_errorf("--expires-in must be a duration in whole seconds (90s, 30m, 12h, 7d) or "
                   "never");
        cJSON_Delete(body);
        return NULL;
    }
    if (cfg->link_password && *cfg->link_password)
        cJSON_AddStringToObject(body, "password", cfg->link_password);
    if (!cfg->download)
        cJSON_AddFalseToObject(body, "allow_download");
    if (cfg->max_views > 0)
        cJSON_AddNumberToObject(body, "max_views", (double)cfg->max_views);
    return body;
}

static int link_create(struct pix *px, int argc, char **argv)
{
    cJSON *body = create_body(px->cfg), *o = NULL;
    /* not retried: a retry after a lost answer would make a second link */
    struct res_req rq = {
        "POST", px->cfg->album ? "/albums" : "/images", argv[0], "/links", body, 0, "link create",
        NULL};
    int rc;

    if (!body)
        return PIX_EUSAGE;
    if ((rc = res_call(px, &rq, &o)) != PIX_OK)
        return rc;
    if (px->cfg->json)
        res_json_line(o);
    else
        printf("%s\n", dl_jstr(o, "url"));
    fflush(stdout);
    cJSON_Delete(o);
    return PIX_OK;
}

static void link_row(const struct pix *px, const cJSON *l, void *ud)
{
    const char *type = dl_jstr(l, "type"), *exp = dl_jstr(l, "expires_at");
    char views[48];

    if (px->cfg->json) {
        res_json_line(l);
        return;
    }
    if (dl_jnum(l, "max_views") > 0)
        snprintf(views, sizeof views, "%lld/%lld", dl_jnum(l, "views"), dl_jnum(l, "max_views"));
    else
        snprintf(views, sizeof views, "%lld", dl_jnum(l, "views"));
    printf("%-36s  %-5s  %-36s  %-11s  %9s views  %-20s%s\n", dl_jstr(l, "link_id"), type,
           dl_jstr(l, !strcmp(type, "album") ? "album_id" : "image_id"), dl_jstr(l, "status"),
           views, *exp ? exp : "never",
           cJSON_IsTrue(cJSON_GetObjectItem(l, "has_password")) ? "  password" : "");
}

static int link_ls(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX];
    struct res_pages p = {.path = "/links", .key = "links", .row = link_row};
    int rc = res_pages_run(px, &p, err);

    if (rc != PIX_OK && rc != PIX_EINTR)
        pix_errorf("link ls: %s", err);
    return rc;
}

static int link_rm(struct pix *px, int argc, char **argv)
{
    int rc = PIX_OK;

    for (int i = 0; i < argc && !pix_interrupted; i++) {
        struct res_req rq = {"DELETE", "/links",     argv[i],   "",
                             NULL,     CLIENT_RETRY, "link rm", "revoked"};
        rc = pix_worst(rc, res_call(px, &rq, NULL));
    }
    return rc == PIX_OK && pix_interrupted ? PIX_EINTR : rc;
}

int cmd_link(struct pix *px, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "";

    if (!strcmp(sub, "create") && argc == 2)
        return link_create(px, argc - 1, argv + 1);
    if (!strcmp(sub, "ls") && argc == 1)
        return link_ls(px, argc - 1, argv + 1);
    if (!strcmp(sub, "rm") && argc >= 2)
        return link_rm(px, argc - 1, argv + 1);
    pix_errorf("usage: pixctl link create ID [--album] | link ls | link rm LINK_ID... (see "
               "pixctl link --help)");
    return PIX_EUSAGE;
}
