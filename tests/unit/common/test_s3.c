/* test_s3: the S3 client against a scripted in-process HTTP server: request shapes, XML
 * parsing (entities, pagination), error mapping (AWS and radosgw variants), streaming, reuse,
 * ranged reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3.h"

#define MOCK_MAX 16
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One scripted answer. */
struct mock_resp {
    int status;
    const char *headers; /* extra "Name: value\r\n" lines */
    const char *body;
    size_t body_len;    /* 0: strlen(body) */
    long long head_len; /* > 0: answer a HEAD with this Content-Length and no body */
    int close_after;    /* drop the connection silently after answering */
};

/* One recorded request. */
struct mock_req {
    char *head; /* request line and headers */
    char *body;
    size_t body_len;
};

struct mock {
    int lfd, port;
    pthread_t th;
    struct mock_resp resp[MOCK_MAX];
    struct mock_req req[MOCK_MAX];
    int nresp, next, accepts;
};

static struct mock M;

static int mock_wait(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 5000) == 1 ? 0 : -1;
}

/* Reads one request into r; -1 on EOF or error. */
static int mock_read(int fd, struct mock_req *r)
{
    char *b = malloc(65536), *end = NULL;
    size_t n = 0;
    ssize_t got;
    while (!end && n < 65535 && mock_wait(fd) == 0 && (got = read(fd, b + n, 65535 - n)) > 0) {
        n += (size_t)got;
        b[n] = '\0';
        end = strstr(b, "\r\n\r\n");
    }
    if (!end) {
        free(b);
        return -1;
    }
    size_t hl = (size_t)(end - b) + 4, bl = 0;
    const char *cl = strcasestr(b, "\r\nContent-Length:");
    if (cl && cl < end)
        bl = strtoul(cl + 17, NULL, 10);
    r->head = strndup(b, hl);
    r->body = malloc(bl + 1);
    memcpy(r->body, b + hl, n - hl);
    for (size_t have = n - hl; have < bl; have += (size_t)got) {
        if (mock_wait(fd) < 0 || (got = read(fd, r->body + have, bl - have)) <= 0)
            break;
    }
    r->body[bl] = '\0';
    r->body_len = bl;
    free(b);
    return 0;
}

static void mock_answer(int fd, const struct mock_resp *s)
{
    size_t bl = s->body ? (s->body_len ? s->body_len : strlen(s->body)) : 0;
    char head[1024];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d Mock\r\nContent-Length: %lld\r\n%s\r\n",
                      s->status, s->head_len > 0 ? s->head_len : (long long)bl,
                      s->headers ? s->headers : "");
    assert_true(write(fd, head, (size_t)hl) == hl);
    for (size_t off = 0; off < bl && s->head_len <= 0;) {
        ssize_t w = write(fd, s->body + off, bl - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void *mock_main(void *arg)
{
    while (M.next < M.nresp && mock_wait(M.lfd) == 0) {
        int fd = accept(M.lfd, NULL, NULL);
        if (fd < 0)
            break;
        M.accepts++;
        while (M.next < M.nresp && mock_read(fd, &M.req[M.next]) == 0) {
            const struct mock_resp *s = &M.resp[M.next++];
            mock_answer(fd, s);
            if (s->close_after)
                break;
        }
        close(fd);
    }
    return NULL;
}

/* Frees the recorded requests (they stay readable between mock_stop and the next start). */
static void mock_free(void)
{
    for (int i = 0; i < MOCK_MAX; i++) {
        free(M.req[i].head);
        free(M.req[i].body);
    }
    memset(&M, 0, sizeof(M));
}

static void mock_start(const struct mock_resp *script, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    mock_free();
    memcpy(M.resp, script, sizeof(*script) * (size_t)n);
    M.nresp = n;
    M.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(M.lfd >= 0);
    assert_int_equal(bind(M.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(M.lfd, 8), 0);
    assert_int_equal(getsockname(M.lfd, (struct sockaddr *)&a, &al), 0);
    M.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&M.th, NULL, mock_main, NULL), 0);
}

/* Joins the server (after the client has been freed) and checks all answers were used. */
static void mock_stop(void)
{
    pthread_join(M.th, NULL);
    close(M.lfd);
    assert_int_equal(M.next, M.nresp);
}

static s3_client *client(int path_style)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", M.port);
    struct s3_config cfg = {.endpoint = ep,
                            .bucket = "bkt",
                            .region = "us-east-1",
                            .access_key = "AK",
                            .secret_key = "SK",
                            .path_style = path_style,
                            .timeout = 10,
                            .connect_timeout = 5};
    s3_client *c = s3_client_new(&cfg);
    assert_non_null(c);
    return c;
}

static void assert_req_line(int i, const char *line)
{
    assert_non_null(M.req[i].head);
    if (strncmp(M.req[i].head, line, strlen(line)) != 0)
        fail_msg("request %d: %s", i, M.req[i].head);
}

static void assert_req_has(int i, const char *text)
{
    if (!strcasestr(M.req[i].head, text))
        fail_msg("request %d lacks %s: %s", i, text, M.req[i].head);
}

#define XMLH "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define ERRXML(code) XMLH "<Error><Code>" code "</Code><Message>msg &amp; more</Message></Error>"

static void test_create_multipart(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<InitiateMultipartUploadResult xmlns=\"x\"><Bucket>bkt</Bucket>"
                      "<Key>k</Key><UploadId>2~a&amp;b&#x41;&#66;</UploadId>"
                      "</InitiateMultipartUploadResult>"}};
    char id[64], err[ERR_MAX];
    mock_start(script, 1);
    s3_client *c = client(1);
    assert_int_equal(s3_create_multipart(c, "dir/my key+1~=é", "image/jpeg", id, sizeof(id), err),
                     S3_OK);
    assert_string_equal(id, "2~a&bAB");
    assert_int_equal(s3_last_status(c), 200);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "POST /bkt/dir/my%20key%2B1~%3D%C3%A9?uploads= HTTP/1.1\r\n");
    assert_req_has(0, "\r\nContent-Type: image/jpeg\r\n");
    assert_req_has(0, "\r\nx-amz-content-sha256: " EMPTY_SHA "\r\n");
    assert_req_has(0, "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, ");
    assert_req_has(0, "\r\nHost: 127.0.0.1:");
}

#define PART(n, etag, size)                                                                        \
    "<Part><PartNumber>" #n "</PartNumber><LastModified>2024-01-01T00:00:00.000Z</LastModified>"   \
    "<ETag>" etag "</ETag><Size>" #size "</Size></Part>"

static void test_list_parts_paginated(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<ListPartsResult><Owner><ID>o</ID></Owner>"
                      "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2"
                      "</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true"
                      "</IsTruncated>" PART(1, "&quot;aa&quot;", 5242880)
                          PART(2, "\"bb\"", 5242880) "</ListPartsResult>"},
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<ListPartsResult><IsTruncated>false</IsTruncated>"
                      "<NextPartNumberMarker>3</NextPartNumberMarker>" PART(
                          3, "\"cc\"", 7) "</ListPartsResult>"},
    };
    struct s3_part *p;
    int n;
    char err[ERR_MAX];
    mock_start(script, 2);
    s3_client *c = client(1);
    s3_set_page_size(c, 2);
    assert_int_equal(s3_list_parts(c, "k", "2~id", &p, &n, err), S3_OK);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].number, 1);
    assert_string_equal(p[0].etag, "\"aa\"");
    assert_true(p[0].size == 5242880);
    assert_string_equal(p[1].etag, "\"bb\"");
    assert_int_equal(p[2].number, 3);
    assert_true(p[2].size == 7);
    free(p);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "GET /bkt/k?max-parts=2&uploadId=2~id HTTP/1.1");
    assert_req_line(1, "GET /bkt/k?max-parts=2&part-number-marker=2&uploadId=2~id HTTP/1.1");
    assert_int_equal(M.accepts, 1); /* one kept-alive connection */
}

static void test_list_parts_errors(void **state)
{
    const struct mock_resp script[] = {
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchUpload")},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")}, /* radosgw after an abort */
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchBucket")},
        {.status = 200,
         .headers = NULL,
         .body = "<ListPartsResult><IsTruncated>true</IsTruncated>" PART(
             1, "\"a\"", 1) "</ListPartsResult>"}, /* truncated without a marker */
        {.status = 200,
         .headers = NULL,
         .body = "<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>0"
                 "</NextPartNumberMarker></ListPartsResult>"}, /* does not advance */
        {.status = 200,
         .headers = NULL,
         .body = "<ListPartsResult>" PART(x, "\"a\"", 1) "</ListPartsResult>"},
    };
    struct s3_part *p = (void *)1;
    int n = 1;
    char err[ERR_MAX];
    mock_start(script, 6);
    s3_client *c = client(1);
    assert_int_equal(s3_list_parts(c, "k", "u", &p, &n, err), S3_NOTFOUND);
    assert_string_equal(s3_last_code(c), "NoSuchUpload");
    assert_null(p);
    assert_int_equal(n, 0);
    assert_int_equal(s3_list_parts(c, "k", "u", &p, &n, err), S3_NOTFOUND);
    assert_string_equal(s3_last_code(c), "NoSuchKey");
    assert_int_equal(s3_list_parts(c, "k", "u", &p, &n, err), S3_ERR);
    assert_non_null(strstr(err, "HTTP 404 NoSuchBucket: msg & more"));
    for (int i = 0; i < 3; i++)
        assert_int_equal(s3_list_parts(c, "k", "u", &p, &n, err), S3_ERR);
    assert_null(p);
    s3_client_free(c);
    mock_stop();
}

static void test_complete(void **state)
{
    const struct mock_resp script[] = {
        /* radosgw: an empty ETag in the result */
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<CompleteMultipartUploadResult><Location>l</Location><Bucket>bkt"
                      "</Bucket><Key>k</Key><ETag></ETag></CompleteMultipartUploadResult>"},
        /* S3: 200 first, then the failure in the body (after whitespace keep-alives) */
        {.status = 200,
         .headers = NULL,
         .body = XMLH "  \n  <Error><Code>InternalError</Code><Message>boom</Message>"
                      "<RequestId>r</RequestId></Error>"},
        {.status = 400, .headers = NULL, .body = ERRXML("InvalidPart")},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchUpload")},
    };
    const struct s3_part parts[] = {{1, 5242880, "\"a&b\""}, {2, 3, "\"c\""}};
    const struct s3_part bad[] = {{2, 1, "\"a\""}, {1, 1, "\"b\""}};
    char err[ERR_MAX];
    mock_start(script, 4);
    s3_client *c = client(1);
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 2, err), S3_OK);
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 2, err), S3_ERR);
    assert_string_equal(s3_last_code(c), "InternalError");
    assert_int_equal(s3_last_status(c), 200);
    assert_non_null(strstr(err, "boom"));
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 2, err), S3_ERR);
    assert_string_equal(s3_last_code(c), "InvalidPart");
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 2, err), S3_NOTFOUND);
    /* refused before any request */
    assert_int_equal(s3_complete_multipart(c, "k", "u", bad, 2, err), S3_ERR);
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 0, err), S3_ERR);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "POST /bkt/k?uploadId=u HTTP/1.1");
    assert_string_equal(
        M.req[0].body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Part><PartNumber>1</PartNumber><ETag>\"a&amp;b\"</ETag></Part>"
                       "<Part><PartNumber>2</PartNumber><ETag>\"c\"</ETag></Part>"
                       "</CompleteMultipartUpload>");
    char sha[65], want[100];
    assert_int_equal(sigv4_sha256_hex(M.req[0].body, M.req[0].body_len, sha), 0);
    snprintf(want, sizeof(want), "x-amz-content-sha256: %s\r\n", sha);
    assert_req_has(0, want);
}

/* A 5xx on Complete for an upload that is gone (radosgw after an abort) is S3_NOTFOUND;
 * while the upload still exists it stays an error worth retrying. */
static void test_complete_server_error(void **state)
{
    const struct mock_resp script[] = {
        {.status = 500, .body = ERRXML("InternalError")},
        {.status = 404, .body = ERRXML("NoSuchKey")},
        {.status = 503, .body = ERRXML("SlowDown")},
        {.status = 200, .body = "<ListPartsResult>" PART(1, "\"a\"", 1) "</ListPartsResult>"},
    };
    const struct s3_part parts[] = {{1, 1, "\"a\""}};
    char err[ERR_MAX];
    mock_start(script, 4);
    s3_client *c = client(1);
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 1, err), S3_NOTFOUND);
    assert_non_null(strstr(err, "InternalError"));
    assert_non_null(strstr(err, "no longer exists"));
    assert_int_equal(s3_complete_multipart(c, "k", "u", parts, 1, err), S3_ERR);
    assert_non_null(strstr(err, "HTTP 503 SlowDown"));
    s3_client_free(c);
    mock_stop();
    assert_req_line(1, "GET /bkt/k?max-parts=1&uploadId=u HTTP/1.1");
}

static void test_abort(void **state)
{
    const struct mock_resp script[] = {
        {.status = 204, .headers = NULL, .body = NULL},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchUpload")},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")}};
    char err[ERR_MAX];
    mock_start(script, 3);
    s3_client *c = client(1);
    assert_int_equal(s3_abort_multipart(c, "k", "u", err), S3_OK);
    assert_int_equal(s3_abort_multipart(c, "k", "u", err), S3_NOTFOUND);
    assert_int_equal(s3_abort_multipart(c, "k", "u", err), S3_NOTFOUND);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "DELETE /bkt/k?uploadId=u HTTP/1.1");
}

static void test_head_object(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = "ETag: \"abc-2\"\r\nLast-Modified: Wed, 12 Oct 2009 17:50:00 GMT\r\n",
         .body = NULL,
         .head_len = 1234},
        {.status = 404, .headers = NULL, .body = NULL},
        {.status = 403, .headers = NULL, .body = NULL},
    };
    struct s3_object o;
    char err[ERR_MAX];
    mock_start(script, 3);
    s3_client *c = client(1);
    assert_int_equal(s3_head_object(c, "a/b c", &o, err), S3_OK);
    assert_true(o.size == 1234);
    assert_string_equal(o.etag, "\"abc-2\"");
    assert_true(o.last_modified == 1255369800);
    assert_int_equal(s3_head_object(c, "a/b c", &o, err), S3_NOTFOUND);
    assert_int_equal(s3_last_status(c), 404);
    assert_int_equal(s3_head_object(c, "a/b c", &o, err), S3_ERR);
    assert_int_equal(s3_last_status(c), 403);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "HEAD /bkt/a/b%20c HTTP/1.1");
}

struct sink_state {
    size_t bytes, calls, stop_after;
    unsigned sum;
};

static int sink(const void *data, size_t len, void *ud)
{
    struct sink_state *s = ud;
    for (size_t i = 0; i < len; i++)
        s->sum += ((const unsigned char *)data)[i];
    s->bytes += len;
    return ++s->calls == s->stop_after ? -1 : 0;
}

static void test_get_streaming(void **state)
{
    size_t big = 3u << 20;
    char *data = malloc(big);
    unsigned sum = 0;
    for (size_t i = 0; i < big; i++)
        sum += (unsigned char)(data[i] = (char)(i * 7));
    const struct mock_resp script[] = {
        {.status = 200, .headers = NULL, .body = data, .body_len = big},
        {.status = 206, .headers = "Content-Range: bytes 10-19/100\r\n", .body = "0123456789"},
        {.status = 200, .headers = NULL, .body = "whole object, Range ignored"},
        {.status = 200, .headers = NULL, .body = data, .body_len = big, .close_after = 1},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")},
    };
    struct sink_state s = {0};
    char err[ERR_MAX];
    mock_start(script, 5);
    s3_client *c = client(1);
    assert_int_equal(s3_get_object(c, "k", 0, -1, sink, &s, err), S3_OK);
    assert_true(s.bytes == big && s.sum == sum);
    memset(&s, 0, sizeof(s));
    assert_int_equal(s3_get_object(c, "k", 10, 10, sink, &s, err), S3_OK);
    assert_true(s.bytes == 10);
    assert_int_equal(s3_get_object(c, "k", 10, -1, sink, &s, err), S3_ERR);
    memset(&s, 0, sizeof(s));
    s.stop_after = 1;
    assert_int_equal(s3_get_object(c, "k", 0, -1, sink, &s, err), S3_ERR);
    assert_true(s.bytes < big);
    assert_int_equal(s3_get_object(c, "k", 0, -1, sink, &s, err), S3_NOTFOUND);
    s3_client_free(c);
    mock_stop();
    assert_req_has(1, "\r\nRange: bytes=10-19\r\n");
    assert_req_has(1, "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date");
    assert_req_has(2, "\r\nRange: bytes=10-\r\n");
    assert_null(strcasestr(M.req[0].head, "Range:"));
    free(data);
}

/* Collects what s3_get_ranges delivers; refuses the delivery that makes it hold "stop". */
static int collect(const void *data, size_t len, void *ud)
{
    buf *b = ud;
    if (buf_append(b, data, len) < 0)
        return -1;
    return b->len >= 4 && strcmp(b->data, "stop") == 0 ? -1 : 0;
}

#define CR(r) "Content-Range: bytes " r "\r\n"

/* One stream against the scripted server (it serves one connection at a time): ranges in
 * order, Content-Range checked against the range and the expected size, errors mapped. */
static void test_get_ranges(void **state)
{
    const struct mock_resp script[] = {
        {.status = 206, .headers = CR("0-3/10"), .body = "0123"},
        {.status = 206, .headers = CR("4-7/10"), .body = "4567"},
        {.status = 206, .headers = CR("8-9/10"), .body = "89"},
        {.status = 200, .headers = NULL, .body = "0123456789"},
        {.status = 206, .headers = CR("0-3/12"), .body = "0123"},
        {.status = 206, .headers = CR("0-1/10"), .body = "01"},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")},
        {.status = 416, .headers = NULL, .body = ERRXML("InvalidRange")},
        {.status = 206, .headers = CR("0-3/10"), .body = "stop"},
        {.status = 200, .headers = NULL, .body = NULL},
        {.status = 200, .headers = NULL, .body = NULL, .head_len = 5},
    };
    buf got = {0};
    char err[ERR_MAX];
    mock_start(script, 11);
    s3_client *c = client(1);
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_OK);
    assert_string_equal(got.data, "0123456789");
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "server ignored Range"));
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "GET /bkt/k: the object is 12 bytes, not 10"));
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "not the range asked for"));
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_NOTFOUND);
    assert_int_equal(s3_last_status(c), 404);
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "shorter than 10 bytes"));
    buf_reset(&got);
    assert_int_equal(s3_get_ranges(c, "k", 10, 1, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "stopped by the sink"));
    assert_int_equal(s3_get_ranges(c, "k", 0, 4, 4, collect, &got, err), S3_OK);
    assert_int_equal(s3_get_ranges(c, "k", 0, 4, 4, collect, &got, err), S3_ERR);
    assert_non_null(strstr(err, "the object is 5 bytes, not 0"));
    assert_int_equal(s3_get_ranges(c, "k", -1, 1, 4, collect, &got, err), S3_ERR);
    s3_client_free(c);
    mock_stop();
    assert_req_has(0, "\r\nRange: bytes=0-3\r\n");
    assert_req_has(1, "\r\nRange: bytes=4-7\r\n");
    assert_req_has(2, "\r\nRange: bytes=8-9\r\n");
    assert_req_has(2, "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date");
    assert_req_line(9, "HEAD /bkt/k HTTP/1.1");
    buf_free(&got);
}

/* A range whose body never comes is ended by the stall timeout, not waited on for ever; the
 * next read works. */
static void test_get_ranges_stall(void **state)
{
    const struct mock_resp script[] = {
        {.status = 206, .headers = CR("0-3/4"), .body = NULL, .head_len = 4},
        {.status = 206, .headers = CR("0-3/4"), .body = "abcd"},
    };
    char ep[64], err[ERR_MAX];
    buf got = {0};
    mock_start(script, 2);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", M.port);
    struct s3_config cfg = {.endpoint = ep,
                            .bucket = "bkt",
                            .region = "us-east-1",
                            .access_key = "AK",
                            .secret_key = "SK",
                            .path_style = 1,
                            .stall_timeout = 1};
    s3_client *c = s3_client_new(&cfg);
    assert_non_null(c);
    time_t t0 = time(NULL);
    assert_int_equal(s3_get_ranges(c, "k", 4, 2, 4, collect, &got, err), S3_ERR);
    assert_true(time(NULL) - t0 <= 4);
    if (!strstr(err, "too slow"))
        fail_msg("not a stall: %s", err);
    assert_null(got.data);
    assert_int_equal(s3_get_ranges(c, "k", 4, 2, 4, collect, &got, err), S3_OK);
    assert_string_equal(got.data, "abcd"); /* on a new connection */
    s3_client_free(c);
    mock_stop();
    assert_int_equal(M.accepts, 2);
    buf_free(&got);
}

static void test_put_copy_delete(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200, .headers = "ETag: \"e\"\r\n", .body = NULL},
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>"},
        {.status = 200, .headers = NULL, .body = XMLH "<Error><Code>SlowDown</Code></Error>"},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")},
        {.status = 204, .headers = NULL, .body = NULL},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchKey")},
        {.status = 200, .headers = NULL, .body = NULL, .close_after = 1},
        {.status = 200,
         .headers = NULL,
         .body = NULL}, /* PUT again: the body is re-sent on a new connection */
    };
    char err[ERR_MAX], sha[65], want[100];
    const char body[] = "hello, world";
    mock_start(script, 8);
    s3_client *c = client(1);
    assert_int_equal(s3_put_object(c, "p/a+b", body, strlen(body), "text/plain", err), S3_OK);
    assert_int_equal(s3_copy_object(c, "src key/é", "dst", err), S3_OK);
    assert_int_equal(s3_copy_object(c, "src", "dst", err), S3_ERR);
    assert_string_equal(s3_last_code(c), "SlowDown");
    assert_int_equal(s3_copy_object(c, "missing", "dst", err), S3_NOTFOUND);
    assert_int_equal(s3_delete_object(c, "gone", err), S3_OK);
    assert_int_equal(s3_delete_object(c, "gone", err), S3_OK);
    assert_int_equal(s3_head_bucket(c, err), S3_OK);
    assert_int_equal(s3_put_object(c, "p/a+b", body, strlen(body), NULL, err), S3_OK);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "PUT /bkt/p/a%2Bb HTTP/1.1");
    assert_string_equal(M.req[0].body, body);
    assert_int_equal(sigv4_sha256_hex(body, strlen(body), sha), 0);
    snprintf(want, sizeof(want), "x-amz-content-sha256: %s\r\n", sha);
    assert_req_has(0, want);
    assert_req_has(0, "\r\nContent-Type: text/plain\r\n");
    assert_req_has(1, "\r\nx-amz-copy-source: /bkt/src%20key/%C3%A9\r\n");
    assert_req_has(1, "SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;x-amz-date");
    assert_req_line(4, "DELETE /bkt/gone HTTP/1.1");
    assert_req_line(6, "HEAD /bkt HTTP/1.1");
    assert_string_equal(M.req[7].body, body);
    assert_int_equal(M.accepts, 2);
}

struct seen {
    char keys[8][64];
    long long sizes[8];
    time_t times[8];
    int n, stop_at;
};

static int on_object(const char *key, long long size, time_t t, void *ud)
{
    struct seen *s = ud;
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
    s->sizes[s->n] = size;
    s->times[s->n] = t;
    return ++s->n == s->stop_at;
}

#define OBJ(key, size)                                                                             \
    "<Contents><Key>" key "</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"            \
    "<ETag>&quot;x&quot;</ETag><Size>" #size                                                       \
    "</Size><StorageClass>STANDARD</StorageClass></Contents>"

static void test_list_objects_paginated(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<ListBucketResult><Name>bkt</Name><Prefix>p/</Prefix><KeyCount>2"
                      "</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
                      "<NextContinuationToken>t/+=1</NextContinuationToken>" OBJ(
                          "p/a&amp;b &lt;c&gt;", 1) OBJ("p/&#233;", 22) "</ListBucketResult>"},
        {.status = 200,
         .headers = NULL,
         .body = XMLH
         "<ListBucketResult><IsTruncated>false</IsTruncated>" OBJ("p/z", 0) "</ListBucketResult>"},
        {.status = 200,
         .headers = NULL,
         .body = XMLH
         "<ListBucketResult><IsTruncated>true</IsTruncated>" OBJ("p/a", 1) "</ListBucketResult>"},
        {.status = 404, .headers = NULL, .body = ERRXML("NoSuchBucket")},
    };
    struct seen s = {0};
    char err[ERR_MAX];
    mock_start(script, 4);
    s3_client *c = client(1);
    s3_set_page_size(c, 2);
    assert_int_equal(s3_list_objects(c, "p/", on_object, &s, err), S3_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "p/a&b <c>");
    assert_string_equal(s.keys[1], "p/\xc3\xa9");
    assert_string_equal(s.keys[2], "p/z");
    assert_true(s.sizes[1] == 22 && s.sizes[2] == 0);
    assert_true(s.times[0] == 1255369830);
    memset(&s, 0, sizeof(s));
    assert_int_equal(s3_list_objects(c, "p/", on_object, &s, err), S3_ERR); /* no token */
    assert_int_equal(s3_list_objects(c, "p/", on_object, &s, err), S3_ERR);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "GET /bkt?list-type=2&max-keys=2&prefix=p%2F HTTP/1.1");
    assert_req_line(1, "GET /bkt?continuation-token=t%2F%2B%3D1&list-type=2&max-keys=2&prefix=p%2F "
                       "HTTP/1.1");
}

static void test_list_objects_stop(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = NULL,
         .body = "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t"
                 "</NextContinuationToken>" OBJ("a", 1) OBJ("b", 2) "</ListBucketResult>"}};
    struct seen s = {.stop_at = 1};
    char err[ERR_MAX];
    mock_start(script, 1);
    s3_client *c = client(1);
    assert_int_equal(s3_list_objects(c, "", on_object, &s, err), S3_OK);
    assert_int_equal(s.n, 1);
    s3_client_free(c);
    mock_stop();
}

struct useen {
    char keys[8][32], ids[8][32];
    time_t t[8];
    int n;
};

static int on_upload(const char *key, const char *id, time_t initiated, void *ud)
{
    struct useen *s = ud;
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
    s->t[s->n++] = initiated;
    return 0;
}

#define UPL(key, id)                                                                               \
    "<Upload><Key>" key "</Key><UploadId>" id "</UploadId><Initiator><ID>i</ID></Initiator>"       \
    "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>"

static void test_list_uploads_paginated(void **state)
{
    const struct mock_resp script[] = {
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<ListMultipartUploadsResult><Bucket>bkt</Bucket><KeyMarker></KeyMarker>"
                      "<UploadIdMarker></UploadIdMarker><NextKeyMarker>u/b</NextKeyMarker>"
                      "<NextUploadIdMarker>2~y</NextUploadIdMarker><MaxUploads>2</MaxUploads>"
                      "<IsTruncated>true</IsTruncated>" UPL("u/a", "2~x")
                          UPL("u/b", "2~y") "</ListMultipartUploadsResult>"},
        {.status = 200,
         .headers = NULL,
         .body = XMLH "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>" UPL(
             "u/c &amp; d", "2~z") "</ListMultipartUploadsResult>"},
    };
    struct useen s = {0};
    char err[ERR_MAX];
    mock_start(script, 2);
    s3_client *c = client(1);
    s3_set_page_size(c, 2);
    assert_int_equal(s3_list_multipart_uploads(c, "u/", on_upload, &s, err), S3_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[2], "u/c & d");
    assert_string_equal(s.ids[1], "2~y");
    assert_true(s.t[0] == 1289422113);
    s3_client_free(c);
    mock_stop();
    assert_req_line(0, "GET /bkt?max-uploads=2&prefix=u%2F&uploads= HTTP/1.1");
    assert_req_line(1, "GET /bkt?key-marker=u%2Fb&max-uploads=2&prefix=u%2F&upload-id-marker=2~y"
                       "&uploads= HTTP/1.1");
}

static void test_http_errors(void **state)
{
    const struct mock_resp script[] = {
        {.status = 403, .headers = NULL, .body = ERRXML("SignatureDoesNotMatch")},
        {.status = 500, .headers = NULL, .body = "not xml"},
    };
    char err[ERR_MAX], id[8];
    mock_start(script, 2);
    s3_client *c = client(1);
    assert_int_equal(s3_put_object(c, "k", "x", 1, NULL, err), S3_ERR);
    assert_int_equal(s3_last_status(c), 403);
    assert_string_equal(s3_last_code(c), "SignatureDoesNotMatch");
    assert_non_null(strstr(err, "PUT /bkt/k: HTTP 403 SignatureDoesNotMatch: msg & more"));
    assert_int_equal(s3_create_multipart(c, "k", NULL, id, sizeof(id), err), S3_ERR);
    assert_int_equal(s3_last_status(c), 500);
    assert_string_equal(s3_last_code(c), "");
    s3_client_free(c);
    mock_stop();
    /* Nothing listens any more: a transport error, status 0. */
    c = client(1);
    assert_int_equal(s3_head_bucket(c, err), S3_ERR);
    assert_int_equal(s3_last_status(c), 0);
    s3_client_free(c);
}

static void test_presign_urls(void **state)
{
    struct s3_config cfg = {.endpoint = "http://10.0.0.1:7480",
                            .public_endpoint = "HTTPS://cdn.example.com:443/",
                            .bucket = "bkt",
                            .region = "eu-west-1",
                            .access_key = "AK",
                            .secret_key = "SK",
                            .path_style = 0};
    buf u = {0};
    char err[ERR_MAX];
    s3_client *c = s3_client_new(&cfg);
    assert_non_null(c);
    assert_int_equal(s3_presign_part(c, "a b/c", "2~u", 7, 5242880, 1369353600, 900, &u, err), 0);
    assert_true(strncmp(u.data, "https://bkt.cdn.example.com/a%20b/c?X-Amz-Algorithm=", 52) == 0);
    assert_non_null(strstr(u.data, "%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                                   "&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bhost"
                                   "&partNumber=7"
                                   "&uploadId=2~u&X-Amz-Signature="));
    buf_reset(&u);
    assert_int_equal(s3_presign_get(c, "k", "image/jpeg", "attachment; filename=\"a b.jpg\"",
                                    1369353600, 60, &u, err),
                     0);
    assert_non_null(strstr(u.data, "&response-content-disposition=attachment%3B%20filename%3D"
                                   "%22a%20b.jpg%22&response-content-type=image%2Fjpeg&"));
    assert_int_equal(s3_presign_part(c, "k", "u", 0, 1, 0, 60, &u, err), -1);
    assert_int_equal(s3_presign_part(c, "k", "u", 10001, 1, 0, 60, &u, err), -1);
    assert_int_equal(s3_presign_part(c, "k", "u", 1, -1, 0, 60, &u, err), -1);
    assert_int_equal(s3_presign_put(c, "", 0, 60, &u, err), -1);
    assert_int_equal(s3_presign_put(c, "k", 0, 604801, &u, err), -1);
    buf_free(&u);
    s3_client_free(c);
    cfg.endpoint = "ftp://x";
    assert_null(s3_client_new(&cfg));
    cfg.endpoint = "http://x";
    cfg.bucket = "a/b";
    assert_null(s3_client_new(&cfg));
    s3_client_free(NULL);
}

static int setup(void **state)
{
    signal(SIGPIPE, SIG_IGN); /* the mock writes to clients that hang up on purpose */
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    mock_free();
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_multipart),
        cmocka_unit_test(test_list_parts_paginated),
        cmocka_unit_test(test_list_parts_errors),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_complete_server_error),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_head_object),
        cmocka_unit_test(test_get_streaming),
        cmocka_unit_test(test_put_copy_delete),
        cmocka_unit_test(test_list_objects_paginated),
        cmocka_unit_test(test_list_objects_stop),
        cmocka_unit_test(test_list_uploads_paginated),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_presign_urls),
        cmocka_unit_test(test_get_ranges),
        cmocka_unit_test(test_get_ranges_stall),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
