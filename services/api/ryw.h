/* ryw: reads from standbys that still show every client its own writes. A write's answer
 * carries the primary's WAL position (Pixplane-Read-After); a read runs on a standby only
 * once that server replayed what the client echoes and what this instance acknowledged. */
#ifndef PIX_API_RYW_H
#define PIX_API_RYW_H

#include <stdint.h>

#include "api.h"

#define RYW_HEADER "Pixplane-Read-After"
/* users hash to slots; a shared slot only sends more reads to the primary */
#define RYW_SLOTS 4096

/* The write positions acknowledged by this instance, per user (bounded: RYW_SLOTS). */
typedef struct ryw ryw;
ryw *ryw_new(void);
void ryw_free(ryw *r); /* NULL-safe */
/* Remembers that user's write at lsn was acknowledged (positions only move forward). */
void ryw_note(ryw *r, const char *user, uint64_t lsn);
/* A position at or past user's last write acknowledged here (0: none). */
uint64_t ryw_floor(ryw *r, const char *user);
/* 1 if user's own write at lsn (or a later one) was acknowledged here, else 0. */
int ryw_known(ryw *r, const char *user, uint64_t lsn);

/* A ROUTE_READ request: marks c a read and takes Pixplane-Read-After into c->after. 0, or
 * -1 answered 400 bad_read_after. */
int ryw_read_begin(struct api_call *c) PIX_WUR;
/* A read-pool connection whose server reflects c->after, the caller's writes acknowledged
 * here and c->read_xid (waiting up to read-wait for it to replay), pinned to that server;
 * or NULL: the read goes to the primary. */
pg_conn *ryw_read_db(struct api_call *c);
/* A write request: its successful answer will carry Pixplane-Read-After (the primary's WAL
 * position after the handler's commit), remembered for the user. No-op without a read pool. */
void ryw_write_begin(struct api_call *c);
/* 0 if the worker's image cache must not answer c: the client echoes a write this instance
 * did not acknowledge (made through another instance; its change may not be heard yet). */
int ryw_cache_ok(struct api_call *c);

#endif
