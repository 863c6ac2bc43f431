/* fuzz: what every harness in tests/fuzz shares: CHECK (an invariant that must hold: a
 * broken one aborts, so libFuzzer saves the input) and two helpers on raw input bytes. */
#ifndef PIX_FUZZ_H
#define PIX_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: invariant broken: %s (%s)\n", __FILE__, what, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* NUL-terminated copy of n bytes (malloc'd, never NULL). */
static inline char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);

    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* True if a fixed-size field holds a terminated string. */
static inline int terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

#endif
