-- pullprintd store schema, version 1.
--
-- Portability: this SQL runs on SQLite and is written so a PostgreSQL migration can follow almost
-- verbatim (partial indexes, ON CONFLICT, RETURNING are common to both). The only SQLite-specific
-- choice is `INTEGER PRIMARY KEY` for generated ids (PostgreSQL: `BIGINT GENERATED ALWAYS AS IDENTITY`).
-- Timestamps are TEXT in RFC 3339 UTC with a fixed width (`2026-01-01T08:00:00.000000000Z`), written by
-- the daemon from its injected clock, so text order is time order. JSON is stored as TEXT.

-- held_jobs: one row per print task of our task definition that intake learned of. The row outlives
-- the job ('ended') so a late or duplicated notification for the same task is recognised and costs no
-- second Graph lookup.
CREATE TABLE held_jobs (
    task_id         TEXT PRIMARY KEY,          -- printTask id (our trigger's task on the job)
    definition_id   TEXT NOT NULL,             -- printTaskDefinition id (PATCH task goes through it)
    printer_id      TEXT NOT NULL,             -- printer the job was sent to
    job_id          TEXT NOT NULL,             -- printJob id on that printer
    owner_upn       TEXT NOT NULL,             -- createdBy.userPrincipalName, as Graph spelled it
    owner_key       TEXT NOT NULL,             -- lower-cased owner_upn: UPNs compare case-insensitively
    owner_name      TEXT,                      -- createdBy.displayName
    owner_id        TEXT,                      -- createdBy.id (Entra object id)
    name            TEXT NOT NULL,             -- the document's display name
    configuration   TEXT NOT NULL,             -- JSON printJobConfiguration at intake
    submitted_at    TEXT NOT NULL,             -- job createdDateTime
    discovered_at   TEXT NOT NULL,
    discovered_via  TEXT NOT NULL CHECK (discovered_via IN ('poll', 'webhook', 'reconcile')),
    state           TEXT NOT NULL CHECK (state IN ('held', 'acting', 'ended')),
    outcome         TEXT CHECK (outcome IN ('released', 'redirected', 'deleted', 'expired', 'failed', 'gone')),
    ended_at        TEXT,
    UNIQUE (printer_id, job_id),
    -- An ended job always says how and when it ended; a live one never does.
    CHECK ((state = 'ended') = (outcome IS NOT NULL AND ended_at IS NOT NULL))
);
CREATE INDEX held_jobs_by_owner ON held_jobs (owner_key, state);
CREATE INDEX held_jobs_by_state ON held_jobs (state, submitted_at);

-- intake_claims: a short lease taken by whichever intake path (webhook, poll, reconcile) first sees an
-- unknown task, so concurrent paths do not both GET the job. Removed when the held job is stored; an
-- expired lease (the lookup failed or the daemon died) can be taken again.
CREATE TABLE intake_claims (
    task_id     TEXT PRIMARY KEY,
    claimed_at  TEXT NOT NULL,
    claimed_via TEXT NOT NULL CHECK (claimed_via IN ('poll', 'webhook', 'reconcile'))
);

-- actions: the durable action queue. An action is written (and its job flipped to 'acting') in one
-- transaction before the user is answered; `step` is a write-ahead intent recorded before each Graph
-- call that may take effect, so a restart knows what may have happened (see src/release/steps.rs).
CREATE TABLE actions (
    id                      INTEGER PRIMARY KEY,
    task_id                 TEXT NOT NULL REFERENCES held_jobs (task_id),
    kind                    TEXT NOT NULL CHECK (kind IN ('release', 'redirect', 'delete', 'expire')),
    changes                 TEXT,              -- JSON: full configuration to send; NULL = unchanged
    destination_printer_id  TEXT,              -- redirect only
    station_id              TEXT,
    requested_by            TEXT NOT NULL,     -- UPN, 'admin' or 'system'
    requested_at            TEXT NOT NULL,
    step                    TEXT NOT NULL,
    attempts                INTEGER NOT NULL DEFAULT 0,
    next_attempt_at         TEXT NOT NULL,
    last_error              TEXT,
    graph_request_id        TEXT,              -- Graph's request-id of the last call, for support cases
    finished_at             TEXT,
    outcome                 TEXT CHECK (outcome IN ('released', 'redirected', 'deleted', 'expired', 'failed', 'gone')),
    detail                  TEXT,
    CHECK ((kind = 'redirect') = (destination_printer_id IS NOT NULL)),
    CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
-- At most one unfinished action per task: a second release of the same job is refused by the database
-- itself, whatever the code above it does.
CREATE UNIQUE INDEX actions_one_unfinished_per_task ON actions (task_id) WHERE finished_at IS NULL;
CREATE INDEX actions_due ON actions (next_attempt_at) WHERE finished_at IS NULL;

-- inbox: change notifications persisted by the webhook before it answers 202, processed later.
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    received_at   TEXT NOT NULL,
    payload       TEXT NOT NULL,               -- JSON of one changeNotification
    processed_at  TEXT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE processed_at IS NULL;

-- subscription: the single Graph subscription (slot 1). client_state is generated once and kept across
-- subscriptions, so notifications for an old subscription still validate while a new one is created.
CREATE TABLE subscription (
    slot             INTEGER PRIMARY KEY CHECK (slot = 1),
    client_state     TEXT,
    subscription_id  TEXT,
    resource         TEXT,
    notification_url TEXT,
    expires_at       TEXT,
    created_at       TEXT,
    CHECK ((subscription_id IS NULL) = (expires_at IS NULL))
);

-- audit: append-only record of what happened to each job and who asked for it. Only retention
-- (prune by age) ever deletes from it.
CREATE TABLE audit (
    id                      INTEGER PRIMARY KEY,
    at                      TEXT NOT NULL,
    event                   TEXT NOT NULL CHECK (event IN ('held', 'released', 'redirected', 'deleted', 'expired', 'failed', 'gone')),
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
CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_user ON audit (user_key, at);
