/* thumb: libvips set-up and variant building: header check against the pixel limit, one
 * shrink-on-load thumbnail for the largest variant, the smaller ones resized from it. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "thumb.h"

#define THUMB_MMAP_THRESHOLD (256 * 1024)
#define THUMB_ARENAS 4
#define THUMB_TRIM_SECS 10.0 /* free heap pages go back to the system at most this often */

/* Loaders we accept; everything else (svg, pdf, magick, matlab, fits, ...) stays blocked. */
static const char *const thumb_loaders[] = {
    "VipsForeignLoadJpeg", "VipsForeignLoadPng",  "VipsForeignLoadNsgif",
    "VipsForeignLoadWebp", "VipsForeignLoadTiff", "VipsForeignLoadHeif",
};

/* libvips and GLib messages become JSON log lines (warnings are per-image noise: debug). */
static void thumb_glog(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    enum log_level lvl = level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? LOG_ERROR : LOG_DEBUG;

    if (log_enabled(lvl))
        log_kv(lvl, NULL, "vips_message", msg, "domain", domain ? domain : "", (char *)NULL);
}

int thumb_init(const char *argv0, int concurrency)
{
    /* Decoded images are large and short-lived: a fixed mmap threshold gives each one its
     * own mapping, returned at free. glibc's default raises the threshold after every large
     * free, and then images land on the heap and fragment it (soak: RSS kept creeping). */
    (void)mallopt(M_MMAP_THRESHOLD, THUMB_MMAP_THRESHOLD);
    (void)mallopt(M_ARENA_MAX, THUMB_ARENAS); /* few arenas: less memory stranded in each */
    if (VIPS_INIT(argv0 ? argv0 : "pixplane-worker"))
        return -1;
    g_log_set_handler("VIPS", G_LOG_LEVEL_MASK, thumb_glog, NULL);
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_MASK, thumb_glog, NULL);
    vips_cache_set_max(0); /* every image is new: a cache only holds memory */
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    if (concurrency > 0)
        vips_concurrency_set(concurrency);
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < ARRAY_LEN(thumb_loaders); i++)
        vips_operation_block_set(thumb_loaders[i], FALSE);
    return 0;
}

void thumb_shutdown(void)
{
    vips_shutdown();
}

/* First line of libvips' error buffer into err (and clears the buffer). */
static int thumb_fail(int rc, char *err, const char *what)
{
    char *e = vips_error_buffer_copy();
    size_t n = e ? strcspn(e, "\n") : 0;

    err_set(err, "%s: %.*s", what, (int)(n > 200 ? 200 : n), n ? e : "unknown error");
    g_free(e);
    return rc;
}

static int thumb_check_header(VipsSource *src, long long max_pixels, char *err)
{
    VipsImage *im = vips_image_new_from_source(src, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                               VIPS_FAIL_ON_ERROR, NULL);
    long long px;

    if (!im)
        return thumb_fail(THUMB_BAD_INPUT, err, "not a supported image");
    px = (long long)im->Xsize * im->Ysize;
    if (px > max_pixels) {
        err_set(err, "image too large: %dx%d is %lld pixels (limit %lld)", im->Xsize, im->Ysize, px,
                max_pixels);
        g_object_unref(im);
        return THUMB_TOO_LARGE;
    }
    g_object_unref(im);
    return THUMB_OK;
}

/* 8-bit sRGB (with alpha if there was alpha); takes over in. */
static VipsImage *thumb_srgb8(VipsImage *in)
{
    VipsImage *out = NULL, *c;

    if (in->Type == VIPS_INTERPRETATION_sRGB && in->BandFmt == VIPS_FORMAT_UCHAR)
        return in;
    if (vips_colourspace(in, &out, VIPS_INTERPRETATION_sRGB, NULL)) {
        g_object_unref(in);
        return NULL;
    }
    g_object_unref(in);
    if (out->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(out, &c, NULL)) {
            g_object_unref(out);
            return NULL;
        }
        g_object_unref(out);
        out = c;
    }
    return out;
}

/* Removes every metadata field (EXIF with GPS, XMP, IPTC, ICC, orientation, page layout):
 * the savers' "strip" is not relied on alone (libvips 8.14's webpsave still wrote EXIF). im
 * must be private to the caller (a fresh memory image). */
static void thumb_strip(VipsImage *im)
{
    gchar **fields = vips_image_get_fields(im);

    for (gchar **f = fields; f && *f; f++)
        vips_image_remove(im, *f);
    g_strfreev(fields);
}

/* The largest variant, decoded into memory, without profile or page metadata. */
static int thumb_first(VipsSource *src, int box, VipsImage **mem, char *err)
{
    VipsImage *t = NULL;

    *mem = NULL;
    if (vips_thumbnail_source(src, &t, box, "height", box, "size", VIPS_SIZE_DOWN, "export_profile",
                              "srgb", "option_string", "fail_on=error", NULL))
        return thumb_fail(THUMB_BAD_INPUT, err, "cannot decode");
    if (!(t = thumb_srgb8(t)))
        return thumb_fail(THUMB_BAD_INPUT, err, "cannot convert to sRGB");
    *mem = vips_image_copy_memory(t);
    g_object_unref(t);
    if (!*mem)
        return thumb_fail(THUMB_BAD_INPUT, err, "cannot decode");
    thumb_strip(*mem);
    return THUMB_OK;
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24;
}

/* Drops EXIF, XMP and ICCP chunks from a WebP file in place (libvips 8.14's webpsave writes
 * a synthesized EXIF block even with strip set) and clears their VP8X flags. 0 or -1 if the
 * data is not a RIFF/WEBP file. */
int thumb_webp_strip(unsigned char *d, size_t *len)
{
    size_t in = 12, out = 12;

    if (*len < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WEBP", 4) != 0)
        return -1;
    while (in + 8 <= *len) {
        size_t csize = le32(d + in + 4), total = 8 + csize + (csize & 1);

        if (total > *len - in)
            return -1;
        if (memcmp(d + in, "VP8X", 4) == 0 && csize >= 1)
            d[in + 8] &= (unsigned char)~(0x20 | 0x08 | 0x04); /* ICC, EXIF, XMP */
        if (memcmp(d + in, "EXIF", 4) != 0 && memcmp(d + in, "XMP ", 4) != 0 &&
            memcmp(d + in, "ICCP", 4) != 0) {
            memmove(d + out, d + in, total);
            out += total;
        }
        in += total;
    }
    put_le32(d + 4, (uint32_t)(out - 8));
    *len = out;
    return 0;
}

static int thumb_encode(VipsImage *im, const struct variant *v, struct thumb_out *o)
{
    double white[3] = {255, 255, 255};
    VipsImage *flat = NULL;
    int rc;

    if (v->format == VARIANT_WEBP) {
        if (vips_webpsave_buffer(im, &o->data, &o->len, "Q", v->quality, "effort", v->effort,
                                 "strip", TRUE, NULL))
            return -1;
        if (thumb_webp_strip(o->data, &o->len) == 0)
            return 0;
        vips_error("thumb", "webpsave wrote something that is not a WebP file");
        return -1;
    }
    if (vips_image_hasalpha(im)) {
        VipsArrayDouble *bg = vips_array_double_new(white, 3);

        rc = vips_flatten(im, &flat, "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (rc)
            return -1;
        im = flat;
    }
    rc = vips_jpegsave_buffer(im, &o->data, &o->len, "Q", v->quality, "strip", TRUE,
                              "optimize_coding", TRUE, NULL);
    if (flat)
        g_object_unref(flat);
    return rc;
}

static int thumb_variant(VipsImage *mem, const struct variant *v, struct thumb_out *o, char *err)
{
    VipsImage *im = mem;
    int rc;

    if (mem->Xsize > v->box || mem->Ysize > v->box) {
        if (vips_thumbnail_image(mem, &im, v->box, "height", v->box, "size", VIPS_SIZE_DOWN, NULL))
            return thumb_fail(THUMB_ERROR, err, "cannot resize");
    } else {
        g_object_ref(im);
    }
    rc = thumb_encode(im, v, o);
    o->width = im->Xsize;
    o->height = im->Ysize;
    g_object_unref(im);
    return rc ? thumb_fail(THUMB_ERROR, err, "cannot encode") : THUMB_OK;
}

/* Hands free heap pages back to the system after an image, at most every THUMB_TRIM_SECS:
 * libvips' buffers differ in size from image to image, and what they leave free between
 * live blocks otherwise stays resident (soak: worker RSS crept about 400 KiB a minute). */
static void thumb_trim(void)
{
    static long long last; /* ms on the monotonic clock */
    long long now = (long long)(util_now_mono() * 1000),
              prev = __atomic_load_n(&last, __ATOMIC_RELAXED);

    if (now - prev >= THUMB_TRIM_SECS * 1000 &&
        __atomic_compare_exchange_n(&last, &prev, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        (void)malloc_trim(0);
}

int thumb_build(VipsSource *src, const struct variant *v, size_t n, long long max_pixels,
                struct thumb_out *out, char *err)
{
    VipsImage *mem = NULL;
    int rc;

    memset(out, 0, n * sizeof *out);
    if (!n)
        return THUMB_OK;
    if ((rc = thumb_check_header(src, max_pixels, err)) != THUMB_OK)
        return rc;
    if ((rc = thumb_first(src, v[0].box, &mem, err)) != THUMB_OK)
        return rc;
    for (size_t i = 0; i < n && rc == THUMB_OK; i++)
        rc = thumb_variant(mem, &v[i], &out[i], err);
    g_object_unref(mem);
    thumb_trim();
    if (rc != THUMB_OK)
        thumb_out_free(out, n);
    return rc;
}

void thumb_out_free(struct thumb_out *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g_free(out[i].data);
        out[i].data = NULL;
        out[i].len = 0;
    }
}
