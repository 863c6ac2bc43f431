/* resource: paging through the API's keyset listings ({KEY:[...], next_cursor}) and single
 * calls on /COLL/{id}..., with text or JSON-line output, for the image and album commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "dl.h"
#include "resource.h"

#define PAGE_LIMIT 100
#define MAX_PAGES 100000
#define CURSOR_MAX 512

void res_json_line(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    if (s)
        printf("%s\n", s);
    free(s);
}

/* Prints one page's rows; *count is the rows printed so far. */
static void print_page(struct pix *px, const struct res_pages *p, const cJSON *page, long *count)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, p->key))
    {
        if (px->cfg->limit > 0 && *count >= px->cfg->limit)
            return;
        p->row(px, it, p->ud);
        (*count)++;
    }
}

/* GET one page: path + limit + cursor (cursor "" for the first). */
static int get_page(struct pix *px, const struct res_pages *p, const char *cursor, cJSON **o,
                    char *err)
{
    char *url = NULL, *esc = client_escape(px->api, cursor);
    int rc;

    if (!esc || asprintf(&url, "%s%climit=%d%s%s", p->path, strchr(p->path, '?') ? '&' : '?',
                         PAGE_LIMIT, cursor[0] ? "&cursor=" : "", esc) < 0) {
        curl_free(esc);
        return err_set(err, "out of memory"), PIX_EIO;
    }
    curl_free(esc);
    rc = client_json(px->api, "GET", url, NULL, CLIENT_RETRY, o, NULL, err);
    free(url);
    return rc;
}

int res_pages_run(struct pix *px, const struct res_pages *p, char *err)
{
    char cursor[CURSOR_MAX] = "";
    long count = 0;
    int rc = PIX_OK;

    for (int page = 0; page < MAX_PAGES && !pix_interrupted; page++) {
        cJSON *o = NULL;
        const char *next;
        if ((rc = get_page(px, p, cursor, &o, err)) != PIX_OK)
            break;
        if (page == 0 && p->first)
            p->first(px, o, p->ud);
        print_page(px, p, o, &count);
        next = dl_jstr(o, "next_cursor");
        if (!*next || !strcmp(next, cursor) || (px->cfg->limit > 0 && count >= px->cfg->limit)) {
            cJSON_Delete(o);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        cJSON_Delete(o);
    }
    fflush(stdout);
    return rc == PIX_OK && pix_interrupted ? PIX_EINTR : rc;
}

int res_call(struct pix *px, const struct res_req *rq, cJSON **out)
{
    char err[ERR_MAX], *esc = client_escape(px->api, rq->id), *path = NULL;
    cJSON *o = NULL;
    int rc = PIX_EIO;

    if (!esc || asprintf(&path, "%s/%s%s", rq->coll, esc, rq->suffix) < 0) {
        path = NULL;
        err_set(err, "out of memory");
        goto done;
    }
    rc = client_json(px->api, rq->method, path, rq->body, rq->flags, &o, NULL, err);
done:
    if (rc != PIX_OK)
        pix_errorf("%s %s: %s", rq->cmd, rq->id, err);
    else if (out)
        *out = o, o = NULL;
    else if (px->cfg->json && o)
        res_json_line(o);
    else
        printf("%s %s\n", rq->id, rq->what);
    fflush(stdout);
    curl_free(esc);
    free(path);
    cJSON_Delete(o);
    cJSON_Delete(rq->body);
    return rc;
}
