/* ssrf: judges outbound destinations. Addresses are normalised (IPv4-mapped and NAT64 IPv6
 * to IPv4), admitted by the allow-list, else refused when in a non-public range. */
#include "ssrf.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SSRF_MAX_NETS 32

/* A network: 16 address bytes (IPv4 in the first 4) and a prefix length. */
struct net {
    int family;
    unsigned char addr[16];
    int bits;
};

struct ssrf_policy {
    int n;
    struct net allow[SSRF_MAX_NETS];
};

/* Ranges no webhook may reach: RFC 6890 special-purpose, multicast and reserved space. */
static const char *const denied[] = {
    "0.0.0.0/8",     "10.0.0.0/8",      "100.64.0.0/10",  "127.0.0.0/8",    "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24",    "192.0.2.0/24",   "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",    "240.0.0.0/4",
    "::/96",         "64:ff9b:1::/48",  "100::/64",       "2001::/23",      "2001:db8::/32",
    "2002::/16",     "fc00::/7",        "fe80::/10",      "fec0::/10",      "ff00::/8",
};

static int net_parse(const char *s, size_t len, struct net *out)
{
    char text[INET6_ADDRSTRLEN + 8];
    char *slash;
    char *end;
    long bits;

    if (len == 0 || len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = 0;
    slash = strchr(text, '/');
    if (slash)
        *slash = 0;
    memset(out, 0, sizeof *out);
    out->family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, text, out->addr) != 1)
        return -1;
    out->bits = out->family == AF_INET ? 32 : 128;
    if (!slash)
        return 0;
    bits = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end || bits < 0 || bits > out->bits)
        return -1;
    out->bits = (int)bits;
    return 0;
}

static int net_contains(const struct net *n, int family, const unsigned char *a)
{
    int full = n->bits / 8;
    int rest = n->bits % 8;

    if (n->family != family || memcmp(n->addr, a, (size_t)full))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (a[full] & mask);
}

ssrf_policy *ssrf_policy_new(const char *allow, char *err)
{
    ssrf_policy *p = calloc(1, sizeof *p);
    const char *s = allow ? allow : "";

    if (!p) {
        err_set(err, "out of memory");
        return NULL;
    }
    while (*s) {
        size_t skip = strspn(s, " ,");
        size_t len = strcspn(s + skip, " ,");

        s += skip;
        if (!len)
            break;
        if (p->n == SSRF_MAX_NETS || net_parse(s, len, &p->allow[p->n]) < 0) {
            err_set(err, "bad allow-list entry '%.*s' (want CIDRs, at most %d)",
                    (int)(len > 64 ? 64 : len), s, SSRF_MAX_NETS);
            free(p);
            return NULL;
        }
        p->n++;
        s += len;
    }
    return p;
}

void ssrf_policy_free(ssrf_policy *p)
{
    free(p);
}

/* The address as (family, bytes), IPv6 forms that carry an IPv4 address reduced to it. */
static int addr_normalise(const struct sockaddr *sa, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};

    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) {
        memcpy(out, a + 12, 4);
        return AF_INET;
    }
    memcpy(out, a, 16);
    return AF_INET6;
}

static int addr_denied(int family, const unsigned char *a)
{
    struct net n;

    for (size_t i = 0; i < ARRAY_LEN(denied); i++)
        if (net_parse(denied[i], strlen(denied[i]), &n) == 0 && net_contains(&n, family, a))
            return 1;
    return 0;
}

int ssrf_addr_allowed(const ssrf_policy *p, const struct sockaddr *sa)
{
    unsigned char a[16];
    int family = addr_normalise(sa, a);

    if (family < 0)
        return 0;
    for (int i = 0; p && i < p->n; i++)
        if (net_contains(&p->allow[i], family, a))
            return 1;
    return !addr_denied(family, a);
}

/* Scheme http(s), a host, no credentials; the host copied out without IPv6 brackets. */
static int url_host(const char *url, char *host, size_t hostlen, char *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *h = NULL;
    char *user = NULL;
    int rc = -1;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        err_set(err, "url_invalid: not an absolute URL");
        goto fail;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        err_set(err, "url_invalid: the scheme must be http or https");
        goto fail;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        err_set(err, "url_invalid: credentials in the URL are not accepted");
        goto fail;
    }
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || !*h || strlen(h) >= hostlen) {
        err_set(err, "url_invalid: no usable host");
        goto fail;
    }
    size_t len = strlen(h);
    int bracketed = h[0] == '[' && h[len - 1] == ']';
    snprintf(host, hostlen, "%.*s", (int)(len - 2 * bracketed), h + bracketed);
    rc = 0;
fail:
    curl_free(scheme);
    curl_free(h);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

int ssrf_check_url(const ssrf_policy *p, const char *url, char *err)
{
    char host[256];
    char shown[INET6_ADDRSTRLEN];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = 0;

    if (url_host(url, host, sizeof host, err) < 0)
        return -1;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) {
        err_set(err, "url_invalid: the host does not resolve");
        return -1;
    }
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        if (ssrf_addr_allowed(p, ai->ai_addr))
            continue;
        const void *a =
            ai->ai_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
        if (!inet_ntop(ai->ai_family, a, shown, sizeof shown))
            snprintf(shown, sizeof shown, "?");
        err_set(err, "url_forbidden: %s resolves to %s, not a public address", host, shown);
        rc = -1;
    }
    freeaddrinfo(res);
    return rc;
}

/* curl's socket opener: the address it is about to connect to, judged first. */
static curl_socket_t guard_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    const ssrf_policy *p = clientp;

    if (purpose != CURLSOCKTYPE_IPCXN || !ssrf_addr_allowed(p, &a->addr))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

void ssrf_curl_guard(CURL *h, const ssrf_policy *p)
{
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, guard_open);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, (void *)p);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* an environment proxy would hide the target */
}
