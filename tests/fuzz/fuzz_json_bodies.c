/* fuzz_json_bodies: every API route that reads a JSON body, run through the real router and
 * handler (services/api) on fuzzed bodies, plus common/json.c's parser, getters and UTF-8. */
#include "api_fakes.c"

/* Input: byte 0 picks the target, byte 1 holds options, bytes 2-3 a chunk count, byte 4 the
 * length of an Idempotency-Key taken from what follows; the rest is the body.
 *   0 POST /uploads   1 POST /uploads/{id}/chunks/urls   2 POST /uploads/{id}/proof
 *   3 PATCH /images/{id}   4 POST /images/{id}/shares
 *   5 json_parse_object, the typed getters and json_error_body
 *   6 json_utf8_seqlen and api_valid_name against a reference   7 POST /uploads/batch */
enum { T_CREATE, T_URLS, T_PROOF, T_PATCH, T_SHARE, T_JSON, T_UTF8, T_BATCH, T_COUNT };

#define ID "5b0c9d4e-2f3a-4b5c-8d6e-7f8091a2b3c4"


/* ---- the session row GET /uploads/{id}'s statement finds ---- */

static struct {
    char size[24], chunk_size[24], chunk_count[16];
    const char *status, *expired;
} row;

static void make_row(unsigned opt, unsigned count)
{
    static const char *const statuses[] = {"uploading", "uploading", "uploading", "completing",
                                           "completed", "aborted",   "expired",   "failed"};
    long long cs = 8LL << 20, n = count % 10000 + 1;

    row.status = statuses[opt & 7];
    row.expired = opt & 8 ? "t" : "f";
    snprintf(row.chunk_size, sizeof row.chunk_size, "%lld", cs);
    snprintf(row.chunk_count, sizeof row.chunk_count, "%lld", n);
    snprintf(row.size, sizeof row.size, "%lld", (n - 1) * cs + 1 + (long long)(opt >> 4) * 65536);
}

static PGresult *db(const char *stmt, int n, const char *const *p)
{
    if (strcmp(stmt, "session_get"))
        return NULL; /* every other statement fails: the handler answers 500 */
    const char *v[UPLOAD_ROW_NCOLS] = {ID,
                                       "alice",
                                       row.status,
                                       "a.jpg",
                                       row.size,
                                       "image/jpeg",
                                       "",
                                       row.chunk_size,
                                       row.chunk_count,
                                       "blobs/" ID,
                                       "up-1",
                                       "",
                                       "",
                                       "",
                                       "f",
                                       "",
                                       "",
                                       "2000000000",
                                       row.expired,
                                       "",
                                       "",
                                       "f"};
    return fake_row(UPLOAD_ROW_NCOLS, v);
}

/* ---- targets ---- */

static void route(int target, unsigned opt)
{
    static const struct {
        const char *method, *path;
    } routes[T_COUNT] = {[T_CREATE] = {"POST", "/uploads"},
                         [T_URLS] = {"POST", "/uploads/" ID "/chunks/urls"},
                         [T_PROOF] = {"POST", "/uploads/" ID "/proof"},
                         [T_PATCH] = {"PATCH", "/images/" ID},
                         [T_SHARE] = {"POST", "/images/" ID "/shares"},
                         [T_BATCH] = {"POST", "/uploads/batch"}};
    const char *jerr = NULL;
    cJSON *o = json_parse_object(freq.body, freq.bodylen, &jerr);
    int status = fake_call(routes[target].method, routes[target].path);

    /* a body that is not a JSON object is a 400 (the session lookup comes first for urls) */
    if (!o && target != T_URLS)
        CHECK(status == 400, "a malformed body is 400");
    if (target == T_URLS && status == 200)
        CHECK(o && !strcmp(row.status, "uploading") && row.expired[0] == 'f',
              "chunk URLs only for an open session");
    if ((target == T_CREATE || target == T_BATCH) && status / 100 == 2)
        CHECK(0, "no session is created without a database");
    cJSON_Delete(o);
}

/* The guard against U+0000 in strings (json.c: "abc\u0000.exe" stored as "abc") holds only if
 * nothing else becomes a NUL: no raw NUL byte, and every \u escape is four hex digits (cJSON
 * decodes a malformed one, "\uZZZZ", as U+0000). 1 if body is clean in that sense. */
static int no_hidden_nul(const char *b, size_t n)
{
    int in = 0;

    for (size_t i = 0; i < n; i++) {
        if (!b[i])
            return 0;
        if (b[i] == '"') {
            in = !in;
        } else if (in && b[i] == '\\' && i + 1 < n) {
            if (b[++i] == 'u') {
                if (i + 4 >= n)
                    return 0;
                for (int k = 1; k <= 4; k++)
                    if (!isxdigit((unsigned char)b[i + k]))
                        return 0;
            }
        }
    }
    return 1;
}

/* Getters keep their promises; printing and error bodies stay valid JSON. */
static void json(unsigned opt)
{
    static const char *const keys[] = {"file_name",     "file_size", "mime_type",  "sha256",
                                       "proof",         "name",      "visibility", "user_id",
                                       "chunk_numbers", ""};
    const char *err = NULL, *s;
    long long v;
    int b, rc;
    cJSON *o = json_parse_object(freq.body, freq.bodylen, &err), *again;
    char *text, *eb;

    if (!o) {
        CHECK(err && *err, "a refused body says why");
        return;
    }
    CHECK(cJSON_IsObject(o), "an object");
    /* tests/fuzz/regressions/json_bodies-nul-escape */
    CHECK(no_hidden_nul(freq.body, freq.bodylen),
          "an accepted body has no string that C code would cut at a NUL");
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        err = NULL;
        rc = json_get_str(o, keys[i], &s, &err);
        CHECK(rc == 1 ? s != NULL : rc == 0 || err, "string getter");
        rc = json_get_i64(o, keys[i], &v, &err);
        CHECK(rc != 1 || (v >= -9007199254740991LL && v <= 9007199254740991LL), "safe integers");
        CHECK(rc >= 0 || err, "integer getter says why");
        rc = json_get_bool(o, keys[i], &b, &err);
        CHECK(rc != 1 || b == 0 || b == 1, "bool getter");
    }
    text = json_print(o);
    CHECK(text != NULL, "prints");
    again = json_parse_object(text, strlen(text), &err);
    CHECK(again != NULL, "what is printed parses back");
    cJSON_Delete(again);
    free(text);
    /* an error body quoting input stays one valid JSON object of valid UTF-8 */
    s = NULL;
    (void)json_get_str(o, keys[opt % ARRAY_LEN(keys)], &s, &err);
    eb = json_error_body(s ? s : "bad_request", freq.body);
    CHECK(eb != NULL, "error body");
    again = json_parse_object(eb, strlen(eb), &err);
    CHECK(again != NULL, "error body parses");
    for (size_t i = 0, l, n = strlen(eb); i < n; i += l)
        CHECK((l = json_utf8_seqlen((const unsigned char *)eb + i, n - i)) > 0,
              "error body is valid UTF-8");
    cJSON_Delete(again);
    free(eb);
    cJSON_Delete(o);
}

/* UTF-8 per RFC 3629, decoded the long way round. */
static size_t ref_seqlen(const unsigned char *p, size_t n, unsigned long *cp)
{
    size_t len = p[0] < 0x80             ? 1
                 : (p[0] & 0xe0) == 0xc0 ? 2
                 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    unsigned long v;

    if (!len || len > n)
        return 0;
    v = len == 1 ? p[0] : p[0] & (0xffu >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static void utf8(void)
{
    const unsigned char *p = (const unsigned char *)freq.body;
    size_t n = strlen(freq.body), l, r;
    unsigned long cp = 0;
    int ok = n >= 1 && n <= 255;

    for (size_t i = 0; i < freq.bodylen; i++) {
        l = json_utf8_seqlen(p + i, freq.bodylen - i);
        r = ref_seqlen(p + i, freq.bodylen - i, &cp);
        CHECK(l == r, "json_utf8_seqlen agrees with RFC 3629");
    }
    for (size_t i = 0; i < n && ok; i += r) {
        r = ref_seqlen(p + i, n - i, &cp);
        ok = r && cp >= 0x20 && !(cp >= 0x7f && cp <= 0x9f);
    }
    CHECK(api_valid_name(freq.body, 255) == ok, "api_valid_name: 1-255 bytes, UTF-8, no controls");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char idem[256];
    size_t ilen;
    int target;

    if (size < 5)
        return 0;
    fake_api_init();
    fake_db = db;
    target = data[0] % T_COUNT;
    make_row(data[1], (unsigned)data[2] << 8 | data[3]);
    ilen = data[4] < size - 5 ? data[4] : size - 5;
    memcpy(idem, data + 5, ilen);
    idem[ilen] = '\0';
    fake_request(data + 5 + ilen, size - 5 - ilen);
    if (ilen && !memchr(idem, '\0', ilen))
        fake_header("Idempotency-Key", idem);
    if (target <= T_SHARE || target == T_BATCH)
        route(target, data[1]);
    else if (target == T_JSON)
        json(data[1]);
    else
        utf8();
    return 0;
}
