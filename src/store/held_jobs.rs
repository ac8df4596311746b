//! Held jobs: what intake stores, what a station lists, what the hold-timeout sweeper expires.
//!
//! Invariants: a task is stored once (its id is the key; a second insert is [`Inserted::AlreadyKnown`]
//! and changes nothing), and a row is never deleted while the job lives, so duplicated or late
//! notifications cost no second Graph lookup. Owners are matched case-insensitively through the
//! lower-cased `owner_key`. A station only ever sees `held` jobs.

use serde_json::Value;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use super::EnqueueError;
use super::actions::enqueue_in;
use super::audit::{self, NewAudit};
use super::model::{AuditEvent, Inserted, JobCursor, MarkedGone};
use super::timestamp::encode;
use super::{RowExt, Store, StoreError, json_text, placeholders};
use crate::job::{DiscoveredVia, HeldJob, JobState, NewAction, NewHeldJob, Outcome, TextEnum};

/// The columns [`held_job`] reads, as a literal so queries stay `&'static str`.
macro_rules! columns {
    () => {
        "task_id, definition_id, printer_id, job_id, owner_upn, owner_name, owner_id, name, \
         configuration, submitted_at, discovered_at, discovered_via, state, outcome, ended_at"
    };
}

impl Store {
    /// Whether intake already stored this task (in any state).
    pub async fn task_known(&self, task_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM held_jobs WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("looking up a task"))?;
        Ok(row.is_some())
    }

    /// Which of `task_ids` are stored already: [`Store::task_known`] for a whole task-list page in
    /// one query.
    pub async fn known_tasks(
        &self,
        task_ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        // In slices well under either database's limit on bound parameters.
        for slice in task_ids.chunks(500) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT task_id FROM held_jobs WHERE task_id IN ({})",
                placeholders(1, slice.len())
            )));
            for task_id in slice {
                query = query.bind(*task_id);
            }
            for row in query
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("looking up tasks"))?
            {
                known.insert(row.text("task_id")?);
            }
        }
        Ok(known)
    }

    /// Claims the lookup of a task intake has just seen: `true` means "you GET the job now";
    /// `false` means the task is stored already, or another intake path claimed it less than `lease`
    /// ago. A claim that is not followed by [`Store::insert_held_job`] (the lookup failed, the daemon
    /// died) lapses after `lease`, so the next poll tries again.
    pub async fn claim_discovery(
        &self,
        task_id: &str,
        via: DiscoveredVia,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "claiming a task for lookup";
        let mut tx = self.write(DOING).await?;
        let known = sqlx::query("SELECT 1 FROM held_jobs WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?
            .is_some();
        if known {
            return Ok(false);
        }
        // Takes the claim if there is none or it has lapsed; otherwise changes nothing.
        let taken = sqlx::query(
            "INSERT INTO intake_claims (task_id, claimed_at, claimed_via) VALUES ($1, $2, $3) \
             ON CONFLICT (task_id) DO UPDATE SET claimed_at = excluded.claimed_at, \
             claimed_via = excluded.claimed_via WHERE intake_claims.claimed_at <= $4",
        )
        .bind(task_id)
        .bind(encode(now))
        .bind(via.as_str())
        .bind(encode(now - lease))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?
        .rows_affected()
            == 1;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(taken)
    }

    /// Gives up a claim after a failed lookup, so another path may try at once.
    pub async fn release_claim(&self, task_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM intake_claims WHERE task_id = $1")
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("releasing a lookup claim"))?;
        Ok(())
    }

    /// Drops every lookup claim; returns how many. Only for a daemon that has just taken the store's
    /// lock ([`super::StoreLock`]): every claim then is a leftover of a process that died mid-lookup,
    /// and would otherwise keep intake off its task for the rest of the lease.
    pub async fn release_stale_claims(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM intake_claims")
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("releasing stale lookup claims"))?;
        Ok(done.rows_affected())
    }

    /// Stores a held job (and its `held` audit record, and drops its claim) in one transaction.
    /// A task or printer job already stored is [`Inserted::AlreadyKnown`] and changes nothing.
    pub async fn insert_held_job(&self, job: &NewHeldJob) -> Result<Inserted, StoreError> {
        self.insert_held_job_then(job, None, None, None)
            .await
            .map_err(|error| match error {
                EnqueueError::Store(error) => error,
                // No action was given, so nothing else can be refused.
                other => StoreError::Corrupt {
                    what: other.to_string(),
                },
            })
    }

    /// Stores a held job as [`Store::insert_held_job`] does, with `note` (a rule's decision) added
    /// to its `held` audit record, and queues `action` (a rule's release, redirect or deny) in the
    /// same transaction: a crash leaves either nothing (the next poll finds the task again) or the
    /// job with its action queued, never a job a rule should have acted on sitting held. `terms`
    /// (JSON, a hold rule's forced options) are kept with the job for its release. A task already
    /// known is [`Inserted::AlreadyKnown`] and queues nothing.
    pub async fn insert_held_job_then(
        &self,
        job: &NewHeldJob,
        note: Option<&str>,
        action: Option<&NewAction>,
        terms: Option<&Value>,
    ) -> Result<Inserted, EnqueueError> {
        const DOING: &str = "storing a held job";
        let mut tx = self.write(DOING).await?;
        // No conflict target: both the task id and (printer, job) are unique, and either means known.
        let inserted = sqlx::query(
            "INSERT INTO held_jobs (task_id, definition_id, printer_id, job_id, owner_upn, owner_key, \
             owner_name, owner_id, name, configuration, submitted_at, discovered_at, discovered_via, \
             state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'held') \
             ON CONFLICT DO NOTHING",
        )
        .bind(&job.task_id)
        .bind(&job.definition_id)
        .bind(&job.printer_id)
        .bind(&job.job_id)
        .bind(&job.owner_upn)
        .bind(owner_key(&job.owner_upn))
        .bind(&job.owner_name)
        .bind(&job.owner_id)
        .bind(&job.name)
        .bind(json_text(&job.configuration))
        .bind(encode(job.submitted_at))
        .bind(encode(job.discovered_at))
        .bind(job.discovered_via.as_str())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?
        .rows_affected()
            == 1;
        sqlx::query("DELETE FROM intake_claims WHERE task_id = $1")
            .bind(&job.task_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        if inserted {
            let configuration = json_text(&job.configuration);
            audit::append(
                &mut tx,
                &NewAudit {
                    at: job.discovered_at,
                    event: AuditEvent::Held,
                    station_id: None,
                    requested_by: None,
                    user_upn: Some(&job.owner_upn),
                    task_id: &job.task_id,
                    printer_id: &job.printer_id,
                    job_id: &job.job_id,
                    destination_printer_id: None,
                    configuration_before: Some(&configuration),
                    configuration_after: None,
                    detail: Some(&match note {
                        Some(note) => format!("{} via {}; {note}", job.name, job.discovered_via),
                        None => format!("{} via {}", job.name, job.discovered_via),
                    }),
                    graph_request_id: None,
                },
            )
            .await?;
            if let Some(terms) = terms {
                sqlx::query("INSERT INTO held_job_rules (task_id, terms) VALUES ($1, $2)")
                    .bind(&job.task_id)
                    .bind(terms.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(DOING))?;
            }
            if let Some(action) = action {
                enqueue_in(&mut tx, action).await?;
            }
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(if inserted {
            Inserted::New
        } else {
            Inserted::AlreadyKnown
        })
    }

    /// The terms (JSON) a hold rule kept with the job of `task_id`, if any.
    pub async fn held_job_terms(&self, task_id: &str) -> Result<Option<Value>, StoreError> {
        sqlx::query("SELECT terms FROM held_job_rules WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a held job's rule terms"))?
            .as_ref()
            .map(|row| row.json("terms"))
            .transpose()
    }

    /// One job by its task id, in any state.
    pub async fn held_job(&self, task_id: &str) -> Result<Option<HeldJob>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM held_jobs WHERE task_id = $1");
        sqlx::query(sql)
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a held job"))?
            .as_ref()
            .map(held_job)
            .transpose()
    }

    /// What a person sees at a station: their jobs still `held` (not those being acted on or ended),
    /// oldest first. `upn` is compared case-insensitively.
    pub async fn held_jobs_for_owner(&self, upn: &str) -> Result<Vec<HeldJob>, StoreError> {
        Ok(self
            .held_jobs_and_terms_for_owner(upn)
            .await?
            .into_iter()
            .map(|(job, _)| job)
            .collect())
    }

    /// [`Store::held_jobs_for_owner`], each job with its hold rule's terms ([`Store::held_job_terms`])
    /// read by the same query: a person's "print all" needs both, and a read per job held a crowd's
    /// print-alls in the connection pool's queue for seconds.
    pub async fn held_jobs_and_terms_for_owner(
        &self,
        upn: &str,
    ) -> Result<Vec<(HeldJob, Option<Value>)>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            ", (SELECT r.terms FROM held_job_rules r WHERE r.task_id = held_jobs.task_id) \
             AS rule_terms FROM held_jobs WHERE owner_key = $1 AND state = 'held' \
             ORDER BY submitted_at, task_id"
        );
        let rows = sqlx::query(sql)
            .bind(owner_key(upn))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing a user's held jobs"))?;
        rows.iter()
            .map(|row| Ok((held_job(row)?, row.opt_json("rule_terms")?)))
            .collect()
    }

    /// Every job not yet ended (`held` or `acting`), oldest first: the administrator's view and the
    /// start-up reconciliation.
    pub async fn all_held_jobs(&self) -> Result<Vec<HeldJob>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM held_jobs WHERE state <> 'ended' ORDER BY submitted_at, task_id"
        );
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing held jobs"))?;
        rows.iter().map(held_job).collect()
    }

    /// A page of the jobs not yet ended, in the order of [`Store::all_held_jobs`]: at most `limit`,
    /// starting after `after` (the cursor of the last job of the page before; `None`: the first page).
    /// A job that ends between two pages is simply not on the next one; none is listed twice.
    pub async fn held_jobs_page(
        &self,
        after: Option<&JobCursor>,
        limit: u32,
    ) -> Result<Vec<HeldJob>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM held_jobs WHERE state <> 'ended' \
             AND ($1 IS NULL OR submitted_at > $1 OR (submitted_at = $1 AND task_id > $2)) \
             ORDER BY submitted_at, task_id LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(after.map(|c| encode(c.submitted_at)))
            .bind(after.map(|c| c.task_id.clone()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing held jobs"))?;
        rows.iter().map(held_job).collect()
    }

    /// How many jobs are not yet ended (`held` or `acting`): the held-jobs gauge, without reading them.
    pub async fn count_held_jobs(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM held_jobs WHERE state <> 'ended'")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting held jobs"))?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
    }

    /// Jobs still `held` that were submitted before `t`: what the hold-timeout sweeper expires.
    pub async fn held_jobs_older_than(
        &self,
        t: OffsetDateTime,
    ) -> Result<Vec<HeldJob>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM held_jobs WHERE state = 'held' AND submitted_at < $1 \
             ORDER BY submitted_at, task_id"
        );
        let rows = sqlx::query(sql)
            .bind(encode(t))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing expired held jobs"))?;
        rows.iter().map(held_job).collect()
    }

    /// Our own find-me redirect of the job `job_id` on `printer_id`, if we sent one: who asked, at
    /// which station, and the configuration it carried (the requested changes, else the held one).
    /// Intake uses it to recognise the redirected job when the destination holds it again.
    pub async fn our_redirect_of(
        &self,
        printer_id: &str,
        job_id: &str,
    ) -> Result<Option<OurRedirect>, StoreError> {
        let row = sqlx::query(
            "SELECT a.requested_by, a.station_id, COALESCE(a.changes, h.configuration) AS sent \
             FROM actions a JOIN held_jobs h ON h.task_id = a.task_id \
             WHERE h.printer_id = $1 AND h.job_id = $2 AND a.kind = 'redirect' \
             ORDER BY a.id DESC LIMIT 1",
        )
        .bind(printer_id)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading our redirect of a job"))?;
        row.map(|row| {
            Ok(OurRedirect {
                requested_by: row.text("requested_by")?,
                station_id: row.opt_text("station_id")?,
                configuration: row.json("sent")?,
            })
        })
        .transpose()
    }

    /// When the oldest job still `held` was submitted: the sweeper's next deadline is this plus the
    /// hold timeout. `None` when nothing is held.
    pub async fn oldest_held_submission(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query(
            "SELECT submitted_at FROM held_jobs WHERE state = 'held' ORDER BY submitted_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("finding the oldest held job"))?;
        row.map(|row| row.time("submitted_at")).transpose()
    }

    /// Ends a `held` job whose task left `processing` elsewhere (completed or aborted outside
    /// pullprintd, or the job was deleted), with an audit record. A job an action owns is left to the
    /// executor, which settles it by reading Graph (see [`MarkedGone::NotHeld`]).
    pub async fn mark_gone(
        &self,
        task_id: &str,
        now: OffsetDateTime,
        detail: &str,
    ) -> Result<MarkedGone, StoreError> {
        const DOING: &str = "ending a job that left processing";
        let mut tx = self.write(DOING).await?;
        let sql = concat!(
            "UPDATE held_jobs SET state = 'ended', outcome = 'gone', ended_at = $2 \
             WHERE task_id = $1 AND state = 'held' RETURNING ",
            columns!(),
            ""
        );
        let Some(row) = sqlx::query(sql)
            .bind(task_id)
            .bind(encode(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?
        else {
            return Ok(MarkedGone::NotHeld);
        };
        let job = held_job(&row)?;
        audit::append(
            &mut tx,
            &NewAudit {
                at: now,
                event: AuditEvent::from(Outcome::Gone),
                station_id: None,
                requested_by: None,
                user_upn: Some(&job.job.owner_upn),
                task_id: &job.job.task_id,
                printer_id: &job.job.printer_id,
                job_id: &job.job.job_id,
                destination_printer_id: None,
                configuration_before: None,
                configuration_after: None,
                detail: Some(detail),
                graph_request_id: None,
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(MarkedGone::Ended)
    }
}

/// A find-me redirect the daemon itself sent (see [`Store::our_redirect_of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OurRedirect {
    /// Who released the job.
    pub requested_by: String,
    /// At which station.
    pub station_id: Option<String>,
    /// The configuration the redirect carried: what the person chose.
    pub configuration: crate::graph::PrintJobConfiguration,
}

/// The case-insensitive key of a UPN.
pub(crate) fn owner_key(upn: &str) -> String {
    upn.trim().to_lowercase()
}

fn held_job(row: &AnyRow) -> Result<HeldJob, StoreError> {
    Ok(HeldJob {
        job: NewHeldJob {
            task_id: row.text("task_id")?,
            definition_id: row.text("definition_id")?,
            printer_id: row.text("printer_id")?,
            job_id: row.text("job_id")?,
            owner_upn: row.text("owner_upn")?,
            owner_name: row.opt_text("owner_name")?,
            owner_id: row.opt_text("owner_id")?,
            name: row.text("name")?,
            configuration: row.json("configuration")?,
            submitted_at: row.time("submitted_at")?,
            discovered_at: row.time("discovered_at")?,
            discovered_via: row.word::<DiscoveredVia>("discovered_via")?,
        },
        state: row.word::<JobState>("state")?,
        outcome: row.opt_word::<Outcome>("outcome")?,
        ended_at: row.opt_time("ended_at")?,
    })
}
