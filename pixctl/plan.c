/* plan: chunk arithmetic: how many chunks, where each starts, how long it is, and which are
 * still missing given what the server reports. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int plan_count(long long size, long long chunk_size)
{
    if (size <= 0 || chunk_size <= 0)
        return 0;
    return (int)((size + chunk_size - 1) / chunk_size);
}

long long plan_offset(long long chunk_size, int n)
{
    return (long long)n * chunk_size;
}

long long plan_length(long long size, long long chunk_size, int n)
{
    int count = plan_count(size, chunk_size);

    if (n < 0 || n >= count)
        return 0;
    return n < count - 1 ? chunk_size : size - (long long)n * chunk_size;
}

int plan_missing(int count, const int *have, int nhave, int *out)
{
    unsigned char *seen;
    int k = 0;

    if (count <= 0)
        return 0;
    if (!(seen = calloc((size_t)count, 1)))
        return -1;
    for (int i = 0; i < nhave; i++)
        if (have[i] >= 0 && have[i] < count)
            seen[have[i]] = 1;
    for (int i = 0; i < count; i++)
        if (!seen[i])
            out[k++] = i;
    free(seen);
    return k;
}

int plan_check(long long size, long long chunk_size, int chunk_count)
{
    if (size <= 0 || chunk_size <= 0 || chunk_count <= 0)
        return -1;
    return plan_count(size, chunk_size) == chunk_count ? 0 : -1;
}
