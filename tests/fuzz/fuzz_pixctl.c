/* fuzz_pixctl: pixctl's parsing of what it did not write: API answers (client.c, upload.c and
 * sync.c's handlers), the /sync/stream event stream, its resume state and sync index files. */
#include "fuzz.h"
#include "curl_fakes.c"          /* first: libcurl's transfer calls answered from the input */
#include "../../pixctl/upload.c" /* h2o-style: the answer handlers are static */
#include "../../pixctl/sync.c"

#include <stdint.h>

/* Input: byte 0 picks the target, byte 1 holds options, the rest is its material.
 *   0 client_call / client_json on a script of answers (curl_fakes.c): status, error body,
 *     Retry-After
 *   1 upload: a session answer (adopt_session, resume_how, take_missing, the dedup challenge),
 *     then POST chunks/urls and POST complete on the rest of the script
 *   2 sync: a GET /sync page applied to an index (upsert, deletions, cursor), which must then
 *     survive being saved and loaded
 *   3 resume state file   4 sync index file   5 event stream, whole and in pieces */
enum { T_CLIENT, T_UPLOAD, T_SYNC, T_STATE, T_SIDX, T_SSE, T_COUNT };

static struct pixctl_config cfg = {.api_url = (char *)"http://127.0.0.1:8080",
                                   .token = (char *)"tok",
                                   .quiet = 1,
                                   .timeout = 30,
                                   .connect_timeout = 5,
                                   .retries = 1, /* no retries: they would sleep */
                                   .verify_timeout = 0};
static struct pix px = {.cfg = &cfg};

/* ---- 0: the client ---- */

static void api_client(unsigned opt, const uint8_t *p, size_t n)
{
    struct client_resp r;
    char err[ERR_MAX] = "";
    cJSON *out = NULL, *body = cJSON_CreateObject();
    long status = -1;
    int rc;

    fake_script((const char *)p, n);
    cJSON_AddStringToObject(body, "name", "x");
    if (opt & 1) {
        rc = client_json(px.api, opt & 2 ? "GET" : "POST", "/images", opt & 2 ? NULL : body,
                         CLIENT_RETRY, &out, &status, err);
        CHECK(rc == PIX_OK || rc == PIX_EAPI || rc == PIX_ENET, "client_json result");
        CHECK(rc != PIX_OK || (status >= 200 && status <= 299), "PIX_OK is a 2xx");
        CHECK(rc == PIX_OK || err[0], "a failure says why");
        CHECK(rc == PIX_OK || !out, "no body on failure");
        cJSON_Delete(out);
        goto done;
    }
    rc = client_call(px.api, "GET", "/uploads/x", NULL, opt & 4 ? "idem-key" : NULL, 0, &r, err);
    CHECK(rc == PIX_OK || rc == PIX_ENET, "client_call result");
    if (rc == PIX_OK) {
        CHECK(r.status == fake.status, "the status is the answer's");
        CHECK(terminated(r.code, sizeof r.code) && terminated(r.message, sizeof r.message),
              "error code and message fit");
        CHECK(r.status >= 400 || !r.code[0], "an error code only on an error");
        CHECK(r.retry_after == r.retry_after, "Retry-After is a number");
        CHECK(!r.json || cJSON_IsObject(r.json), "a JSON body is an object");
        if (r.status >= 400) {
            CHECK(client_error(&r, err) == PIX_EAPI && err[0], "client_error");
        }
        client_resp_free(&r);
    }
done:
    cJSON_Delete(body);
}

/* ---- 1: upload ---- */

static void upload(unsigned opt, const uint8_t *p, size_t n)
{
    struct up u;
    struct client_resp r = {0};
    char err[ERR_MAX] = "";
    struct xfer_chunk chunks[8], *cp[8];
    long long *off = NULL, *len = NULL;
    int nr = 0, rc, again = 0;

    memset(&u, 0, sizeof u);
    u.px = &px;
    u.arg = "fuzz.jpg";
    u.fd = -1;
    u.file.size = (long long)(opt & 0x7f) * 3 * 1024 * 1024 + 1;
    fake_script((const char *)p, n);
    /* the first answer is the session (POST /uploads or GET /uploads/{id}) */
    rc = client_call(px.api, "POST", "/uploads", NULL, NULL, 0, &r, err);
    if (rc != PIX_OK)
        return;
    if (r.json && adopt_session(&u, r.json, err) == PIX_OK) {
        CHECK(util_is_uuid(u.session_id) && !strcmp(u.session_id, u.st.session_id), "session id");
        CHECK(u.st.chunk_count == u.chunk_count && u.st.done && u.chunk_count >= 1,
              "chunk flags for the layout");
        CHECK(plan_check(u.file.size, u.chunk_size, u.chunk_count) == 0,
              "the layout fits the file");
        int how = resume_how(&u, r.json);
        CHECK(how >= RESUME_NONE && how <= RESUME_DONE, "resume_how");
        (void)take_missing(&u, r.json);
        for (int i = 0; i < u.st.chunk_count; i++)
            CHECK(u.st.done[i] == 0 || u.st.done[i] == 1, "done flags");
        CHECK(terminated(u.image_id, sizeof u.image_id), "image id fits");
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(r.json, "dedup_challenge");
        if (cJSON_IsObject(ch) && parse_ranges(ch, &off, &len, &nr) == 0)
            for (int i = 0; i < nr; i++)
                CHECK(off[i] >= 0 && len[i] >= 0, "ranges");
        free(off);
        free(len);

        /* POST chunks/urls for up to 8 chunks, from the next answer */
        int k = 0;
        for (int i = 0; i < u.chunk_count && k < 8; i += 1 + (opt >> 7) * 3, k++) {
            memset(&chunks[k], 0, sizeof chunks[k]);
            chunks[k].n = i;
            cp[k] = &chunks[k];
        }
        rc = get_urls(&u, cp, k, err);
        for (int i = 0; i < k; i++) {
            CHECK(rc == PIX_OK || !chunks[i].url, "URLs only from a good answer");
            free(chunks[i].url);
        }
        /* POST complete, from the next answer (202 would poll with sleeps: not scripted) */
        if (fake.next < fake.n && fake.a[fake.next].status != 202) {
            int resend;
            rc = complete_once(&u, util_now_mono() + 1, &again, &resend, err);
            CHECK(rc == PIX_OK || err[0], "a failed complete says why");
            CHECK(!again || rc == PIX_OK, "resend only after a readable answer");
            CHECK(!resend || again, "a resend is asked again");
        }
    }
    client_resp_free(&r);
    state_clear(&u.st);
}

/* ---- 2: sync ---- */

static void sync_page(unsigned opt, const uint8_t *p, size_t n)
{
    struct syncer s;
    char err[ERR_MAX] = "", since[CURSOR_MAX], *text;
    const char *e = NULL;
    cJSON *page = json_parse_object((const char *)p, n, &e);
    const cJSON *it;
    struct sidx back = {0};

    if (!page)
        return;
    memset(&s, 0, sizeof s);
    s.px = &px;
    s.lockfd = -1;
    snprintf(s.dir, sizeof s.dir, "/nonexistent-pixctl-fuzz");
    /* an index that already holds two images, one of which the page may update or delete */
    struct sidx_entry *x = sidx_add(&s.idx, "5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4");
    memset(x->sha256, 'a', 64);
    x->size = 1;
    snprintf(x->name, sizeof x->name, "old.jpg");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "deleted"))
    {
        struct sidx_entry *d = sidx_find(&s.idx, entry_id(it));
        if (d)
            sync_remove_entry(&s, d);
    }
    for (int k = 0; k < 2; k++)
        cJSON_ArrayForEach(it,
                           cJSON_GetObjectItemCaseSensitive(
                               page, k ? "updated" : "added")) if (upsert(&s, it, err) != PIX_OK)
            CHECK(err[0], "a refused entry says why");
    sync_page_cursor(page, since, sizeof since);
    CHECK(terminated(since, sizeof since), "cursor fits");
    for (int i = 0; i < s.idx.n; i++)
        CHECK(strlen(s.idx.e[i].sha256) == 64 && s.idx.e[i].size >= 0 && s.idx.e[i].id[0],
              "indexed entries have an id, a sha256 and a size");
    /* what sync saves (save_index) must load again (sidx_load) */
    text = sidx_format(&s.idx);
    CHECK(text != NULL, "index formats");
    CHECK(sidx_parse(text, &back, err) == 0, "the saved index loads again");
    CHECK(back.n == s.idx.n, "every entry comes back");
    for (int i = 0; i < back.n; i++)
        CHECK(!strcmp(back.e[i].id, s.idx.e[i].id) &&
                  !strcmp(back.e[i].sha256, s.idx.e[i].sha256) && back.e[i].size == s.idx.e[i].size,
              "entries come back the same");
    free(text);
    sidx_free(&back);
    sidx_free(&s.idx);
    cJSON_Delete(page);
    (void)opt;
}

/* ---- 3, 4: files ---- */

static void state_file(const uint8_t *p, size_t n)
{
    struct upload_state st, again;
    char err[ERR_MAX] = "", *text;

    if (state_from_json((const char *)p, n, &st, err) < 0) {
        CHECK(err[0] && !st.done, "a refused state file says why and holds nothing");
        return;
    }
    CHECK(st.chunk_count >= 1 && st.done && st.chunk_size >= 1, "layout");
    CHECK(state_count_done(&st) <= st.chunk_count, "done count");
    text = state_to_json(&st);
    CHECK(text != NULL, "state formats");
    CHECK(state_from_json(text, strlen(text), &again, err) == 0, "what is saved loads again");
    CHECK(state_same_file(&st.file, &again.file) && !strcmp(st.api_url, again.api_url) &&
              !strcmp(st.session_id, again.session_id) && st.chunk_size == again.chunk_size &&
              st.chunk_count == again.chunk_count &&
              !memcmp(st.done, again.done, (size_t)st.chunk_count),
          "and is the same state");
    free(text);
    state_clear(&st);
    state_clear(&again);
}

static void index_file(const uint8_t *p, size_t n)
{
    char *text = cstr(p, n), *f1, *f2, err[ERR_MAX] = "";
    struct sidx x = {0}, y = {0};

    if (sidx_parse(text, &x, err) == 0) {
        f1 = sidx_format(&x);
        CHECK(f1 && sidx_parse(f1, &y, err) == 0, "a loaded index saves and loads again");
        f2 = sidx_format(&y);
        CHECK(f2 && !strcmp(f1, f2), "saving is stable");
        for (int i = 0; i < x.n; i++)
            CHECK(sidx_find(&x, x.e[i].id) != NULL, "entries are found by id");
        free(f1);
        free(f2);
    } else {
        CHECK(err[0], "a refused index says why");
    }
    sidx_free(&x);
    sidx_free(&y);
    free(text);
}

/* ---- 5: the event stream ---- */

struct events {
    buf log;
    int n;
};

static void on_sse(void *ud, const char *type, const char *data, const char *id)
{
    struct events *ev = ud;

    CHECK(type && *type && data && id, "an event has a type, data and an id");
    CHECK(!strpbrk(id, "\r\n") && !strpbrk(type, "\r\n"), "fields are single lines");
    ev->n++;
    if (buf_printf(&ev->log, "%s\x01%s\x01%s\x02", type, data, id) < 0)
        abort();
}

static void stream(unsigned opt, const uint8_t *p, size_t n)
{
    struct sse a, b;
    struct events ea = {{0}, 0}, eb = {{0}, 0};
    size_t step = opt % 7 + 1, i;

    sse_init(&a, on_sse, &ea);
    sse_init(&b, on_sse, &eb);
    if (sse_feed(&a, (const char *)p, n) < 0)
        abort();
    for (i = 0; i < n; i += step) /* the same bytes in pieces */
        if (sse_feed(&b, (const char *)p + i, n - i < step ? n - i : step) < 0)
            abort();
    CHECK(ea.n == eb.n && ea.n == a.events &&
              !strcmp(ea.log.data ? ea.log.data : "", eb.log.data ? eb.log.data : ""),
          "events do not depend on how the bytes arrive");
    CHECK(!strcmp(a.last_id, b.last_id) && terminated(a.last_id, sizeof a.last_id),
          "the Last-Event-ID to send back");
    sse_reset(&a);
    CHECK(a.line.len == 0 && a.data.len == 0, "reset forgets the partial event");
    sse_free(&a);
    sse_free(&b);
    buf_free(&ea.log);
    buf_free(&eb.log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERR_MAX];

    if (!px.api) {
        if (!(px.api = client_new(&cfg, err)))
            abort();
    }
    if (size < 2)
        return 0;
    switch (data[0] % T_COUNT) {
    case T_CLIENT:
        api_client(data[1], data + 2, size - 2);
        break;
    case T_UPLOAD:
        upload(data[1], data + 2, size - 2);
        break;
    case T_SYNC:
        sync_page(data[1], data + 2, size - 2);
        break;
    case T_STATE:
        state_file(data + 2, size - 2);
        break;
    case T_SIDX:
        index_file(data + 2, size - 2);
        break;
    case T_SSE:
        stream(data[1], data + 2, size - 2);
        break;
    }
    return 0;
}
