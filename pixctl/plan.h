/* plan: chunk arithmetic of an upload session (0-based chunk numbers, the last one short). */
#ifndef PIXCTL_PLAN_H
#define PIXCTL_PLAN_H

/* Number of chunks for size bytes in chunk_size pieces (0 if either is not positive). */
int plan_count(long long size, long long chunk_size);
/* Byte offset and length of chunk n (length 0 if n is out of range). */
long long plan_offset(long long chunk_size, int n);
long long plan_length(long long size, long long chunk_size, int n);
/* The chunks of 0..count-1 that are not in have (any order; duplicates and out-of-range
 * numbers ignored), ascending, into out (room for count). Returns how many. */
int plan_missing(int count, const int *have, int nhave, int *out);
/* Checks a session's chunk layout against the file: 0 if chunk_size and chunk_count fit
 * size, else -1. */
int plan_check(long long size, long long chunk_size, int chunk_count);

#endif
