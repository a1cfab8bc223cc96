-- The outbox of `queue_for_later` sites: calls that could not succeed when they were made, kept
-- until a replay succeeds (`delivered`), or given up (`dead`). One row per call key, so a call
-- queued twice is replayed once. `id` keeps the order entries were queued in (newest first in
-- lists). Workers of every instance claim pending entries due now, oldest due first, with
-- `FOR UPDATE SKIP LOCKED`, by moving their `next_attempt_at_us` to the end of a lease:
-- `outbox_due` serves that, and lists per status. Delivered entries are pruned with the events;
-- pending and dead ones stay until someone acts.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key TEXT COLLATE "C" NOT NULL UNIQUE,
    source TEXT COLLATE "C" NOT NULL,
    payload TEXT NOT NULL,
    status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at_us, id);
CREATE INDEX outbox_status ON outbox (status, id);

-- The idempotency key of the call an event records (keyed and `queue_for_later` sites).
ALTER TABLE healing_events ADD COLUMN call_key TEXT COLLATE "C";
