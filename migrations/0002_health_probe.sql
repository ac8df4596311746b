-- A single row that `/readyz` rewrites to prove the store still takes writes (a full disk or a
-- read-only file fails here before it fails a release).
CREATE TABLE health_probe (
    slot       INTEGER PRIMARY KEY CHECK (slot = 1),
    checked_at TEXT NOT NULL  -- RFC 3339 UTC, from the caller's clock
);
