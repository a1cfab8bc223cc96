-- self-healing store, PostgreSQL. Times are microseconds since the Unix epoch (UTC) in BIGINT
-- columns, so that both backends share one schema module and the same bucket arithmetic.
-- Indexed and key text columns use the "C" collation: they hold identifiers, hex fingerprints
-- and enum names, and byte-wise comparison makes index maintenance several times cheaper than
-- a locale's collation.

CREATE TABLE healing_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_us BIGINT NOT NULL,
    instance TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    category TEXT COLLATE "C" NOT NULL,
    fingerprint TEXT COLLATE "C" NOT NULL,
    class TEXT COLLATE "C" NOT NULL,
    message TEXT NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    strategy TEXT COLLATE "C",
    outcome TEXT COLLATE "C" NOT NULL,
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
    fingerprint TEXT COLLATE "C" NOT NULL,
    strategy TEXT COLLATE "C" NOT NULL,
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
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_us BIGINT NOT NULL,
    instance TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    latency_us BIGINT NOT NULL,
    message TEXT NOT NULL,
    details TEXT
);
CREATE INDEX health_checks_name ON health_checks (name, id);
CREATE INDEX health_checks_time ON health_checks (time_us);

CREATE TABLE call_sites (
    source TEXT COLLATE "C" NOT NULL,
    module_path TEXT COLLATE "C" NOT NULL,
    function TEXT COLLATE "C" NOT NULL,
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
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    batch_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    time_us BIGINT NOT NULL,
    records BIGINT NOT NULL
);
CREATE INDEX store_batches_time ON store_batches (time_us);
