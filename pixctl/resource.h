/* resource: the API's collections from the command line: paging through a listing and one
 * call on one resource, printed as text rows or JSON lines. */
#ifndef PIXCTL_RESOURCE_H
#define PIXCTL_RESOURCE_H

#include <cjson/cJSON.h>
#include "pixctl.h"

/* A listing {KEY:[...], next_cursor} followed page after page. */
struct res_pages {
    const char *path; /* with its query, without limit and cursor */
    const char *key;  /* the array member: "images", "items", "albums" */
    /* Called with each element (up to --limit of them). */
    void (*row)(const struct pix *px, const cJSON *item, void *ud);
    /* NULL, or called once with the first page before its rows. */
    void (*first)(const struct pix *px, const cJSON *page, void *ud);
    void *ud;
};

/* One call on COLL/{id}SUFFIX (id URL-escaped). */
struct res_req {
    const char *method, *coll, *id, *suffix;
    cJSON *body; /* taken (freed), may be NULL */
    int flags;   /* CLIENT_* */
    const char *cmd, *what;
};

/* Follows the pages until next_cursor is null, --limit rows or an interrupt. PIX_OK or an
 * exit code with err. */
int res_pages_run(struct pix *px, const struct res_pages *p, char *err);
/* Makes the call; on success prints "ID what" (--json: the answer) unless out is not NULL,
 * which then gets the answer (cJSON_Delete it). A failure is printed as "CMD ID: error".
 * Returns PIX_OK or the exit code. */
int res_call(struct pix *px, const struct res_req *rq, cJSON **out);
/* o on one line of stdout. */
void res_json_line(const cJSON *o);

#endif
