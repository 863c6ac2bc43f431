/* thumb: libvips side of the worker: a VipsSource that reads an object in blocks through
 * ranged reads (never the whole original in memory), and building every variant of one
 * image from it with limits on pixels (decompression bombs) and an allow-list of loaders. */
#ifndef PIX_THUMB_H
#define PIX_THUMB_H

#include <stddef.h>
#include <vips/vips.h>

#include "s3.h"
#include "util.h"
#include "worker.h"

/* ---- blocked reader (rsrc.c) ---- */

/* Appends exactly len bytes at off to *out. 0, or -1 with err (e.g. S3 down). */
typedef int (*rsrc_fetch_fn)(void *ud, long long off, size_t len, buf *out, char *err);

struct rsrc {
    rsrc_fetch_fn fetch;
    void *ud;
    long long size;            /* object size (known up front: blobs.size) */
    size_t block_size;         /* bytes per ranged read */
    const volatile int *abort; /* non-zero: reads fail at once (may be NULL) */
    /* state */
    long long pos;
    buf block;
    long long block_off;
    int failed;  /* a fetch failed or was aborted: the source, not the image, is at fault */
    int fetches; /* ranged reads made */
    long long fetched;
    char err[ERR_MAX];
};

/* A custom VipsSource over r (r must outlive it). g_object_unref when done. */
VipsSource *rsrc_source(struct rsrc *r);
void rsrc_fini(struct rsrc *r);

/* Fetch function over S3: ud is a struct rsrc_s3. */
struct rsrc_s3 {
    s3_client *s3;
    const char *key;
};
int rsrc_s3_fetch(void *ud, long long off, size_t len, buf *out, char *err);

/* ---- building variants (thumb.c) ---- */

enum thumb_rc {
    THUMB_OK = 0,
    THUMB_ERROR = -1,     /* decode or encode failed (see rsrc.failed for the source's fault) */
    THUMB_BAD_INPUT = -2, /* not an image we accept, or corrupt */
    THUMB_TOO_LARGE = -3, /* over the pixel limit */
};

struct thumb_out {
    void *data; /* g_free */
    size_t len;
    int width, height;
};

/* Process-wide libvips set-up: no operation cache, concurrency, only the loaders we accept
 * (jpeg, png, gif, webp, tiff, heif), untrusted operations blocked. 0 or -1. */
int thumb_init(const char *argv0, int concurrency) PIX_WUR;
void thumb_shutdown(void);

/* Builds all n variants (sorted largest first, as variants_parse leaves them) from src into
 * out[n]: the largest with vips_thumbnail_source (shrink-on-load, sequential, auto-rotate,
 * colour to sRGB, first page only, fail on decoder errors), the others resized from that in
 * memory; encoded with metadata stripped. THUMB_ERROR/BAD_INPUT/TOO_LARGE with err. */
int thumb_build(VipsSource *src, const struct variant *v, size_t n, long long max_pixels,
                struct thumb_out *out, char *err) PIX_WUR;
void thumb_out_free(struct thumb_out *out, size_t n);
/* Removes EXIF/XMP/ICCP chunks from a WebP file in place. 0, or -1 if not RIFF/WEBP. */
int thumb_webp_strip(unsigned char *d, size_t *len) PIX_WUR;

#endif
