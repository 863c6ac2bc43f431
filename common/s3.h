/* s3: S3 client on libcurl (one client per thread; it keeps its connections alive):
 * multipart upload calls, HEAD/GET (streaming, or parallel ranges delivered in order)/PUT/
 * DELETE/COPY, listings, presigned URLs.
 * Works path-style (radosgw, MinIO) or virtual-hosted (AWS). */
#ifndef PIX_S3_H
#define PIX_S3_H

#include <stddef.h>
#include <time.h>
#include "sigv4.h"
#include "conf.h"
#include "util.h"

enum { S3_OK = 0, S3_ERR = -1, S3_NOTFOUND = 1 };

struct s3_config {
    const char *endpoint;        /* "http://127.0.0.1:7480" or "https://s3.amazonaws.com" */
    const char *public_endpoint; /* base used in presigned URLs for clients; NULL = endpoint */
    const char *bucket;
    const char *region;
    const char *access_key;
    const char *secret_key;
    int path_style;       /* 1: base/bucket/key; 0: bucket.host/key */
    double timeout;       /* seconds for one request other than a streamed read or a multipart
                             completion; 0 = none */
    double stall_timeout; /* seconds a transfer may move under 1 KiB/s; 0 = forever */
    double connect_timeout;
    int verify_streams;     /* s3_get_ranges' default streams; 0 = CONF_VERIFY_STREAMS */
    long long verify_range; /* and range length in bytes; 0 = CONF_VERIFY_RANGE_MIB MiB */
};

typedef struct s3_client s3_client;

struct s3_part {
    int number;
    long long size;
    char etag[72];
};

struct s3_object {
    long long size;
    char etag[72];
    time_t last_modified;
};

/* Copies the config strings. NULL on failure. */
/* The S3 settings of a service's store (strings borrowed from it), with the request
 * timeouts that service needs. */
struct s3_config s3_config_from_store(const struct conf_store *st);
s3_client *s3_client_new(const struct s3_config *cfg);
void s3_client_free(s3_client *c); /* NULL-safe */
/* HTTP status of the last request, and the S3 error Code (e.g. "NoSuchUpload") if any. */
int s3_last_status(const s3_client *c);
const char *s3_last_code(const s3_client *c);
/* Page size of the listing calls (max-keys, max-parts, max-uploads): 1..1000, 0 = the
 * server's default (1000). Small pages are for tests of the pagination. */
void s3_set_page_size(s3_client *c, int n);

int s3_head_bucket(s3_client *c, char *err);
int s3_create_multipart(s3_client *c, const char *key, const char *content_type, char *upload_id,
                        size_t upload_id_len, char *err);
/* All parts (follows pagination). *parts malloc'd (free()). S3_NOTFOUND if no such upload. */
int s3_list_parts(s3_client *c, const char *key, const char *upload_id, struct s3_part **parts,
                  int *nparts, char *err);
int s3_complete_multipart(s3_client *c, const char *key, const char *upload_id,
                          const struct s3_part *parts, int nparts, char *err);
/* S3_NOTFOUND if the upload does not exist (already aborted or completed). */
int s3_abort_multipart(s3_client *c, const char *key, const char *upload_id, char *err);

typedef int (*s3_upload_cb)(const char *key, const char *upload_id, time_t initiated, void *ud);
/* Calls cb for every multipart upload under prefix (follows pagination); cb != 0 stops. */
int s3_list_multipart_uploads(s3_client *c, const char *prefix, s3_upload_cb cb, void *ud,
                              char *err);
typedef int (*s3_object_cb)(const char *key, long long size, time_t last_modified, void *ud);
/* ListObjectsV2 over prefix, following continuation tokens; cb != 0 stops. */
int s3_list_objects(s3_client *c, const char *prefix, s3_object_cb cb, void *ud, char *err);

int s3_head_object(s3_client *c, const char *key, struct s3_object *out, char *err);
/* Streams the object (or [offset, offset+len) if len >= 0) into sink; sink != 0 aborts. */
typedef int (*s3_sink)(const void *data, size_t len, void *ud);
int s3_get_object(s3_client *c, const char *key, long long offset, long long len, s3_sink sink,
                  void *ud, char *err);
/* Reads bytes [0, size) of the object with up to `streams` concurrent signed GETs of
 * `range_len` bytes each (streams < 1 or range_len < 1: the configured verify_streams /
 * verify_range; streams is capped at S3_STREAMS_MAX) and hands them to sink strictly in
 * order. The range being delivered streams straight to the sink; the ones after it are
 * buffered, so memory stays under about streams x range_len. The easy handles (and their
 * connections) stay in the client for the next call. size 0 is a HEAD that the object exists
 * and is empty. S3_OK; S3_NOTFOUND (404); S3_ERR with err when a server ignores Range, the
 * object is shorter or longer than size (Content-Range total, byte counts), a transfer
 * stalls (the stall timeout), the sink returns != 0, or any HTTP/transport error. */
#define S3_STREAMS_MAX 64
int s3_get_ranges(s3_client *c, const char *key, long long size, int streams, long long range_len,
                  s3_sink sink, void *ud, char *err) PIX_WUR;
int s3_put_object(s3_client *c, const char *key, const void *data, size_t len,
                  const char *content_type, char *err);
/* Deleting a missing key is S3_OK (S3 semantics). */
int s3_delete_object(s3_client *c, const char *key, char *err);
int s3_copy_object(s3_client *c, const char *src_key, const char *dst_key, char *err);

/* Presigned URLs (appended to out) for the client-facing endpoint. now = time(NULL) normally.
 * s3_presign: any method on key with extra signed query parameters (the others use it). */
int s3_presign(s3_client *c, const char *method, const char *key, const struct sigv4_kv *query,
               size_t nq, time_t now, long expires, buf *out, char *err) PIX_WUR;
/* A part URL signs the part's exact length: a PUT of any other length is refused (403). */
int s3_presign_part(s3_client *c, const char *key, const char *upload_id, int part_number,
                    long long length, time_t now, long expires, buf *out, char *err) PIX_WUR;
int s3_presign_get(s3_client *c, const char *key, const char *response_content_type,
                   const char *response_content_disposition, time_t now, long expires, buf *out,
                   char *err) PIX_WUR;
int s3_presign_put(s3_client *c, const char *key, time_t now, long expires, buf *out,
                   char *err) PIX_WUR;
/* One PUT of a whole object whose signature binds its Content-Length: a body of any other
 * length is refused by the server (a one-part upload's URL). */
int s3_presign_put_sized(s3_client *c, const char *key, long long length, time_t now, long expires,
                         buf *out, char *err) PIX_WUR;

#endif
