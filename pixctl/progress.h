/* progress: transfer progress on stderr: a redrawn bar (bytes, rate, ETA) on a terminal,
 * plain lines at every tenth otherwise (for transfers
 * longer than two seconds), nothing with --quiet. */
#ifndef PIXCTL_PROGRESS_H
#define PIXCTL_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

enum progress_mode { PROGRESS_NONE, PROGRESS_PLAIN, PROGRESS_BAR };

struct progress {
    int mode;
    char verb[16], label[64];
    long long total, base, done; /* base: bytes already done before this run (resume) */
    double start, last_draw, last_t;
    long long last_bytes;
    double rate;   /* bytes per second, smoothed; < 0 until known */
    int last_step; /* plain mode: the last tenth printed */
    int drawn;     /* plain mode: a line was printed */
    int width;     /* bar mode: terminal columns */
    FILE *out;
};

void progress_start(struct progress *p, int mode, const char *verb, const char *label,
                    long long total, long long base, double now);
/* done counts every byte so far, base included. Redraws at most 10 times a second. */
void progress_update(struct progress *p, long long done, double now);
/* Clears the bar (or prints the last plain line). */
void progress_end(struct progress *p, double now);

/* "0 B", "1023 B", "1.0 KiB", "300.0 MiB", "1.5 GiB". Returns the length. */
int progress_fmt_bytes(double bytes, char *out, size_t n);
/* "0:05", "12:34", "1:02:03"; "--:--" when unknown (negative, infinite, over 99 days). */
int progress_fmt_eta(double secs, char *out, size_t n);
/* Exponentially smoothed rate: prev < 0 takes inst as is; else moves toward inst by
 * 1 - exp(-dt / tau). */
double progress_ema(double prev, double inst, double dt, double tau);
/* One progress line, without a newline, at most width columns (width 0: the plain form
 * without a bar). rate < 0: unknown. Returns the length. */
int progress_render(char *out, size_t n, const char *verb, const char *label, long long done,
                    long long total, double rate, int width);

/* One line for a whole import after secs seconds: "import 120/2000 files  36.0 MiB/600.0 MiB
 *  12.0 MiB/s  40.0 files/s  ETA 0:47" (rates are averages; the ETA follows the files).
 * files_total < 0: unknown (no totals, no ETA). At most width columns (0: no limit).
 * Returns the length. */
int progress_render_import(char *out, size_t n, long long files, long long files_total,
                           long long bytes, long long bytes_total, double secs, int width);

#endif
