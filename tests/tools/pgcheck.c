/* pgcheck: test driver for common/pg and common/migrate: runs a prepared statement through
 * the pool in a loop (one ok/err line each), applies the embedded migrations, or checks them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate.h"
#include "pg.h"

static const struct pg_stmt check_stmts[] = {
    {"check", "SELECT 1 AS one, pg_backend_pid() AS pid"},
};

struct opts {
    const char *cmd;
    const char *url;
    double seconds;
    long interval_ms;
};

static void usage(void)
{
    fprintf(stderr, "usage: pgcheck loop --url URL [--seconds N] [--interval-ms MS]\n"
                    "       pgcheck migrate --url URL\n"
                    "       pgcheck current --url URL\n");
    exit(2);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    if (argc < 2)
        usage();
    o->cmd = argv[1];
    for (i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            o->url = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            o->seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--interval-ms") == 0)
            o->interval_ms = atol(argv[i + 1]);
        else
            usage();
    }
    if (i != argc || !o->url)
        usage();
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One round: acquire, run the prepared check, release. Prints one line. */
static int loop_once(pg_pool *p, double t0)
{
    char err[ERR_MAX] = "";
    double t = util_now_mono();
    pg_conn *c = pg_acquire(p, 2.0, err);
    PGresult *r = c ? pg_exec(c, "check", 0, NULL, err) : NULL;
    int ok = r && pg_i64(r, 0, 0) == 1;

    if (ok)
        printf("ok t=%.3f took=%.3f pid=%lld\n", t - t0, util_now_mono() - t, pg_i64(r, 0, 1));
    else
        printf("err t=%.3f took=%.3f stage=%s state=%s lost=%d %s\n", t - t0, util_now_mono() - t,
               c ? "exec" : "acquire", c ? pg_sqlstate(c) : "-", c ? pg_conn_lost(c) : 1, err);
    fflush(stdout);
    PQclear(r);
    pg_release(c);
    return ok;
}

static int cmd_loop(const struct opts *o)
{
    pg_pool *p = pg_pool_new(o->url, NULL, 2, check_stmts, ARRAY_LEN(check_stmts));
    double t0 = util_now_mono();
    long nok = 0, nerr = 0;

    if (!p) {
        fprintf(stderr, "pgcheck: cannot create the pool\n");
        return 1;
    }
    while (util_now_mono() - t0 < o->seconds) {
        if (loop_once(p, t0))
            nok++;
        else
            nerr++;
        sleep_ms(o->interval_ms);
    }
    printf("done ok=%ld err=%ld\n", nok, nerr);
    pg_pool_free(p);
    return 0;
}

/* migrate / current: on one connection from a pool of one. */
static int cmd_migrate(const struct opts *o, int apply)
{
    char err[ERR_MAX] = "";
    pg_pool *p = pg_pool_new(o->url, NULL, 1, NULL, 0);
    pg_conn *c = p ? pg_acquire(p, 10.0, err) : NULL;
    int rc = -1, n = 0;

    if (!c)
        goto fail;
    rc = apply ? migrate_apply(pg_raw(c), &n, err) : migrate_current(pg_raw(c), err);
    if (rc < 0)
        goto fail;
    if (apply)
        printf("applied %d\n", n);
    else
        printf("current %d\n", rc);
fail:
    if (rc < 0)
        fprintf(stderr, "pgcheck: %s\n", p ? err : "cannot create the pool");
    pg_release(c);
    pg_pool_free(p);
    return rc < 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.seconds = 10, .interval_ms = 100};

    parse_args(argc, argv, &o);
    if (strcmp(o.cmd, "loop") == 0)
        return cmd_loop(&o);
    if (strcmp(o.cmd, "migrate") == 0)
        return cmd_migrate(&o, 1);
    if (strcmp(o.cmd, "current") == 0)
        return cmd_migrate(&o, 0);
    usage();
    return 2;
}
