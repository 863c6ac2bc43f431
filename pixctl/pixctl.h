/* pixctl: the reference client's shared declarations: exit codes, configuration, the
 * per-run context, the interrupt flag and the command entry points. */
#ifndef PIXCTL_H
#define PIXCTL_H

#include <signal.h>
#include <stdio.h>
#include "util.h"

/* Exit codes (documented in `pixctl --help`). Functions that can fail in more than one way
 * return one of these (PIX_OK is 0) and put a one-line message in err. */
enum pix_exit {
    PIX_OK = 0,
    PIX_EUSAGE = 1,  /* bad arguments or configuration */
    PIX_EAPI = 2,    /* the API or storage refused (4xx/5xx) */
    PIX_ENET = 3,    /* network: cannot connect, timed out, connection dropped */
    PIX_EIO = 4,     /* local file system */
    PIX_EVERIFY = 5, /* content verification failed (sha256 mismatch) */
    PIX_EINTR = 130, /* interrupted by SIGINT or SIGTERM */
};

struct pixctl_config {
    /* every command */
    char *api_url, *token, *config;
    int json, quiet, verbose;
    double timeout, connect_timeout;
    long retries;
    /* upload */
    long parallel;
    char *mime_type, *name, *state_dir;
    int resume;
    double verify_timeout;
    long long upload_buffer;
    int upload_wait;            /* --wait: wait for the server's verification */
    char *hash_mode;            /* auto | first | stream */
    long long hash_first_below; /* auto: hash first below this size, stream above */
    /* upload: bulk import */
    int recursive;        /* -r: directories are walked */
    char *from_list;      /* a file of paths, one a line ("-": stdin) */
    int allow_duplicates; /* import content the library already has */
    long files;           /* files in flight at once */
    /* download, thumb */
    char *output, *variant;
    double wait;
    /* ls, album ls */
    int deleted;
    long limit;
    char *sort;                       /* ls: uploaded | taken; album ls: taken | position */
    char *order;                      /* ls: desc | asc ("": the server's default, desc) */
    char *taken_after, *taken_before; /* ls: RFC 3339 bounds of taken_at */
    /* album */
    char *role; /* album share: viewer | contributor */
    int album;  /* album rm: the album itself; link create: the id is an album's */
    /* link create */
    char *expires_in;    /* "" the server's default, "never", or a duration */
    char *link_password; /* "" none */
    int download;        /* false: variants only, never the original */
    long max_views;      /* 0: no limit */
    /* sync */
    int watch;
    double poll_interval;
    int two_way;     /* carry local changes to the server too */
    long max_delete; /* two-way: server deletions a pass may make (-1: the default rule) */
    int force;       /* two-way: no deletion guard */
    char *exclude;   /* two-way: file name globs not synced, one a line */
};

typedef struct client client;

/* One run of pixctl: what main() sets up for the command. */
struct pix {
    const struct pixctl_config *cfg;
    client *api;
    int tty; /* stderr is a terminal: progress bars instead of plain lines */
};

/* Set by SIGINT/SIGTERM; long loops check it and stop cleanly. */
extern volatile sig_atomic_t pix_interrupted;
void pix_signals_install(void);

/* The exit code to report for a run that saw both a and b (the first failure wins). */
int pix_worst(int a, int b);
/* "pixctl: <msg>" on one line of stderr (newlines in msg are flattened). */
void pix_errorf(const char *fmt, ...) PIX_PRINTF(1, 2);
/* A status line on stderr unless --quiet. */
void pix_note(const struct pix *px, const char *fmt, ...) PIX_PRINTF(2, 3);

/* Commands: args are the positional arguments after the command name. */
typedef int (*pix_cmd_fn)(struct pix *px, int argc, char **argv);
int cmd_upload(struct pix *px, int argc, char **argv);
/* upload -r / --from-list: a bulk import (bulk.c). */
int cmd_upload_bulk(struct pix *px, int argc, char **argv);
int cmd_download(struct pix *px, int argc, char **argv);
int cmd_thumb(struct pix *px, int argc, char **argv);
int cmd_ls(struct pix *px, int argc, char **argv);
int cmd_info(struct pix *px, int argc, char **argv);
int cmd_rename(struct pix *px, int argc, char **argv);
int cmd_share(struct pix *px, int argc, char **argv);
int cmd_rm(struct pix *px, int argc, char **argv);
int cmd_restore(struct pix *px, int argc, char **argv);
int cmd_usage(struct pix *px, int argc, char **argv); /* usage.c */
int cmd_sync(struct pix *px, int argc, char **argv);
int cmd_album(struct pix *px, int argc, char **argv);
int cmd_link(struct pix *px, int argc, char **argv);

#endif
