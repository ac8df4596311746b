//! Releases of jobs waiting on Universal Print's pull-print printers (table `pull_releases`: SQLite
//! migration 0020, PostgreSQL 0006). Such a job is not held by our task trigger, so it has no
//! `held_jobs` row; what makes its release exactly-once is here: the release is recorded (`sending`)
//! before the delegated Graph call, and settled (`released` or `failed`) after it, with its audit
//! record in the same transaction. A partial unique index allows one release under way or done per
//! job: a second tap, another phone or another daemon finds it and does not call Graph again.

use time::OffsetDateTime;

use super::audit::{NewAudit, append};
use super::model::AuditEvent;
use super::timestamp::encode;
use super::{RowExt as _, Store, StoreError};

/// A pull-print release as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRelease {
    /// Its id.
    pub id: i64,
    /// The pull printer the job waits on.
    pub pull_printer_id: String,
    /// The job.
    pub job_id: String,
    /// Where it is released (the station's printer).
    pub printer_id: String,
    /// The station.
    pub station_id: String,
    /// Who released it (the job's owner: only the owner's token can).
    pub user_upn: String,
    /// `sending`, `released` or `failed`.
    pub state: String,
    /// When it was asked for.
    pub requested_at: OffsetDateTime,
}

/// What recording a new release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullBegin {
    /// Recorded: go on and call Graph.
    Started(i64),
    /// Another release of the job is under way or done.
    Exists(PullRelease),
}

fn record(row: &sqlx::any::AnyRow) -> Result<PullRelease, StoreError> {
    Ok(PullRelease {
        id: row.int("id")?,
        pull_printer_id: row.text("pull_printer_id")?,
        job_id: row.text("job_id")?,
        printer_id: row.text("printer_id")?,
        station_id: row.text("station_id")?,
        user_upn: row.text("user_upn")?,
        state: row.text("state")?,
        requested_at: row.time("requested_at")?,
    })
}

const COLUMNS: &str =
    "id, pull_printer_id, job_id, printer_id, station_id, user_upn, state, requested_at";

impl Store {
    /// Records a release of `job_id` (waiting on `pull_printer_id`) at `printer_id`, unless one is
    /// under way or done.
    pub async fn pull_release_begin(
        &self,
        pull_printer_id: &str,
        job_id: &str,
        printer_id: &str,
        station_id: &str,
        user_upn: &str,
        now: OffsetDateTime,
    ) -> Result<PullBegin, StoreError> {
        const DOING: &str = "recording a pull-print release";
        let mut tx = self.write(DOING).await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pull_releases WHERE pull_printer_id = $1 AND job_id = $2 \
             AND state IN ('sending', 'released')"
        )))
        .bind(pull_printer_id)
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?;
        if let Some(row) = existing {
            return Ok(PullBegin::Exists(record(&row)?));
        }
        let row = sqlx::query(
            "INSERT INTO pull_releases \
             (pull_printer_id, job_id, printer_id, station_id, user_upn, state, requested_at) \
             VALUES ($1, $2, $3, $4, $5, 'sending', $6) RETURNING id",
        )
        .bind(pull_printer_id)
        .bind(job_id)
        .bind(printer_id)
        .bind(station_id)
        .bind(user_upn)
        .bind(encode(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?;
        let id = row.int("id")?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(PullBegin::Started(id))
    }

    /// Releases recorded before `before` and never settled (their daemon died mid-call).
    pub async fn pull_releases_unsettled(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<PullRelease>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM pull_releases WHERE state = 'sending' AND requested_at < $1 \
             ORDER BY id LIMIT 500"
        )))
        .bind(encode(before))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading unsettled pull-print releases"))?;
        rows.iter().map(record).collect()
    }

    /// Settles release `id` (`released` or `failed`, with why) and audits it, once: a release
    /// already settled is left as it is (`false`).
    pub async fn pull_release_settle(
        &self,
        id: i64,
        released: bool,
        detail: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const DOING: &str = "settling a pull-print release";
        let mut tx = self.write(DOING).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE pull_releases SET state = $2, settled_at = $3, detail = $4 \
             WHERE id = $1 AND state = 'sending' RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(if released { "released" } else { "failed" })
        .bind(encode(now))
        .bind(detail)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?;
        let Some(row) = row else {
            return Ok(false);
        };
        let settled = record(&row)?;
        append(
            &mut tx,
            &NewAudit {
                at: now,
                event: if released {
                    AuditEvent::Released
                } else {
                    AuditEvent::Failed
                },
                station_id: Some(&settled.station_id),
                requested_by: Some(&settled.user_upn),
                user_upn: Some(&settled.user_upn),
                task_id: "",
                printer_id: &settled.pull_printer_id,
                job_id: &settled.job_id,
                destination_printer_id: Some(&settled.printer_id),
                configuration_before: None,
                configuration_after: None,
                detail: Some(detail),
                graph_request_id: None,
            },
        )
        .await?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(true)
    }
}
