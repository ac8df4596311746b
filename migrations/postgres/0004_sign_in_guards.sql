-- Sign-in guards, on PostgreSQL only: the daemons behind a load balancer share one count of failed
-- guesses per card and per person (the lockout) and of failed sign-ins per station and in all
-- (the failure budgets), so guesses spread over them cannot beat either. One row per subject
-- (`card:…`, `upn:…`, `budget:station:…`, `budget:global`), its record as JSON, changed under the
-- row's lock. (A SQLite store has one daemon, which keeps these in memory.)
CREATE TABLE sign_in_guards (
    subject    TEXT COLLATE "C" PRIMARY KEY,
    record     TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
