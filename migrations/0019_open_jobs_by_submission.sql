-- The admin listing pages through the jobs not yet ended in order of submission; this index serves
-- each page from its cursor without scanning the ended jobs kept for the audit trail.
CREATE INDEX held_jobs_open_by_submission ON held_jobs (submitted_at, task_id) WHERE state <> 'ended';
