/* Unit tests for services/worker/capture.c: EXIF blocks built here byte by byte (both byte
 * orders): times with sub-seconds and offsets, fallbacks, rationals, GPS references, the
 * orientation swap, and hostile input (truncated, garbage, absurd values, wrong types) that
 * must fail its own field only. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "thumb.h"

/* ---- a small TIFF/EXIF writer ---- */

enum { T_BYTE = 1, T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_RATIONAL = 5 };

struct ent {
    uint16_t tag, type;
    uint32_t count;
    uint32_t v[8]; /* numbers (rationals as num, den pairs) */
    const char *s; /* ASCII (count = strlen + 1 unless set) */
};

struct w {
    unsigned char d[4096];
    size_t len;
    int be;
};

static void put(struct w *w, size_t at, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        w->d[at + i] = (unsigned char)(w->be ? v >> (8 * (n - 1 - i)) : v >> (8 * i));
}

static int type_size(int t)
{
    return t == T_SHORT ? 2 : t == T_LONG ? 4 : t == T_RATIONAL ? 8 : 1;
}

/* The value bytes of e at off (in the data area or inline). */
static void put_value(struct w *w, size_t off, const struct ent *e)
{
    if (e->type == T_ASCII) {
        memcpy(w->d + off, e->s, e->count);
        return;
    }
    for (uint32_t i = 0; i < e->count * (e->type == T_RATIONAL ? 2 : 1); i++)
        put(w, off + (size_t)i * (e->type == T_RATIONAL ? 4 : type_size(e->type)), e->v[i],
            e->type == T_RATIONAL ? 4 : type_size(e->type));
}

/* Writes one IFD at w->len (entries, then their data); returns its offset. `link` gets the
 * offset of the entry slot (tag) for a sub-IFD pointer to patch, if asked. */
static size_t put_ifd(struct w *w, struct ent *e, int n, int extra, size_t *slots)
{
    size_t at = w->len, data = at + 2 + 12 * (size_t)(n + extra) + 4;

    put(w, at, (uint32_t)(n + extra), 2);
    for (int i = 0; i < n; i++) {
        size_t slot = at + 2 + 12 * (size_t)i;
        uint32_t bytes;
        if (e[i].type == T_ASCII && e[i].count == 0)
            e[i].count = (uint32_t)strlen(e[i].s) + 1;
        bytes = e[i].count * (uint32_t)type_size(e[i].type);
        put(w, slot, e[i].tag, 2);
        put(w, slot + 2, e[i].type, 2);
        put(w, slot + 4, e[i].count, 4);
        if (bytes <= 4) {
            put_value(w, slot + 8, &e[i]);
        } else {
            put(w, slot + 8, (uint32_t)(data - 6), 4);
            put_value(w, data, &e[i]);
            data += bytes + (bytes & 1);
        }
    }
    for (int i = 0; i < extra; i++)
        slots[i] = at + 2 + 12 * (size_t)(n + i);
    put(w, at + 2 + 12 * (size_t)(n + extra), 0, 4);
    w->len = data;
    return at;
}

static void put_link(struct w *w, size_t slot, uint16_t tag, size_t ifd)
{
    put(w, slot, tag, 2);
    put(w, slot + 2, T_LONG, 2);
    put(w, slot + 4, 1, 4);
    put(w, slot + 8, (uint32_t)(ifd - 6), 4);
}

/* "Exif\0\0" + TIFF with IFD0, the EXIF IFD and the GPS IFD (offsets from the TIFF start). */
static size_t build(struct w *w, int be, struct ent *ifd0, int n0, struct ent *exif, int ne,
                    struct ent *gps, int ng)
{
    size_t slots[2];

    memset(w, 0, sizeof *w);
    w->be = be;
    memcpy(w->d, "Exif\0\0", 6);
    memcpy(w->d + 6, be ? "MM\0*" : "II*\0", 4);
    put(w, 10, 8, 4);
    w->len = 14;
    put_ifd(w, ifd0, n0, 2, slots);
    put_link(w, slots[0], 0x8769, put_ifd(w, exif, ne, 0, NULL));
    put_link(w, slots[1], 0x8825, put_ifd(w, gps, ng, 0, NULL));
    return w->len;
}

/* ---- a full block ---- */

#define A(tag, str)                                                                                \
    {                                                                                              \
        tag, T_ASCII, 0, {0}, str                                                                  \
    }
#define R(tag, num, den)                                                                           \
    {                                                                                              \
        tag, T_RATIONAL, 1, {num, den}, NULL                                                       \
    }
#define S(tag, val)                                                                                \
    {                                                                                              \
        tag, T_SHORT, 1, {val}, NULL                                                               \
    }

struct block {
    struct ent ifd0[4], exif[9], gps[6];
};

static void full(struct block *b)
{
    struct block f = {
        .ifd0 = {A(0x010f, "Canon"), A(0x0110, "EOS R5"), S(0x0112, 6),
                 A(0x0132, "2000:01:01 00:00:00")},
        .exif = {A(0x9003, "2021:07:04 12:34:56"), A(0x9291, "123"), A(0x9011, "+02:00"),
                 A(0xa434, "RF24-70mm F2.8 L"), R(0x829d, 28, 10), R(0x829a, 1, 250),
                 S(0x8827, 400), R(0x920a, 35, 1), A(0x9004, "2021:07:04 12:35:00")},
        .gps = {A(0x0001, "S"),
                {0x0002, T_RATIONAL, 3, {33, 1, 51, 1, 2448, 100}, NULL},
                A(0x0003, "W"),
                {0x0004, T_RATIONAL, 3, {151, 1, 12, 1, 5508, 100}, NULL},
                {0x0005, T_BYTE, 1, {1}, NULL},
                R(0x0006, 125, 10)},
    };
    *b = f;
}

static void parse(struct block *b, int be, struct capture *c)
{
    struct w w;
    size_t n = build(&w, be, b->ifd0, 4, b->exif, 9, b->gps, 6);

    memset(c, 0, sizeof *c);
    capture_parse_exif(w.d, n, c);
}

static void check_full(const struct capture *c)
{
    char at[CAPTURE_TIME_MAX];

    assert_int_equal(c->errors, 0);
    assert_string_equal(c->taken_local, "2021-07-04T12:34:56.123");
    assert_string_equal(c->taken_offset, "+02:00");
    capture_taken_at(c, at);
    assert_string_equal(at, "2021-07-04T10:34:56.123Z");
    assert_int_equal(c->orientation, 6);
    assert_string_equal(c->make, "Canon");
    assert_string_equal(c->model, "EOS R5");
    assert_string_equal(c->lens, "RF24-70mm F2.8 L");
    assert_float_equal(c->f_number, 2.8, 1e-12);
    assert_float_equal(c->exposure_time, 0.004, 1e-15);
    assert_int_equal(c->iso, 400);
    assert_float_equal(c->focal_length, 35, 0);
    assert_float_equal(c->gps_lat, -(33 + 51 / 60.0 + 24.48 / 3600), 1e-12);
    assert_float_equal(c->gps_lon, -(151 + 12 / 60.0 + 55.08 / 3600), 1e-12);
    assert_float_equal(c->gps_alt, -12.5, 0);
}

static void test_full_block_both_orders(void **state)
{
    struct block b;
    struct capture c;

    full(&b);
    parse(&b, 0, &c);
    check_full(&c);
    parse(&b, 1, &c);
    check_full(&c);
}

static void test_time_independent_of_tz(void **state)
{
    struct block b;
    struct capture c;
    char at[CAPTURE_TIME_MAX];

    setenv("TZ", "America/St_Johns", 1);
    tzset();
    full(&b);
    parse(&b, 0, &c);
    capture_taken_at(&c, at);
    assert_string_equal(at, "2021-07-04T10:34:56.123Z");
    unsetenv("TZ");
    tzset();
}

static void test_time_fallbacks(void **state)
{
    struct block b;
    struct capture c;
    char at[CAPTURE_TIME_MAX];

    /* no DateTimeOriginal: DateTimeDigitized, whose offset falls back to OffsetTime */
    full(&b);
    b.exif[0].tag = 0x9999;
    b.exif[2] = (struct ent)A(0x9010, "-05:30");
    parse(&b, 0, &c);
    assert_string_equal(c.taken_local, "2021-07-04T12:35:00");
    assert_string_equal(c.taken_offset, "-05:30");
    capture_taken_at(&c, at);
    assert_string_equal(at, "2021-07-04T18:05:00.000Z");
    /* only DateTime, no offset: the clock read as UTC, zone unknown */
    full(&b);
    b.exif[0].tag = b.exif[8].tag = b.exif[2].tag = 0x9999;
    parse(&b, 0, &c);
    assert_string_equal(c.taken_local, "2000-01-01T00:00:00");
    assert_string_equal(c.taken_offset, "");
    capture_taken_at(&c, at);
    assert_string_equal(at, "2000-01-01T00:00:00.000Z");
    assert_int_equal(c.errors, 0);
}

static void test_subseconds(void **state)
{
    static const struct {
        const char *sub, *local;
        int ms;
    } cases[] = {{"5", ".5", 500},
                 {"12", ".12", 120},
                 {"123456", ".123", 123},
                 {"12x", "", 0},
                 {"  ", "", 0}};
    struct block b;
    struct capture c;
    char want[40];

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        full(&b);
        b.exif[1].s = cases[i].sub;
        parse(&b, 0, &c);
        snprintf(want, sizeof want, "2021-07-04T12:34:56%s", cases[i].local);
        assert_string_equal(c.taken_local, want);
        assert_int_equal(c.taken_ms, cases[i].ms);
        assert_int_equal(c.errors, 0);
    }
}

static void test_gps_refs(void **state)
{
    struct block b;
    struct capture c;

    full(&b);
    b.gps[0].s = "N", b.gps[2].s = "E", b.gps[4].v[0] = 0;
    parse(&b, 1, &c);
    assert_true(c.gps_lat > 33 && c.gps_lon > 151 && c.gps_alt == 12.5);
    full(&b);
    b.gps[0].tag = b.gps[2].tag = b.gps[4].tag = 0x0099; /* no references: positive */
    parse(&b, 0, &c);
    assert_true(c.gps_lat > 0 && c.gps_lon > 0 && c.gps_alt > 0);
    assert_int_equal(c.errors, 0);
}

/* One field broken at a time: that field and nothing else fails. */
static void test_absurd_values_fail_their_field(void **state)
{
    static const struct {
        int part, idx;
        struct ent e;
        enum capture_field f;
    } cases[] = {
        {1, 0, A(0x9003, "2021:13:45 25:00:00"), CAPTURE_TAKEN},
        {1, 0, A(0x9003, "2021:02:29 10:00:00"), CAPTURE_TAKEN},
        {1, 0, A(0x9003, "garbage"), CAPTURE_TAKEN},
        {1, 2, A(0x9011, "+25:00"), CAPTURE_OFFSET},
        {1, 4, R(0x829d, 28, 0), CAPTURE_F_NUMBER},
        {1, 5, R(0x829a, 1000000000, 1), CAPTURE_EXPOSURE},
        {1, 6, {0x8827, T_LONG, 1, {20000000}, NULL}, CAPTURE_ISO},
        {1, 7, A(0x920a, "35mm"), CAPTURE_FOCAL},
        {1, 3, A(0xa434, "bad\x01lens"), CAPTURE_LENS},
        {0, 0, S(0x010f, 7), CAPTURE_MAKE},
        {0, 1, A(0x0110, "caf\xc3\xa9"), CAPTURE_MODEL},
        {0, 2, S(0x0112, 9), CAPTURE_ORIENTATION},
        {2, 1, {0x0002, T_RATIONAL, 3, {95, 1, 0, 1, 0, 1}, NULL}, CAPTURE_GPS},
        {2, 3, {0x0004, T_RATIONAL, 2, {10, 1, 0, 1}, NULL}, CAPTURE_GPS},
        {2, 0, A(0x0001, "X"), CAPTURE_GPS},
        {2, 4, {0x0005, T_BYTE, 1, {2}, NULL}, CAPTURE_GPS_ALT},
    };
    struct block b;
    struct capture c, ok;

    full(&b);
    parse(&b, 0, &ok);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        full(&b);
        struct ent *part = cases[i].part == 0 ? b.ifd0 : cases[i].part == 1 ? b.exif : b.gps;
        part[cases[i].idx] = cases[i].e;
        if (cases[i].f == CAPTURE_TAKEN) /* else DateTimeDigitized stands in */
            b.exif[8].tag = b.ifd0[3].tag = 0x9999;
        parse(&b, 0, &c);
        assert_int_equal(c.errors, 1u << cases[i].f);
        unsigned lost = cases[i].f == CAPTURE_GPS ? 1u << CAPTURE_GPS_ALT : 0;
        if (cases[i].f != CAPTURE_OFFSET)
            assert_int_equal(c.have, ok.have & ~(1u << cases[i].f) & ~lost);
    }
}

static void test_all_zero_time_is_absent(void **state)
{
    struct block b;
    struct capture c;

    full(&b);
    b.exif[0].s = "0000:00:00 00:00:00";
    b.exif[8].s = "    :  :     :  :  ";
    b.ifd0[3].s = "";
    parse(&b, 0, &c);
    assert_false(CAPTURE_HAS(&c, CAPTURE_TAKEN));
    assert_int_equal(c.errors, 0);
}

static void test_missing_fields(void **state)
{
    struct ent ifd0[1] = {A(0x010f, "Canon")};
    struct w w;
    struct capture c = {0};
    size_t n = build(&w, 0, ifd0, 1, NULL, 0, NULL, 0);

    capture_parse_exif(w.d, n, &c);
    assert_int_equal(c.have, 1u << CAPTURE_MAKE);
    assert_int_equal(c.errors, 0);
    /* the TIFF structure alone (PNG eXIf, WebP) reads the same */
    memset(&c, 0, sizeof c);
    capture_parse_exif(w.d + 6, n - 6, &c);
    assert_int_equal(c.have, 1u << CAPTURE_MAKE);
}

static void test_truncated_and_garbage(void **state)
{
    struct block b;
    struct capture c;
    struct w w;
    size_t n;
    unsigned seed = 7;
    int flagged = 0;

    full(&b);
    n = build(&w, 0, b.ifd0, 4, b.exif, 9, b.gps, 6);
    for (size_t cut = 0; cut < n; cut++) {
        memset(&c, 0, sizeof c);
        capture_parse_exif(w.d, cut, &c);
        flagged += (c.errors >> CAPTURE_EXIF) & 1;
        assert_true(strlen(c.make) < CAPTURE_STR_MAX);
    }
    assert_true(flagged > (int)n / 2);
    for (int round = 0; round < 2000; round++) {
        unsigned char g[512];
        for (size_t i = 0; i < sizeof g; i++)
            g[i] = (unsigned char)((seed = seed * 1103515245 + 12345) >> 16);
        memcpy(g, round % 2 ? "Exif\0\0II*\0\x08\0\0\0" : "Exif\0\0MM\0*\0\0\0\x08", 14);
        memset(&c, 0, sizeof c);
        capture_parse_exif(g, sizeof g, &c);
        /* flipped bytes in a real block: never more than the fields it had */
        memcpy(g, w.d, n < sizeof g ? n : sizeof g);
        g[(seed >> 8) % n] ^= (unsigned char)(seed | 1);
        memset(&c, 0, sizeof c);
        capture_parse_exif(g, n, &c);
    }
    memset(&c, 0, sizeof c);
    capture_parse_exif((const unsigned char *)"Exif\0\0garbage", 13, &c);
    assert_int_equal(c.errors, 1u << CAPTURE_EXIF);
    assert_int_equal(c.have, 0);
}

static void test_params(void **state)
{
    struct block b;
    struct capture c;
    struct capture_params cp;
    const char *p[CAPTURE_NPARAMS];

    full(&b);
    b.gps[1].v[1] = 0; /* latitude unreadable: no location at all */
    parse(&b, 0, &c);
    assert_int_equal(capture_params(&c, &cp, p), 0);
    assert_string_equal(p[0], "2021-07-04T12:34:56.123");
    assert_string_equal(p[1], "+02:00");
    assert_string_equal(p[2], "2021-07-04T10:34:56.123Z");
    assert_null(p[3]); /* no size: the header was not read */
    assert_string_equal(p[5], "6");
    assert_string_equal(p[11], "2.7999999999999998");
    assert_string_equal(p[13], "400");
    assert_null(p[15]);
    assert_null(p[16]);
    assert_null(p[17]);
    assert_string_equal(p[18], "{gps}");
    assert_string_equal(p[19], "1");
    capture_params_fini(&cp);
}

/* ---- through libvips ---- */

static void read_mem(const void *data, size_t len, struct capture *c)
{
    VipsSource *src = vips_source_new_from_memory(data, len);

    assert_non_null(src);
    capture_read(src, c);
    g_object_unref(src);
}

static void test_orientation_swaps_size(void **state)
{
    VipsImage *im = NULL;
    struct capture c;
    void *jpg = NULL;
    size_t len = 0;

    assert_int_equal(vips_black(&im, 300, 200, "bands", 3, NULL), 0);
    vips_image_set_int(im, VIPS_META_ORIENTATION, 6);
    assert_int_equal(vips_jpegsave_buffer(im, &jpg, &len, NULL), 0);
    g_object_unref(im);
    read_mem(jpg, len, &c);
    assert_int_equal(c.orientation, 6);
    assert_int_equal(c.width, 200);
    assert_int_equal(c.height, 300);
    assert_string_equal(c.format, "jpeg");
    assert_string_equal(c.color_space, "srgb");
    g_free(jpg);
}

static void test_unreadable(void **state)
{
    struct capture c;

    read_mem("this is not an image at all", 27, &c);
    assert_int_equal(c.errors, 1u << CAPTURE_UNREADABLE);
    assert_int_equal(c.have, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_block_both_orders),
        cmocka_unit_test(test_time_independent_of_tz),
        cmocka_unit_test(test_time_fallbacks),
        cmocka_unit_test(test_subseconds),
        cmocka_unit_test(test_gps_refs),
        cmocka_unit_test(test_absurd_values_fail_their_field),
        cmocka_unit_test(test_all_zero_time_is_absent),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_orientation_swaps_size),
        cmocka_unit_test(test_unreadable),
    };

    if (thumb_init("test_capture", 1) < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
