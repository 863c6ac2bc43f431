/* hash: streaming SHA-256 of local files and the proof of possession the server's dedup
 * challenge asks for (sha256 of the nonce text, then of each byte range in order). */
#ifndef PIXCTL_HASH_H
#define PIXCTL_HASH_H

#include "util.h"

/* Called as hashing advances with the bytes read so far. */
typedef void (*hash_tick_fn)(void *ud, long long done);

/* SHA-256 of fd from offset 0 to EOF in one sequential pass with a bounded buffer; hex is
 * lower case. *size gets the bytes hashed. PIX_OK, PIX_EIO or PIX_EINTR, with err. */
int hash_file(int fd, char hex[65], long long *size, hash_tick_fn tick, void *ud, char *err);
/* sha256(nonce || bytes [off[i], off[i] + len[i]) of fd for each i in order), read with
 * pread. PIX_OK or PIX_EIO (a range past the end of the file included). */
int hash_proof(int fd, const char *nonce, const long long *off, const long long *len, int n,
               char hex[65], char *err);
/* SHA-256 of a string, hex. */
void hash_string(const char *s, char hex[65]);

#endif
