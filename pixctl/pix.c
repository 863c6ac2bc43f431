/* pix: process-wide bits of pixctl: the interrupt flag and its signal handlers, exit-code
 * combination and one-line error and note output on stderr. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pixctl.h"

volatile sig_atomic_t pix_interrupted;

static void on_signal(int sig)
{
    pix_interrupted = sig;
}

void pix_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int pix_worst(int a, int b)
{
    return a != PIX_OK ? a : b;
}

static void vline(const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof msg, fmt, ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "%s%s\n", prefix, msg);
    fflush(stderr);
}

void pix_errorf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vline("pixctl: ", fmt, ap);
    va_end(ap);
}

void pix_note(const struct pix *px, const char *fmt, ...)
{
    va_list ap;

    if (px->cfg->quiet)
        return;
    va_start(ap, fmt);
    vline("", fmt, ap);
    va_end(ap);
}
