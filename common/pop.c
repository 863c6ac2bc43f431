/* pop: proof of possession for dedup without upload: challenge shapes, banks of one-time
 * challenges answered in the server's own pass over the bytes, and storage fallbacks. */
#include "pop.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct pop_entry {
    struct pop_challenge ch;
    EVP_MD_CTX *md;
    int r; /* next range to feed */
};

struct pop_bank {
    long long pos; /* bytes fed so far */
    int n;
    struct pop_entry e[];
};

const char pop_sql_store[] =
    "INSERT INTO pop_bank (content_hash, nonce, ranges, answer)"
    " SELECT $1, e->>'nonce', e->'ranges', e->>'answer' FROM jsonb_array_elements($2::jsonb) e"
    " WHERE EXISTS (SELECT 1 FROM blobs WHERE content_hash = $1)"
    " LIMIT greatest(0, $3::int - (SELECT count(*) FROM pop_bank WHERE content_hash = $1))";

const char pop_sql_bank_count[] = "SELECT count(*) FROM pop_bank WHERE content_hash = $1";

/* Claims a blob's refill: at most one a minute per blob, only while its bank is short. */
const char pop_sql_claim_refill[] =
    "UPDATE blobs SET pop_refill_at = now() WHERE content_hash = $1 AND ref_count > 0"
    " AND (pop_refill_at IS NULL OR pop_refill_at < now() - interval '1 minute')"
    " AND (SELECT count(*) FROM pop_bank WHERE content_hash = $1) < $2::int"
    " RETURNING storage_path, size";

static int is_whole(const struct pop_challenge *ch)
{
    return ch->n == 1 && ch->off[0] == 0;
}

int pop_challenge_new(long long size, struct pop_challenge *ch)
{
    unsigned char rnd[16 + POP_RANGES * 8];
    int k = size <= POP_WHOLE_MAX ? 1 : POP_RANGES;

    memset(ch, 0, sizeof *ch);
    if (size < 1 || util_random(rnd, sizeof rnd) < 0)
        return -1;
    util_hex(rnd, 16, ch->nonce);
    ch->n = k;
    if (k == 1) {
        ch->len[0] = size;
        return 0;
    }
    for (int i = 0; i < k; i++) {
        long long lo = size * i / k;
        long long span = size * (i + 1) / k - lo - POP_RANGE_LEN + 1;
        unsigned long long v;

        memcpy(&v, rnd + 16 + i * 8, 8);
        ch->off[i] = lo + (long long)(v % (unsigned long long)span);
        ch->len[i] = POP_RANGE_LEN;
    }
    return 0;
}

int pop_ranges_json(const struct pop_challenge *ch, buf *out)
{
    if (buf_puts(out, "[") < 0)
        return -1;
    for (int i = 0; i < ch->n; i++)
        if (buf_printf(out, "%s{\"offset\":%lld,\"length\":%lld}", i ? "," : "", ch->off[i],
                       ch->len[i]) < 0)
            return -1;
    return buf_puts(out, "]");
}

static int load_range(const cJSON *it, long long *off, long long *len)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "offset");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "length");

    *off = json_count(o);
    *len = json_count(l);
    return *off >= 0 && *len >= 1 ? 0 : -1;
}

int pop_challenge_load(const char *nonce, const char *ranges_json, struct pop_challenge *ch)
{
    cJSON *a = cJSON_Parse(ranges_json);
    const cJSON *it;
    int rc = -1, k = 0;

    memset(ch, 0, sizeof *ch);
    if (!a || !cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 ||
        cJSON_GetArraySize(a) > POP_RANGES || strlen(nonce) >= sizeof ch->nonce)
        goto fail;
    util_strlcpy(ch->nonce, sizeof ch->nonce, nonce);
    cJSON_ArrayForEach(it, a)
    {
        if (load_range(it, &ch->off[k], &ch->len[k]) < 0)
            goto fail;
        if (k > 0 && ch->off[k] < ch->off[k - 1] + ch->len[k - 1])
            goto fail; /* banks feed in one pass: sorted and disjoint */
        k++;
    }
    ch->n = k;
    rc = 0;
fail:
    cJSON_Delete(a);
    return rc;
}

int pop_decoy_answer(char answer[65])
{
    unsigned char rnd[32];

    if (util_random(rnd, sizeof rnd) < 0)
        return -1;
    util_hex(rnd, sizeof rnd, answer);
    return 0;
}

/* ---- banks ---- */

static pop_bank *bank_alloc(int n)
{
    pop_bank *b;

    if (n < 1)
        return NULL;
    b = calloc(1, sizeof *b + (size_t)n * sizeof b->e[0]);
    if (b)
        b->n = n;
    return b;
}

/* Starts entry i's digest with its nonce. */
static int entry_start(struct pop_entry *e)
{
    e->md = EVP_MD_CTX_new();
    if (!e->md || EVP_DigestInit_ex(e->md, EVP_sha256(), NULL) != 1)
        return -1;
    return EVP_DigestUpdate(e->md, e->ch.nonce, strlen(e->ch.nonce)) == 1 ? 0 : -1;
}

pop_bank *pop_bank_new(long long size, int n)
{
    pop_bank *b = size < 1 ? NULL : bank_alloc(n);

    if (!b)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (pop_challenge_new(size, &b->e[i].ch) < 0 || entry_start(&b->e[i]) < 0) {
            pop_bank_free(b);
            return NULL;
        }
    }
    return b;
}

void pop_bank_free(pop_bank *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        EVP_MD_CTX_free(b->e[i].md);
    free(b);
}

/* Hashes the part of [pos, pos+len) that falls in the entry's ranges. */
static int entry_feed(struct pop_entry *e, long long pos, const unsigned char *d, size_t len)
{
    long long end = pos + (long long)len;

    while (e->r < e->ch.n) {
        long long a = e->ch.off[e->r];
        long long z = a + e->ch.len[e->r];
        long long from = a > pos ? a : pos;
        long long to = z < end ? z : end;

        if (a >= end)
            break;
        if (to > from && EVP_DigestUpdate(e->md, d + (from - pos), (size_t)(to - from)) != 1)
            return -1;
        if (z > end)
            break;
        e->r++;
    }
    return 0;
}

int pop_bank_feed(const void *data, size_t len, void *ud)
{
    pop_bank *b = ud;

    for (int i = 0; i < b->n; i++)
        if (entry_feed(&b->e[i], b->pos, data, len) < 0)
            return -1;
    b->pos += (long long)len;
    return 0;
}

static int md_sink(const void *data, size_t len, void *ud)
{
    return EVP_DigestUpdate(ud, data, len) == 1 ? 0 : -1;
}

int pop_bank_fill(pop_bank *b, s3_client *s3, const char *key, char *err)
{
    if (is_whole(&b->e[0].ch))
        return s3_get_object(s3, key, 0, b->e[0].ch.len[0], pop_bank_feed, b, err);
    for (int i = 0; i < b->n; i++) {
        struct pop_entry *e = &b->e[i];
        for (; e->r < e->ch.n; e->r++) {
            int rc = s3_get_object(s3, key, e->ch.off[e->r], e->ch.len[e->r], md_sink, e->md, err);
            if (rc != S3_OK)
                return rc;
        }
    }
    return S3_OK;
}

int pop_bank_finish(pop_bank *b)
{
    unsigned char md[32];

    for (int i = 0; i < b->n; i++) {
        struct pop_entry *e = &b->e[i];
        if (e->r != e->ch.n || EVP_DigestFinal_ex(e->md, md, NULL) != 1)
            return -1;
        util_hex(md, sizeof md, e->ch.answer);
    }
    return 0;
}

const struct pop_challenge *pop_bank_challenge(const pop_bank *b, int i)
{
    return &b->e[i].ch;
}

static int bank_json(const pop_bank *b, buf *out)
{
    if (buf_puts(out, "[") < 0)
        return -1;
    for (int i = 0; i < b->n; i++) {
        const struct pop_challenge *ch = &b->e[i].ch;
        if (buf_printf(out, "%s{\"nonce\":\"%s\",\"answer\":\"%s\",\"ranges\":", i ? "," : "",
                       ch->nonce, ch->answer) < 0 ||
            pop_ranges_json(ch, out) < 0 || buf_puts(out, "}") < 0)
            return -1;
    }
    return buf_puts(out, "]");
}

int pop_bank_store(pop_bank *b, pg_conn *db, const char *hash, int cap, char *err)
{
    char capv[16];
    const char *p[3] = {hash, NULL, capv};
    buf j = {0};
    PGresult *r = NULL;
    int n = -1;

    snprintf(capv, sizeof capv, "%d", cap);
    if (bank_json(b, &j) < 0) {
        err_set(err, "out of memory");
        goto fail;
    }
    p[1] = j.data;
    if (!(r = pg_exec(db, "pop_store", 3, p, err)))
        goto fail;
    n = atoi(PQcmdTuples(r));
fail:
    PQclear(r);
    buf_free(&j);
    return n;
}

int pop_bank_wanted(pg_conn *db, const char *hash, int cap)
{
    char err[ERR_MAX];
    const char *p[1] = {hash};
    PGresult *r = cap > 0 ? pg_exec(db, "pop_bank_count", 1, p, err) : NULL;
    long long have = r ? pg_i64(r, 0, 0) : 0;

    PQclear(r);
    return have >= cap ? 0 : cap - (int)have;
}

int pop_answer_from(s3_client *s3, const char *key, struct pop_challenge *ch, char *err)
{
    pop_bank *b = bank_alloc(1);
    int rc = S3_ERR;

    if (!b) {
        err_set(err, "out of memory");
        return S3_ERR;
    }
    b->e[0].ch = *ch;
    if (entry_start(&b->e[0]) < 0)
        err_set(err, "sha256 failed");
    else if ((rc = pop_bank_fill(b, s3, key, err)) == S3_OK && pop_bank_finish(b) < 0)
        rc = S3_ERR, err_set(err, "the object is shorter than the challenge");
    if (rc == S3_OK)
        util_strlcpy(ch->answer, sizeof ch->answer, b->e[0].ch.answer);
    pop_bank_free(b);
    return rc;
}

/* ---- refill ---- */

struct hash_pass {
    EVP_MD_CTX *md;
    pop_bank *bank;
    const struct pop_tick *tick;
    double next; /* monotonic time of the next tick */
};

/* The caller's chores when their time has come (on the reading thread). 0, or -1: stop. */
static int pass_tick(struct hash_pass *h)
{
    if (!h->tick || util_now_mono() < h->next)
        return 0;
    h->next = util_now_mono() + h->tick->every;
    return h->tick->fn(h->tick->ud) != 0 ? -1 : 0;
}

static int hash_pass_sink(const void *data, size_t len, void *ud)
{
    struct hash_pass *h = ud;

    if (EVP_DigestUpdate(h->md, data, len) != 1 || pass_tick(h) < 0)
        return -1;
    return h->bank ? pop_bank_feed(data, len, h->bank) : 0;
}

/* Large objects are hashed on a second thread while the reads go on (the reading thread
 * alone would add the hashing time to the transfer's): the reads fill PIPE_SLOTS slots of
 * PIPE_SLOT bytes in order, the hasher empties them in order. */
#define PIPE_SLOTS 8
#define PIPE_SLOT (1024 * 1024)
#define PIPE_MIN (8LL * PIPE_SLOT) /* smaller objects: one thread */

struct hash_pipe {
    pthread_mutex_t mu;
    pthread_cond_t filled, emptied;
    unsigned char *buf;
    size_t len[PIPE_SLOTS];
    unsigned long head, tail; /* slots [tail, head) wait to be hashed; head is being filled */
    size_t fill;              /* bytes in the head slot */
    int eof, failed;
    struct hash_pass *h;
};

static void *pipe_hasher(void *arg)
{
    struct hash_pipe *p = arg;
    int failed = 0;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->tail == p->head && !p->eof)
            pthread_cond_wait(&p->filled, &p->mu);
        if (p->tail == p->head)
            break;
        unsigned char *slot = p->buf + (p->tail % PIPE_SLOTS) * PIPE_SLOT;
        size_t n = p->len[p->tail % PIPE_SLOTS];
        pthread_mutex_unlock(&p->mu);
        failed = failed || EVP_DigestUpdate(p->h->md, slot, n) != 1 ||
                 (p->h->bank && pop_bank_feed(slot, n, p->h->bank) != 0);
        pthread_mutex_lock(&p->mu);
        p->failed = failed;
        p->tail++;
        pthread_cond_signal(&p->emptied);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Hands the head slot to the hasher and waits for a free one. 0, or -1 if it failed. */
static int pipe_publish(struct hash_pipe *p, int last)
{
    int failed;

    pthread_mutex_lock(&p->mu);
    p->len[p->head % PIPE_SLOTS] = p->fill;
    p->head += p->fill > 0;
    p->eof = last;
    pthread_cond_signal(&p->filled);
    while (!last && p->head - p->tail == PIPE_SLOTS && !p->failed)
        pthread_cond_wait(&p->emptied, &p->mu);
    failed = p->failed;
    pthread_mutex_unlock(&p->mu);
    p->fill = 0;
    return failed ? -1 : 0;
}

static int pipe_sink(const void *data, size_t len, void *ud)
{
    struct hash_pipe *p = ud;
    const unsigned char *d = data;

    if (pass_tick(p->h) < 0)
        return -1;
    while (len > 0) {
        size_t take = PIPE_SLOT - p->fill < len ? PIPE_SLOT - p->fill : len;
        memcpy(p->buf + (p->head % PIPE_SLOTS) * PIPE_SLOT + p->fill, d, take);
        p->fill += take, d += take, len -= take;
        if (p->fill == PIPE_SLOT && pipe_publish(p, 0) < 0)
            return -1;
    }
    return 0;
}

/* The parallel read of a large object, hashed on a second thread. */
static int hash_piped(s3_client *s3, const char *key, long long size, struct hash_pass *h,
                      char *err)
{
    struct hash_pipe p = {.h = h, .buf = malloc((size_t)PIPE_SLOTS * PIPE_SLOT)};
    pthread_t t;
    int rc;

    if (!p.buf)
        return err_set(err, "out of memory"), S3_ERR;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.filled, NULL); /* no timed waits: the clock does not matter */
    pthread_cond_init(&p.emptied, NULL);
    if (pthread_create(&t, NULL, pipe_hasher, &p) != 0) {
        rc = s3_get_ranges(s3, key, size, 0, 0, hash_pass_sink, h, err); /* no thread: serial */
    } else {
        rc = s3_get_ranges(s3, key, size, 0, 0, pipe_sink, &p, err);
        (void)pipe_publish(&p, 1); /* the rest, and the end: the hasher finishes */
        pthread_join(t, NULL);
        if (p.failed && rc == S3_OK)
            rc = S3_ERR, err_set(err, "sha256 failed");
    }
    pthread_cond_destroy(&p.filled);
    pthread_cond_destroy(&p.emptied);
    pthread_mutex_destroy(&p.mu);
    free(p.buf);
    return rc;
}

static int hash_read(s3_client *s3, const char *key, long long size, struct hash_pass *h, char *err)
{
    if (size < 0)
        return s3_get_object(s3, key, 0, -1, hash_pass_sink, h, err);
    if (size >= PIPE_MIN)
        return hash_piped(s3, key, size, h, err);
    return s3_get_ranges(s3, key, size, 0, 0, hash_pass_sink, h, err);
}

int pop_hash_object(s3_client *s3, const char *key, long long size, pop_bank *bank,
                    const struct pop_tick *tick, char hex[65], char *err)
{
    struct hash_pass h = {EVP_MD_CTX_new(), bank, tick, tick ? util_now_mono() + tick->every : 0};
    unsigned char md[32];
    int rc = S3_ERR;

    if (!h.md || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1)
        err_set(err, "sha256 failed");
    else if ((rc = hash_read(s3, key, size, &h, err)) == S3_OK &&
             EVP_DigestFinal_ex(h.md, md, NULL) == 1)
        util_hex(md, sizeof md, hex);
    else if (rc == S3_OK)
        rc = S3_ERR, err_set(err, "sha256 failed");
    EVP_MD_CTX_free(h.md);
    return rc;
}

/* Answers the bank from storage: whole-content challenges in one pass that also checks the
 * content still hashes to `hash`; ranged ones by ranged GETs. */
static int refill_read(s3_client *s3, const char *key, long long size, const char *hash,
                       pop_bank *b, char *err)
{
    char hex[65];
    int rc;

    rc = is_whole(&b->e[0].ch) ? pop_hash_object(s3, key, size, b, NULL, hex, err)
                               : pop_bank_fill(b, s3, key, err);
    if (rc == S3_NOTFOUND)
        err_set(err, "the blob's object is missing");
    if (rc != S3_OK)
        return -1;
    if (!is_whole(&b->e[0].ch))
        return 0;
    if (strcmp(hex, hash) != 0)
        return err_set(err, "stored object does not hash to its content hash"), -1;
    return 0;
}

int pop_refill(pg_conn *db, s3_client *s3, const char *hash, int n, char *err)
{
    char nv[16], key[512];
    const char *p[2] = {hash, nv};
    PGresult *r;
    pop_bank *b = NULL;
    long long size;
    int rc = -1;

    snprintf(nv, sizeof nv, "%d", n);
    if (!(r = pg_exec(db, "pop_claim_refill", 2, p, err)))
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return 0;
    }
    util_strlcpy(key, sizeof key, pg_val(r, 0, 0));
    size = pg_i64(r, 0, 1);
    PQclear(r);
    if (!(b = pop_bank_new(size, n))) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (refill_read(s3, key, size, hash, b, err) < 0)
        goto fail;
    if (pop_bank_finish(b) < 0) {
        err_set(err, "the object is shorter than its size");
        goto fail;
    }
    if (pop_bank_store(b, db, hash, n, err) < 0)
        goto fail;
    rc = 1;
fail:
    pop_bank_free(b);
    return rc;
}
