/* health: liveness (/healthz: the process answers) and readiness (/readyz: PostgreSQL
 * reachable with migrations current, bucket reachable, not draining). */
#include <string.h>

#include "api.h"
#include "log.h"
#include "migrate.h"

void api_healthz(struct api_call *c)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "status", "ok");
    http_respond_json(c->req, 200, o);
}

static const char *check_db(struct api_call *c, char *err)
{
    pg_conn *db = pg_acquire(c->api->pg, 1.0, err);
    PGresult *r;
    int cur;

    if (!db)
        return "unreachable";
    c->db = db;                                   /* released by dispatch */
    if (!(r = pg_exec(db, "ping", 0, NULL, err))) /* reconnects if the server restarted */
        return "unreachable";
    PQclear(r);
    cur = migrate_current(pg_raw(db), err);
    return cur == 1 ? "ok" : cur == 0 ? "migrations_pending" : "error";
}

void api_readyz(struct api_call *c)
{
    char dberr[ERR_MAX] = "", s3err[ERR_MAX] = "";
    const char *db = check_db(c, dberr);
    const char *s3 = s3_head_bucket(c->t->s3, s3err) == S3_OK ? "ok" : "unreachable";
    int ready = !c->api->draining && !strcmp(db, "ok") && !strcmp(s3, "ok");
    cJSON *o = cJSON_CreateObject(), *checks = cJSON_AddObjectToObject(o, "checks");

    cJSON_AddStringToObject(o, "status", ready ? "ready" : "unready");
    cJSON_AddStringToObject(checks, "database", db);
    cJSON_AddStringToObject(checks, "storage", s3);
    cJSON_AddBoolToObject(checks, "draining", c->api->draining != 0);
    if (!ready)
        log_warn(c->rid, "unready", dberr[0] ? dberr : s3err, "database", db, "storage", s3);
    http_respond_json(c->req, ready ? 200 : 503, o);
}
