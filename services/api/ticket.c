/* ticket: single-use stream tickets. POST /sync/stream-ticket trades the caller's bearer
 * token for a short-lived ticket that opens one /sync/stream (?ticket=), for EventSource. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "ticket.h"

#define TICKET_BYTES 32      /* 256 bits from the OS RNG */
#define TICKETS_PER_STREAM 4 /* live tickets a user may hold per stream they may open */

/* The stored form: hex SHA-256 of the ticket text (the ticket itself is never stored). */
static int ticket_hash(const char *ticket, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!EVP_Digest(ticket, strlen(ticket), md, &n, EVP_sha256(), NULL) || n != sizeof md)
        return -1;
    util_hex(md, sizeof md, hex);
    return 0;
}

static cJSON *ticket_json(const char *ticket, double ttl, time_t now)
{
    cJSON *o = cJSON_CreateObject();
    char at[21];

    util_rfc3339(now + (time_t)ttl, at);
    cJSON_AddStringToObject(o, "ticket", ticket);
    cJSON_AddNumberToObject(o, "expires_in", ttl);
    cJSON_AddStringToObject(o, "expires_at", at);
    return o;
}

void ticket_issue(struct api_call *c)
{
    unsigned char raw[TICKET_BYTES];
    char *ticket = NULL, hex[65], exp[24], ttl[24], cap[16], err[ERR_MAX];
    const char *p[6] = {hex, c->user.sub, c->user.admin ? "true" : "false", exp, ttl, cap};
    double secs = c->api->cfg->stream_ticket_ttl;
    PGresult *r;

    if (util_random(raw, sizeof raw) < 0 || !(ticket = util_b64url_encode(raw, sizeof raw)) ||
        ticket_hash(ticket, hex) < 0) {
        free(ticket);
        return api_error(c, 500, "internal", "could not make a ticket");
    }
    snprintf(exp, sizeof exp, "%lld", (long long)c->user.exp);
    snprintf(ttl, sizeof ttl, "%.3f", secs);
    snprintf(cap, sizeof cap, "%ld", c->api->cfg->sse_streams_per_user * TICKETS_PER_STREAM);
    if (!api_db(c))
        goto out;
    if (!(r = pg_exec(c->db, "ticket_issue", 6, p, err))) {
        api_db_fail(c, "ticket_issue", err);
        goto out;
    }
    if (PQntuples(r) == 0)
        api_error(c, 429, "too_many_tickets",
                  "too many unused stream tickets; open a stream with one or wait a minute");
    else
        http_respond_json(c->req, 201, ticket_json(ticket, secs, time(NULL)));
    PQclear(r);
out:
    free(ticket);
}

int ticket_redeem(struct api_call *c, const char *ticket, struct auth_claims *out, const char **why)
{
    char hex[65], err[ERR_MAX];
    const char *p[1] = {hex};
    PGresult *r;
    int found;

    *why = "invalid_ticket";
    if (strlen(ticket) > 128 || ticket_hash(ticket, hex) < 0)
        return -1;
    *why = NULL; /* from here a failure has answered (503, 500) */
    if (!api_db(c))
        return -1;
    if (!(r = pg_exec(c->db, "ticket_redeem", 1, p, err))) {
        api_db_fail(c, "ticket_redeem", err);
        return -1;
    }
    found = PQntuples(r) == 1;
    if (found) {
        util_strlcpy(out->sub, sizeof out->sub, PQgetvalue(r, 0, 0));
        out->admin = PQgetvalue(r, 0, 1)[0] == 't';
        out->exp = (time_t)pg_i64(r, 0, 2);
    }
    PQclear(r);
    *why = found ? NULL : "invalid_ticket";
    return found ? 0 : -1;
}
