-- Entra ID sign-in at a station (`[phone]`). `phone_codes`: the codes the kiosks show as QR codes,
-- each bound to its station, short-lived and usable once (`used_at`); kept a while after use so a
-- second scan is told "already used" rather than "unknown". `phone_logins`: a sign-in under way
-- between the authorize redirect and the callback: the station, the browser that started it (the
-- SHA-256 of a cookie), the nonce and the PKCE verifier, taken (deleted) by the one callback.
-- Only SHA-256 digests of codes, states and cookies are kept.
CREATE TABLE phone_codes (
    digest     TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX phone_codes_by_expiry ON phone_codes (expires_at);
CREATE TABLE phone_logins (
    digest     TEXT PRIMARY KEY,
    station_id TEXT NOT NULL,
    browser    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    at_kiosk   INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX phone_logins_by_expiry ON phone_logins (expires_at);
-- Releases of jobs waiting on Universal Print's pull-print printers (`[printing] pull_printers`),
-- recorded before the delegated `release` call and settled after it (by reading the job when the
-- answer was uncertain). At most one release under way or done per job: the partial unique index.
CREATE TABLE pull_releases (
    id              INTEGER PRIMARY KEY,
    pull_printer_id TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    printer_id      TEXT NOT NULL,
    station_id      TEXT NOT NULL,
    user_upn        TEXT NOT NULL,
    state           TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    settled_at      TEXT,
    detail          TEXT
);
CREATE UNIQUE INDEX pull_releases_once ON pull_releases (pull_printer_id, job_id)
    WHERE state IN ('sending', 'released');

-- The audit log gains the 'sign_in_refused' event (an Entra ID sign-in refused, and why; no job). SQLite
-- cannot alter a CHECK constraint, so the table is rebuilt with the same columns and indexes.
CREATE TABLE audit_new (
    id                      INTEGER PRIMARY KEY,
    at                      TEXT NOT NULL,
    event                   TEXT NOT NULL CHECK (event IN ('held', 'released', 'redirected', 'deleted', 'expired', 'failed', 'gone', 'dead_letter', 'sign_in_refused')),
    station_id              TEXT,
    requested_by            TEXT,              -- UPN, 'admin' or 'system'; NULL for intake events
    user_upn                TEXT,              -- the job's owner
    user_key                TEXT,              -- lower-cased user_upn, for case-insensitive filters
    task_id                 TEXT NOT NULL,     -- '' for a sign-in and for a pull-print job
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
