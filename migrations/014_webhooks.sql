-- Webhooks (issue 19): endpoints an integrating backend registers, the integration events
-- the delivery service consumed from Kafka (kept for replay), and one delivery per endpoint
-- and event, retried with backoff until delivered or given up.

CREATE TABLE webhook_endpoints (
    endpoint_id     uuid PRIMARY KEY,
    url             text NOT NULL,
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    secret          text NOT NULL, -- "whsec_" + base64; kept in clear, it signs deliveries
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_reason text,
    failures        integer NOT NULL DEFAULT 0, -- consecutive failed attempts
    last_error      text,
    last_failure_at timestamptz,
    last_success_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (enabled = (disabled_at IS NULL))
);

-- Every event the delivery service consumed: payload as published (pix_event's object).
CREATE TABLE webhook_events (
    event_id    uuid PRIMARY KEY,
    type        text NOT NULL,
    msg_key     text NOT NULL,
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_events_time ON webhook_events (occurred_at, event_id);

-- One endpoint's deliveries of one msg_key go out in delivery_id order (a later one waits
-- while an earlier one is pending). webhook-id = event_id, the same on every retry and replay.
CREATE TABLE webhook_deliveries (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    event_id        uuid NOT NULL REFERENCES webhook_events (event_id) ON DELETE CASCADE,
    msg_key         text NOT NULL,
    replay          boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_status     integer, -- the receiver's HTTP status of the last attempt
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz
);
-- The fan-out of a consumed event is idempotent (a redelivered Kafka message adds nothing).
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, event_id)
    WHERE NOT replay;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, delivery_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, msg_key, delivery_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, delivery_id);
