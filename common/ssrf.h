/* ssrf: the guard for outbound HTTP to URLs users or integrators give (webhook endpoints):
 * refuses loopback, private, link-local, metadata and other non-public addresses unless an
 * allow-list admits them, checked after DNS resolution and again on every connect. */
#ifndef PIX_SSRF_H
#define PIX_SSRF_H

#include <curl/curl.h>
#include <sys/socket.h>

#include "util.h"

typedef struct ssrf_policy ssrf_policy;

/* allow: comma-separated CIDRs admitted even though not public ("127.0.0.1/32,::1/128";
 * empty or NULL: none). NULL with err on a malformed list. */
ssrf_policy *ssrf_policy_new(const char *allow, char *err);
void ssrf_policy_free(ssrf_policy *p); /* NULL-safe */

/* 1 if a connection to this address is allowed: a public unicast address, or one the
 * allow-list admits. IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4. */
int ssrf_addr_allowed(const ssrf_policy *p, const struct sockaddr *sa);

/* A URL an endpoint may have: http or https, a host, no user info; every address the host
 * resolves to must be allowed (resolves now: use off the event loop). 0, or -1 with err
 * ("url_invalid: ..." or "url_forbidden: ..."). */
int ssrf_check_url(const ssrf_policy *p, const char *url, char *err) PIX_WUR;

/* Makes h refuse, before connecting, any address the policy does not allow (re-checks after
 * every resolution, so DNS rebinding gains nothing), and never follow redirects. p must
 * outlive the handle's transfers. */
void ssrf_curl_guard(CURL *h, const ssrf_policy *p);

#endif
