/* fuzz_cursor: the opaque cursors clients hand back: sync cursors (services/api/sync.c) from
 * ?since= and Last-Event-ID, the image list's keyset cursor, and base64url under them. */
#include "api_fakes.c"
#include "sync.h"

/* Input: byte 0 picks the target, byte 1 holds options (a limit), the rest is the text.
 *   0 sync_cursor_decode, round trip, and the stream's 128-byte copy of Last-Event-ID
 *   1 GET /sync?since=TEXT   2 GET /sync/stream with Last-Event-ID: TEXT
 *   3 GET /images?cursor=TEXT   4 GET /shared?cursor=TEXT
 *   5 an image cursor made from a fuzzed (timestamp, id) must come back as the same pair
 *   6 util_b64url_decode / util_b64url_encode against a reference */
enum { T_SYNC, T_SINCE, T_LAST_EVENT_ID, T_IMAGES, T_SHARED, T_KEYSET, T_B64, T_COUNT };


static const char *text(void)
{
    return freq.body;
}

static int same_cursor(const struct sync_cursor *a, const struct sync_cursor *b)
{
    return a->snapshot == b->snapshot && a->fresh == b->fresh && a->txid == b->txid &&
           a->seq == b->seq && !strcmp(a->after, b->after);
}

static void sync_cursor(void)
{
    struct sync_cursor cur, again;
    char copy[128], *enc;

    if (sync_cursor_decode(text(), &cur) < 0)
        return;
    CHECK(cur.seq >= 0 && (!cur.after[0] || util_is_uuid(cur.after)), "decoded fields");
    CHECK(!cur.fresh || cur.snapshot, "a fresh start is a snapshot");
    /* sync_stream keeps Last-Event-ID in char[128]; the worker decodes that copy */
    util_strlcpy(copy, sizeof copy, text());
    CHECK(sync_cursor_decode(copy, &again) == 0 && same_cursor(&cur, &again),
          "a Last-Event-ID accepted at connect decodes the same from the stream's copy");
    if (cur.fresh)
        return;
    enc = sync_cursor_encode(&cur);
    CHECK(enc && strlen(enc) < sizeof copy, "an issued cursor fits the stream's copy");
    CHECK(sync_cursor_decode(enc, &again) == 0 && same_cursor(&cur, &again), "round trip");
    free(enc);
}

/* ---- what reaches the database ---- */

static struct {
    int calls;
    char ts[128], id[64];
} seen;

static PGresult *db(const char *stmt, int n, const char *const *p)
{
    if (!strcmp(stmt, "image_list") || !strcmp(stmt, "image_list_shared")) {
        CHECK(n == 5, "listing parameters");
        CHECK(!p[3] || util_is_uuid(p[3]), "the cursor's id is a UUID");
        CHECK(!p[2] || p[3], "a cursor's timestamp comes with an id (\"|<id>\" is the start)");
        CHECK(!p[2] || (strlen(p[2]) < 64 && !strchr(p[2], '|')), "the timestamp part");
        seen.calls++;
        util_strlcpy(seen.ts, sizeof seen.ts, p[2]);
        util_strlcpy(seen.id, sizeof seen.id, p[3]);
    }
    return NULL; /* the statement fails: 500 after the cursor was accepted */
}

static void listing(int target, unsigned opt)
{
    char limit[8];
    int status;

    snprintf(limit, sizeof limit, "%u", opt % 220);
    fake_query("cursor", text());
    if (opt & 0x80)
        fake_query("limit", limit);
    if (opt & 0x40)
        fake_query("status", opt & 0x20 ? "deleted" : "active");
    memset(&seen, 0, sizeof seen);
    status = fake_call("GET", target == T_IMAGES ? "/images" : "/shared");
    CHECK(status == 400 || status == 500, "refused (400) or accepted and sent on (500 here)");
    CHECK((status == 500) == (seen.calls == 1), "accepted cursors reach the listing");
}

/* A cursor as images.c makes it: base64url("<ts>|<id>"). */
static void keyset(const uint8_t *p, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    char id[37], ts[64], raw[128], *cur;
    size_t tl;
    int status;

    if (n < 17)
        return;
    for (int i = 0, k = 0; i < 36; i++) { /* a UUID from 16 bytes */
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            id[i] = '-';
            continue;
        }
        id[i] = hexd[(p[k / 2] >> (k % 2 ? 0 : 4)) & 15];
        k++;
    }
    id[36] = '\0';
    tl = p[16] % 40 + 1 < n - 17 ? p[16] % 40 + 1 : n - 17;
    for (size_t i = 0; i < tl; i++) /* timestamps as to_char renders them, and then some */
        ts[i] = "0123456789-:TZ. +"[p[17 + i] % 17];
    ts[tl] = '\0';
    snprintf(raw, sizeof raw, "%s|%s", ts, id);
    cur = util_b64url_encode((const unsigned char *)raw, strlen(raw));
    if (!cur)
        abort();
    fake_query("cursor", cur);
    memset(&seen, 0, sizeof seen);
    status = fake_call("GET", "/images");
    CHECK(status == 500 && seen.calls == 1, "a cursor the server made is accepted");
    CHECK(!strcmp(seen.ts, ts) && !strcmp(seen.id, id), "and comes back as the same pair");
    free(cur);
}

static int ref_b64val(unsigned char c)
{
    return c >= 'A' && c <= 'Z'   ? c - 'A'
           : c >= 'a' && c <= 'z' ? c - 'a' + 26
           : c >= '0' && c <= '9' ? c - '0' + 52
           : c == '-'             ? 62
           : c == '_'             ? 63
                                  : -1;
}

/* base64url, padding optional, canonical (unused trailing bits zero), nothing else. */
static int ref_b64(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;

    while (n && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = ref_b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8)
            bits -= 8, out[k++] = (unsigned char)(acc >> bits);
    }
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    *outlen = k;
    return 0;
}

static void b64(const uint8_t *p, size_t n)
{
    unsigned char *got = NULL, *want = malloc(n + 1);
    size_t gl = 0, wl = 0;
    int rc = util_b64url_decode(text(), freq.bodylen, &got, &gl), ref;
    char *enc;

    if (!want)
        abort();
    ref = ref_b64(text(), freq.bodylen, want, &wl);
    CHECK(rc == ref, "base64url acceptance");
    if (rc == 0) {
        CHECK(gl == wl && !memcmp(got, want, gl), "base64url bytes");
        free(got);
    }
    enc = util_b64url_encode(p, n); /* the raw input as bytes */
    CHECK(enc && strlen(enc) == (n * 4 + 2) / 3, "encoded length");
    CHECK(util_b64url_decode(enc, strlen(enc), &got, &gl) == 0 && gl == n && !memcmp(got, p, n),
          "encode then decode");
    free(got);
    free(enc);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int target, status;
    unsigned opt;
    struct sync_cursor cur;
    char limit[8];

    if (size < 2)
        return 0;
    fake_api_init();
    fake_db = db;
    target = data[0] % T_COUNT;
    opt = data[1];
    /* the text: NUL-free, as query values (%00 is refused) and header values are */
    fake_request(data + 2, size - 2);
    for (size_t i = 0; i < freq.bodylen; i++)
        if (!freq.body[i])
            freq.body[i] = '0';
    switch (target) {
    case T_SYNC:
        sync_cursor();
        break;
    case T_SINCE:
        fake_query("since", text());
        snprintf(limit, sizeof limit, "%u", opt * 5 % 1100);
        if (opt & 1)
            fake_query("limit", limit);
        status = fake_call("GET", "/sync");
        CHECK(status == 400 || status == 500, "since: refused, or accepted and sent on");
        if (status == 500 && strlen(text()) < 128)
            CHECK(sync_cursor_decode(text(), &cur) == 0, "only decodable cursors go on");
        break;
    case T_LAST_EVENT_ID:
        fake_header("Last-Event-ID", text());
        status = fake_call("GET", "/sync/stream");
        CHECK((status == 200) == (sync_cursor_decode(text(), &cur) == 0),
              "a stream opens exactly for a decodable Last-Event-ID");
        CHECK(status != 200 || freq.streamed, "a 200 is a stream");
        break;
    case T_IMAGES:
    case T_SHARED:
        listing(target, opt);
        break;
    case T_KEYSET:
        keyset(data + 2, size - 2);
        break;
    case T_B64:
        b64(data + 2, size - 2);
        break;
    }
    return 0;
}
