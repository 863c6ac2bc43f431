/* usage: `pixctl usage`, the caller's storage usage and quota (GET /me/usage): bytes and
 * images used (trash included), the trash, open uploads' reservations and the limits. */
#include <stdio.h>

#include "client.h"
#include "pixctl.h"
#include "resource.h"

/* The answer's fields in the order shown; limits print "unlimited" when null. */
static const char *const fields[] = {"bytes_used",     "max_bytes",      "images",
                                     "max_images",     "trash_bytes",    "trash_images",
                                     "reserved_bytes", "reserved_images"};

static void print_usage(const cJSON *doc)
{
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, fields[i]);

        if (cJSON_IsNumber(v))
            printf("%-16s %.0f\n", fields[i], v->valuedouble);
        else
            printf("%-16s unlimited\n", fields[i]);
    }
}

int cmd_usage(struct pix *px, int argc, char **argv)
{
    char err[ERR_MAX];
    cJSON *doc = NULL;
    int rc = client_json(px->api, "GET", "/me/usage", NULL, CLIENT_RETRY, &doc, NULL, err);

    (void)argc, (void)argv;
    if (rc == PIX_OK && !doc)
        rc = PIX_EAPI, err_set(err, "empty answer");
    if (rc != PIX_OK) {
        pix_errorf("usage: %s", err);
        return rc;
    }
    if (px->cfg->json)
        res_json_line(doc);
    else
        print_usage(doc);
    fflush(stdout);
    cJSON_Delete(doc);
    return PIX_OK;
}
