/* sigv4: AWS Signature Version 4 with OpenSSL: presigned query URLs and Authorization
 * header signing. The signing key is derived once per (date, region, service). */
#ifndef PIX_SIGV4_H
#define PIX_SIGV4_H

#include <stddef.h>
#include <time.h>
#include "util.h"

typedef struct sigv4_signer sigv4_signer;

struct sigv4_kv {
    const char *key;
    const char *value;
};

/* service is "s3" for S3. Not thread-safe: one signer per thread. */
sigv4_signer *sigv4_signer_new(const char *access_key, const char *secret_key, const char *region,
                               const char *service);
void sigv4_signer_free(sigv4_signer *s);

/* Presigned URL: base is "scheme://host[:port]" (the Host header is derived from it, default
 * ports dropped), path the raw (unencoded) absolute path such as "/bucket/my key.jpg";
 * query the extra unencoded parameters to sign (partNumber, uploadId, response-*).
 * Appends the whole URL to out. 0 or -1. */
int sigv4_presign(sigv4_signer *s, const char *method, const char *base, const char *path,
                  const struct sigv4_kv *query, size_t nq, time_t now, long expires, buf *out,
                  char *err) PIX_WUR;
/* The same with headers the request must carry with exactly these values (host is always
 * signed), e.g. content-length: storage refuses a request whose header differs. */
int sigv4_presign_headers(sigv4_signer *s, const char *method, const char *base, const char *path,
                          const struct sigv4_kv *query, size_t nq, const struct sigv4_kv *headers,
                          size_t nh, time_t now, long expires, buf *out, char *err) PIX_WUR;

/* Header signing: headers are the extra headers to sign (name, value); host, x-amz-date and
 * x-amz-content-sha256 are added by the signer. payload_sha256 is hex or "UNSIGNED-PAYLOAD".
 * Fills authorization (the header value) and amz_date ("YYYYMMDDTHHMMSSZ"). 0 or -1. */
int sigv4_sign_headers(sigv4_signer *s, const char *method, const char *base, const char *path,
                       const struct sigv4_kv *query, size_t nq, const struct sigv4_kv *headers,
                       size_t nh, const char *payload_sha256, time_t now, buf *authorization,
                       char amz_date[17], char *err) PIX_WUR;

/* RFC 3986 encoding as SigV4 wants it (unreserved kept; '/' kept if keep_slash). */
int sigv4_uri_encode(buf *out, const char *s, size_t len, int keep_slash) PIX_WUR;

/* Appends the canonical query string of the unencoded pairs: each name and value encoded,
 * sorted by name then value, "k=v" joined by '&' (a NULL value counts as ""). Using it for
 * the request URL keeps the URL and the signature in agreement. 0 or -1. */
int sigv4_canonical_query(buf *out, const struct sigv4_kv *query, size_t nq, char *err) PIX_WUR;

/* Appends base as the signer sees it: "scheme://host[:port]" with scheme and host lower-cased,
 * the scheme's default port and a trailing '/' dropped (request URLs built on it send the
 * same Host header that was signed). 0 or -1 if base is not such a URL. */
int sigv4_normalize_base(buf *out, const char *base, char *err) PIX_WUR;

/* Lower-case hex SHA-256 of len bytes (the x-amz-content-sha256 of a body). 0 or -1. */
int sigv4_sha256_hex(const void *data, size_t len, char out[65]) PIX_WUR;

#endif
