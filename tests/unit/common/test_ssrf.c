/* test_ssrf: private, loopback, link-local, metadata and mapped addresses are refused, public
 * ones pass, the allow-list admits exactly its ranges, and URLs are checked after resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include "ssrf.h"

static int allowed(const ssrf_policy *p, const char *text)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1)
        return ssrf_addr_allowed(p, (struct sockaddr *)&v4);
    assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
    return ssrf_addr_allowed(p, (struct sockaddr *)&v6);
}

static void test_default_refuses_non_public(void **state)
{
    static const char *const refused[] = {
        "10.0.0.1",
        "169.254.169.254",
        "127.0.0.1",
        "0.0.0.0",
        "172.16.5.4",
        "172.31.255.255",
        "192.168.1.1",
        "100.100.100.200",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "64:ff9b::a9fe:a9fe",
        "fd00:ec2::254",
        "fe80::1",
        "ff02::1",
        "2001:db8::1",
        "::127.0.0.1",
    };
    static const char *const passed[] = {
        "93.184.216.34",   "8.8.8.8",        "172.32.0.1",
        "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::808:808",
    };
    ssrf_policy *p = ssrf_policy_new(NULL, NULL);

    assert_non_null(p);
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        assert_int_equal(allowed(p, refused[i]), 0);
    for (size_t i = 0; i < ARRAY_LEN(passed); i++)
        assert_int_equal(allowed(p, passed[i]), 1);
    ssrf_policy_free(p);
    ssrf_policy_free(NULL);
}

static void test_allow_list(void **state)
{
    char err[ERR_MAX];
    ssrf_policy *p = ssrf_policy_new(" 127.0.0.0/8, ::1/128,10.1.0.0/16", err);

    assert_non_null(p);
    assert_int_equal(allowed(p, "127.0.0.1"), 1);
    assert_int_equal(allowed(p, "::ffff:127.0.0.2"), 1);
    assert_int_equal(allowed(p, "::1"), 1);
    assert_int_equal(allowed(p, "10.1.200.3"), 1);
    assert_int_equal(allowed(p, "10.2.0.1"), 0);
    assert_int_equal(allowed(p, "169.254.169.254"), 0);
    ssrf_policy_free(p);
    assert_null(ssrf_policy_new("127.0.0.0/33", err));
    assert_non_null(strstr(err, "127.0.0.0/33"));
    assert_null(ssrf_policy_new("localhost", err));
    assert_null(ssrf_policy_new("::1/129", err));
}

static void test_check_url(void **state)
{
    char err[ERR_MAX];
    ssrf_policy *none = ssrf_policy_new("", err);
    ssrf_policy *local = ssrf_policy_new("127.0.0.0/8,::1", err);

    assert_int_equal(ssrf_check_url(none, "http://10.0.0.1/hook", err), -1);
    assert_non_null(strstr(err, "url_forbidden"));
    assert_int_equal(ssrf_check_url(none, "http://169.254.169.254/latest/meta-data/", err), -1);
    assert_int_equal(ssrf_check_url(none, "http://0x7f.1:8080/", err), -1);
    assert_int_equal(ssrf_check_url(none, "http://2130706433/", err), -1);
    assert_int_equal(ssrf_check_url(none, "http://[::1]:9/", err), -1);
    assert_int_equal(ssrf_check_url(none, "http://localhost/", err), -1);
    assert_int_equal(ssrf_check_url(local, "http://127.0.0.1:9/x", err), 0);
    assert_int_equal(ssrf_check_url(local, "http://[::1]:9/x", err), 0);
    assert_int_equal(ssrf_check_url(local, "http://10.0.0.1/", err), -1);
    assert_int_equal(ssrf_check_url(local, "ftp://127.0.0.1/", err), -1);
    assert_non_null(strstr(err, "url_invalid"));
    assert_int_equal(ssrf_check_url(local, "http://u:p@127.0.0.1/", err), -1);
    assert_int_equal(ssrf_check_url(local, "not a url", err), -1);
    assert_int_equal(ssrf_check_url(local, "http:///path", err), -1);
    ssrf_policy_free(none);
    ssrf_policy_free(local);
}

/* A listener on 127.0.0.1 (non-blocking) and the URL that reaches it. */
static int listener(char *url, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, len, "http://127.0.0.1:%d/hook", ntohs(a.sin_port));
    return fd;
}

static int connected(int fd)
{
    int c = accept(fd, NULL, NULL);

    if (c < 0)
        return 0;
    close(c);
    return 1;
}

static CURLcode fetch(const ssrf_policy *p, const char *url)
{
    CURL *h = curl_easy_init();
    CURLcode rc;

    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 300L);
    ssrf_curl_guard(h, p);
    rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    return rc;
}

/* The guard refuses before connecting: the listener never sees the refused attempt. */
static void test_curl_guard(void **state)
{
    char url[64];
    int fd = listener(url, sizeof url);
    ssrf_policy *none = ssrf_policy_new("", NULL);
    ssrf_policy *local = ssrf_policy_new("127.0.0.1/32", NULL);

    assert_int_equal(fetch(none, url), CURLE_COULDNT_CONNECT);
    assert_int_equal(connected(fd), 0);
    assert_int_not_equal(fetch(local, url), CURLE_COULDNT_CONNECT); /* connects, no answer */
    assert_int_equal(connected(fd), 1);
    close(fd);
    ssrf_policy_free(none);
    ssrf_policy_free(local);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_refuses_non_public),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_curl_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
