/* backoff: exponential backoff with equal jitter (half fixed, half random) so retries of
 * many chunks spread out instead of hitting storage in lockstep. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "backoff.h"
#include "pixctl.h"

#define SLEEP_STEP 0.05

double backoff_delay(int attempt, double base, double cap, double r01)
{
    double d;

    if (attempt < 0)
        attempt = 0;
    if (attempt > 60)
        attempt = 60;
    if (r01 < 0)
        r01 = 0;
    if (r01 >= 1)
        r01 = nextafter(1.0, 0.0);
    d = base * ldexp(1.0, attempt);
    if (!(d <= cap))
        d = cap;
    if (d < 0)
        d = 0;
    return d / 2 + r01 * d / 2;
}

double backoff_random(void)
{
    uint64_t v;

    if (util_random(&v, sizeof v) < 0)
        return 0.5;
    return (double)(v >> 11) * 0x1.0p-53;
}

int backoff_sleep(double secs)
{
    double end = util_now_mono() + secs;

    for (;;) {
        double left = end - util_now_mono(), step = left < SLEEP_STEP ? left : SLEEP_STEP;
        struct timespec ts;

        if (pix_interrupted)
            return -1;
        if (left <= 0)
            return 0;
        ts.tv_sec = (time_t)step;
        ts.tv_nsec = (long)((step - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}
