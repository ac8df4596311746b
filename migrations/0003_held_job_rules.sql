-- The terms a `hold` rule set on a job (forced options, saving_only), applied when its owner
-- releases it. Written in the same transaction as the job; one row per job at most.
CREATE TABLE held_job_rules (
    task_id TEXT PRIMARY KEY REFERENCES held_jobs (task_id),
    terms   TEXT NOT NULL  -- JSON: job::rules::HoldTerms
);
