-- self-healing store, SQLite. Times are microseconds since the Unix epoch (UTC) in BIGINT
-- columns, so that both backends share one schema module and the same bucket arithmetic.

CREATE TABLE healing_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us BIGINT NOT NULL,
    instance TEXT NOT NULL,
    source TEXT NOT NULL,
    category TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    class TEXT NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL,
    strategy TEXT,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    duration_us BIGINT NOT NULL,
    count BIGINT NOT NULL,
    analyzer TEXT NOT NULL,
    diagnosis TEXT NOT NULL
);
CREATE INDEX healing_events_time ON healing_events (time_us, id);
CREATE INDEX healing_events_source ON healing_events (source, time_us);
CREATE INDEX healing_events_outcome ON healing_events (outcome, time_us);
CREATE INDEX healing_events_severity ON healing_events (severity, time_us);
CREATE INDEX healing_events_fingerprint ON healing_events (fingerprint, time_us);

CREATE TABLE healing_patterns (
    fingerprint TEXT NOT NULL,
    strategy TEXT NOT NULL,
    tried BIGINT NOT NULL,
    healed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    total_duration_us BIGINT NOT NULL,
    first_seen_us BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    ai_diagnosis TEXT,
    PRIMARY KEY (fingerprint, strategy)
);
CREATE INDEX healing_patterns_last_seen ON healing_patterns (last_seen_us);

CREATE TABLE health_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us BIGINT NOT NULL,
    instance TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    latency_us BIGINT NOT NULL,
    message TEXT NOT NULL,
    details TEXT
);
CREATE INDEX health_checks_name ON health_checks (name, id);
CREATE INDEX health_checks_time ON health_checks (time_us);

CREATE TABLE call_sites (
    source TEXT NOT NULL,
    module_path TEXT NOT NULL,
    function TEXT NOT NULL,
    category TEXT NOT NULL,
    file TEXT NOT NULL,
    line INTEGER NOT NULL,
    options TEXT NOT NULL,
    instance TEXT NOT NULL,
    first_seen_us BIGINT NOT NULL,
    last_seen_us BIGINT NOT NULL,
    PRIMARY KEY (source, module_path, function)
);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us BIGINT NOT NULL,
    instance TEXT NOT NULL,
    channel TEXT NOT NULL,
    severity TEXT NOT NULL,
    source TEXT,
    fingerprint TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT
);
CREATE INDEX notifications_time ON notifications (time_us);

-- One row per batch the writer committed: a batch retried after a lost commit acknowledgement
-- is recognised by its id and not written twice.
CREATE TABLE store_batches (
    batch_id TEXT PRIMARY KEY NOT NULL,
    time_us BIGINT NOT NULL,
    records BIGINT NOT NULL
);
CREATE INDEX store_batches_time ON store_batches (time_us);
