/* ryw: read-your-writes over standbys: the per-user table of acknowledged write positions,
 * the Pixplane-Read-After header both ways, and the choice of a read connection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ryw.h"

#define READ_ACQUIRE_TIMEOUT 0.05 /* a busy read pool sends the read to the primary */
#define NAP_FIRST 0.002           /* seconds between replay checks, doubling */
#define NAP_MAX 0.05

struct slot {
    uint64_t user; /* hash of the user whose write set lsn last (0: none) */
    uint64_t lsn;  /* the largest position acknowledged to any user of this slot */
};

struct ryw {
    pthread_mutex_t mu;
    struct slot slot[RYW_SLOTS];
};

static uint64_t user_hash(const char *user)
{
    uint64_t h = 14695981039346656037ull;

    for (; *user; user++)
        h = (h ^ (unsigned char)*user) * 1099511628211ull;
    return h | 1; /* never 0, the empty slot's */
}

ryw *ryw_new(void)
{
    ryw *r = calloc(1, sizeof *r);

    if (r && pool_mutex_init(&r->mu) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

void ryw_free(ryw *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void ryw_note(ryw *r, const char *user, uint64_t lsn)
{
    uint64_t h = user_hash(user);
    struct slot *s = &r->slot[h % RYW_SLOTS];

    pthread_mutex_lock(&r->mu);
    s->user = h;
    if (lsn > s->lsn)
        s->lsn = lsn;
    pthread_mutex_unlock(&r->mu);
}

/* The slot of user (copied under the lock) and its hash. */
static struct slot slot_get(ryw *r, const char *user, uint64_t *h)
{
    struct slot s;

    *h = user_hash(user);
    pthread_mutex_lock(&r->mu);
    s = r->slot[*h % RYW_SLOTS];
    pthread_mutex_unlock(&r->mu);
    return s;
}

uint64_t ryw_floor(ryw *r, const char *user)
{
    uint64_t h;

    return slot_get(r, user, &h).lsn;
}

int ryw_known(ryw *r, const char *user, uint64_t lsn)
{
    uint64_t h;
    struct slot s = slot_get(r, user, &h);

    return s.user == h && s.lsn >= lsn;
}

int ryw_read_begin(struct api_call *c)
{
    const char *h = http_req_header(c->req, RYW_HEADER);

    c->read = 1;
    if (!h || !*h || util_lsn_parse(h, &c->after) == 0)
        return 0;
    api_error(c, 400, "bad_read_after",
              RYW_HEADER " must be a position a write's answer carried, like 0/16B3748");
    return -1;
}

/* 1 if db's server is a primary, or a standby that replayed lsn and whose oldest running
 * transaction is past xid; 0 if not (yet); -1 with err. A standby's replay position is kept
 * as the connection's mark, so a read that needs no more skips the round trip. */
static int replayed(pg_conn *db, uint64_t lsn, uint64_t xid, char *err)
{
    PGresult *r;
    uint64_t at, xmin;

    if (pg_conn_mark(db) >= lsn && !xid)
        return 1;
    if (!(r = pg_exec(db, "ryw_replayed", 0, NULL, err)))
        return -1;
    at = pg_val(r, 0, 0)[0] == 't' ? strtoull(pg_val(r, 0, 1), NULL, 10) : UINT64_MAX;
    xmin = strtoull(pg_val(r, 0, 2), NULL, 10);
    PQclear(r);
    pg_conn_set_mark(db, at);
    return at >= lsn && (at == UINT64_MAX || xmin >= xid);
}

/* Reads napping for replay at once: a quarter of the request workers (at least one), so a
 * lagging standby, or a client sending a position from far ahead, cannot hold them all. */
#define WAITS_MAX(workers) ((workers) / 4 > 0 ? (workers) / 4 : 1)

/* replayed(), asked again with growing naps until read-wait has passed, if a waiting slot
 * is free (else asked once). */
static int wait_replayed(struct api_call *c, pg_conn *db, uint64_t lsn, char *err)
{
    double until = util_now_mono() + c->api->cfg->read_wait, nap = NAP_FIRST, left;
    int *n = &c->api->read_waits, rc;

    if ((rc = replayed(db, lsn, c->read_xid, err)) != 0)
        return rc;
    if (__atomic_add_fetch(n, 1, __ATOMIC_ACQ_REL) <= WAITS_MAX(c->api->cfg->workers))
        while (rc == 0 && (left = until - util_now_mono()) > 0) {
            usleep((useconds_t)((nap < left ? nap : left) * 1e6));
            nap = nap * 2 > NAP_MAX ? NAP_MAX : nap * 2;
            rc = replayed(db, lsn, c->read_xid, err);
        }
    __atomic_sub_fetch(n, 1, __ATOMIC_ACQ_REL);
    return rc;
}

pg_conn *ryw_read_db(struct api_call *c)
{
    char err[ERR_MAX] = "";
    uint64_t floor = ryw_floor(c->api->ryw, c->user.sub);
    uint64_t need = c->after > floor ? c->after : floor;
    pg_conn *db = pg_acquire(c->api->pg_read, READ_ACQUIRE_TIMEOUT, err);
    int rc = db ? wait_replayed(c, db, need, err) : -1;

    if (rc == 1) {
        pg_conn_pin(db); /* a reconnect could reach a server that replayed less */
        c->on_standby = 1;
        api_count(c->api, "pixplane_db_reads_total", "pool=\"read\"", 1);
        return db;
    }
    pg_release(db);
    if (rc < 0)
        log_warn(c->rid, "read_db_unavailable", err);
    api_count(c->api, "pixplane_db_reads_total",
              rc < 0 ? "pool=\"primary\",why=\"read_pool_unavailable\""
                     : "pool=\"primary\",why=\"replay_behind\"",
              1);
    return NULL;
}

/* Before a write's answer is built: the primary's WAL position, past the handler's commit,
 * into the header and the user's slot. Failures only cost the header. */
static void write_answered(http_req *req, int status, void *arg)
{
    struct api_call *c = arg;
    char err[ERR_MAX];
    PGresult *r;
    uint64_t lsn;

    if (status >= 400 || !c->db)
        return;
    if (PQtransactionStatus(pg_raw(c->db)) != PQTRANS_IDLE) { /* not committed yet */
        log_warn(c->rid, "write_position", "answered inside a transaction: no position");
        return;
    }
    if (!(r = pg_exec(c->db, "ryw_written", 0, NULL, err))) {
        log_warn(c->rid, "write_position", err);
        return;
    }
    if (util_lsn_parse(pg_val(r, 0, 0), &lsn) == 0) {
        ryw_note(c->api->ryw, c->user.sub, lsn);
        if (http_resp_header(req, RYW_HEADER, pg_val(r, 0, 0)) < 0)
            log_warn(c->rid, "http", "could not add " RYW_HEADER);
    }
    PQclear(r);
}

void ryw_write_begin(struct api_call *c)
{
    if (c->api->pg_read)
        http_req_before_respond(c->req, write_answered, c);
}

int ryw_cache_ok(struct api_call *c)
{
    return !c->after || !c->api->ryw || ryw_known(c->api->ryw, c->user.sub, c->after);
}
