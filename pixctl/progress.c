/* progress: formatting of sizes, rates and ETAs and the drawing of a progress bar (TTY) or
 * plain progress lines (logs, pipes) on stderr. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"

#define REDRAW_EVERY 0.1 /* seconds between bar redraws */
#define RATE_TAU 2.0     /* smoothing time constant of the rate */
#define RATE_MIN_DT 0.25 /* shortest interval a rate sample covers */
#define PLAIN_EVERY 10.0 /* plain mode: a line at least this often (seconds) */
#define PLAIN_AFTER 2.0  /* plain mode: quiet for transfers shorter than this */
#define LABEL_MAX 28     /* label columns in the bar */

int progress_fmt_bytes(double b, char *out, size_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;

    if (!(b >= 0))
        b = 0;
    if (b < 1024)
        return snprintf(out, n, "%.0f B", b);
    b /= 1024;
    while (b >= 1024 && u < 4)
        b /= 1024, u++;
    return snprintf(out, n, "%.1f %s", b, units[u]);
}

int progress_fmt_eta(double s, char *out, size_t n)
{
    long t;

    if (!(s >= 0) || s > 99 * 86400.0)
        return snprintf(out, n, "--:--");
    t = lround(s);
    if (t < 3600)
        return snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
    return snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

double progress_ema(double prev, double inst, double dt, double tau)
{
    double a;

    if (prev < 0 || tau <= 0)
        return inst;
    a = 1 - exp(-dt / tau);
    return prev + a * (inst - prev);
}

/* "45%  135.2 MiB/300.0 MiB  71.4 MiB/s  ETA 0:02" */
static int stats_text(char *out, size_t n, long long done, long long total, double rate)
{
    char d[24], t[24], r[24] = "-", eta[24] = "--:--";
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 100;

    progress_fmt_bytes((double)done, d, sizeof d);
    progress_fmt_bytes((double)total, t, sizeof t);
    if (rate >= 0) {
        progress_fmt_bytes(rate, r, sizeof r - 2);
        strcat(r, "/s");
        progress_fmt_eta(rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
    }
    if (pct > 100)
        pct = 100;
    return snprintf(out, n, "%3d%%  %s/%s  %s  ETA %s", (int)pct, d, t, r, eta);
}

int progress_render(char *out, size_t n, const char *verb, const char *label, long long done,
                    long long total, double rate, int width)
{
    char stats[128], bar[64];
    int slen, lablen = (int)strlen(label), barw, fill;

    if (n == 0)
        return 0;
    slen = stats_text(stats, sizeof stats, done, total, rate);
    if (width <= 0)
        return snprintf(out, n, "%s %s: %s", verb, label, stats);
    if (lablen > LABEL_MAX)
        lablen = LABEL_MAX;
    barw = width - (int)strlen(verb) - lablen - slen - 6;
    if (barw > 40)
        barw = 40;
    if (barw < 10) /* too narrow for a bar */
        return snprintf(out, n, "%.*s", width > 1 ? width - 1 : 1, stats);
    fill = total > 0 ? (int)((double)barw * (double)done / (double)total) : barw;
    if (fill > barw)
        fill = barw;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(barw - fill));
    bar[barw] = '\0';
    return snprintf(out, n, "%s %.*s [%s] %s", verb, lablen, label, bar, stats);
}

int progress_render_import(char *out, size_t n, long long files, long long files_total,
                           long long bytes, long long bytes_total, double secs, int width)
{
    char b[24], bt[24] = "", r[24], eta[24] = "--:--", ft[32] = "";
    double frate = secs > 0 ? (double)files / secs : 0;
    int len;

    if (n == 0)
        return 0;
    progress_fmt_bytes((double)bytes, b, sizeof b);
    progress_fmt_bytes(secs > 0 ? (double)bytes / secs : 0, r, sizeof r);
    if (files_total >= 0) {
        snprintf(ft, sizeof ft, "/%lld", files_total);
        bt[0] = '/';
        progress_fmt_bytes((double)bytes_total, bt + 1, sizeof bt - 1);
        if (frate > 0)
            progress_fmt_eta((double)(files_total - files) / frate, eta, sizeof eta);
    }
    len = snprintf(out, n, "import %lld%s files  %s%s  %s/s  %.1f files/s%s%s", files, ft, b, bt, r,
                   frate, files_total >= 0 ? "  ETA " : "", files_total >= 0 ? eta : "");
    if (width > 1 && len >= width && (size_t)width <= n) {
        out[width - 1] = '\0';
        len = width - 1;
    }
    return len;
}

static int term_width(FILE *f)
{
    struct winsize ws;

    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

void progress_start(struct progress *p, int mode, const char *verb, const char *label,
                    long long total, long long base, double now)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->out = stderr;
    snprintf(p->verb, sizeof p->verb, "%s", verb);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total, p->base = p->done = p->last_bytes = base;
    p->start = p->last_t = now;
    p->last_draw = now - 1;
    p->rate = -1;
    p->last_step = total > 0 ? (int)(10 * base / total) : 0;
    p->width = mode == PROGRESS_BAR ? term_width(p->out) : 0;
}

static void sample_rate(struct progress *p, double now)
{
    double dt = now - p->last_t;

    if (dt < RATE_MIN_DT)
        return;
    p->rate = progress_ema(p->rate, (double)(p->done - p->last_bytes) / dt, dt, RATE_TAU);
    p->last_t = now, p->last_bytes = p->done;
}

static void draw(struct progress *p, int nl)
{
    char line[512];

    progress_render(line, sizeof line, p->verb, p->label, p->done, p->total, p->rate,
                    p->mode == PROGRESS_BAR ? p->width : 0);
    if (p->mode == PROGRESS_BAR)
        fprintf(p->out, "\r%s\033[K%s", line, nl ? "\n" : "");
    else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
}

void progress_update(struct progress *p, long long done, double now)
{
    int step;

    if (p->mode == PROGRESS_NONE)
        return;
    p->done = done;
    sample_rate(p, now);
    if (p->mode == PROGRESS_BAR) {
        if (now - p->last_draw < REDRAW_EVERY)
            return;
        p->last_draw = now;
        return draw(p, 0);
    }
    step = p->total > 0 ? (int)(10 * done / p->total) : 10;
    if (now - p->start < PLAIN_AFTER)
        return;
    if (step <= p->last_step && now - p->last_draw < PLAIN_EVERY)
        return;
    if (step >= 10)
        return; /* the end prints the last line */
    p->last_step = step, p->last_draw = now, p->drawn = 1;
    draw(p, 0);
}

void progress_end(struct progress *p, double now)
{
    double dt = now - p->start;

    if (p->mode == PROGRESS_NONE)
        return;
    if (dt > 0)
        p->rate = (double)(p->done - p->base) / dt;
    if (p->mode == PROGRESS_BAR) {
        fprintf(p->out, "\r\033[K");
        fflush(p->out);
        return;
    }
    if (p->drawn && p->total > 0 && p->done >= p->total)
        draw(p, 1);
}
