-- Which events a committed batch holds, per family and kind: one row per batch × (fingerprint,
-- source, category, outcome, severity), listing its events as "time_us:id" pairs. Filtered event
-- lists, family summaries and source look-ups read these rows instead of one index entry per
-- event: a batch of thousands of events adds a few dozen rows here, where the four secondary
-- indexes they replace took four B-tree inserts per event (most of the writer's time).
CREATE TABLE event_postings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    category TEXT COLLATE "C" NOT NULL,
    outcome TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    min_time_us BIGINT NOT NULL,
    max_time_us BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    events BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    entries TEXT NOT NULL
);
CREATE INDEX event_postings_time ON event_postings (max_time_us, id);
CREATE INDEX event_postings_fingerprint ON event_postings (fingerprint, max_time_us);
CREATE INDEX event_postings_source ON event_postings (source, max_time_us);
CREATE INDEX event_postings_outcome ON event_postings (outcome, max_time_us);
CREATE INDEX event_postings_severity ON event_postings (severity, max_time_us);

-- The events already stored, in groups of 4,096 consecutive ids (a backfilled posting may list
-- thousands of events; the writer lists at most 64 per posting).
INSERT INTO event_postings (fingerprint, source, category, outcome, severity, min_time_us,
    max_time_us, last_id, events, calls, entries)
SELECT fingerprint, source, category, outcome, severity, MIN(time_us), MAX(time_us), MAX(id),
    COUNT(*), SUM(count), string_agg(time_us || ':' || id, ' ')
FROM healing_events
GROUP BY id / 4096, fingerprint, source, category, outcome, severity;

DROP INDEX healing_events_source;
DROP INDEX healing_events_outcome;
DROP INDEX healing_events_severity;
DROP INDEX healing_events_fingerprint;
