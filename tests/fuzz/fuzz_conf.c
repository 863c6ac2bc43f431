/* fuzz_conf: configuration parsing (common/conf.c): size, duration and bool values against a
 * reference, whole command lines over the real service tables, help/Markdown, variant specs. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "api.h"
#include "conf.h"
#include "worker.h"

/* Input: byte 0 picks the mode, the rest is its material.
 *   0 conf_parse_size   1 conf_parse_secs   2 conf_parse_bool   (each against a reference)
 *   3 conf_load: argv is the rest split at '\n', over a table of every type (byte 1 picks it,
 *     or the API's or the worker's real table)
 *   4 conf_usage and conf_markdown of a table whose strings come from the input
 *   5 variants_parse (services/worker/config.c), then a round trip through its text form */
enum { M_SIZE, M_SECS, M_BOOL, M_LOAD, M_DOCS, M_VARIANTS, M_COUNT };

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ---- single values against references written from the documented grammar ---- */

static int ref_size(const char *s, long long *out)
{
    static const char *const suf[] = {"",    "b", "k",  "kb",  "kib", "m",  "mb",
                                      "mib", "g", "gb", "gib", "t",   "tb", "tib"};
    static const int shift[] = {0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
    unsigned __int128 v = 0;
    size_t i = 0;

    while (s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (unsigned)(s[i++] - '0');
        if (v > LLONG_MAX)
            return -1;
    }
    if (i == 0)
        return -1;
    for (size_t k = 0; k < sizeof suf / sizeof suf[0]; k++) {
        if (strcasecmp(s + i, suf[k]) == 0) {
            v <<= shift[k];
            if (v > LLONG_MAX)
                return -1;
            *out = (long long)v;
            return 0;
        }
    }
    return -1;
}

static int ref_secs(const char *s, double *out)
{
    static const char *const unit[] = {"", "ms", "s", "m", "h", "d"};
    static const double mult[] = {1, 0.001, 1, 60, 3600, 86400};
    size_t i = 0, digits = 0, dots = 0;
    char num[64];

    for (; (s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && dots == 0); i++) {
        if (s[i] == '.')
            dots++;
        else
            digits++;
    }
    if (digits == 0 || i >= sizeof num)
        return -1;
    memcpy(num, s, i);
    num[i] = '\0';
    for (size_t k = 0; k < sizeof unit / sizeof unit[0]; k++) {
        if (strcmp(s + i, unit[k]) == 0) {
            double v = strtod(num, NULL) * mult[k];
            if (!isfinite(v))
                return -1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int ref_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no",
                                                                                "off"};

    for (size_t k = 0; k < 4; k++) {
        if (!strcasecmp(s, yes[k]))
            return *out = 1, 0;
        if (!strcasecmp(s, no[k]))
            return *out = 0, 0;
    }
    return -1;
}

static void values(int mode, const char *s)
{
    long long sz = -7, rsz = -7;
    double d = -7, rd = -7;
    int b = -7, rb = -7, rc, ref;

    switch (mode) {
    case M_SIZE:
        rc = conf_parse_size(s, &sz);
        ref = ref_size(s, &rsz);
        CHECK(rc == ref, "size accepted exactly when the grammar says");
        CHECK(rc < 0 || (sz == rsz && sz >= 0), "size value");
        CHECK(rc == 0 || sz == -7, "no value written on failure");
        break;
    case M_SECS:
        rc = conf_parse_secs(s, &d);
        ref = ref_secs(s, &rd);
        CHECK(rc == ref, "duration accepted exactly when the grammar says");
        CHECK(rc < 0 || (d == rd && d >= 0 && isfinite(d)), "duration value");
        CHECK(rc == 0 || d == -7, "no value written on failure");
        break;
    case M_BOOL:
        rc = conf_parse_bool(s, &b);
        ref = ref_bool(s, &rb);
        CHECK(rc == ref && (rc < 0 || b == rb), "bool");
        break;
    }
}

/* ---- whole command lines ---- */

static struct {
    char *str, *str2;
    long num;
    int flag;
    long long size;
    double secs;
} T;

static const struct conf_opt test_conf[] = {
    {"name", "PIXFUZZ_NAME", CONF_STR, &T.str, "default", "a string"},
    {"other", NULL, CONF_STR, &T.str2, NULL, "a string without default"},
    {"count", "PIXFUZZ_COUNT", CONF_INT, &T.num, "3", "an int"},
    {"enabled", "PIXFUZZ_ENABLED", CONF_BOOL, &T.flag, "true", "a bool"},
    {"size", "PIXFUZZ_SIZE", CONF_SIZE, &T.size, "8MiB", "a size"},
    {"wait", "PIXFUZZ_WAIT", CONF_SECS, &T.secs, "1.5s", "a duration"},
};

static const struct {
    const struct conf_opt *opts;
    const size_t *n;
} tables[] = {{test_conf, NULL}, {api_conf, &api_conf_count}, {worker_conf, &worker_conf_count}};

static void load(const uint8_t *p, size_t n)
{
    size_t t, nopt, argc = 1;
    const struct conf_opt *opts;
    char *text, **argv, **orig, **rest = NULL, err[ERR_MAX] = "";
    int nrest = -1, rc;

    if (n < 1)
        return;
    t = p[0] % 3;
    opts = tables[t].opts;
    nopt = tables[t].n ? *tables[t].n : sizeof test_conf / sizeof test_conf[0];
    text = cstr(p + 1, n - 1);
    for (char *s = text; (s = strchr(s, '\n')); s++)
        argc++;
    argv = calloc(argc + 2, sizeof *argv);
    orig = calloc(argc + 2, sizeof *orig);
    if (!argv || !orig)
        abort();
    argv[0] = (char *)"fuzz";
    for (size_t i = 1; i <= argc; i++) {
        char *nl = strchr(text, '\n');
        argv[i] = text;
        if (nl)
            *nl = '\0', text = nl + 1;
    }
    argc++;
    memcpy(orig, argv, sizeof *argv * argc);
    rc = conf_load(opts, nopt, (int)argc, argv, t == 0 ? &rest : NULL, &nrest, err);
    CHECK(rc == -1 || rc == 0 || rc == 1, "conf_load result");
    if (rc < 0)
        CHECK(err[0] != '\0' && strlen(err) < ERR_MAX, "a failure says why");
    for (size_t i = 0; i < nopt; i++) {
        if (opts[i].type != CONF_STR || rc == 1)
            continue;
        CHECK((rc == 0) == (*(char **)opts[i].target != NULL), "strings set, or freed on failure");
    }
    if (rc == 0 && t == 0) {
        CHECK(nrest >= 0 && (size_t)nrest < argc && rest == argv + 1, "positional arguments");
        for (int i = 0; i < nrest; i++) {
            int known = 0;
            for (size_t j = 1; j < argc; j++)
                known |= rest[i] == orig[j];
            CHECK(known, "positional arguments are the caller's strings");
        }
    }
    conf_free(opts, nopt);
    for (size_t i = 0; i < nopt; i++)
        if (opts[i].type == CONF_STR)
            CHECK(*(char **)opts[i].target == NULL, "conf_free clears");
    free(orig[1]);
    free(orig);
    free(argv);
}

/* ---- --help and the Markdown reference ---- */

static void docs(const uint8_t *p, size_t n)
{
    char *text = cstr(p, n), *f[8] = {0}, *out = NULL;
    size_t k = 0, len = 0, rows = 0;
    long dummy;
    FILE *m;

    for (char *s = text; k < 8; k++) {
        f[k] = s;
        s = strchr(s, '\t');
        if (!s)
            break;
        *s++ = '\0';
    }
    for (size_t i = 0; i < 8; i++)
        if (!f[i])
            f[i] = (char *)"";
    const struct conf_opt opts[] = {
        {f[0], f[1], CONF_STR, &dummy, f[2], f[3]},
        {f[4], NULL, CONF_BOOL, &dummy, f[5], f[6]},
        {f[7], "ENV", (enum conf_type)(n % 5), &dummy, NULL, NULL},
    };
    m = open_memstream(&out, &len);
    if (!m)
        abort();
    conf_usage(opts, 3, f[0], m);
    fclose(m);
    free(out);
    out = NULL;
    m = open_memstream(&out, &len);
    if (!m)
        abort();
    conf_markdown(opts, 3, f[1][0] ? NULL : "Title", m);
    fclose(m);
    for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
        rows += *l == '|';
    CHECK(rows == 2 + 3, "one Markdown table row per option, whatever the strings hold");
    free(out);
    free(text);
}

/* ---- the worker's variant table ---- */

static void variants(const char *spec)
{
    struct variant v[VARIANT_MAX], w[VARIANT_MAX];
    char err[ERR_MAX] = "";
    buf b = {0};
    int n = variants_parse(spec, 80, 85, v, VARIANT_MAX, err), m;

    CHECK(n == -1 || (n >= 1 && n <= VARIANT_MAX), "count");
    if (n < 0) {
        CHECK(err[0] != '\0', "a failure says why");
        return;
    }
    for (int i = 0; i < n; i++) {
        CHECK(v[i].box >= 16 && v[i].box <= 8192, "box in range");
        CHECK(v[i].quality >= 1 && v[i].quality <= 100, "quality in range");
        CHECK(strlen(v[i].name) >= 1 &&
                  strspn(v[i].name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(v[i].name),
              "name [a-z0-9_]");
        CHECK(i == 0 || v[i - 1].box >= v[i].box, "sorted by box, largest first");
        for (int j = 0; j < i; j++)
            CHECK(strcmp(v[i].name, v[j].name) != 0, "names unique");
        if (buf_printf(&b, "%s%s:%d:%s:%d", i ? "," : "", v[i].name, v[i].box,
                       v[i].format == VARIANT_JPEG ? "jpeg" : "webp", v[i].quality) < 0)
            abort();
        buf c = {0};
        CHECK(variant_key(&c, "00ff", 42, &v[i]) == 0 &&
                  strncmp(c.data, "variants/00ff/42/", 17) == 0,
              "variant key");
        buf_free(&c);
    }
    m = variants_parse(b.data, 1, 1, w, VARIANT_MAX, err);
    CHECK(m == n, "the text form parses back");
    for (int i = 0; i < n; i++)
        CHECK(w[i].box == v[i].box && w[i].quality == v[i].quality && w[i].format == v[i].format,
              "the text form gives the same table");
    buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* the environment step, with values of each kind */
    setenv("PIXFUZZ_NAME", "from-env", 1);
    setenv("PIXFUZZ_SIZE", "64KiB", 1);
    setenv("PIXFUZZ_WAIT", "250ms", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (size == 0)
        return 0;
    switch (data[0] % M_COUNT) {
    case M_SIZE:
    case M_SECS:
    case M_BOOL:
        s = cstr(data + 1, size - 1);
        values(data[0] % M_COUNT, s);
        free(s);
        break;
    case M_LOAD:
        load(data + 1, size - 1);
        break;
    case M_DOCS:
        docs(data + 1, size - 1);
        break;
    case M_VARIANTS:
        s = cstr(data + 1, size - 1);
        variants(s);
        free(s);
        break;
    }
    return 0;
}
