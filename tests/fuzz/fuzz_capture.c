/* fuzz_capture: the worker's EXIF reader (capture_parse_exif in services/worker/capture.c,
 * over libexif) on raw block bytes: it never fails as a whole, and what it accepts is sane. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "fuzz.h"

static int printable(const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    if (n == max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

static void check_time(const struct capture *c)
{
    char at[CAPTURE_TIME_MAX];
    size_t n = strlen(c->taken_local);

    CHECK(n >= 19 && n <= 23 && c->taken_local[10] == 'T', "taken_local is an ISO clock");
    CHECK(c->taken_ms >= 0 && c->taken_ms < 1000, "milliseconds in range");
    CHECK(!c->taken_offset[0] || strlen(c->taken_offset) == 6, "offset is +HH:MM or unknown");
    capture_taken_at(c, at);
    CHECK(strlen(at) == 24 && at[23] == 'Z', "taken_at is a UTC timestamp PostgreSQL reads");
}

static void check(const struct capture *c)
{
    CHECK((c->have & c->errors) == 0, "a field is either read or in errors");
    CHECK(printable(c->make, sizeof c->make) && printable(c->model, sizeof c->model) &&
              printable(c->lens, sizeof c->lens),
          "strings are printable ASCII (PostgreSQL text)");
    if (CAPTURE_HAS(c, CAPTURE_TAKEN))
        check_time(c);
    if (CAPTURE_HAS(c, CAPTURE_ORIENTATION))
        CHECK(c->orientation >= 1 && c->orientation <= 8, "orientation 1..8");
    if (CAPTURE_HAS(c, CAPTURE_GPS))
        CHECK(fabs(c->gps_lat) <= 90 && fabs(c->gps_lon) <= 180, "coordinates in range");
    if (CAPTURE_HAS(c, CAPTURE_GPS_ALT))
        CHECK(isfinite(c->gps_alt), "altitude finite");
    CHECK(isfinite(c->f_number) && isfinite(c->exposure_time) && isfinite(c->focal_length) &&
              c->iso >= 0,
          "numbers finite");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    struct capture c = {0};
    struct capture_params cp;
    const char *p[CAPTURE_NPARAMS];

    if (!copy)
        abort();
    memcpy(copy, data, size);
    capture_parse_exif(copy, size, &c);
    free(copy);
    check(&c);
    CHECK(capture_params(&c, &cp, p) == 0, "parameters render");
    CHECK(p[18] && p[18][0] == '{', "errors is an array literal");
    capture_params_fini(&cp);
    return 0;
}
