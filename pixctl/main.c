/* main: pixctl's entry point: reads the arguments and configuration, sets up libcurl, the
 * API client and signal handling, runs the command and cleans up. */
#include <curl/curl.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

int main(int argc, char **argv)
{
    static struct pixctl_config cfg;
    struct pix px = {.cfg = &cfg};
    char err[ERR_MAX] = "";
    struct cli cli;
    int rc = cli_parse(argc, argv, &cfg, &cli, err);

    if (rc != CLI_RUN) {
        if (rc != PIX_OK)
            pix_errorf("%s", err);
        cli_free(&cli, &cfg);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        pix_errorf("cannot initialize libcurl");
        cli_free(&cli, &cfg);
        return PIX_EIO;
    }
    pix_signals_install();
    px.tty = isatty(STDERR_FILENO);
    if (!(px.api = client_new(&cfg, err))) {
        pix_errorf("%s", err);
        rc = PIX_EUSAGE;
    } else {
        rc = cli.cmd->fn(&px, cli.nargs, cli.args);
    }
    client_free(px.api);
    curl_global_cleanup();
    cli_free(&cli, &cfg);
    return rc;
}
