/* sql: every statement the webhook delivery service prepares, by name: the intake's store
 * and fan-out, the delivery loop's claim and outcomes, and the upkeep's prune and gauges. */
#include "hooks.h"

const struct pg_stmt hooks_stmts[] = {
    /* One consumed event: stored once; only a new one fans out, to every enabled endpoint
     * subscribed to its type ('*': every type), in endpoint order. A redelivered message
     * adds nothing (the event exists; webhook_deliveries_once guards the rest). */
    {"event_store",
     "WITH e AS (INSERT INTO webhook_events (event_id, type, msg_key, payload, occurred_at)"
     " VALUES ($1::uuid, $2, $3, $4::jsonb, $5::timestamptz) ON CONFLICT (event_id) DO NOTHING"
     " RETURNING event_id), d AS (INSERT INTO webhook_deliveries (endpoint_id, event_id, msg_key)"
     " SELECT w.endpoint_id, e.event_id, $3 FROM e, webhook_endpoints w WHERE w.enabled"
     " AND ($2 = ANY (w.events) OR '*' = ANY (w.events)) ORDER BY w.endpoint_id"
     " ON CONFLICT (endpoint_id, event_id) WHERE NOT replay DO NOTHING RETURNING 1)"
     " SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM d)"},
    /* Up to $1 due deliveries of enabled endpoints, each the oldest pending one of its
     * (endpoint, msg_key) (the heads, read in one pass over webhook_deliveries_order): a
     * later one never overtakes an earlier one. Rows are claimed with FOR UPDATE SKIP
     * LOCKED and leased by moving next_attempt_at $2 seconds ahead, so other processes skip
     * them while they are in flight (a crash: due again then). A head another process holds
     * is skipped, and its successors are not heads: the order holds across processes. */
    {"deliveries_claim",
     "WITH h AS (SELECT DISTINCT ON (endpoint_id, msg_key) delivery_id, endpoint_id,"
     " next_attempt_at FROM webhook_deliveries WHERE status = 'pending'"
     " ORDER BY endpoint_id, msg_key, delivery_id),"
     " c AS (SELECT d.delivery_id FROM webhook_deliveries d WHERE d.delivery_id IN"
     " (SELECT h.delivery_id FROM h JOIN webhook_endpoints w ON w.endpoint_id = h.endpoint_id"
     " WHERE w.enabled AND h.next_attempt_at <= now() ORDER BY h.next_attempt_at, h.delivery_id"
     " LIMIT $1) AND d.status = 'pending' AND d.next_attempt_at <= now()"
     " FOR UPDATE OF d SKIP LOCKED)"
     " UPDATE webhook_deliveries d SET attempts = d.attempts + 1,"
     " next_attempt_at = now() + make_interval(secs => $2) FROM c, webhook_endpoints w,"
     " webhook_events v WHERE d.delivery_id = c.delivery_id AND w.endpoint_id = d.endpoint_id"
     " AND v.event_id = d.event_id RETURNING d.delivery_id, d.event_id, d.endpoint_id, w.url,"
     " w.secret, v.payload::text, d.attempts, extract(epoch FROM v.occurred_at)::float8"},
    {"delivery_ok",
     "WITH d AS (UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(),"
     " last_status = $2, last_error = NULL WHERE delivery_id = $1 AND status = 'pending'"
     " RETURNING endpoint_id) UPDATE webhook_endpoints w SET failures = 0, last_success_at = now()"
     " FROM d WHERE w.endpoint_id = d.endpoint_id"},
    /* A failed attempt: retried after $4 seconds, or given up past the max age ($5); the
     * endpoint's streak grows, and it is disabled once the streak reaches $6 attempts with no
     * success nor admin change (updated_at) for $7 seconds. Returns (given up, disabled). */
    {"delivery_failed",
     "WITH d AS (UPDATE webhook_deliveries SET last_status = $2, last_error = $3,"
     " next_attempt_at = now() + make_interval(secs => $4), status = CASE WHEN created_at <"
     " now() - make_interval(secs => $5) THEN 'failed' ELSE 'pending' END"
     " WHERE delivery_id = $1 AND status = 'pending' RETURNING endpoint_id, status),"
     " x AS (SELECT w.endpoint_id, w.enabled AND w.failures + 1 >= $6 AND"
     " greatest(w.last_success_at, w.updated_at) < now() - make_interval(secs => $7) AS off"
     " FROM webhook_endpoints w JOIN d ON d.endpoint_id = w.endpoint_id FOR UPDATE OF w),"
     " u AS (UPDATE webhook_endpoints w SET failures = w.failures + 1, last_error = $3,"
     " last_failure_at = now(), enabled = w.enabled AND NOT x.off,"
     " disabled_at = CASE WHEN x.off THEN now() ELSE w.disabled_at END,"
     " disabled_reason = CASE WHEN x.off THEN format('%s consecutive failed attempts, none"
     " succeeded since %s; last: %s', w.failures + 1, greatest(w.last_success_at, w.updated_at),"
     " $3) ELSE w.disabled_reason END FROM x WHERE w.endpoint_id = x.endpoint_id"
     " RETURNING x.off) SELECT coalesce((SELECT status = 'failed' FROM d), false),"
     " coalesce((SELECT off FROM u), false)"},
    /* upkeep: finished deliveries, then events no delivery refers to, past the retention */
    {"prune_deliveries",
     "DELETE FROM webhook_deliveries WHERE delivery_id IN (SELECT delivery_id"
     " FROM webhook_deliveries WHERE status <> 'pending'"
     " AND coalesce(delivered_at, next_attempt_at) < now() - make_interval(secs => $1) LIMIT $2)"},
    {"prune_events",
     "DELETE FROM webhook_events WHERE event_id IN (SELECT e.event_id FROM webhook_events e"
     " WHERE e.occurred_at < now() - make_interval(secs => $1) AND NOT EXISTS (SELECT 1"
     " FROM webhook_deliveries d WHERE d.event_id = e.event_id) ORDER BY e.occurred_at LIMIT $2)"},
    {"backlog", "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now()),"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8,"
                " (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled)"
                " FROM webhook_deliveries WHERE status = 'pending'"},
};
const size_t hooks_stmts_count = ARRAY_LEN(hooks_stmts);
