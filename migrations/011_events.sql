-- Integration events (issue 19): one versioned JSON event per thing an integrator cares
-- about, written to the outbox in the transaction of the change and relayed to Kafka like
-- image.uploaded. Key = the image (or album / user) id, so one subject's events keep their
-- order on one partition. The webhook delivery service and any other consumer read them.

-- Topic: ALTER DATABASE ... SET pixplane.events_topic = '...' overrides the default.
CREATE FUNCTION pix_event(p_type text, p_key text, p_data jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO outbox (topic, msg_key, payload)
    VALUES (coalesce(nullif(current_setting('pixplane.events_topic', true), ''),
                     'pixplane-events'),
            p_key,
            jsonb_build_object('version', 1, 'id', gen_random_uuid(), 'type', p_type,
                               'occurred_at', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                               'data', p_data))
$$;
