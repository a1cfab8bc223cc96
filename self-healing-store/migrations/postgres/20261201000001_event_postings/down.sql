CREATE INDEX healing_events_source ON healing_events (source, time_us);
CREATE INDEX healing_events_outcome ON healing_events (outcome, time_us);
CREATE INDEX healing_events_severity ON healing_events (severity, time_us);
CREATE INDEX healing_events_fingerprint ON healing_events (fingerprint, time_us);
DROP TABLE event_postings;
