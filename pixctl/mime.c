/* mime: image types by extension and by magic bytes (JPEG, PNG, GIF, WebP, AVIF, HEIC/HEIF,
 * TIFF, BMP), and the subset the server accepts. */
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include "fsx.h"
#include "mime.h"

static const struct {
    const char *ext, *mime;
} mime_ext[] = {{"jpg", "image/jpeg"},    {"jpeg", "image/jpeg"},  {"jpe", "image/jpeg"},
                {"png", "image/png"},     {"gif", "image/gif"},    {"webp", "image/webp"},
                {"heic", "image/heic"},   {"heif", "image/heif"},  {"avif", "image/avif"},
                {"tif", "image/tiff"},    {"tiff", "image/tiff"},  {"bmp", "image/bmp"},
                {"svg", "image/svg+xml"}, {"ico", "image/x-icon"}, {"jxl", "image/jxl"}};

/* What the server's worker reads (services/api/upload.c image_types). */
static const char *const importable[] = {"image/jpeg", "image/png",  "image/gif",
                                         "image/webp", "image/tiff", "image/heic",
                                         "image/heif", "image/avif", "image/jxl"};

const char *mime_from_name(const char *name)
{
    const char *dot = strrchr(fsx_basename(name), '.');

    if (!dot)
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(mime_ext); i++)
        if (!strcasecmp(dot + 1, mime_ext[i].ext))
            return mime_ext[i].mime;
    return NULL;
}

static int has(const unsigned char *b, size_t n, size_t at, const char *magic, size_t len)
{
    return n >= at + len && !memcmp(b + at, magic, len);
}

const char *mime_sniff(const unsigned char *b, size_t n)
{
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return "image/jpeg";
    if (has(b, n, 0, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (has(b, n, 0, "GIF87a", 6) || has(b, n, 0, "GIF89a", 6))
        return "image/gif";
    if (has(b, n, 0, "RIFF", 4) && has(b, n, 8, "WEBP", 4))
        return "image/webp";
    if (has(b, n, 4, "ftypavif", 8))
        return "image/avif";
    if (has(b, n, 4, "ftypheic", 8) || has(b, n, 4, "ftypheix", 8))
        return "image/heic";
    if (has(b, n, 4, "ftypmif1", 8))
        return "image/heif";
    if (has(b, n, 0, "II*\0", 4) || has(b, n, 0, "MM\0*", 4))
        return "image/tiff";
    if (has(b, n, 0, "BM", 2))
        return "image/bmp";
    return NULL;
}

int mime_importable(const char *mime)
{
    for (size_t i = 0; mime && i < ARRAY_LEN(importable); i++)
        if (!strcmp(mime, importable[i]))
            return 1;
    return 0;
}

const char *mime_of_file(const char *path)
{
    const char *m = mime_from_name(path);
    unsigned char head[MIME_SNIFF_BYTES];
    ssize_t n;
    int fd;

    if (m)
        return m;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return NULL;
    n = pread(fd, head, sizeof head, 0);
    close(fd);
    return n > 0 ? mime_sniff(head, (size_t)n) : NULL;
}
