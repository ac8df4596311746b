-- Poison notifications: each inbox item is retried with its own back-off a bounded number of times,
-- then dead-lettered (kept, with the reason, and recorded in the audit log). Numbered after the issue
-- that introduced it so that migrations added on other lines of work do not collide with it.
ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN next_attempt_at TEXT;      -- NULL: due now
ALTER TABLE inbox ADD COLUMN dead_letter TEXT;          -- why it was given up, once it was

-- The audit log gains the 'dead_letter' event. SQLite cannot alter a CHECK constraint, so the table is
-- rebuilt with the same columns and indexes.
CREATE TABLE audit_new (
    id                      INTEGER PRIMARY KEY,
    at                      TEXT NOT NULL,
    event                   TEXT NOT NULL CHECK (event IN ('held', 'released', 'redirected', 'deleted', 'expired', 'failed', 'gone', 'dead_letter')),
    station_id              TEXT,
    requested_by            TEXT,              -- UPN, 'admin' or 'system'; NULL for intake events
    user_upn                TEXT,              -- the job's owner
    user_key                TEXT,              -- lower-cased user_upn, for case-insensitive filters
    task_id                 TEXT NOT NULL,
    printer_id              TEXT NOT NULL,
    job_id                  TEXT NOT NULL,
    destination_printer_id  TEXT,
    configuration_before    TEXT,              -- JSON at intake
    configuration_after     TEXT,              -- JSON sent with the release, if any
    detail                  TEXT,
    graph_request_id        TEXT
);
INSERT INTO audit_new SELECT id, at, event, station_id, requested_by, user_upn, user_key, task_id,
    printer_id, job_id, destination_printer_id, configuration_before, configuration_after, detail,
    graph_request_id FROM audit;
DROP TABLE audit;
ALTER TABLE audit_new RENAME TO audit;
CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_user ON audit (user_key, at);

-- What Graph holds for a job back on its owner's list after a release that changed its configuration
-- and then failed (JSON; NULL: the configuration Graph holds is `configuration`; JSON null: unknown).
-- A later release re-applies whatever differs from the person's choice.
ALTER TABLE held_jobs ADD COLUMN applied_configuration TEXT;
