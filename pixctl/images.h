/* images: what other commands use of the image listing: one image as a text row. */
#ifndef PIXCTL_IMAGES_H
#define PIXCTL_IMAGES_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "pixctl.h"

/* One image as a text row (no newline): id, size, upload time, state, name; with taken
 * set the capture time and its source (exif, file_modified, upload; "-" when the object
 * does not say) instead of the upload time. */
void images_format_row(const cJSON *img, int taken, char *out, size_t n);
/* Prints img as its row (taken: see above), or as a JSON line with --json. */
void images_print(const struct pix *px, const cJSON *img, int taken);

#endif
