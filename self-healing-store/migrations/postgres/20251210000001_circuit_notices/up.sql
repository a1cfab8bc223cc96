-- The fleet's circuit news: every change of an instance's circuit (`moved`) and every command
-- given to all instances (`command`, from the CLI or a dashboard). Pollers read it by id (and
-- LISTEN on `self_healing_circuits`, which every publish NOTIFYs); rows older than a day are
-- pruned, except each instance's latest state per source (kept a week).
CREATE TABLE circuit_notices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_us BIGINT NOT NULL,
    instance TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('moved', 'command')),
    state TEXT COLLATE "C",
    held_open BOOLEAN NOT NULL,
    command TEXT COLLATE "C",
    requested_by TEXT
);
CREATE INDEX circuit_notices_time ON circuit_notices (time_us);
CREATE INDEX circuit_notices_latest ON circuit_notices (instance, source, id);
CREATE INDEX circuit_notices_source ON circuit_notices (source);
