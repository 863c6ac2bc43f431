/* cli: pixctl's commands and options: one declarative option table (with the commands each
 * option applies to), the `key = value` config file layered under the environment, and help. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsx.h"

#define CONFIG_MAX (64 * 1024)

enum {
    C_UPLOAD = 1 << 0,
    C_DOWNLOAD = 1 << 1,
    C_THUMB = 1 << 2,
    C_LS = 1 << 3,
    C_INFO = 1 << 4,
    C_RENAME = 1 << 5,
    C_SHARE = 1 << 6,
    C_RM = 1 << 7,
    C_RESTORE = 1 << 8,
    C_SYNC = 1 << 9,
    C_ALBUM = 1 << 10,
    C_USAGE = 1 << 11,
    C_LINK = 1 << 12,
    C_ALL = 0x1fff,
};

static const struct pix_command commands[] = {
    {"upload", cmd_upload, C_UPLOAD, "FILE... | -r DIR... | --from-list FILE",
     "upload images (parallel, resumable, deduplicated)",
     "Hashes each file (SHA-256, one pass), starts an upload session and, when the server\n"
     "already holds the content, proves possession by hashing the ranges it asks for: no\n"
     "bytes are sent. Otherwise uploads the chunks in parallel straight to storage through\n"
     "presigned URLs, retries failed chunks with backoff, refreshes expired URLs, completes\n"
     "and prints the image id (one file) or `ID  FILE` lines (several). Large files (--hash,\n"
     "--hash-first-below) are hashed while they are sent instead: read once, the sha256\n"
     "declared at complete. It returns once the server has the commit: a note says\n"
     "`verified` or `verifying` (checked in the background; --json: \"state\"); --wait waits\n"
     "for the check and exits 5 if it fails. Killed or interrupted, the same command\n"
     "resumes: it asks the server which chunks it has and sends only the missing ones. A\n"
     "file changed since is uploaded afresh.\n\n"
     "Bulk import: -r walks directories (hidden files and directories skipped, symlinked\n"
     "directories not followed; images by extension or first bytes, other files ignored),\n"
     "--from-list FILE takes one path a line (- for stdin). Files are hashed, sessions\n"
     "opened a hundred at a time (POST /uploads/batch), --files of them sent at once. One\n"
     "progress line for the import, `ID  FILE` per file (--json: one object per file and a\n"
     "summary object) and a summary with the failures. The import index in the state\n"
     "directory remembers each imported file (path, size, mtime, inode, sha256, image):\n"
     "unchanged files are not read again and files whose image exists are skipped, as are\n"
     "files whose content is already in your library (unless --allow-duplicates). Killed,\n"
     "the same command converges: the same sessions come back, no image is made twice.",
     0, -1},
    {"download", cmd_download, C_DOWNLOAD, "ID [-o PATH]",
     "download an image, verifying its sha256",
     "Downloads through a signed URL into a temporary file beside the target, checks the\n"
     "SHA-256 against the image's metadata and only then renames it into place: a partial\n"
     "or corrupt file never appears under the final name. Without -o the image's name in the\n"
     "current directory; -o DIR keeps the name. Prints the path written.",
     1, 1},
    {"ls", cmd_ls, C_LS, "[--sort taken]", "list your images (--deleted: the trash)",
     "Lists your images newest first, following the server's pages: id, size, creation\n"
     "time, state (verifying, active, failed) and name. --json prints one JSON object per\n"
     "image.\n\n"
     "--sort taken lists the timeline instead: by the time each photo was taken (its EXIF\n"
     "capture time, else the file's modification time pixctl sent at upload, else the\n"
     "upload time), shown with its source (exif, file_modified, upload). --taken-after and\n"
     "--taken-before (RFC 3339, e.g. 2021-07-04T00:00:00Z) narrow it to a period: after is\n"
     "inclusive, before exclusive. --order asc lists oldest first.",
     0, 0},
    {"info", cmd_info, C_INFO, "ID", "show an image's metadata",
     "Shows an image's metadata, its state (status: verifying, active, failed) and, when\n"
     "its verification failed, the error; then its capture metadata as the worker read it\n"
     "from the content: when it was taken (and the source of that time: exif,\n"
     "file_modified, upload), camera, lens, exposure and, for your own images (or where\n"
     "the owner allows it), the location.",
     1, 1},
    {"rename", cmd_rename, C_RENAME, "ID NAME", "rename an image", "Renames an image.", 2, 2},
    {"share", cmd_share, C_SHARE, "ID USER", "share an image with another user",
     "Shares an image with another user (read access).", 2, 2},
    {"rm", cmd_rm, C_RM, "ID...", "delete images (restorable during retention)",
     "Deletes images (soft delete: `pixctl restore` brings them back during the retention\n"
     "period).",
     1, -1},
    {"restore", cmd_restore, C_RESTORE, "ID...", "restore deleted images",
     "Restores deleted images.", 1, -1},
    {"usage", cmd_usage, C_USAGE, "", "show your storage usage and quota",
     "Shows your usage (GET /me/usage): bytes_used and images count every image of yours,\n"
     "trash included until it is purged, each at its full size (a duplicate counts again);\n"
     "trash_bytes and trash_images the part in the trash; reserved_bytes and\n"
     "reserved_images your open uploads; max_bytes and max_images your quota (unlimited\n"
     "when none). An upload that does not fit is refused with quota_exceeded.",
     0, 0},
    {"thumb", cmd_thumb, C_THUMB, "ID [--variant V] [-o PATH]", "download a variant (thumbnail)",
     "Downloads a variant of an image (default thumbnail_small). Waits up to --wait while\n"
     "the server is still making it. Prints the path written.",
     1, 1},
    {"sync", cmd_sync, C_SYNC, "DIR [--watch] [--two-way]", "sync your images with a folder",
     "Mirrors your images into DIR: downloads added and updated images (verified, through a\n"
     "temporary file, so no partial file ever has a final name), renames, removes deleted\n"
     "ones. The cursor and an index live in DIR/.pixplane/; killed at any point, the next\n"
     "run carries on. Names collide as `NAME (ID-PREFIX).EXT` (the image with the smallest\n"
     "id keeps the plain name). --watch keeps running and follows the server's event\n"
     "stream, reconnecting with backoff.\n\n"
     "--two-way also carries the folder's changes to the server: new files are uploaded,\n"
     "renames rename, deletions go to the trash, an edited file becomes a new image that\n"
     "replaces the old one (which goes to the trash). The same image changed on both\n"
     "sides is a conflict; nothing is lost: edit against edit keeps the server's version\n"
     "under the name and yours as `NAME (conflict HOST DATE).EXT`; an edit or a rename\n"
     "beats a deletion; of two renames the server's wins. A pass that would delete more\n"
     "than --max-delete images stops and changes nothing, as does an emptied folder\n"
     "(unmounted?) unless --force. Files changing while they are read wait for the next\n"
     "pass. Only files directly in DIR are synced; hidden, temporary and swap files and\n"
     "--exclude globs are left alone. With --watch, local changes are followed too.",
     1, 1},
    {"album", cmd_album, C_ALBUM, "SUBCOMMAND ...",
     "albums: create, ls, add, rm, delete, share, unshare",
     "Albums group images; the images stay where they are (an album holds references).\n"
     "  album create NAME                  make an album; prints its id\n"
     "  album ls [ALBUM_ID]                your albums and those shared with you; with an\n"
     "                                     id, that album's images (--sort taken|position)\n"
     "  album add ALBUM_ID IMAGE_ID...     add your images\n"
     "  album rm ALBUM_ID IMAGE_ID...      take images out (they stay in your library)\n"
     "  album rm --album ALBUM_ID          delete the album (also: album delete ALBUM_ID)\n"
     "  album share ALBUM_ID USER          let USER see the album (--role contributor: and\n"
     "                                     add their own images)\n"
     "  album unshare ALBUM_ID USER        end USER's access (yourself: leave the album)\n"
     "Locations (GPS) of your photos are not shown to members unless the album allows it.\n"
     "--json prints the API's objects, one per line (album ls ALBUM_ID: the album, then\n"
     "its images).",
     1, -1},
    {"link", cmd_link, C_LINK, "SUBCOMMAND ...", "public links: create, ls, rm",
     "Public links let people without an account see an image or an album.\n"
     "  link create ID                     a link to your image (--album: your album);\n"
     "                                     prints its url, the only place its token appears\n"
     "  link ls                            your links: id, type, image or album, status,\n"
     "                                     views, expiry\n"
     "  link rm LINK_ID...                 revoke links (they stop working at once)\n"
     "--expires-in (default: the server's, 7 days; `never` only where the server allows it),\n"
     "--link-password (prefer PIXCTL_LINK_PASSWORD: arguments show in process lists),\n"
     "--no-download (the preview only, never the original) and --max-views shape a new link.\n"
     "--json prints the API's objects, one per line.",
     1, -1},
};

struct opt_def {
    struct conf_opt o;
    unsigned cmds;
};

/* Targets are offsets into struct pixctl_config; build_table makes them pointers. */
#define C(f) ((void *)offsetof(struct pixctl_config, f))

static const struct opt_def options[] = {
    {{"api-url", "PIXPLANE_API_URL", CONF_STR, C(api_url), "http://127.0.0.1:8080",
      "pixplane API base URL"},
     C_ALL},
    {{"token", "PIXPLANE_TOKEN", CONF_STR, C(token), "", "bearer token (required)"}, C_ALL},
    {{"config", "PIXPLANE_CONFIG", CONF_STR, C(config), "",
      "config file (default ~/.config/pixplane/config)"},
     C_ALL},
    {{"json", "PIXCTL_JSON", CONF_BOOL, C(json), "false",
      "print JSON (one object per line) on stdout for scripts"},
     C_ALL},
    {{"quiet", "PIXCTL_QUIET", CONF_BOOL, C(quiet), "false", "no progress or notes on stderr (-q)"},
     C_ALL},
    {{"verbose", "PIXCTL_VERBOSE", CONF_BOOL, C(verbose), "false",
      "log each API request on stderr (-v)"},
     C_ALL},
    {{"timeout", "PIXCTL_TIMEOUT", CONF_SECS, C(timeout), "60s",
      "API request timeout; a transfer under 1 KiB/s this long is retried"},
     C_ALL},
    {{"connect-timeout", "PIXCTL_CONNECT_TIMEOUT", CONF_SECS, C(connect_timeout), "10s",
      "TCP connect timeout"},
     C_ALL},
    {{"retries", "PIXCTL_RETRIES", CONF_INT, C(retries), "8",
      "attempts per request or chunk before giving up"},
     C_ALL},
    {{"parallel", "PIXCTL_PARALLEL", CONF_INT, C(parallel), "4", "chunks uploaded at once (-p)"},
     C_UPLOAD},
    {{"mime-type", "PIXCTL_MIME_TYPE", CONF_STR, C(mime_type), "",
      "MIME type (default: from the extension or the first bytes)"},
     C_UPLOAD},
    {{"name", "PIXCTL_NAME", CONF_STR, C(name), "",
      "image name (default: the file's base name; one file only)"},
     C_UPLOAD},
    {{"state-dir", "PIXPLANE_STATE_DIR", CONF_STR, C(state_dir), "",
      "resume state directory (default ~/.cache/pixplane/uploads)"},
     C_UPLOAD},
    {{"resume", "PIXCTL_RESUME", CONF_BOOL, C(resume), "true",
      "resume an interrupted upload of the same file"},
     C_UPLOAD},
    {{"verify-timeout", "PIXCTL_VERIFY_TIMEOUT", CONF_SECS, C(verify_timeout), "2h",
      "how long to wait while the server verifies a large upload"},
     C_UPLOAD},
    {{"upload-buffer", "PIXCTL_UPLOAD_BUFFER", CONF_SIZE, C(upload_buffer), "512KiB",
      "read buffer per parallel chunk upload (16KiB-2MiB)"},
     C_UPLOAD},
    {{"hash", "PIXCTL_HASH", CONF_STR, C(hash_mode), "auto",
      "first: hash, then upload (dedup before any byte moves); stream: hash while uploading "
      "(the file is read once; the hash goes with complete); auto: first below "
      "--hash-first-below, stream above"},
     C_UPLOAD},
    {{"hash-first-below", "PIXCTL_HASH_FIRST_BELOW", CONF_SIZE, C(hash_first_below), "64MiB",
      "with --hash auto, files smaller than this are hashed first"},
     C_UPLOAD},
    {{"recursive", "PIXCTL_RECURSIVE", CONF_BOOL, C(recursive), "false",
      "bulk import: walk the directories given (-r)"},
     C_UPLOAD},
    {{"from-list", "PIXCTL_FROM_LIST", CONF_STR, C(from_list), "",
      "bulk import: the paths in this file, one a line (-: standard input)"},
     C_UPLOAD},
    {{"allow-duplicates", "PIXCTL_ALLOW_DUPLICATES", CONF_BOOL, C(allow_duplicates), "false",
      "bulk import: also import files whose content is already in your library"},
     C_UPLOAD},
    {{"files", "PIXCTL_FILES", CONF_INT, C(files), "8", "bulk import: files sent at once (1-64)"},
     C_UPLOAD},
    {{"output", "PIXCTL_OUTPUT", CONF_STR, C(output), "",
      "where to write (-o); a directory keeps the image's name"},
     C_DOWNLOAD | C_THUMB},
    {{"variant", "PIXCTL_VARIANT", CONF_STR, C(variant), "thumbnail_small", "variant type"},
     C_THUMB},
    {{"wait", "PIXCTL_WAIT", CONF_SECS, C(wait), "60s",
      "how long to wait for a variant still being made"},
     C_THUMB},
    {{"wait", "PIXCTL_UPLOAD_WAIT", CONF_BOOL, C(upload_wait), "false",
      "wait until the server has verified the content (up to --verify-timeout); exit 5 if "
      "it fails"},
     C_UPLOAD},
    {{"deleted", "PIXCTL_DELETED", CONF_BOOL, C(deleted), "false", "list the trash instead"}, C_LS},
    {{"limit", "PIXCTL_LIMIT", CONF_INT, C(limit), "0", "stop after this many images (0: all)"},
     C_LS | C_ALBUM | C_LINK},
    {{"sort", "PIXCTL_SORT", CONF_STR, C(sort), "",
      "ls: uploaded (default) or taken (the capture time); album ls ALBUM_ID: taken or "
      "position (default: the album's own order)"},
     C_LS | C_ALBUM},
    {{"order", "PIXCTL_ORDER", CONF_STR, C(order), "", "desc (default: newest first) or asc"},
     C_LS},
    {{"taken-after", "PIXCTL_TAKEN_AFTER", CONF_STR, C(taken_after), "",
      "only images taken at or after this RFC 3339 time"},
     C_LS},
    {{"taken-before", "PIXCTL_TAKEN_BEFORE", CONF_STR, C(taken_before), "",
      "only images taken before this RFC 3339 time"},
     C_LS},
    {{"role", "PIXCTL_ROLE", CONF_STR, C(role), "viewer",
      "album share: viewer (sees the album) or contributor (also adds their own images)"},
     C_ALBUM},
    {{"album", NULL, CONF_BOOL, C(album), "false",
      "album rm: delete the album itself (its images stay); link create: ID is an album"},
     C_ALBUM | C_LINK},
    {{"expires-in", "PIXCTL_EXPIRES_IN", CONF_STR, C(expires_in), "",
      "link create: how long the link works (90s, 30m, 12h, 7d, or never; empty: the "
      "server's default)"},
     C_LINK},
    {{"link-password", "PIXCTL_LINK_PASSWORD", CONF_STR, C(link_password), "",
      "link create: a password the link asks for (empty: none)"},
     C_LINK},
    {{"download", "PIXCTL_LINK_DOWNLOAD", CONF_BOOL, C(download), "true",
      "link create: the original may be downloaded (--no-download: the preview only)"},
     C_LINK},
    {{"max-views", "PIXCTL_MAX_VIEWS", CONF_INT, C(max_views), "0",
      "link create: views the link allows (0: no limit)", 0, 1000000000},
     C_LINK},
    {{"watch", "PIXCTL_WATCH", CONF_BOOL, C(watch), "false",
      "keep running: follow the server's event stream (-w)"},
     C_SYNC},
    {{"poll-interval", "PIXCTL_POLL_INTERVAL", CONF_SECS, C(poll_interval), "5m",
      "with --watch, also pull changes this often (a safety net)"},
     C_SYNC},
    {{"two-way", "PIXCTL_TWO_WAY", CONF_BOOL, C(two_way), "false",
      "also carry the folder's changes (new, renamed, edited, deleted files) to the server"},
     C_SYNC},
    {{"max-delete", "PIXCTL_MAX_DELETE", CONF_INT, C(max_delete), "-1",
      "two-way: stop if a pass would delete more than this many images on the server "
      "(-1: 50, or 10 % of the files if less, but at least 5)"},
     C_SYNC},
    {{"force", "PIXCTL_FORCE", CONF_BOOL, C(force), "false",
      "two-way: no deletion limit, and an emptied folder deletes its images"},
     C_SYNC},
    {{"exclude", "PIXCTL_EXCLUDE", CONF_LIST, C(exclude), "",
      "two-way: a file-name glob not to sync (repeatable); hidden, temporary and swap "
      "files are never synced"},
     C_SYNC},
};

static const struct {
    const char *s, *l;
} short_flags[] = {{"-o", "--output"},   {"-q", "--quiet"}, {"-v", "--verbose"},
                   {"-p", "--parallel"}, {"-w", "--watch"}, {"-j", "--json"},
                   {"-r", "--recursive"}};

static const struct opt_def *find_def(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strlen(options[i].o.name) == len && !strncmp(options[i].o.name, name, len))
            return &options[i];
    return NULL;
}

static const struct pix_command *find_cmd(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* Does argv[i] (a "--flag" without '=') take the next argument as its value? */
static int takes_value(const char *arg)
{
    const struct opt_def *d;

    if (strncmp(arg, "--", 2) || strchr(arg, '='))
        return 0;
    d = find_def(arg + 2, strlen(arg + 2));
    return d && d->o.type != CONF_BOOL;
}

/* Copies argv with short flags spelled out; *cmd_at is the command's index (0 if none). */
static char **copy_args(int argc, char **argv, int *cmd_at)
{
    char **av = calloc((size_t)argc + 1, sizeof *av);
    int ended = 0;

    if (!av)
        return NULL;
    *cmd_at = 0;
    for (int i = 0; i < argc; i++) {
        av[i] = argv[i];
        for (size_t k = 0; i > 0 && !ended && k < ARRAY_LEN(short_flags); k++)
            if (!strcmp(argv[i], short_flags[k].s))
                av[i] = (char *)short_flags[k].l;
    }
    for (int i = 1; i < argc; i++) {
        if (!ended && !strcmp(av[i], "--")) {
            ended = 1;
        } else if (!ended && av[i][0] == '-' && av[i][1]) {
            if (takes_value(av[i]))
                i++;
        } else {
            *cmd_at = i;
            break;
        }
    }
    return av;
}

static int wants_help(int argc, char **av)
{
    for (int i = 1; i < argc && strcmp(av[i], "--"); i++)
        if (!strcmp(av[i], "--help") || !strcmp(av[i], "-h"))
            return 1;
    return 0;
}

static void print_main_help(FILE *out)
{
    fputs("pixctl: the pixplane client\n\n"
          "Usage: pixctl [options] COMMAND [arguments]\n\nCommands:\n",
          out);
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", commands[i].name, commands[i].usage);
        fprintf(out, "  %-33s %s\n", left, commands[i].summary);
    }
    fputs("\n`pixctl COMMAND --help` shows a command's options.\n\n"
          "Configuration: flags > environment > config file > defaults. The config file\n"
          "(--config PATH, $PIXPLANE_CONFIG, else ~/.config/pixplane/config) has one\n"
          "`key = value` per line, keys named like the flags (api-url, token, parallel, ...);\n"
          "# starts a comment.\n\n"
          "Output: results on stdout (--json: one JSON object per line), progress and notes\n"
          "on stderr (a bar on a terminal, plain lines otherwise), errors as one line\n"
          "`pixctl: ...` on stderr.\n\n"
          "Exit codes:\n"
          "  0    success\n"
          "  1    usage or configuration error\n"
          "  2    the API or storage refused the request (the message has the HTTP status\n"
          "       and error code)\n"
          "  3    network error: cannot connect, timed out, connection dropped (retried first)\n"
          "  4    local I/O error: a file cannot be read or written\n"
          "  5    verification failed: the content's sha256 does not match\n"
          "  130  interrupted (SIGINT, SIGTERM); an interrupted upload resumes when run again\n"
          "With several files or images the first failure's code is returned.\n\n",
          out);
}

/* The option table for one command (cmd NULL: the options every command takes). */
static struct conf_opt *build_table(const struct pix_command *cmd, struct pixctl_config *cfg,
                                    size_t *n)
{
    struct conf_opt *t = calloc(ARRAY_LEN(options), sizeof *t);
    unsigned bit = cmd ? cmd->bit : C_ALL;

    if (!t)
        return NULL;
    *n = 0;
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        if (!(options[i].cmds & bit) || (!cmd && options[i].cmds != C_ALL))
            continue;
        t[*n] = options[i].o;
        t[*n].target = (char *)cfg + (size_t)options[i].o.target;
        (*n)++;
    }
    return t;
}

static void print_cmd_help(const struct pix_command *cmd, const struct conf_opt *t, size_t n,
                           FILE *out)
{
    char prog[96];

    snprintf(prog, sizeof prog, "pixctl %s %s", cmd->name, cmd->usage);
    fprintf(out, "%s\n\n", cmd->help);
    conf_usage(t, n, prog, out);
    fputs("\nExit codes: 0 ok, 1 usage, 2 API/storage error, 3 network, 4 local I/O,\n"
          "5 verification failed, 130 interrupted (see pixctl --help).\n",
          out);
}

int cli_conf_line(char *line, char **key, char **val)
{
    char *p = line, *eq, *end;
    size_t n;

    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#' || *p == ';')
        return 0;
    if (!(eq = strchr(p, '=')))
        return -1;
    for (end = eq; end > p && isspace((unsigned char)end[-1]); end--)
        ;
    if (end == p)
        return -1;
    *end = '\0';
    for (char *k = p; *k; k++) {
        if (*k == '_')
            *k = '-';
        if (!isalnum((unsigned char)*k) && *k != '-')
            return -1;
    }
    *key = p;
    p = eq + 1;
    while (isspace((unsigned char)*p))
        p++;
    n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        p[--n] = '\0';
    if (n >= 2 && (p[0] == '"' || p[0] == '\'') && p[n - 1] == p[0])
        p[n - 1] = '\0', p++;
    *val = p;
    return 1;
}

/* The --config value from av, else $PIXPLANE_CONFIG; NULL if neither. */
static const char *config_arg(int argc, char **av)
{
    for (int i = 1; i < argc && strcmp(av[i], "--"); i++) {
        if (!strncmp(av[i], "--config=", 9))
            return av[i] + 9;
        if (!strcmp(av[i], "--config") && i + 1 < argc)
            return av[i + 1];
    }
    return getenv("PIXPLANE_CONFIG");
}

/* Applies one file setting by exporting its environment variable, unless the environment
 * already sets it (the environment outranks the file). */
static int apply_setting(const char *path, int lineno, const char *key, const char *val, char *err)
{
    const struct opt_def *d = find_def(key, strlen(key));

    if (!d || !d->o.env || !strcmp(key, "config")) {
        err_set(err, "%s:%d: unknown setting '%.64s'", path, lineno, key);
        return -1;
    }
    if (!getenv(d->o.env) && setenv(d->o.env, val, 1) < 0) {
        err_set(err, "%s:%d: %s", path, lineno, strerror(errno));
        return -1;
    }
    return 0;
}

static int load_config_file(int argc, char **av, char *err)
{
    const char *path = config_arg(argc, av), *home = getenv("HOME"), *xdg;
    char def[4096], *text, *line, *next;
    int explicit = path && *path, lineno = 0, rc = 0;
    size_t len;

    if (!explicit) {
        xdg = getenv("XDG_CONFIG_HOME");
        if (xdg && *xdg)
            snprintf(def, sizeof def, "%s/pixplane/config", xdg);
        else if (home && *home)
            snprintf(def, sizeof def, "%s/.config/pixplane/config", home);
        else
            return 0;
        path = def;
    }
    if (!(text = fsx_read_file(path, CONFIG_MAX, &len, err))) {
        if (errno == ENOENT && !explicit)
            return 0;
        return -1;
    }
    for (line = text; line && rc == 0; line = next) {
        char *key, *val, *nl = strchr(line, '\n');
        int r;
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        r = cli_conf_line(line, &key, &val);
        lineno++;
        if (r < 0)
            err_set(err, "%s:%d: expected `key = value`", path, lineno), rc = -1;
        if (r > 0)
            rc = apply_setting(path, lineno, key, val, err);
    }
    free(text);
    return rc;
}

static int check_ranges(const struct pixctl_config *c, char *err)
{
    if (c->parallel < 1 || c->parallel > 64)
        return err_set(err, "--parallel must be 1-64"), -1;
    if (c->files < 1 || c->files > 64)
        return err_set(err, "--files must be 1-64"), -1;
    if (c->retries < 1 || c->retries > 100)
        return err_set(err, "--retries must be 1-100"), -1;
    if (c->timeout <= 0 || c->connect_timeout <= 0)
        return err_set(err, "--timeout and --connect-timeout must be positive"), -1;
    if (c->upload_buffer < 16 * 1024 || c->upload_buffer > 2 * 1024 * 1024)
        return err_set(err, "--upload-buffer must be 16KiB-2MiB"), -1;
    if (c->max_delete < -1)
        return err_set(err, "--max-delete must be 0 or more"), -1;
    if (c->limit < 0)
        return err_set(err, "--limit must not be negative"), -1;
    if (c->hash_mode && strcmp(c->hash_mode, "auto") && strcmp(c->hash_mode, "first") &&
        strcmp(c->hash_mode, "stream"))
        return err_set(err, "--hash must be auto, first or stream"), -1;
    if (c->hash_first_below < 0)
        return err_set(err, "--hash-first-below must not be negative"), -1;
    return 0;
}

static int arg_count_ok(const struct cli *c, char *err)
{
    const struct pix_command *k = c->cmd;

    if (c->nargs >= k->min_args && (k->max_args < 0 || c->nargs <= k->max_args))
        return 0;
    err_set(err, "usage: pixctl %s %s (see pixctl %s --help)", k->name, k->usage, k->name);
    return -1;
}

/* Defaults for options the command does not take, so every field has a sane value. */
static void base_defaults(struct pixctl_config *cfg)
{
    cfg->timeout = 60, cfg->connect_timeout = 10, cfg->retries = 8, cfg->parallel = 4;
    cfg->files = 8;
    cfg->resume = 1, cfg->verify_timeout = 7200, cfg->upload_buffer = 512 * 1024;
    cfg->wait = 60, cfg->poll_interval = 300, cfg->hash_first_below = 64LL << 20;
    cfg->max_delete = -1;
}

static int parse_cmd(int argc, struct cli *out, struct pixctl_config *cfg, int cmd_at, char *err)
{
    int rc;

    if (!(out->table = build_table(out->cmd, cfg, &out->ntable)))
        return err_set(err, "out of memory"), PIX_EUSAGE;
    if (wants_help(argc, out->av)) {
        print_cmd_help(out->cmd, out->table, out->ntable, stdout);
        return PIX_OK;
    }
    if (load_config_file(argc, out->av, err) < 0)
        return PIX_EUSAGE;
    memmove(out->av + cmd_at, out->av + cmd_at + 1, sizeof(char *) * (size_t)(argc - cmd_at));
    rc = conf_load(out->table, out->ntable, argc - 1, out->av, &out->args, &out->nargs, err);
    if (rc != 0)
        return rc == 1 ? PIX_OK : PIX_EUSAGE;
    if (check_ranges(cfg, err) < 0 || arg_count_ok(out, err) < 0)
        return PIX_EUSAGE;
    if (!cfg->api_url || !*cfg->api_url)
        return err_set(err, "--api-url is empty"), PIX_EUSAGE;
    if (!cfg->token || !*cfg->token)
        return err_set(err, "no token: set PIXPLANE_TOKEN, --token or `token = ...` in the "
                            "config file"),
               PIX_EUSAGE;
    return CLI_RUN;
}

int cli_parse(int argc, char **argv, struct pixctl_config *cfg, struct cli *out, char *err)
{
    int cmd_at;

    memset(out, 0, sizeof *out);
    base_defaults(cfg);
    if (!(out->av = copy_args(argc, argv, &cmd_at)))
        return err_set(err, "out of memory"), PIX_EUSAGE;
    if (cmd_at && !strcmp(out->av[cmd_at], "help")) {
        if (cmd_at + 1 >= argc)
            return print_main_help(stdout), PIX_OK;
        out->av[cmd_at] = out->av[cmd_at + 1], out->av[cmd_at + 1] = (char *)"--help";
    }
    if (!cmd_at) {
        if (!wants_help(argc, out->av))
            return err_set(err, "no command given (see pixctl --help)"), PIX_EUSAGE;
        print_main_help(stdout);
        if ((out->table = build_table(NULL, cfg, &out->ntable)))
            conf_usage(out->table, out->ntable, "pixctl COMMAND", stdout);
        return PIX_OK;
    }
    if (!(out->cmd = find_cmd(out->av[cmd_at])))
        return err_set(err, "unknown command '%.64s' (see pixctl --help)", out->av[cmd_at]),
               PIX_EUSAGE;
    return parse_cmd(argc, out, cfg, cmd_at, err);
}

void cli_free(struct cli *c, struct pixctl_config *cfg)
{
    if (!c)
        return;
    if (c->table)
        conf_free(c->table, c->ntable);
    free(c->table);
    free(c->av);
    memset(c, 0, sizeof *c);
    (void)cfg;
}
