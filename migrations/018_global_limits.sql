-- Limits shared by every API instance (issue 20, docs/instances.md): the password attempts
-- of a public link are one budget in PostgreSQL, so brute force does not scale with the
-- number of API processes. PIXPLANE_LINK_UNLOCK_ATTEMPTS attempts in a burst, one back every
-- PIXPLANE_LINK_UNLOCK_REFILL: the same token bucket as common/ratelimit.c, kept as the time
-- the bucket is full again (full_at; the generic cell rate algorithm): an attempt moves it
-- one refill interval later and is allowed while it stays within a burst of intervals of
-- now. A row whose full_at has passed is the same as no row. The row goes with its link.
CREATE TABLE link_unlock_budget (
    link_id uuid PRIMARY KEY REFERENCES public_links (link_id) ON DELETE CASCADE,
    full_at timestamptz NOT NULL
);

-- Takes one attempt of link p_link (p_burst attempts, one back every p_every seconds):
-- 0 taken, else the seconds until one is back (nothing taken). Atomic across instances:
-- the upsert locks the link's row, so concurrent attempts queue on it and none overshoots.
CREATE FUNCTION link_unlock_take(p_link uuid, p_burst int, p_every float8) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t    timestamptz := clock_timestamp();
    step interval := make_interval(secs => p_every);
    span interval := make_interval(secs => p_every * p_burst);
    due  timestamptz;
BEGIN
    INSERT INTO link_unlock_budget AS b (link_id, full_at) VALUES (p_link, t + step)
    ON CONFLICT (link_id) DO UPDATE SET full_at = greatest(b.full_at, t) + step
    WHERE greatest(b.full_at, t) + step <= t + span;
    IF FOUND THEN
        RETURN 0;
    END IF;
    SELECT greatest(b.full_at, t) + step - span INTO due
    FROM link_unlock_budget b WHERE b.link_id = p_link;
    RETURN greatest(extract(epoch FROM due - t)::float8, 0.001);
END
$$;
