/* auth: bearer tokens as JWT HS256. `sub` is the user id, `exp` is enforced, `adm` true
 * marks an admin token. Only alg HS256 is accepted. */
#ifndef PIX_AUTH_H
#define PIX_AUTH_H

/* HS256 keys shorter than the hash output are refused (RFC 7518 3.2: at least 256 bits). */
#define AUTH_MIN_SECRET 32

#include <stddef.h>
#include <time.h>
#include "util.h"

#define AUTH_SUB_MAX 128

struct auth_claims {
    char sub[AUTH_SUB_MAX + 1];
    int admin;
    time_t exp;
};

/* Verifies token (without "Bearer "). 0 and claims, or -1 with *err a static string
 * ("malformed", "bad_signature", "expired", "unsupported_alg", ...). */
int auth_verify(const unsigned char *key, size_t keylen, const char *token, time_t now,
                struct auth_claims *out, const char **err) PIX_WUR;
/* A small cache of verified tokens, for one thread (no locking): a token seen before is
 * answered from its verified claims until its exp, without the HMAC and JSON work. An entry
 * matches only the same token, compared in constant time; collisions just evict. */
typedef struct auth_cache auth_cache;
auth_cache *auth_cache_new(size_t slots);
void auth_cache_free(auth_cache *c); /* NULL-safe */
/* auth_verify through the cache (c may be NULL: no cache). */
int auth_cache_verify(auth_cache *c, const unsigned char *key, size_t keylen, const char *token,
                      time_t now, struct auth_claims *out, const char **err) PIX_WUR;
/* Extracts the token from an Authorization header value ("Bearer X"); NULL if absent. */
const char *auth_bearer(const char *header);
/* Signs a token; malloc'd string or NULL. */
char *auth_sign(const unsigned char *key, size_t keylen, const char *sub, int admin, time_t now,
                long ttl);
/* A user id is 1..128 chars of [A-Za-z0-9._@-]. */
int auth_valid_sub(const char *sub);

#endif
