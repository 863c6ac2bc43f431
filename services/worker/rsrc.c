/* rsrc: a libvips custom source that serves reads and seeks from one cached block fetched by
 * ranged reads (S3 GET with Range), so an original is streamed, never held whole. */
#include <stdio.h>
#include <string.h>

#include "thumb.h"

static int rsrc_fail(struct rsrc *r, const char *msg)
{
    if (!r->failed)
        snprintf(r->err, sizeof r->err, "%s", msg);
    r->failed = 1;
    return -1;
}

/* Makes the block cover pos: one ranged read of block_size bytes (aligned). */
static int rsrc_fill(struct rsrc *r)
{
    long long off = r->pos - r->pos % (long long)r->block_size;
    long long len =
        r->size - off < (long long)r->block_size ? r->size - off : (long long)r->block_size;
    char err[ERR_MAX] = "";

    if (r->abort && __atomic_load_n(r->abort, __ATOMIC_RELAXED))
        return rsrc_fail(r, "read abandoned (shutting down)");
    buf_reset(&r->block);
    r->block_off = off;
    if (r->fetch(r->ud, off, (size_t)len, &r->block, err) < 0) {
        r->block.len = 0;
        return rsrc_fail(r, err);
    }
    r->fetches++;
    r->fetched += len;
    if ((long long)r->block.len != len) {
        r->block.len = 0;
        return rsrc_fail(r, "short ranged read");
    }
    return 0;
}

static gint64 rsrc_read(VipsSourceCustom *src, void *data, gint64 len, gpointer ud)
{
    struct rsrc *r = ud;
    long long in_block;

    if (r->failed)
        return -1;
    if (len <= 0 || r->pos >= r->size)
        return 0;
    if (r->pos < r->block_off || r->pos >= r->block_off + (long long)r->block.len)
        if (rsrc_fill(r) < 0)
            return -1;
    in_block = r->block_off + (long long)r->block.len - r->pos;
    if (len > in_block)
        len = in_block;
    memcpy(data, r->block.data + (r->pos - r->block_off), (size_t)len);
    r->pos += len;
    return len;
}

static gint64 rsrc_seek(VipsSourceCustom *src, gint64 off, int whence, gpointer ud)
{
    struct rsrc *r = ud;
    long long to = whence == SEEK_SET   ? off
                   : whence == SEEK_CUR ? r->pos + off
                   : whence == SEEK_END ? r->size + off
                                        : -1;

    if (to < 0 || to > r->size)
        return -1;
    r->pos = to;
    return to;
}

VipsSource *rsrc_source(struct rsrc *r)
{
    VipsSourceCustom *s = vips_source_custom_new();

    if (!s)
        return NULL;
    r->pos = 0;
    r->block_off = 0;
    r->block.len = 0;
    g_signal_connect(s, "read", G_CALLBACK(rsrc_read), r);
    g_signal_connect(s, "seek", G_CALLBACK(rsrc_seek), r);
    return VIPS_SOURCE(s);
}

void rsrc_fini(struct rsrc *r)
{
    buf_free(&r->block);
}

struct fill {
    buf *out;
    size_t want;
};

static int fill_sink(const void *data, size_t len, void *ud)
{
    struct fill *f = ud;

    if (f->out->len + len > f->want)
        return -1; /* the server sent more than the range */
    return buf_append(f->out, data, len);
}

int rsrc_s3_fetch(void *ud, long long off, size_t len, buf *out, char *err)
{
    struct rsrc_s3 *s = ud;
    struct fill f = {out, out->len + len};
    int rc;

    if (buf_reserve(out, len) < 0) {
        err_set(err, "out of memory");
        return -1;
    }
    rc = s3_get_object(s->s3, s->key, off, (long long)len, fill_sink, &f, err);
    if (rc == S3_NOTFOUND)
        err_set(err, "original %s not found in storage", s->key);
    return rc == S3_OK ? 0 : -1;
}
