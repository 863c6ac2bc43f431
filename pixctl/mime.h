/* mime: the image types pixctl recognises: from a file name's extension, from a file's
 * first bytes, and which of them the server stores (bulk imports take only those). */
#ifndef PIXCTL_MIME_H
#define PIXCTL_MIME_H

#include <stddef.h>

#define MIME_SNIFF_BYTES 16 /* what mime_sniff needs to see */

/* The MIME type for name's extension (case-insensitive), or NULL. */
const char *mime_from_name(const char *name);
/* The MIME type from a file's first n bytes, or NULL. */
const char *mime_sniff(const unsigned char *b, size_t n);
/* The image type of the file at path, or NULL: by extension, else by its first bytes. */
const char *mime_of_file(const char *path);
/* 1 if the server stores images of this type (it refuses SVG, BMP and ICO with 415). */
int mime_importable(const char *mime);

#endif
