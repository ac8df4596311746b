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
