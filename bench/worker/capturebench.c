/* capturebench: the worker's capture reader (capture_read over the blocked reader in
 * CAPTURE_READ_BLOCK blocks as the worker reads it; a file instead of S3) on local files: one
 * JSON line per file with what it read, then the time. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "filesrc.h"
#include "thumb.h"

static void print(const char *file, const struct capture *c)
{
    char at[CAPTURE_TIME_MAX] = "";
    buf e = {0};

    if (CAPTURE_HAS(c, CAPTURE_TAKEN))
        capture_taken_at(c, at);
    if (capture_errors_array(c, &e) < 0)
        return;
    printf("{\"file\":\"%s\",\"taken_local\":\"%s\",\"offset\":\"%s\",\"taken_at\":\"%s\","
           "\"width\":%d,\"height\":%d,\"orientation\":%d,\"format\":\"%s\",\"color_space\":\"%s\","
           "\"make\":\"%s\",\"model\":\"%s\",\"lens\":\"%s\",\"f_number\":%g,"
           "\"exposure_time\":%g,\"iso\":%d,\"focal_length\":%g,\"gps\":[%.8f,%.8f,%g],"
           "\"have\":%u,\"errors\":\"%s\"}\n",
           file, c->taken_local, c->taken_offset, at, c->width, c->height, c->orientation,
           c->format, c->color_space, c->make, c->model, c->lens, c->f_number, c->exposure_time,
           c->iso, c->focal_length, c->gps_lat, c->gps_lon, c->gps_alt, c->have, e.data);
    buf_free(&e);
}

/* One file through the worker's path. 0, or -1 if it could not be read. */
static int one(const char *file, int quiet)
{
    int fd = open(file, O_RDONLY);
    struct stat st;
    struct capture c;
    VipsSource *src;

    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(file);
        return -1;
    }
    struct rsrc r = {
        .fetch = filesrc_fetch, .ud = &fd, .size = st.st_size, .block_size = CAPTURE_READ_BLOCK};
    if (!(src = rsrc_source(&r))) {
        close(fd);
        return -1;
    }
    capture_read(src, &c);
    g_object_unref(src);
    rsrc_fini(&r);
    close(fd);
    if (!quiet)
        print(file, &c);
    return r.failed ? -1 : 0;
}

int main(int argc, char **argv)
{
    int repeat = argc > 2 && strcmp(argv[1], "-n") == 0 ? atoi(argv[2]) : 1;
    int first = repeat > 1 || (argc > 1 && strcmp(argv[1], "-n") == 0) ? 3 : 1;
    int failed = 0, done = 0;
    double t0;

    if (thumb_init(argv[0], 1) < 0)
        return 2;
    t0 = util_now_mono();
    for (int k = 0; k < repeat; k++)
        for (int i = first; i < argc; i++, done++)
            failed |= one(argv[i], k > 0);
    fprintf(stderr, "{\"files\":%d,\"seconds\":%.4f,\"ms_per_file\":%.3f}\n", done,
            util_now_mono() - t0, done ? (util_now_mono() - t0) * 1000 / done : 0);
    thumb_shutdown();
    return failed ? 1 : 0;
}
