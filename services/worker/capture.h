/* capture: when, where and with what a photo was taken, read from an original's header
 * (libvips, no pixel decode) and its EXIF block (libexif); one row of blob_capture. */
#ifndef PIX_CAPTURE_H
#define PIX_CAPTURE_H

#include <stddef.h>
#include <vips/vips.h>

#include "util.h"

/* Version of this reader: blob_capture rows with an older extractor are read again. */
#define CAPTURE_VERSION 1

/* Fields of blob_capture; a bit each in capture.have (present) and capture.errors (present
 * in the file but unreadable: the field stays NULL). */
enum capture_field {
    CAPTURE_TAKEN,       /* taken_local, taken_at (+ taken_offset when known) */
    CAPTURE_SIZE,        /* width, height */
    CAPTURE_ORIENTATION, /* 1..8 */
    CAPTURE_FORMAT,
    CAPTURE_COLOR_SPACE,
    CAPTURE_MAKE,
    CAPTURE_MODEL,
    CAPTURE_LENS,
    CAPTURE_F_NUMBER,
    CAPTURE_EXPOSURE,
    CAPTURE_ISO,
    CAPTURE_FOCAL,
    CAPTURE_GPS,        /* gps_lat, gps_lon */
    CAPTURE_GPS_ALT,    /* gps_alt */
    CAPTURE_OFFSET,     /* only in errors: an unreadable offset (taken_at then zone-unknown) */
    CAPTURE_EXIF,       /* only in errors: the EXIF block itself is corrupt or truncated */
    CAPTURE_UNREADABLE, /* only in errors: not an image libvips opens */
    CAPTURE_NFIELDS
};

/* Ranged reads of the header: it and the EXIF block sit in the first few KiB (a HEIF's meta
 * box may be further on: a few more reads); the variant build's read-block (4 MiB) would
 * fetch megabytes for them. */
#define CAPTURE_READ_BLOCK (64 * 1024)

#define CAPTURE_STR_MAX 128
#define CAPTURE_TIME_MAX 96

struct capture {
    unsigned have;         /* bit per enum capture_field */
    unsigned errors;       /* bit per enum capture_field */
    char taken_local[32];  /* 'YYYY-MM-DDTHH:MM:SS[.fff]' */
    char taken_offset[8];  /* '+02:00'; "" unknown */
    long long taken_epoch; /* the instant (or the local clock read as UTC), seconds */
    int taken_ms;
    int width, height; /* after orientation */
    int orientation;
    char format[8];
    char color_space[24];
    char make[CAPTURE_STR_MAX], model[CAPTURE_STR_MAX], lens[CAPTURE_STR_MAX];
    double f_number, exposure_time, focal_length;
    int iso;
    double gps_lat, gps_lon, gps_alt;
};

#define CAPTURE_HAS(c, f) (((c)->have >> (f)) & 1u)

/* The name of a field as blob_capture.errors spells it ("taken_at", "gps", ...). */
const char *capture_field_name(enum capture_field f);

/* Parses an EXIF block ("Exif\0\0" + TIFF, or the TIFF structure alone) of at most len
 * bytes into c: capture time, orientation, camera, exposure and GPS. Never fails: a field
 * that is there but unreadable stays unset and gets its bit in c->errors. */
void capture_parse_exif(const unsigned char *data, size_t len, struct capture *c);

/* Reads everything from src (header only, no pixel decode): libvips' header fields, its
 * "exif-data" (for TIFF without one, the file's leading bytes as EXIF). Sizes are swapped
 * for orientations 5..8. Something libvips cannot open gets errors = {unreadable}; the
 * caller tells a failed read of its source (transient) from that by the source's state. */
void capture_read(VipsSource *src, struct capture *c);

/* The statement parameters of c, in blob_capture's column order: taken_local, taken_offset,
 * taken_at, width, height, orientation, format, color_space, make, model, lens, f_number,
 * exposure_time, iso, focal_length, gps_lat, gps_lon, gps_alt, errors, extractor (NULL for
 * a field that is not there). The strings live in cp (capture_params_fini). 0 or -1. */
#define CAPTURE_NPARAMS 20
struct capture_params {
    char taken_at[CAPTURE_TIME_MAX];
    char num[13][32];
    buf errors;
};
int capture_params(const struct capture *c, struct capture_params *cp,
                   const char *p[CAPTURE_NPARAMS]) PIX_WUR;
void capture_params_fini(struct capture_params *cp);

/* Renders c->errors as a PostgreSQL array literal ("{exif,gps}") into out. 0 or -1. */
int capture_errors_array(const struct capture *c, buf *out) PIX_WUR;
/* The capture instant as 'YYYY-MM-DDTHH:MM:SS.mmmZ' (UTC). */
void capture_taken_at(const struct capture *c, char out[CAPTURE_TIME_MAX]);
/* How many fields went into errors. */
int capture_error_count(const struct capture *c);

#endif
