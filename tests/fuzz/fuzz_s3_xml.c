/* fuzz_s3_xml: the S3 client's response handling (common/s3.c) against a hostile server: the XML
 * extractor and page parsers on raw bodies, and whole calls (pagination, errors) on scripts. */
#include "fuzz.h"
#include "curl_fakes.c" /* first: libcurl's transfer calls answered from the input */
#include "s3.c"         /* h2o-style: the XML helpers and page parsers are static */

#include <stdint.h>
#include <stdio.h>

#include "json.h"

/* Input: byte 0 picks the mode. Mode 0: the rest is one response body given to every parser
 * (ListParts, ListMultipartUploads, ListObjectsV2, <Error>, UploadId, timestamps). Other
 * modes: byte 1 holds options (page size, path style, callback stop), the rest is a script
 * of answers (curl_fakes.c) for one client call:
 *   1 ListParts   2 CompleteMultipartUpload   3 CreateMultipartUpload   4 ListMultipartUploads
 *   5 ListObjectsV2   6 CopyObject   7 HeadObject   8 GetObject   9 DeleteObject
 *   10 AbortMultipartUpload   11 PutObject   12 HeadBucket */
enum {
    M_BODY,
    M_LIST_PARTS,
    M_COMPLETE,
    M_CREATE,
    M_LIST_UPLOADS,
    M_LIST_OBJECTS,
    M_COPY,
    M_HEAD,
    M_GET,
    M_DELETE,
    M_ABORT,
    M_PUT,
    M_HEAD_BUCKET,
    M_COUNT
};

static s3_client *clients[2]; /* path-style, virtual-hosted */

/* Valid UTF-8 with no NUL (what every decoded XML value must be when its source was). */
static int utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0, l; i < n; i += l) {
        l = json_utf8_seqlen((const unsigned char *)s + i, n - i);
        if (l == 0 || s[i] == '\0')
            return 0;
    }
    return 1;
}

/* ---- callbacks of the listings ---- */

struct seen {
    int calls, stop_after;
};

static int on_upload(const char *key, const char *upload_id, time_t initiated, void *ud)
{
    struct seen *s = ud;

    CHECK(key && upload_id && initiated >= 0, "an upload has a key and an id");
    return ++s->calls >= s->stop_after;
}

static int on_object(const char *key, long long size, time_t last_modified, void *ud)
{
    struct seen *s = ud;

    CHECK(key && size >= 0 && last_modified >= 0, "an object has a key and a size");
    return ++s->calls >= s->stop_after;
}

struct sink {
    size_t bytes;
};

static int on_bytes(const void *p, size_t n, void *ud)
{
    struct sink *k = ud;

    CHECK(p != NULL || n == 0, "sink data");
    k->bytes += n;
    return 0;
}

/* ---- mode 0: the parsers on one body ---- */

/* One element's text, three ways: s3_xml_find, s3_xml_get and s3_xml_copy agree. */
static void one_tag(const char *p, const char *end, const char *tag)
{
    const char *vs = NULL, *ve = NULL, *after = s3_xml_find(p, end, tag, &vs, &ve);
    buf b = {0};
    char small[16];
    int rc = s3_xml_get(p, end, tag, &b), rc2 = s3_xml_copy(p, end, tag, small, sizeof small);

    CHECK((after != NULL) == (rc != 0), "find and get agree on presence");
    if (after) {
        CHECK(vs >= p && vs <= ve && ve <= end && after > p && after <= end, "spans in the body");
        if (utf8_ok(vs, (size_t)(ve - vs)) && rc == 1)
            CHECK(utf8_ok(b.data, b.len), "decoded text is valid UTF-8 without NUL");
    }
    if (rc == 1) {
        CHECK(b.data && strlen(b.data) <= b.len, "decoded text is a string");
        CHECK(rc2 == (b.len < sizeof small ? 1 : -1), "copy fits exactly when get is short");
        if (rc2 == 1)
            CHECK(!strcmp(small, b.data), "copy is get");
    } else {
        CHECK(rc2 == rc && small[0] == '\0', "copy fails like get");
    }
    buf_free(&b);
}

static void body_parsers(s3_client *c, const uint8_t *p, size_t n)
{
    static const char *const tags[] = {
        "Part", "ETag",    "Key",      "UploadId", "IsTruncated",
        "Code", "Message", "Contents", "Size",     "NextContinuationToken"};
    buf saved = c->body, km = {0}, um = {0}, tok = {0};
    struct s3_part *parts = NULL;
    int np = 0, cap = 0, rc;
    char next[16], uid[128];
    struct seen seen = {0, 1 << 30};

    /* exact size plus the NUL buf keeps, so ASan sees a read past the end */
    c->body.data = malloc(n + 1);
    if (!c->body.data)
        abort();
    memcpy(c->body.data, p, n);
    c->body.data[n] = '\0';
    c->body.len = c->body.cap = n;
    const char *b = c->body.data, *end = b + n;

    for (size_t i = 0; i < ARRAY_LEN(tags); i++)
        one_tag(b, end, tags[i]);

    rc = s3_parts_page(c, &parts, &np, &cap, next);
    CHECK(rc == 0 || rc == -1, "parts page result");
    for (int i = 0; i < np; i++)
        CHECK(parts[i].number >= 1 && parts[i].number <= S3_MAX_PART && parts[i].size >= 0 &&
                  terminated(parts[i].etag, sizeof parts[i].etag),
              "a listed part is numbered 1..10000 with a size and an ETag");
    CHECK(rc < 0 || terminated(next, sizeof next), "next marker fits");
    free(parts);

    rc = s3_uploads_page(c, on_upload, &seen);
    CHECK(rc >= -1 && rc <= 1, "uploads page result");
    /* tests/fuzz/regressions/s3_xml-nul-marker, s3_xml-nul-token */
    rc = s3_next_markers(c, &km, &um);
    CHECK(rc >= -1 && rc <= 1 && (rc != 1 || km.len > 0),
          "markers move forward (a next page is never asked for without a key-marker)");
    seen.calls = 0;
    rc = s3_objects_page(c, on_object, &seen);
    CHECK(rc >= -1 && rc <= 1, "objects page result");
    rc = s3_next_token(c, &tok);
    CHECK(rc >= -1 && rc <= 1 && (rc != 1 || tok.len > 0),
          "token moves forward (a next page is never asked for without a token)");
    if (s3_body_error(c))
        CHECK(terminated(c->code, sizeof c->code) && c->code[0] &&
                  terminated(c->message, sizeof c->message),
              "an <Error> gives a code");
    rc = s3_xml_copy(b, end, "UploadId", uid, sizeof uid);
    CHECK(rc != 1 || terminated(uid, sizeof uid), "upload id fits");
    CHECK(s3_parse_iso8601(b) >= 0, "timestamps are never negative");

    buf_free(&km), buf_free(&um), buf_free(&tok);
    free(c->body.data);
    c->body = saved;
    c->code[0] = c->message[0] = '\0';
}

/* ---- modes 1..: whole calls on a script ---- */

static void call(int mode, unsigned opt, const uint8_t *p, size_t n)
{
    static const int pages[] = {0, 1, 2, 1000};
    static const struct s3_part done[] = {
        {1, 5242880, "\"a\""}, {2, 5242880, "\"b&<>\""}, {3, 17, "\"c\""}};
    s3_client *c = clients[opt >> 2 & 1];
    char err[ERR_MAX] = "", uid[128] = "x";
    struct seen seen = {0, opt & 16 ? 1 : 1 << 30};
    struct s3_part *parts = (struct s3_part *)1;
    struct s3_object obj;
    struct sink sink = {0};
    int np = -1, rc = S3_ERR;

    s3_set_page_size(c, pages[opt & 3]);
    fake_script((const char *)p, n);
    switch (mode) {
    case M_LIST_PARTS:
        rc = s3_list_parts(c, "blobs/k", "up-1", &parts, &np, err);
        CHECK(rc == S3_OK ? np >= 0 && (np == 0 || parts) : !parts && np == 0, "parts out");
        for (int i = 0; rc == S3_OK && i < np; i++)
            CHECK(parts[i].number >= 1 && parts[i].number <= S3_MAX_PART && parts[i].size >= 0,
                  "part numbers and sizes");
        if (rc == S3_OK)
            CHECK(fake.performed == fake.next, "every page was asked for once");
        free(parts);
        break;
    case M_COMPLETE:
        rc = s3_complete_multipart(c, "blobs/k", "up-1", done, 3, err);
        break;
    case M_CREATE:
        rc =
            s3_create_multipart(c, "blobs/k", opt & 32 ? "image/jpeg" : NULL, uid, sizeof uid, err);
        CHECK(rc != S3_OK || (uid[0] && terminated(uid, sizeof uid)), "an upload id on success");
        break;
    case M_LIST_UPLOADS:
        rc = s3_list_multipart_uploads(c, "blobs/", on_upload, &seen, err);
        break;
    case M_LIST_OBJECTS:
        rc = s3_list_objects(c, opt & 32 ? NULL : "variants/", on_object, &seen, err);
        break;
    case M_COPY:
        rc = s3_copy_object(c, "blobs/a b", "blobs/c", err);
        break;
    case M_HEAD:
        rc = s3_head_object(c, "blobs/k", &obj, err);
        CHECK(rc != S3_OK || (terminated(obj.etag, sizeof obj.etag) && obj.last_modified >= 0),
              "head fields");
        break;
    case M_GET:
        rc = s3_get_object(c, "blobs/k", opt & 32 ? 100 : 0, opt & 64 ? 50 : -1, on_bytes, &sink,
                           err);
        if (!(fake.status / 100 == 2 && (!(opt & 96) || fake.status == 206)))
            CHECK(sink.bytes == 0, "only a 2xx (206 when ranged) reaches the sink");
        break;
    case M_DELETE:
        rc = s3_delete_object(c, "blobs/k", err);
        break;
    case M_ABORT:
        rc = s3_abort_multipart(c, "blobs/k", "up-1", err);
        break;
    case M_PUT:
        rc = s3_put_object(c, "blobs/k", "abc", 3, "image/png", err);
        break;
    case M_HEAD_BUCKET:
        rc = s3_head_bucket(c, err);
        break;
    }
    CHECK(rc == S3_OK || rc == S3_ERR || rc == S3_NOTFOUND, "result code");
    CHECK(rc == S3_OK || err[0], "a failure says why");
    CHECK(terminated(err, sizeof err), "err fits");
    CHECK(terminated(s3_last_code(c), 64), "last code fits");
    CHECK(fake.performed <= fake.n + 1, "no request after the server stopped answering");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode;

    if (!clients[0]) {
        struct s3_config cfg = {.endpoint = "http://127.0.0.1:9000",
                                .bucket = "pixplane",
                                .region = "us-east-1",
                                .access_key = "AKIDFUZZ",
                                .secret_key = "fuzz-secret",
                                .path_style = 1};
        clients[0] = s3_client_new(&cfg);
        cfg.endpoint = "https://s3.example.com";
        cfg.path_style = 0;
        clients[1] = s3_client_new(&cfg);
        if (!clients[0] || !clients[1])
            abort();
    }
    if (size < 2)
        return 0;
    mode = data[0] % M_COUNT;
    if (mode == M_BODY)
        body_parsers(clients[data[1] & 1], data + 2, size - 2);
    else
        call(mode, data[1], data + 2, size - 2);
    return 0;
}
