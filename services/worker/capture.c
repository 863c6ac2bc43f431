/* capture: capture metadata of an original: libvips' header (size, format, colour space) and
 * its EXIF block read with libexif, every field checked on its own (hostile input fails it). */
#include "capture.h"

#include <libexif/exif-data.h>
#include <libexif/exif-log.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CAPTURE_TIFF_MAX (256 * 1024) /* leading bytes of a TIFF read as its EXIF */
#define CAPTURE_EXIF_MAX (4 * 1024 * 1024)

static const char *const field_names[CAPTURE_NFIELDS] = {
    [CAPTURE_TAKEN] = "taken_at",
    [CAPTURE_SIZE] = "size",
    [CAPTURE_ORIENTATION] = "orientation",
    [CAPTURE_FORMAT] = "format",
    [CAPTURE_COLOR_SPACE] = "color_space",
    [CAPTURE_MAKE] = "make",
    [CAPTURE_MODEL] = "model",
    [CAPTURE_LENS] = "lens",
    [CAPTURE_F_NUMBER] = "f_number",
    [CAPTURE_EXPOSURE] = "exposure_time",
    [CAPTURE_ISO] = "iso",
    [CAPTURE_FOCAL] = "focal_length",
    [CAPTURE_GPS] = "gps",
    [CAPTURE_GPS_ALT] = "gps_alt",
    [CAPTURE_OFFSET] = "offset",
    [CAPTURE_EXIF] = "exif",
    [CAPTURE_UNREADABLE] = "unreadable",
};

const char *capture_field_name(enum capture_field f)
{
    return f < CAPTURE_NFIELDS ? field_names[f] : "?";
}

/* ---- outcome of one field ---- */

enum got { GOT_NONE, GOT_OK, GOT_BAD };

static void note(struct capture *c, enum capture_field f, enum got g)
{
    if (g == GOT_OK)
        c->have |= 1u << f;
    else if (g == GOT_BAD)
        c->errors |= 1u << f;
}

/* ---- EXIF entries ---- */

struct exif {
    ExifData *ed;
    ExifByteOrder order;
};

/* The entry of tag in ifd (IFD 0 and the EXIF IFD are searched together: writers mix them). */
static ExifEntry *entry(const struct exif *x, ExifIfd ifd, ExifTag tag)
{
    ExifEntry *e = exif_content_get_entry(x->ed->ifd[ifd], tag);

    if (!e && ifd == EXIF_IFD_0)
        e = exif_content_get_entry(x->ed->ifd[EXIF_IFD_EXIF], tag);
    else if (!e && ifd == EXIF_IFD_EXIF)
        e = exif_content_get_entry(x->ed->ifd[EXIF_IFD_0], tag);
    return e;
}

/* Does e hold at least n components of its format? */
static int holds(const ExifEntry *e, unsigned n)
{
    unsigned sz = exif_format_get_size(e->format);

    return e->data && sz && e->components >= n && e->size >= (size_t)sz * n;
}

/* Component i of a numeric entry as a double. 0, or -1 (wrong format, zero denominator). */
static int number_at(const struct exif *x, const ExifEntry *e, unsigned i, double *out)
{
    const unsigned char *p;

    if (!holds(e, i + 1))
        return -1;
    p = e->data + (size_t)exif_format_get_size(e->format) * i;
    if (e->format == EXIF_FORMAT_RATIONAL) {
        ExifRational r = exif_get_rational(p, x->order);
        if (r.denominator == 0)
            return -1;
        *out = (double)r.numerator / r.denominator;
    } else if (e->format == EXIF_FORMAT_SRATIONAL) {
        ExifSRational r = exif_get_srational(p, x->order);
        if (r.denominator == 0)
            return -1;
        *out = (double)r.numerator / r.denominator;
    } else if (e->format == EXIF_FORMAT_SHORT) {
        *out = exif_get_short(p, x->order);
    } else if (e->format == EXIF_FORMAT_LONG) {
        *out = exif_get_long(p, x->order);
    } else if (e->format == EXIF_FORMAT_BYTE) {
        *out = *p;
    } else {
        return -1;
    }
    return 0;
}

/* A positive number at most max (0: not recorded). */
static enum got positive(const struct exif *x, ExifIfd ifd, ExifTag tag, double max, double *out)
{
    ExifEntry *e = entry(x, ifd, tag);
    double v;

    if (!e)
        return GOT_NONE;
    if (number_at(x, e, 0, &v) < 0 || !isfinite(v) || v < 0 || v > max)
        return GOT_BAD;
    if (v == 0)
        return GOT_NONE;
    *out = v;
    return GOT_OK;
}

/* Printable ASCII only (EXIF's ASCII type is 7-bit; anything else could fail the row). */
static int printable(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

/* An ASCII entry up to its first NUL, trailing blanks removed, into out[max]. */
static enum got text(const struct exif *x, ExifIfd ifd, ExifTag tag, char *out, size_t max)
{
    ExifEntry *e = entry(x, ifd, tag);
    size_t n;

    if (!e)
        return GOT_NONE;
    if (e->format != EXIF_FORMAT_ASCII || !e->data)
        return GOT_BAD;
    n = strnlen((const char *)e->data, e->size);
    while (n > 0 && (e->data[n - 1] == ' ' || e->data[n - 1] == '\t'))
        n--;
    if (n == 0)
        return GOT_NONE;
    if (n >= max || !printable(e->data, n))
        return GOT_BAD;
    memcpy(out, e->data, n);
    out[n] = '\0';
    return GOT_OK;
}

/* ---- capture time ---- */

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + (long long)(yoe * 365 + yoe / 4 - yoe / 100 + doy) - 719468;
}

static int digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int month_days(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 29 : d[m - 1];
}

/* "YYYY:MM:DD HH:MM:SS" into seconds since the epoch read as UTC. 1 parsed, 0 blank or
 * all zero (the camera did not know), -1 malformed or out of range. */
static int parse_clock(const char *s, long long *secs, int f[6])
{
    static const int at[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};

    if (strspn(s, " :0") == strlen(s))
        return 0;
    if (strlen(s) != 19 || s[4] != ':' || s[7] != ':' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    for (int i = 0; i < 6; i++)
        if ((f[i] = digits(s + at[i], len[i])) < 0)
            return -1;
    if (f[0] < 1000 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > month_days(f[0], f[1]) ||
        f[3] > 23 || f[4] > 59 || f[5] > 59)
        return -1;
    *secs = days_from_civil(f[0], (unsigned)f[1], (unsigned)f[2]) * 86400 + f[3] * 3600 +
            f[4] * 60 + f[5];
    return 1;
}

/* "+HH:MM" into seconds east of UTC. 1, 0 blank, -1 malformed. */
static int parse_offset(const char *s, int *secs)
{
    int h, m;

    if (strspn(s, " :") == strlen(s))
        return 0;
    if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
        return -1;
    if ((h = digits(s + 1, 2)) < 0 || (m = digits(s + 4, 2)) < 0 || h > 14 || m > 59)
        return -1;
    *secs = (h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);
    return 1;
}

/* Sub-second digits: up to three kept ("123", "12"); anything else is ignored. */
static void subsec(const struct exif *x, ExifTag tag, struct capture *c, int *ms)
{
    char s[32] = "", keep[4];
    int n;

    *ms = 0;
    if (text(x, EXIF_IFD_EXIF, tag, s, sizeof s) != GOT_OK)
        return;
    n = (int)strspn(s, "0123456789");
    if (n == 0 || s[n] != '\0')
        return;
    n = n > 3 ? 3 : n;
    memcpy(keep, s, (size_t)n);
    keep[n] = '\0';
    *ms = digits(keep, n) * (n == 1 ? 100 : n == 2 ? 10 : 1);
    snprintf(c->taken_local + 19, sizeof c->taken_local - 19, ".%s", keep);
}

static void offset(const struct exif *x, ExifTag tag, struct capture *c, int *secs)
{
    char s[16] = "";
    enum got g = text(x, EXIF_IFD_EXIF, tag, s, sizeof s);
    int rc;

    if (g == GOT_NONE && tag != EXIF_TAG_OFFSET_TIME)
        g = text(x, EXIF_IFD_EXIF, EXIF_TAG_OFFSET_TIME, s, sizeof s);
    if (g == GOT_NONE)
        return;
    rc = g == GOT_OK ? parse_offset(s, secs) : -1;
    if (rc > 0)
        util_strlcpy(c->taken_offset, sizeof c->taken_offset, s);
    else if (rc < 0)
        note(c, CAPTURE_OFFSET, GOT_BAD);
}

/* DateTimeOriginal, else DateTimeDigitized, else DateTime, each with its sub-seconds and
 * offset. */
static void taken(const struct exif *x, struct capture *c)
{
    static const struct {
        ExifIfd ifd;
        ExifTag when, sub, off;
    } src[] = {
        {EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, EXIF_TAG_SUB_SEC_TIME_ORIGINAL,
         EXIF_TAG_OFFSET_TIME_ORIGINAL},
        {EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_DIGITIZED, EXIF_TAG_SUB_SEC_TIME_DIGITIZED,
         EXIF_TAG_OFFSET_TIME_DIGITIZED},
        {EXIF_IFD_0, EXIF_TAG_DATE_TIME, EXIF_TAG_SUB_SEC_TIME, EXIF_TAG_OFFSET_TIME},
    };
    enum got bad = GOT_NONE;

    for (size_t i = 0; i < ARRAY_LEN(src); i++) {
        char s[32] = "";
        int f[6], ms, off = 0;
        long long secs;
        enum got g = text(x, src[i].ifd, src[i].when, s, sizeof s);
        int rc = g == GOT_OK ? parse_clock(s, &secs, f) : g == GOT_BAD ? -1 : 0;

        if (rc < 0)
            bad = GOT_BAD;
        if (rc <= 0)
            continue;
        memcpy(c->taken_local, s, 20); /* checked: 19 characters and the NUL */
        c->taken_local[4] = c->taken_local[7] = '-';
        c->taken_local[10] = 'T';
        subsec(x, src[i].sub, c, &ms);
        offset(x, src[i].off, c, &off);
        c->taken_epoch = secs - off;
        c->taken_ms = ms;
        note(c, CAPTURE_TAKEN, GOT_OK);
        return;
    }
    note(c, CAPTURE_TAKEN, bad);
}

void capture_taken_at(const struct capture *c, char out[CAPTURE_TIME_MAX])
{
    time_t t = (time_t)c->taken_epoch;
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, CAPTURE_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, c->taken_ms);
}

/* ---- GPS ---- */

/* Degrees, minutes, seconds signed by the reference (neg: the negative one, 'S' or 'W'). */
static enum got coordinate(const struct exif *x, ExifTag tag, ExifTag ref, char neg, double max,
                           double *out)
{
    ExifEntry *e = exif_content_get_entry(x->ed->ifd[EXIF_IFD_GPS], tag);
    ExifEntry *r = exif_content_get_entry(x->ed->ifd[EXIF_IFD_GPS], ref);
    double d, m, s, v;

    if (!e)
        return GOT_NONE;
    if (number_at(x, e, 0, &d) < 0 || number_at(x, e, 1, &m) < 0 || number_at(x, e, 2, &s) < 0)
        return GOT_BAD;
    v = d + m / 60 + s / 3600;
    if (!isfinite(v) || v < 0 || v > max || m >= 60 || s >= 60 || m < 0 || s < 0)
        return GOT_BAD;
    if (r && (r->format != EXIF_FORMAT_ASCII || !holds(r, 1) ||
              (r->data[0] != neg && r->data[0] != (neg == 'S' ? 'N' : 'E'))))
        return GOT_BAD;
    *out = r && r->data[0] == neg ? -v : v;
    return GOT_OK;
}

static void gps(const struct exif *x, struct capture *c)
{
    enum got lat =
        coordinate(x, EXIF_TAG_GPS_LATITUDE, EXIF_TAG_GPS_LATITUDE_REF, 'S', 90, &c->gps_lat);
    enum got lon =
        coordinate(x, EXIF_TAG_GPS_LONGITUDE, EXIF_TAG_GPS_LONGITUDE_REF, 'W', 180, &c->gps_lon);
    ExifEntry *alt = exif_content_get_entry(x->ed->ifd[EXIF_IFD_GPS], EXIF_TAG_GPS_ALTITUDE);
    ExifEntry *ref = exif_content_get_entry(x->ed->ifd[EXIF_IFD_GPS], EXIF_TAG_GPS_ALTITUDE_REF);
    double a, below = 0;

    if (lat != GOT_NONE || lon != GOT_NONE)
        note(c, CAPTURE_GPS, lat == GOT_OK && lon == GOT_OK ? GOT_OK : GOT_BAD);
    if (!alt || !CAPTURE_HAS(c, CAPTURE_GPS))
        return;
    if (number_at(x, alt, 0, &a) < 0 || !isfinite(a) || a < 0 || a > 1e5 ||
        (ref && (number_at(x, ref, 0, &below) < 0 || below > 1)))
        return note(c, CAPTURE_GPS_ALT, GOT_BAD);
    c->gps_alt = below == 1 ? -a : a;
    note(c, CAPTURE_GPS_ALT, GOT_OK);
}

/* ---- the block ---- */

static void orientation(const struct exif *x, struct capture *c)
{
    ExifEntry *e = exif_content_get_entry(x->ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    double v;

    if (!e)
        return;
    if (number_at(x, e, 0, &v) < 0 || v < 1 || v > 8)
        return note(c, CAPTURE_ORIENTATION, GOT_BAD);
    c->orientation = (int)v;
    note(c, CAPTURE_ORIENTATION, GOT_OK);
}

static void camera(const struct exif *x, struct capture *c)
{
    double iso = 0;

    note(c, CAPTURE_MAKE, text(x, EXIF_IFD_0, EXIF_TAG_MAKE, c->make, sizeof c->make));
    note(c, CAPTURE_MODEL, text(x, EXIF_IFD_0, EXIF_TAG_MODEL, c->model, sizeof c->model));
    note(c, CAPTURE_LENS, text(x, EXIF_IFD_EXIF, EXIF_TAG_LENS_MODEL, c->lens, sizeof c->lens));
    note(c, CAPTURE_F_NUMBER, positive(x, EXIF_IFD_EXIF, EXIF_TAG_FNUMBER, 1e4, &c->f_number));
    note(c, CAPTURE_EXPOSURE,
         positive(x, EXIF_IFD_EXIF, EXIF_TAG_EXPOSURE_TIME, 1e5, &c->exposure_time));
    note(c, CAPTURE_FOCAL,
         positive(x, EXIF_IFD_EXIF, EXIF_TAG_FOCAL_LENGTH, 1e5, &c->focal_length));
    enum got g = positive(x, EXIF_IFD_EXIF, EXIF_TAG_ISO_SPEED_RATINGS, 1e7, &iso);
    if (g == GOT_OK && iso != (int)iso)
        g = GOT_BAD;
    c->iso = (int)iso;
    note(c, CAPTURE_ISO, g);
}

/* libexif's complaints about the block: corrupt data, or entries past its end. */
static void exif_logged(ExifLog *log, ExifLogCode code, const char *domain, const char *fmt,
                        va_list ap, void *ud)
{
    int *corrupt = ud;

    if (code == EXIF_LOG_CODE_CORRUPT_DATA || code == EXIF_LOG_CODE_NO_MEMORY ||
        strstr(fmt, "past end") || strstr(fmt, "too short"))
        *corrupt = 1;
}

/* An ExifData for the block, without libexif's "fix-ups" (they invent and drop entries). */
static ExifData *exif_load(const unsigned char *data, size_t len, ExifLog *log)
{
    static const unsigned char hdr[6] = {'E', 'x', 'i', 'f', 0, 0};
    ExifData *ed = exif_data_new();
    unsigned char *tmp = NULL;

    if (!ed)
        return NULL;
    exif_data_log(ed, log);
    exif_data_unset_option(ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    if (len < 6 || memcmp(data, hdr, 6) != 0) {
        if (!(tmp = g_try_malloc(len + 6))) {
            exif_data_unref(ed);
            return NULL;
        }
        memcpy(tmp, hdr, 6);
        memcpy(tmp + 6, data, len);
        data = tmp, len += 6;
    }
    exif_data_load_data(ed, data, (unsigned)len);
    g_free(tmp);
    return ed;
}

static int exif_empty(const ExifData *ed)
{
    for (int i = 0; i < EXIF_IFD_COUNT; i++)
        if (ed->ifd[i] && ed->ifd[i]->count > 0)
            return 0;
    return 1;
}

void capture_parse_exif(const unsigned char *data, size_t len, struct capture *c)
{
    ExifLog *log;
    struct exif x = {0};
    int corrupt = 0;

    if (!data || len == 0)
        return;
    log = exif_log_new();
    if (!log || len > CAPTURE_EXIF_MAX) {
        exif_log_unref(log);
        return note(c, CAPTURE_EXIF, GOT_BAD);
    }
    exif_log_set_func(log, exif_logged, &corrupt);
    if ((x.ed = exif_load(data, len, log)) && !exif_empty(x.ed)) {
        x.order = exif_data_get_byte_order(x.ed);
        taken(&x, c);
        orientation(&x, c);
        camera(&x, c);
        gps(&x, c);
    } else {
        corrupt = 1;
    }
    if (corrupt)
        note(c, CAPTURE_EXIF, GOT_BAD);
    if (x.ed)
        exif_data_unref(x.ed);
    exif_log_unref(log);
}

/* ---- the header ---- */

/* jpeg, png, webp, tiff, gif from the loader's name; heif or avif by its compression. */
static void format(VipsImage *im, struct capture *c)
{
    const char *loader = NULL, *comp = NULL;
    size_t n;

    if (vips_image_get_string(im, VIPS_META_LOADER, &loader) || !loader)
        return vips_error_clear();
    n = strcspn(loader, "_");
    if (n >= 4 && strncmp(loader + n - 4, "load", 4) == 0)
        n -= 4;
    if (n >= 2 && strncmp(loader, "heif", n) == 0 &&
        vips_image_get_typeof(im, "heif-compression") &&
        vips_image_get_string(im, "heif-compression", &comp) == 0 && strcmp(comp, "av1") == 0)
        loader = "avif", n = 4;
    if (n == 0 || n >= sizeof c->format)
        return;
    memcpy(c->format, loader, n);
    c->format[n] = '\0';
    note(c, CAPTURE_FORMAT, GOT_OK);
}

/* A TIFF is its own EXIF structure: its leading bytes (bounded) go to the parser. */
static void tiff_exif(VipsSource *src, struct capture *c)
{
    unsigned char *data = g_try_malloc(CAPTURE_TIFF_MAX);
    size_t len = 0;
    gint64 n = 1;

    if (!data || vips_source_rewind(src)) {
        g_free(data);
        vips_error_clear();
        return;
    }
    while (len < CAPTURE_TIFF_MAX && n > 0)
        if ((n = vips_source_read(src, data + len, CAPTURE_TIFF_MAX - len)) > 0)
            len += (size_t)n;
    if (n >= 0)
        capture_parse_exif(data, len, c);
    vips_error_clear();
    g_free(data);
}

static void header(VipsImage *im, struct capture *c)
{
    const void *exif = NULL;
    size_t len = 0;
    int o;

    c->width = im->Xsize;
    c->height = vips_image_get_page_height(im);
    note(c, CAPTURE_SIZE, GOT_OK);
    format(im, c);
    util_strlcpy(c->color_space, sizeof c->color_space,
                 vips_enum_nick(VIPS_TYPE_INTERPRETATION, vips_image_guess_interpretation(im)));
    note(c, CAPTURE_COLOR_SPACE, c->color_space[0] ? GOT_OK : GOT_NONE);
    if (vips_image_get_typeof(im, VIPS_META_EXIF_NAME) &&
        vips_image_get_blob(im, VIPS_META_EXIF_NAME, &exif, &len) == 0)
        capture_parse_exif(exif, len, c);
    if (!CAPTURE_HAS(c, CAPTURE_ORIENTATION) && vips_image_get_typeof(im, VIPS_META_ORIENTATION) &&
        vips_image_get_int(im, VIPS_META_ORIENTATION, &o) == 0 && o >= 1 && o <= 8) {
        c->orientation = o;
        note(c, CAPTURE_ORIENTATION, GOT_OK);
    }
    vips_error_clear();
}

void capture_read(VipsSource *src, struct capture *c)
{
    VipsImage *im;
    int tiff_without_exif;

    memset(c, 0, sizeof *c);
    im = vips_image_new_from_source(src, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!im) {
        vips_error_clear();
        return note(c, CAPTURE_UNREADABLE, GOT_BAD);
    }
    header(im, c);
    tiff_without_exif =
        strcmp(c->format, "tiff") == 0 && !vips_image_get_typeof(im, VIPS_META_EXIF_NAME);
    g_object_unref(im);
    if (tiff_without_exif)
        tiff_exif(src, c);
    if (c->orientation >= 5) {
        int w = c->width;
        c->width = c->height;
        c->height = w;
    }
}

/* ---- rendering ---- */

int capture_error_count(const struct capture *c)
{
    return __builtin_popcount(c->errors);
}

int capture_errors_array(const struct capture *c, buf *out)
{
    int rc = buf_puts(out, "{");
    int first = 1;

    for (int f = 0; f < CAPTURE_NFIELDS && rc == 0; f++)
        if ((c->errors >> f) & 1u) {
            rc = buf_printf(out, "%s%s", first ? "" : ",", field_names[f]);
            first = 0;
        }
    return rc < 0 ? -1 : buf_puts(out, "}");
}

/* A number parameter into slot, or NULL when the field is not there. */
static const char *num(struct capture_params *cp, int *slot, int have, const char *fmt, double v)
{
    char *out = cp->num[(*slot)++];

    if (!have)
        return NULL;
    snprintf(out, sizeof cp->num[0], fmt, v);
    return out;
}

int capture_params(const struct capture *c, struct capture_params *cp,
                   const char *p[CAPTURE_NPARAMS])
{
    int has_gps = CAPTURE_HAS(c, CAPTURE_GPS), i = 0;

    memset(cp, 0, sizeof *cp);
    if (capture_errors_array(c, &cp->errors) < 0)
        return -1;
    if (CAPTURE_HAS(c, CAPTURE_TAKEN))
        capture_taken_at(c, cp->taken_at);
    p[0] = CAPTURE_HAS(c, CAPTURE_TAKEN) ? c->taken_local : NULL;
    p[1] = c->taken_offset[0] && p[0] ? c->taken_offset : NULL;
    p[2] = p[0] ? cp->taken_at : NULL;
    p[3] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_SIZE), "%.0f", c->width);
    p[4] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_SIZE), "%.0f", c->height);
    p[5] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_ORIENTATION), "%.0f", c->orientation);
    p[6] = CAPTURE_HAS(c, CAPTURE_FORMAT) ? c->format : NULL;
    p[7] = CAPTURE_HAS(c, CAPTURE_COLOR_SPACE) ? c->color_space : NULL;
    p[8] = CAPTURE_HAS(c, CAPTURE_MAKE) ? c->make : NULL;
    p[9] = CAPTURE_HAS(c, CAPTURE_MODEL) ? c->model : NULL;
    p[10] = CAPTURE_HAS(c, CAPTURE_LENS) ? c->lens : NULL;
    p[11] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_F_NUMBER), "%.17g", c->f_number);
    p[12] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_EXPOSURE), "%.17g", c->exposure_time);
    p[13] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_ISO), "%.0f", c->iso);
    p[14] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_FOCAL), "%.17g", c->focal_length);
    p[15] = num(cp, &i, has_gps, "%.17g", c->gps_lat);
    p[16] = num(cp, &i, has_gps, "%.17g", c->gps_lon);
    p[17] = num(cp, &i, CAPTURE_HAS(c, CAPTURE_GPS_ALT), "%.17g", c->gps_alt);
    p[18] = cp->errors.data;
    p[19] = num(cp, &i, 1, "%.0f", CAPTURE_VERSION);
    return 0;
}

void capture_params_fini(struct capture_params *cp)
{
    buf_free(&cp->errors);
}
