/* api_fakes: the API's request, database and log edges replaced (-Wl,--wrap=... in the
 * Makefile) so the real route handlers run on fuzzed requests, without a server or database. */
/* #included by fuzz_json_bodies.c and fuzz_cursor.c. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "api.h"
#include "finalize.h"
#include "stream.h"
#include "json.h"
#include "log.h"

#define FAKE_FIELDS 8

/* One request: what the handler may read, and what it answered. */
static struct {
    char *body; /* exact size plus the NUL the server's buffer keeps */
    size_t bodylen;
    const char *hname[FAKE_FIELDS], *hval[FAKE_FIELDS];
    const char *qname[FAKE_FIELDS], *qval[FAKE_FIELDS];
    int nh, nq;
    int answers, status;
    int streamed;
    int bad_text; /* a statement got a parameter PostgreSQL refuses (22021) */
} freq;
static const char *fake_sqlstate = "";

/* The database: returns the result for a statement, or NULL (then pg_exec fails with a
 * generic error). Set by the harness; NULL means every statement fails. */
static PGresult *(*fake_db)(const char *stmt, int n, const char *const *p);
static char fake_conn[16];

static void fake_request(const uint8_t *body, size_t n)
{
    free(freq.body);
    memset(&freq, 0, sizeof freq);
    freq.body = malloc(n + 1);
    if (!freq.body)
        abort();
    memcpy(freq.body, body, n);
    freq.body[n] = '\0';
    freq.bodylen = n;
}

__attribute__((unused)) static void fake_header(const char *name, const char *value)
{
    if (freq.nh < FAKE_FIELDS)
        freq.hname[freq.nh] = name, freq.hval[freq.nh++] = value;
}

__attribute__((unused)) static void fake_query(const char *name, const char *value)
{
    if (freq.nq < FAKE_FIELDS)
        freq.qname[freq.nq] = name, freq.qval[freq.nq++] = value;
}

/* One-row result with the given text columns (NULL: SQL NULL). */
__attribute__((unused)) static PGresult *fake_row(int ncols, const char *const *vals)
{
    PGresAttDesc att[64];
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

    if (!r || ncols > 64)
        abort();
    memset(att, 0, sizeof att);
    for (int i = 0; i < ncols; i++) {
        att[i].name = (char *)"c";
        att[i].typid = 25; /* text */
        att[i].typlen = -1;
        att[i].atttypmod = -1;
    }
    if (!PQsetResultAttrs(r, ncols, att))
        abort();
    for (int i = 0; i < ncols; i++)
        if (!PQsetvalue(r, 0, i, (char *)vals[i], vals[i] ? (int)strlen(vals[i]) : -1))
            abort();
    return r;
}

/* ---- the request (common/http.h) ---- */

const char *__wrap_http_req_body(const http_req *r, size_t *len);
const char *__wrap_http_req_header(const http_req *r, const char *name);
int __wrap_http_req_query_param(const http_req *r, const char *name, char *out, size_t outlen);
int __wrap_http_resp_header(http_req *r, const char *name, const char *value);
void __wrap_http_respond(http_req *r, int status, const char *ct, const char *body, size_t len);
void __wrap_http_respond_json(http_req *r, int status, cJSON *body);
void __wrap_http_respond_error(http_req *r, int status, const char *code, const char *msg);
void __wrap_http_respond_stream(http_req *r, const char *ct, size_t max_unsent,
                                http_stream_fn on_open, http_stream_fn on_close, void *ud);

const char *__wrap_http_req_body(const http_req *r, size_t *len)
{
    *len = freq.bodylen;
    return freq.bodylen ? freq.body : NULL;
}

const char *__wrap_http_req_header(const http_req *r, const char *name)
{
    for (int i = 0; i < freq.nh; i++)
        if (!strcasecmp(freq.hname[i], name))
            return freq.hval[i];
    return NULL;
}

int __wrap_http_req_query_param(const http_req *r, const char *name, char *out, size_t outlen)
{
    for (int i = 0; i < freq.nq; i++) {
        if (strcmp(freq.qname[i], name))
            continue;
        if (strlen(freq.qval[i]) >= outlen)
            return -1;
        memcpy(out, freq.qval[i], strlen(freq.qval[i]) + 1);
        return 1;
    }
    return 0;
}

int __wrap_http_resp_header(http_req *r, const char *name, const char *value)
{
    CHECK(freq.answers == 0, "headers before the answer");
    CHECK(!strpbrk(name, "\r\n:") && !strpbrk(value, "\r\n"), "a header is one line");
    return 0;
}

static void answered(int status)
{
    CHECK(freq.answers == 0, "a request is answered exactly once (never twice)");
    CHECK(status >= 200 && status <= 599, "an HTTP status");
    freq.answers++;
    freq.status = status;
}

void __wrap_http_respond(http_req *r, int status, const char *ct, const char *body, size_t len)
{
    answered(status);
}

void __wrap_http_respond_json(http_req *r, int status, cJSON *body)
{
    answered(status);
    CHECK(body != NULL, "a JSON answer has a body");
    char *text = cJSON_PrintUnformatted(body);
    CHECK(text != NULL, "the body prints");
    free(text);
    cJSON_Delete(body);
}

void __wrap_http_respond_error(http_req *r, int status, const char *code, const char *msg)
{
    answered(status);
    CHECK(status >= 400 && code && *code && msg, "an error has a code and a message");
}

/* The stream is never opened: on_close is what the server runs when it goes. */
void __wrap_http_respond_stream(http_req *r, const char *ct, size_t max_unsent,
                                http_stream_fn on_open, http_stream_fn on_close, void *ud)
{
    answered(200);
    freq.streamed = 1;
    on_close(NULL, ud);
}

/* ---- the database (common/pg.h) ---- */

pg_conn *__wrap_pg_acquire(pg_pool *p, double timeout, char *err);
void __wrap_pg_release(pg_conn *c);
PGresult *__wrap_pg_exec(pg_conn *c, const char *stmt, int n, const char *const *p, char *err);
const char *__wrap_pg_sqlstate(const pg_conn *c);
int __wrap_pg_conn_lost(const pg_conn *c);

pg_conn *__wrap_pg_acquire(pg_pool *p, double timeout, char *err)
{
    return (pg_conn *)fake_conn;
}

void __wrap_pg_release(pg_conn *c) {}

/* Text parameters reach PostgreSQL, which refuses invalid UTF-8 (22021) with a 500. */
static int fake_utf8(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0, l; i < n; i += l)
        if (!(l = json_utf8_seqlen((const unsigned char *)s + i, n - i)))
            return 0;
    return 1;
}

PGresult *__wrap_pg_exec(pg_conn *c, const char *stmt, int n, const char *const *p, char *err)
{
    int known = 0;

    CHECK(c == (pg_conn *)fake_conn, "a statement runs on an acquired connection");
    for (size_t i = 0; i < api_stmts_count; i++)
        known |= !strcmp(api_stmts[i].name, stmt);
    CHECK(known, "the statement is in the table");
    fake_sqlstate = "";
    for (int i = 0; i < n; i++) {
        if (p[i] && !fake_utf8(p[i])) { /* as PostgreSQL answers it */
            freq.bad_text = 1;
            fake_sqlstate = "22021";
            err_set(err, "ERROR:  invalid byte sequence for encoding \"UTF8\"");
            return NULL;
        }
    }
    PGresult *r = fake_db ? fake_db(stmt, n, p) : NULL;
    if (!r) {
        fake_sqlstate = "XX000";
        err_set(err, "fuzz: no database");
    }
    return r;
}

const char *__wrap_pg_sqlstate(const pg_conn *c)
{
    return fake_sqlstate;
}

int __wrap_pg_conn_lost(const pg_conn *c)
{
    return 0;
}

/* ---- logs and storage ---- */

void __wrap_log_kv(enum log_level lvl, const char *rid, const char *event, const char *msg, ...);
void __wrap_log_kv(enum log_level lvl, const char *rid, const char *event, const char *msg, ...) {}

#define FAKE_NO_S3(name, ...)                                                                      \
    int __wrap_##name(__VA_ARGS__);                                                                \
    int __wrap_##name(__VA_ARGS__)                                                                 \
    {                                                                                              \
        fprintf(stderr, "api fakes: %s reached: the harness must not talk to storage\n", #name);   \
        abort();                                                                                   \
    }
FAKE_NO_S3(s3_create_multipart, s3_client *c, const char *k, const char *t, char *u, size_t n,
           char *e)
FAKE_NO_S3(s3_abort_multipart, s3_client *c, const char *k, const char *u, char *e)
FAKE_NO_S3(s3_list_parts, s3_client *c, const char *k, const char *u, struct s3_part **p, int *n,
           char *e)
FAKE_NO_S3(s3_head_object, s3_client *c, const char *k, struct s3_object *o, char *e)

/* ---- the service around a call ---- */

static struct api fake_api;
static struct api_tctx fake_tctx;

/* Configuration from the table's defaults, metrics, and a presigning S3 client. */
static void fake_api_init(void)
{
    char err[ERR_MAX], *argv[] = {(char *)"fuzz", NULL};
    struct s3_config s3 = {.endpoint = "http://127.0.0.1:9000",
                           .bucket = "pixplane",
                           .region = "us-east-1",
                           .access_key = "AKIDFUZZ",
                           .secret_key = "fuzz-secret",
                           .path_style = 1};

    if (fake_api.cfg)
        return;
    if (conf_load(api_conf, api_conf_count, 1, argv, NULL, NULL, err) != 0)
        abort();
    fake_api.cfg = &api_cfg;
    if (api_metrics_init(&fake_api) < 0)
        abort();
    /* a hub without a loop: the stream caps and on_close of a never-opened stream work,
     * nothing listens */
    fake_api.streams = stream_hub_new(&fake_api);
    fake_tctx.api = &fake_api;
    fake_tctx.s3 = s3_client_new(&s3);
    if (!fake_api.streams || !fake_tctx.s3)
        abort();
}

/* Routes method + path through the real table and runs its handler as the server would for
 * user "alice" (after authentication). Returns the answer's status; aborts unless exactly
 * one answer was given. */
static int fake_call(const char *method, const char *path)
{
    struct api_call c = {
        .api = &fake_api, .t = &fake_tctx, .req = (http_req *)&freq, .rid = "fuzz"};
    int status = 0;
    const struct route *rt =
        router_match(api_routes, api_routes_count, method, path, &c.params, NULL, 0, &status);

    CHECK(rt != NULL, "the harness's routes exist");
    snprintf(c.user.sub, sizeof c.user.sub, "alice");
    c.user.exp = 2000000000;
    ((api_handler)rt->handler)(&c);
    CHECK(freq.answers == 1, "a request is answered exactly once (never zero times)");
    /* tests/fuzz/regressions/json_bodies-proof-utf8 */
    CHECK(!(freq.bad_text && freq.status >= 500),
          "input PostgreSQL refuses as text (invalid UTF-8) is a 4xx, not a 500");
    return freq.status;
}
