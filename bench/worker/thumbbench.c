/* thumbbench: runs the worker's variant builder (thumb_build over the blocked reader) on
 * local files, N threads, and reports images/s, variants/s and peak RSS. The reader is the
 * same rsrc the worker uses; only its fetch function reads a file (pread) instead of S3. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesrc.h"
#include "thumb.h"

static struct variant variants[VARIANT_MAX];
static size_t nvariants;
static char **files;
static int nfiles, repeat = 1, outdir_set;
static const char *outdir;
static int next_job;
static long failures, bytes_out;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void save(const char *file, const struct thumb_out *out)
{
    char path[4096];
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

    for (size_t i = 0; i < nvariants; i++) {
        snprintf(path, sizeof path, "%s/%s.%s.%s", outdir, base, variants[i].name,
                 variant_ext(&variants[i]));
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(out[i].data, 1, out[i].len, f);
            fclose(f);
        }
        printf("%s %s %dx%d %zu\n", base, variants[i].name, out[i].width, out[i].height,
               out[i].len);
    }
}

static void one(const char *file)
{
    int fd = open(file, O_RDONLY);
    struct stat st;
    struct rsrc r = {.fetch = filesrc_fetch, .ud = &fd, .block_size = 4 << 20};
    struct thumb_out out[VARIANT_MAX];
    char err[ERR_MAX] = "";
    VipsSource *src;
    int rc;

    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(file);
        exit(1);
    }
    r.size = st.st_size;
    src = rsrc_source(&r);
    rc = thumb_build(src, variants, nvariants, 100000000, out, err);
    g_object_unref(src);
    rsrc_fini(&r);
    close(fd);
    pthread_mutex_lock(&mu);
    if (rc != THUMB_OK) {
        failures++;
        if (outdir_set)
            printf("%s FAILED rc=%d %s\n", file, rc, err);
    } else {
        for (size_t i = 0; i < nvariants; i++)
            bytes_out += (long)out[i].len;
        if (outdir_set)
            save(file, out);
    }
    pthread_mutex_unlock(&mu);
    if (rc == THUMB_OK)
        thumb_out_free(out, nvariants);
}

static void *runner(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        int j = next_job++;
        pthread_mutex_unlock(&mu);
        if (j >= nfiles * repeat)
            return NULL;
        one(files[j % nfiles]);
    }
}

int main(int argc, char **argv)
{
    const char *spec = "thumbnail_small:256,thumbnail_large:1024,preview:2048";
    int threads = 1, conc = 1, effort = 4, opt, n;
    char err[ERR_MAX];
    struct rusage ru;
    double t0, dt;

    while ((opt = getopt(argc, argv, "t:c:r:v:o:e:")) != -1) {
        if (opt == 't')
            threads = atoi(optarg);
        else if (opt == 'e')
            effort = atoi(optarg);
        else if (opt == 'c')
            conc = atoi(optarg);
        else if (opt == 'r')
            repeat = atoi(optarg);
        else if (opt == 'v')
            spec = optarg;
        else if (opt == 'o')
            outdir = optarg, outdir_set = 1;
        else {
            fprintf(stderr, "usage: thumbbench [-t threads] [-c vips-concurrency] [-r repeat] "
                            "[-v variants] [-e webp-effort] [-o outdir] files...\n");
            return 2;
        }
    }
    files = argv + optind;
    nfiles = argc - optind;
    if ((n = variants_parse(spec, 80, 85, variants, VARIANT_MAX, err)) < 0 || !nfiles) {
        fprintf(stderr, "thumbbench: %s\n", n < 0 ? err : "no files");
        return 2;
    }
    nvariants = (size_t)n;
    for (size_t i = 0; i < nvariants; i++)
        variants[i].effort = effort;
    if (thumb_init(argv[0], conc) < 0)
        return 1;
    pthread_t th[64];
    t0 = util_now_mono();
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&th[i], NULL, runner, NULL);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(th[i], NULL);
    dt = util_now_mono() - t0;
    getrusage(RUSAGE_SELF, &ru);
    printf("images %d failures %ld seconds %.3f images/s %.2f variants/s %.2f "
           "bytes_out %ld peak_rss_mb %.1f\n",
           nfiles * repeat, failures, dt, nfiles * repeat / dt,
           (double)(nfiles * repeat - failures) * (double)nvariants / dt, bytes_out,
           ru.ru_maxrss / 1024.0);
    thumb_shutdown();
    return 0;
}
