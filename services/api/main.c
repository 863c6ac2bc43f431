/* pixplane-api: the control plane's HTTP API (presigned uploads, metadata, sync) plus its
 * operator commands: `migrate` and `token`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "conf.h"
#include "log.h"
#include "migrate.h"
#include "stream.h"

static struct {
    char *user;
    int admin;
    double ttl;
    char *secret;
} tok;

static const struct conf_opt token_conf[] = {
    {"user", NULL, CONF_STR, &tok.user, "", "user id (the token's sub)"},
    {"admin", NULL, CONF_BOOL, &tok.admin, "false", "issue an admin token"},
    {"ttl", NULL, CONF_SECS, &tok.ttl, "1h", "lifetime"},
    {"jwt-secret", "PIXPLANE_JWT_SECRET", CONF_STR, &tok.secret, "", "signing key"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: pixplane-api [serve] [flags]   run the API\n"
                 "       pixplane-api migrate [flags]   apply database migrations\n"
                 "       pixplane-api token --user NAME [--admin] [--ttl SECONDS]\n"
                 "       pixplane-api routes            list the HTTP routes\n"
                 "       pixplane-api config-doc        print the configuration reference\n\n");
    conf_usage(api_conf, api_conf_count, "pixplane-api", out);
#ifdef PIX_TEST_HOOKS
    fprintf(out,
            "\nbuilt with test hooks (PIXPLANE_FAULT fault points, PIXPLANE_FAIL fail points)\n");
#endif
}

static int cmd_token(int argc, char **argv)
{
    char err[ERR_MAX] = "";
    char *jwt = NULL;
    int rc = conf_load(token_conf, ARRAY_LEN(token_conf), argc, argv, NULL, NULL, err);

    if (rc == 1)
        conf_usage(token_conf, ARRAY_LEN(token_conf), "pixplane-api token", stdout);
    else if (rc < 0 || !auth_valid_sub(tok.user) || strlen(tok.secret) < AUTH_MIN_SECRET ||
             tok.ttl < 1)
        fprintf(stderr, "pixplane-api token: %s\n",
                rc < 0 ? err
                       : "need a valid --user, --ttl >= 1 and a PIXPLANE_JWT_SECRET of 32+ bytes");
    else if ((jwt = auth_sign((const unsigned char *)tok.secret, strlen(tok.secret), tok.user,
                              tok.admin, time(NULL), (long)tok.ttl)))
        printf("%s\n", jwt);
    free(jwt);
    conf_free(token_conf, ARRAY_LEN(token_conf));
    return rc == 1 || jwt ? 0 : 2;
}

static int cmd_migrate(void)
{
    char err[ERR_MAX] = "";
    int applied = 0;
    PGconn *c = pg_connect(api_cfg.store.database_url, NULL, err); /* notices dropped */
    int rc = -1;

    if (c)
        rc = migrate_apply(c, &applied, err);
    PQfinish(c);
    if (rc < 0) {
        log_error(NULL, "migrate_failed", err);
        return 1;
    }
    printf("migrations applied: %d\n", applied);
    return 0;
}

static int cmd_routes(void)
{
    for (size_t i = 0; i < api_routes_count; i++)
        printf("%s %s\n", api_routes[i].method, api_routes[i].pattern);
    return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct api *api = w->data;

    if (api->draining)
        return;
    api->draining = 1;
    log_info(NULL, "draining", "signal received, draining");
    http_server_stop_accepting(api->http);
    stream_hub_close_all(api->streams); /* clients reconnect elsewhere with Last-Event-ID */
    ev_break(loop, EVBREAK_ONE);
}

/* After the loop stops: let in-flight requests finish, bounded by drain-timeout. */
static void drain(struct api *api)
{
    double deadline = util_now_mono() + api->cfg->drain_timeout;

    while ((http_server_inflight(api->http) > 0 || http_server_connections(api->http) > 0) &&
           util_now_mono() < deadline)
        ev_run(api->loop, EVRUN_ONCE | EVRUN_NOWAIT), usleep(2000);
    ev_run(api->loop, EVRUN_NOWAIT);
}

static int cmd_serve(void)
{
    struct api api = {.cfg = &api_cfg, .loop = ev_default_loop(0)};
    ev_signal sigterm, sigint;
    char err[ERR_MAX] = "";

    signal(SIGPIPE, SIG_IGN);
    if (api_init(&api, err) < 0)
        fatal("startup_failed", "%s", err);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    sigterm.data = sigint.data = &api;
    ev_signal_start(api.loop, &sigterm);
    ev_signal_start(api.loop, &sigint);
    log_info(NULL, "listening", "pixplane-api ready", "listen", api_cfg.listen);
    ev_run(api.loop, 0);
    drain(&api);
    ev_signal_stop(api.loop, &sigterm);
    ev_signal_stop(api.loop, &sigint);
    api_fini(&api);
    ev_loop_destroy(api.loop);
    log_info(NULL, "stopped", "pixplane-api stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "serve";
    int first = argc > 1 && argv[1][0] != '-' ? 2 : 1;
    char err[ERR_MAX] = "";
    int rc;

    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - first + 1, argv + first - 1);
    rc = conf_load(api_conf, api_conf_count, argc - first + 1, argv + first - 1, NULL, NULL, err);
    if (rc == 1) {
        usage(stdout);
        conf_free(api_conf, api_conf_count);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "pixplane-api: %s (see --help)\n", err);
        conf_free(api_conf, api_conf_count);
        return 2;
    }
    log_init("api", api_cfg.log_level);
    if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve();
    else if (strcmp(cmd, "migrate") == 0)
        rc = cmd_migrate();
    else if (strcmp(cmd, "routes") == 0)
        rc = cmd_routes();
    else if (strcmp(cmd, "config-doc") == 0)
        conf_markdown(api_conf, api_conf_count, "pixplane-api", stdout), rc = 0;
    else
        usage(stderr), rc = 2;
    conf_free(api_conf, api_conf_count);
    return rc;
}
