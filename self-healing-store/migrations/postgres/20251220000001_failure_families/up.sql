-- What people decided about each failure family (fingerprint): resolved or ignored from the
-- dashboard, with when and by whom. A family without a row is open. A resolved family with an
-- event after `resolved_at_us` shows as regressed (open again); the row is kept as it was.
CREATE TABLE failure_families (
    fingerprint TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    status TEXT COLLATE "C" NOT NULL CHECK (status IN ('open', 'resolved', 'ignored')),
    resolved_at_us BIGINT,
    changed_by TEXT NOT NULL,
    changed_us BIGINT NOT NULL
);
