/* Unit tests for services/worker/thumb.c and rsrc.c: variants from images made in memory
 * with libvips, read through the blocked custom source (block reads counted, never the
 * whole file), EXIF rotation, 16-bit alpha, stripped metadata, and clean failures for
 * non-images, truncated files, blocked loaders, failed reads and a decompression bomb. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "thumb.h"

struct mem {
    const unsigned char *data;
    size_t len;
    int fail_at; /* fetch number that fails (1-based), 0 never */
    int calls;
};

static int mem_fetch(void *ud, long long off, size_t len, buf *out, char *err)
{
    struct mem *m = ud;

    if (++m->calls == m->fail_at) {
        err_set(err, "injected read failure");
        return -1;
    }
    if (off < 0 || (size_t)off + len > m->len) {
        err_set(err, "range outside the object");
        return -1;
    }
    return buf_append(out, m->data + off, len);
}

static struct variant V[3] = {
    {"preview", 2048, VARIANT_WEBP, 80, 4},
    {"thumbnail_large", 1024, VARIANT_WEBP, 80, 4},
    {"thumbnail_small", 256, VARIANT_WEBP, 80, 4},
};

/* Builds the variants of data through an rsrc with the given block size. */
static int build(const void *data, size_t len, size_t block, struct thumb_out *out, size_t n,
                 struct rsrc *r, struct mem *m, char *err)
{
    VipsSource *src;
    int rc;

    m->data = data;
    m->len = len;
    *r = (struct rsrc){.fetch = mem_fetch, .ud = m, .size = (long long)len, .block_size = block};
    src = rsrc_source(r);
    assert_non_null(src);
    rc = thumb_build(src, V, n, 100000000, out, err);
    g_object_unref(src);
    return rc;
}

/* A w x h noisy sRGB (or RGBA) image encoded with saver "jpeg"/"png"; g_free the result. */
static void *make_image(int w, int h, int bands, int orientation, const char *fmt, size_t *len)
{
    VipsImage *noise, *u, *out;
    void *data = NULL;
    int rc;

    assert_int_equal(vips_gaussnoise(&noise, w, h, "mean", 128.0, "sigma", 40.0, NULL), 0);
    assert_int_equal(vips_cast_uchar(noise, &u, NULL), 0);
    VipsImage *b[4] = {u, u, u, u};
    assert_int_equal(vips_bandjoin(b, &out, bands, NULL), 0);
    out->Type = VIPS_INTERPRETATION_sRGB;
    if (orientation)
        vips_image_set_int(out, VIPS_META_ORIENTATION, orientation);
    vips_image_set_string(out, "exif-ifd0-Make", "TestCam");
    if (strcmp(fmt, "jpeg") == 0)
        rc = vips_jpegsave_buffer(out, &data, len, "Q", 90, NULL);
    else
        rc = vips_pngsave_buffer(out, &data, len, "compression", 1, NULL);
    assert_int_equal(rc, 0);
    g_object_unref(noise);
    g_object_unref(u);
    g_object_unref(out);
    return data;
}

static VipsImage *decode(const struct thumb_out *o)
{
    VipsImage *im = vips_image_new_from_buffer(o->data, o->len, "", NULL);

    assert_non_null(im);
    assert_int_equal(im->Xsize, o->width);
    assert_int_equal(im->Ysize, o->height);
    return im;
}

static void test_landscape_jpeg(void **state)
{
    size_t len;
    void *jpg = make_image(1200, 800, 3, 0, "jpeg", &len);
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(build(jpg, len, 64 * 1024, out, 3, &r, &m, err), THUMB_OK);
    /* never enlarged; fits the box; aspect kept */
    assert_int_equal(out[0].width, 1200);
    assert_int_equal(out[0].height, 800);
    assert_int_equal(out[1].width, 1024);
    assert_int_equal(out[1].height, 683);
    assert_int_equal(out[2].width, 256);
    assert_int_equal(out[2].height, 171);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(out[i].data, "RIFF", 4);
        assert_memory_equal((char *)out[i].data + 8, "WEBP", 4);
        VipsImage *im = decode(&out[i]);
        assert_int_equal(vips_image_get_typeof(im, VIPS_META_EXIF_NAME), 0); /* stripped */
        g_object_unref(im);
    }
    /* streamed in 64 KiB blocks: each block read once (header, then the decode) */
    assert_true(r.fetches <= (int)(len / (64 * 1024)) + 2);
    assert_true(r.block.cap <= 2 * 64 * 1024 + 64);
    thumb_out_free(out, 3);
    rsrc_fini(&r);
    g_free(jpg);
}

static void test_exif_orientation_applied(void **state)
{
    size_t len;
    void *jpg = make_image(1200, 800, 3, 6, "jpeg", &len);
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(build(jpg, len, 1 << 20, out, 3, &r, &m, err), THUMB_OK);
    assert_int_equal(out[0].width, 800); /* upright: width and height swapped */
    assert_int_equal(out[0].height, 1200);
    assert_int_equal(out[2].width, 171);
    assert_int_equal(out[2].height, 256);
    VipsImage *im = decode(&out[2]);
    assert_int_equal(vips_image_get_typeof(im, VIPS_META_ORIENTATION), 0);
    g_object_unref(im);
    thumb_out_free(out, 3);
    rsrc_fini(&r);
    g_free(jpg);
}

static void test_png16_alpha(void **state)
{
    VipsImage *noise, *rgba, *u16;
    void *png = NULL;
    size_t len;
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(vips_gaussnoise(&noise, 640, 480, "mean", 30000.0, "sigma", 8000.0, NULL), 0);
    VipsImage *b[4] = {noise, noise, noise, noise};
    assert_int_equal(vips_bandjoin(b, &rgba, 4, NULL), 0);
    assert_int_equal(vips_cast_ushort(rgba, &u16, NULL), 0);
    u16->Type = VIPS_INTERPRETATION_RGB16;
    assert_int_equal(vips_pngsave_buffer(u16, &png, &len, "compression", 1, NULL), 0);
    assert_int_equal(build(png, len, 1 << 20, out, 3, &r, &m, err), THUMB_OK);
    assert_int_equal(out[2].width, 256);
    assert_int_equal(out[2].height, 192);
    VipsImage *im = decode(&out[2]);
    assert_int_equal(im->Bands, 4); /* alpha kept */
    assert_int_equal(im->BandFmt, VIPS_FORMAT_UCHAR);
    g_object_unref(im);
    thumb_out_free(out, 3);
    rsrc_fini(&r);
    g_object_unref(noise);
    g_object_unref(rgba);
    g_object_unref(u16);
    g_free(png);
}

static void test_jpeg_variant_flattens_alpha(void **state)
{
    size_t len;
    void *png = make_image(300, 200, 4, 0, "png", &len);
    struct variant jv = {"small_jpeg", 128, VARIANT_JPEG, 85, 4};
    struct thumb_out out[1];
    struct rsrc r = {.fetch = mem_fetch, .size = (long long)len, .block_size = 1 << 20};
    struct mem m = {.data = png, .len = len};
    char err[ERR_MAX] = "";
    VipsSource *src;

    r.ud = &m;
    src = rsrc_source(&r);
    assert_int_equal(thumb_build(src, &jv, 1, 100000000, out, err), THUMB_OK);
    assert_memory_equal(out[0].data, "\xff\xd8", 2);
    VipsImage *im = decode(&out[0]);
    assert_int_equal(im->Bands, 3);
    assert_int_equal(out[0].width, 128);
    assert_int_equal(out[0].height, 85);
    g_object_unref(im);
    thumb_out_free(out, 1);
    g_object_unref(src);
    rsrc_fini(&r);
    g_free(png);
}

static void test_not_an_image(void **state)
{
    static const char text[] = "This is not an image, whatever its name says.\n";
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(build(text, sizeof text - 1, 4096 * 16, out, 3, &r, &m, err), THUMB_BAD_INPUT);
    assert_false(r.failed);
    assert_non_null(strstr(err, "not a supported image"));
    rsrc_fini(&r);
}

static void test_truncated_jpeg(void **state)
{
    size_t len;
    void *jpg = make_image(1200, 800, 3, 0, "jpeg", &len);
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(build(jpg, len * 6 / 10, 1 << 20, out, 3, &r, &m, err), THUMB_BAD_INPUT);
    assert_false(r.failed);
    rsrc_fini(&r);
    g_free(jpg);
}

static void test_blocked_loader(void **state)
{
    /* PPM is a format libvips reads, but not one the worker accepts */
    static const char ppm[] = "P6\n2 2\n255\n\x10\x20\x30\x10\x20\x30\x10\x20\x30\x10\x20\x30";
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";

    assert_int_equal(build(ppm, sizeof ppm - 1, 4096 * 16, out, 3, &r, &m, err), THUMB_BAD_INPUT);
    rsrc_fini(&r);
}

static void test_read_failure_is_the_source(void **state)
{
    size_t len;
    void *jpg = make_image(1200, 800, 3, 0, "jpeg", &len);
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {.fail_at = 2};
    char err[ERR_MAX] = "";

    /* the second block read fails mid-decode: an error, flagged as the source's fault */
    assert_int_not_equal(build(jpg, len, 64 * 1024, out, 3, &r, &m, err), THUMB_OK);
    assert_true(r.failed);
    assert_non_null(strstr(r.err, "injected"));
    rsrc_fini(&r);
    g_free(jpg);
}

static uint32_t crc32_png(const unsigned char *p, size_t n, uint32_t c)
{
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static void put_be32(buf *b, uint32_t v)
{
    unsigned char be[4] = {v >> 24, v >> 16, v >> 8, v};
    assert_int_equal(buf_append(b, be, 4), 0);
}

static void png_chunk(buf *b, const char *type, const void *data, size_t len)
{
    uint32_t crc = crc32_png((const unsigned char *)type, 4, 0);

    crc = crc32_png(data, len, crc);
    put_be32(b, (uint32_t)len);
    assert_int_equal(buf_append(b, type, 4), 0);
    assert_int_equal(buf_append(b, data, len), 0);
    put_be32(b, crc);
}

static void test_decompression_bomb(void **state)
{
    /* 50,000 x 50,000 8-bit grey PNG header with a little (stored) zlib data: refused from
     * the header alone, before any pixel is decoded */
    unsigned char ihdr[13] = {0, 0, 0xc3, 0x50, 0, 0, 0xc3, 0x50, 8, 0, 0, 0, 0};
    /* zlib header, one final stored block of 16 zero bytes, adler32 of them */
    unsigned char z[2 + 5 + 16 + 4] = {0x78, 0x01, 0x01, 16, 0, 0xef, 0xff};
    buf png = {0};
    struct thumb_out out[3];
    struct rsrc r;
    struct mem m = {0};
    char err[ERR_MAX] = "";
    double t0 = util_now_mono();

    memcpy(z + 23, "\x00\x10\x00\x01", 4); /* adler32: a = 1, b = 16 */
    assert_int_equal(buf_append(&png, "\x89PNG\r\n\x1a\n", 8), 0);
    png_chunk(&png, "IHDR", ihdr, sizeof ihdr);
    png_chunk(&png, "IDAT", z, sizeof z);
    png_chunk(&png, "IEND", "", 0);
    assert_int_equal(build(png.data, png.len, 1 << 20, out, 3, &r, &m, err), THUMB_TOO_LARGE);
    assert_non_null(strstr(err, "50000x50000"));
    assert_true(util_now_mono() - t0 < 2.0);
    rsrc_fini(&r);
    buf_free(&png);
}

static void test_seek_and_blocks(void **state)
{
    unsigned char data[300];
    struct mem m = {.data = data, .len = sizeof data};
    struct rsrc r = {.fetch = mem_fetch, .ud = &m, .size = sizeof data, .block_size = 128};
    unsigned char got[300];
    VipsSource *src;

    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    src = rsrc_source(&r);
    assert_int_equal(vips_source_seek(src, 250, SEEK_SET), 250);
    /* reads stop at block ends ([128, 256) then [256, 300)); libvips loops as needed */
    assert_int_equal(vips_source_read(src, got, 100), 6);
    assert_memory_equal(got, data + 250, 6);
    assert_int_equal(vips_source_read(src, got, 100), 44);
    assert_memory_equal(got, data + 256, 44);
    assert_int_equal(vips_source_read(src, got, 100), 0); /* end */
    assert_int_equal(vips_source_seek(src, -300, SEEK_END), 0);
    assert_int_equal(vips_source_read(src, got, 200), 128);
    assert_memory_equal(got, data, 128);
    assert_int_equal(r.fetches, 3);
    assert_int_equal(vips_source_seek(src, 301, SEEK_SET), -1);
    g_object_unref(src);
    rsrc_fini(&r);
}

static void test_webp_strip_chunks(void **state)
{
    /* RIFF/WEBP with VP8X (EXIF + XMP + alpha flags), an odd-sized EXIF chunk (padded), a
     * VP8 chunk and an XMP chunk: only VP8X (flags cleared but alpha) and VP8 remain */
    unsigned char d[] = "RIFF\0\0\0\0WEBP"
                        "VP8X\x0a\0\0\0\x1c\0\0\0\x01\0\0\x01\0\0"
                        "EXIF\x03\0\0\0abc\0"
                        "VP8 \x04\0\0\0wxyz"
                        "XMP \x02\0\0\0<x";
    size_t len = sizeof d - 1;
    unsigned char want[] = "RIFF\x22\0\0\0WEBP"
                           "VP8X\x0a\0\0\0\x10\0\0\0\x01\0\0\x01\0\0"
                           "VP8 \x04\0\0\0wxyz";

    assert_int_equal(thumb_webp_strip(d, &len), 0);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(d, want, len);
    len = 8;
    assert_int_equal(thumb_webp_strip((unsigned char *)"RIFFxxxx", &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_landscape_jpeg),
        cmocka_unit_test(test_exif_orientation_applied),
        cmocka_unit_test(test_png16_alpha),
        cmocka_unit_test(test_jpeg_variant_flattens_alpha),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_blocked_loader),
        cmocka_unit_test(test_read_failure_is_the_source),
        cmocka_unit_test(test_decompression_bomb),
        cmocka_unit_test(test_seek_and_blocks),
        cmocka_unit_test(test_webp_strip_chunks),
    };
    int rc;

    if (thumb_init("test_thumb", 1) < 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    thumb_shutdown();
    return rc;
}
