/* state: JSON resume files: one per local file (named by the hash of its absolute path),
 * replaced atomically after the session starts and as chunks finish. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsx.h"
#include "hash.h"
#include "json.h"
#include "state.h"

#define STATE_VERSION 1
#define STATE_MAX (4 * 1024 * 1024)

int state_path(const char *dir, const char *abs_path, char *out, size_t n)
{
    char h[65];

    hash_string(abs_path, h);
    return snprintf(out, n, "%s/%s.json", dir, h) < (int)n ? 0 : -1;
}

static int add_u64(cJSON *o, const char *key, unsigned long long v)
{
    char s[24];

    snprintf(s, sizeof s, "%llu", v);
    return cJSON_AddStringToObject(o, key, s) ? 0 : -1;
}

static cJSON *done_json(const struct upload_state *s)
{
    cJSON *a = cJSON_CreateArray();

    for (int i = 0; a && s->done && i < s->chunk_count; i++)
        if (s->done[i])
            cJSON_AddItemToArray(a, cJSON_CreateNumber(i));
    return a;
}

char *state_to_json(const struct upload_state *s)
{
    cJSON *o = cJSON_CreateObject();
    char mtime[48], *out = NULL;

    if (!o)
        return NULL;
    snprintf(mtime, sizeof mtime, "%lld.%09lld", s->file.mtime_sec, s->file.mtime_nsec);
    cJSON_AddNumberToObject(o, "version", STATE_VERSION);
    cJSON_AddStringToObject(o, "path", s->file.path);
    cJSON_AddNumberToObject(o, "size", (double)s->file.size);
    cJSON_AddStringToObject(o, "mtime", mtime);
    if (add_u64(o, "dev", s->file.dev) < 0 || add_u64(o, "ino", s->file.ino) < 0)
        goto done;
    cJSON_AddStringToObject(o, "sha256", s->file.sha256);
    cJSON_AddStringToObject(o, "api_url", s->api_url);
    cJSON_AddStringToObject(o, "upload_session_id", s->session_id);
    cJSON_AddNumberToObject(o, "chunk_size", (double)s->chunk_size);
    cJSON_AddNumberToObject(o, "chunk_count", s->chunk_count);
    cJSON_AddItemToObject(o, "done", done_json(s));
    out = cJSON_PrintUnformatted(o);
done:
    cJSON_Delete(o);
    return out;
}

/* Copies string field key (1..n-1 bytes) into out. */
static int get_str(const cJSON *o, const char *key, char *out, size_t n)
{
    const char *v = NULL, *e = NULL;

    if (json_get_str(o, key, &v, &e) != 1 || strlen(v) >= n || !*v)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* The content hash, or "" for an upload hashed while it is sent (declared at complete). */
static int get_hash(const cJSON *o, char *out, size_t n)
{
    const char *v = NULL, *e = NULL;

    if (json_get_str(o, "sha256", &v, &e) != 1 || strlen(v) >= n)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static int get_u64(const cJSON *o, const char *key, unsigned long long *out)
{
    char s[24], *end;

    if (get_str(o, key, s, sizeof s) < 0)
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno || *end ? -1 : 0;
}

static int get_mtime(const cJSON *o, struct file_ident *f)
{
    char s[48];

    if (get_str(o, "mtime", s, sizeof s) < 0)
        return -1;
    return sscanf(s, "%lld.%9lld", &f->mtime_sec, &f->mtime_nsec) == 2 ? 0 : -1;
}

static int get_done(const cJSON *o, struct upload_state *s)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "done"), *it;

    if (!cJSON_IsArray(a))
        return -1;
    cJSON_ArrayForEach(it, a)
    {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (v < 0 || v >= s->chunk_count || v != (double)(int)v)
            return -1;
        s->done[(int)v] = 1;
    }
    return 0;
}

int state_from_json(const char *text, size_t len, struct upload_state *s, char *err)
{
    const char *e = NULL;
    cJSON *o = json_parse_object(text, len, &e);
    long long ver = 0, cc = 0;
    int rc = -1;

    memset(s, 0, sizeof *s);
    if (!o)
        return err_set(err, "not a state file: %s", e), -1;
    if (json_get_i64(o, "version", &ver, &e) != 1 || ver != STATE_VERSION ||
        get_str(o, "path", s->file.path, sizeof s->file.path) < 0 ||
        json_get_i64(o, "size", &s->file.size, &e) != 1 || get_mtime(o, &s->file) < 0 ||
        get_u64(o, "dev", &s->file.dev) < 0 || get_u64(o, "ino", &s->file.ino) < 0 ||
        get_hash(o, s->file.sha256, sizeof s->file.sha256) < 0 ||
        get_str(o, "api_url", s->api_url, sizeof s->api_url) < 0 ||
        get_str(o, "upload_session_id", s->session_id, sizeof s->session_id) < 0 ||
        json_get_i64(o, "chunk_size", &s->chunk_size, &e) != 1 ||
        json_get_i64(o, "chunk_count", &cc, &e) != 1 || cc < 1 || cc > 1000000 ||
        s->chunk_size < 1 || state_alloc(s, (int)cc) < 0 || get_done(o, s) < 0) {
        err_set(err, "bad or incomplete state file");
        state_clear(s);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    return rc;
}

int state_save(const char *path, const struct upload_state *s, char *err)
{
    char *text = state_to_json(s);
    int rc;

    if (!text)
        return err_set(err, "out of memory"), -1;
    rc = fsx_write_atomic(path, text, strlen(text), 0, err);
    free(text);
    return rc;
}

int state_load(const char *path, struct upload_state *s, char *err)
{
    size_t len;
    char *text = fsx_read_file(path, STATE_MAX, &len, err);
    int rc;

    memset(s, 0, sizeof *s);
    if (!text)
        return errno == ENOENT ? 0 : -1;
    rc = state_from_json(text, len, s, err);
    free(text);
    return rc < 0 ? -1 : 1;
}

int state_alloc(struct upload_state *s, int chunk_count)
{
    free(s->done);
    s->done = calloc((size_t)(chunk_count > 0 ? chunk_count : 1), 1);
    s->chunk_count = s->done ? chunk_count : 0;
    return s->done ? 0 : -1;
}

void state_clear(struct upload_state *s)
{
    if (!s)
        return;
    free(s->done);
    s->done = NULL;
    s->chunk_count = 0;
}

int state_count_done(const struct upload_state *s)
{
    int n = 0;

    for (int i = 0; s->done && i < s->chunk_count; i++)
        n += s->done[i] != 0;
    return n;
}

int state_same_file(const struct file_ident *a, const struct file_ident *b)
{
    return !strcmp(a->path, b->path) && a->size == b->size && a->mtime_sec == b->mtime_sec &&
           a->mtime_nsec == b->mtime_nsec && a->dev == b->dev && a->ino == b->ino &&
           !strcmp(a->sha256, b->sha256);
}
