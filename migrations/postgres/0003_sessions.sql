-- Station sessions, on PostgreSQL only: several daemons behind a load balancer serve one kiosk, so a
-- session made at one must be valid at the others. Only the SHA-256 of a token is kept. (A SQLite
-- store has one daemon, which keeps its sessions in memory.)
CREATE TABLE sessions (
    digest       TEXT COLLATE "C" PRIMARY KEY,
    upn          TEXT COLLATE "C" NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL,
    station_id   TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL,
    ends_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
