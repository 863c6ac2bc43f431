/* backoff: exponential backoff with jitter for retried chunks and requests. */
#ifndef PIXCTL_BACKOFF_H
#define PIXCTL_BACKOFF_H

/* Delay before retry `attempt` (0 for the first retry): d = min(cap, base * 2^attempt), then
 * "equal jitter": d/2 + r01 * d/2, so always within [d/2, d]. r01 is in [0, 1). */
double backoff_delay(int attempt, double base, double cap, double r01);
/* A uniform random number in [0, 1) from the CSPRNG (0.5 if it fails). */
double backoff_random(void);
/* Sleeps secs, returning early with -1 if SIGINT/SIGTERM arrives; else 0. */
int backoff_sleep(double secs);

#endif
