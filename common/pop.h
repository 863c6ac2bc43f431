/* pop: proof of possession for dedup without upload. Challenge shapes, banks of one-time
 * challenges whose answers are computed while the server already streams an object, and
 * answers computed from storage when a bank has run dry.
 *
 * A challenge is a nonce and a list of byte ranges of the content; the answer is
 * hex(sha256(nonce text || bytes of each range, in order)). Its shape depends on the size
 * alone, never on whether the content exists, so a decoy looks exactly like a real one:
 *   - size <= POP_WHOLE_MAX: one range, the whole content (a client must hold every byte);
 *   - larger: POP_RANGES ranges of POP_RANGE_LEN bytes, one at a random offset inside each
 *     of POP_RANGES equal strata, sorted and disjoint. A client missing a fraction m of the
 *     bytes passes with probability <= (1 - m)^POP_RANGES (AM-GM over the strata): for
 *     m = 10 % that is 4.8e-8 per challenge. */
#ifndef PIX_POP_H
#define PIX_POP_H

#include "pg.h"
#include "s3.h"
#include "util.h"

#define POP_WHOLE_MAX (16LL * 1024 * 1024)
#define POP_RANGES 160
#define POP_RANGE_LEN 4096LL
#define POP_RANGES_JSON_MAX 8192 /* jsonb text of POP_RANGES ranges fits */
#define POP_BANK_DEFAULT 4       /* one-time challenges kept per blob */

struct pop_challenge {
    char nonce[33];
    char answer[65]; /* hex; "" until computed */
    int n;
    long long off[POP_RANGES], len[POP_RANGES];
};

/* The statements pop runs, by name (list POP_STMTS in the pool's statement table). */
extern const char pop_sql_store[], pop_sql_claim_refill[], pop_sql_bank_count[];
#define POP_STMTS                                                                                  \
    {"pop_store", pop_sql_store}, {"pop_claim_refill", pop_sql_claim_refill},                      \
    {                                                                                              \
        "pop_bank_count", pop_sql_bank_count                                                       \
    }

/* A fresh challenge for content of `size` bytes: random nonce, ranges by the rules above.
 * 0, or -1 if the system has no randomness or size < 1. */
int pop_challenge_new(long long size, struct pop_challenge *ch) PIX_WUR;
/* The ranges as a JSON array [{"offset":..,"length":..},...] appended to out. 0 or -1. */
int pop_ranges_json(const struct pop_challenge *ch, buf *out) PIX_WUR;
/* Loads nonce and ranges (as stored) into ch. 0, or -1 if they are malformed. */
int pop_challenge_load(const char *nonce, const char *ranges_json,
                       struct pop_challenge *ch) PIX_WUR;
/* A random value in place of an answer: a decoy challenge nobody can pass. 0 or -1. */
int pop_decoy_answer(char answer[65]) PIX_WUR;

/* A bank: n challenges for one content, answered in one pass over its bytes. */
typedef struct pop_bank pop_bank;

pop_bank *pop_bank_new(long long size, int n); /* NULL if n < 1, size < 1 or no memory */
void pop_bank_free(pop_bank *b);               /* NULL-safe */
/* Feeds the content's bytes in order from offset 0 (an s3_sink; ud is the bank). 0 or -1. */
int pop_bank_feed(const void *data, size_t len, void *ud);
/* Reads what the bank needs from storage (one GET for whole-content challenges, ranged
 * GETs otherwise) instead of being fed. S3_OK or not, with err. */
int pop_bank_fill(pop_bank *b, s3_client *s3, const char *key, char *err) PIX_WUR;
/* Computes the answers once every byte was fed. 0, or -1 if the feed was short. */
int pop_bank_finish(pop_bank *b) PIX_WUR;
/* Challenge i (0-based, < the bank's n) with its answer once finished. */
const struct pop_challenge *pop_bank_challenge(const pop_bank *b, int i);
/* Stores the answered challenges for content `hash` (if its blob row exists), topping its
 * bank up to at most `cap` entries. Number stored, or -1 with err. */
int pop_bank_store(pop_bank *b, pg_conn *db, const char *hash, int cap, char *err) PIX_WUR;

/* Chores during a long hashing pass (renewing a lease): fn(ud) at most every `every`
 * seconds, from the pass's thread; nonzero stops the pass. */
struct pop_tick {
    int (*fn)(void *ud);
    void *ud;
    double every;
};

/* Reads the object of `size` bytes through SHA-256 (hex out) and, if bank != NULL, into the
 * bank in the same in-order pass: with the client's configured parallel ranged GETs
 * (s3_get_ranges; an object of another size is an error), or one streamed GET when size < 0
 * (unknown). tick (NULL: none) runs the caller's chores during a long pass. S3_OK or not,
 * with err. */
int pop_hash_object(s3_client *s3, const char *key, long long size, pop_bank *bank,
                    const struct pop_tick *tick, char hex[65], char *err) PIX_WUR;

/* How many challenges content `hash` lacks to have `cap` (cap when the count fails: the
 * store tops up to cap anyway). */
int pop_bank_wanted(pg_conn *db, const char *hash, int cap);

/* Fallback when no answer was prepared: computes ch->answer from the stored object. S3_OK or
 * not, with err. */
int pop_answer_from(s3_client *s3, const char *key, struct pop_challenge *ch, char *err) PIX_WUR;

/* Refill for a blob whose bank ran dry (or was never made: blobs older than banks). Claims
 * the refill (one at a time per blob, at most once a minute), reads the object, checks its
 * SHA-256 and stores n challenges. 1 refilled, 0 nothing to do, -1 with err. */
int pop_refill(pg_conn *db, s3_client *s3, const char *hash, int n, char *err) PIX_WUR;

#endif
