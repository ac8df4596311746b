//! The audit log: append-only, written in the same transaction as the change it records.
//!
//! Invariant: rows are only ever inserted, and deleted only by retention ([`Store::prune_audit`]).
//! Queries return newest first; the owner filter is case-insensitive (`user_key`).

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::held_jobs::owner_key;
use super::model::{AuditEvent, AuditFilter, AuditRecord};
use super::timestamp::encode;
use super::{RowExt, Store, StoreError};
use crate::job::TextEnum;

/// One record to append; borrowed from the caller's data.
pub(crate) struct NewAudit<'a> {
    pub(crate) at: OffsetDateTime,
    pub(crate) event: AuditEvent,
    pub(crate) station_id: Option<&'a str>,
    pub(crate) requested_by: Option<&'a str>,
    pub(crate) user_upn: Option<&'a str>,
    pub(crate) task_id: &'a str,
    pub(crate) printer_id: &'a str,
    pub(crate) job_id: &'a str,
    pub(crate) destination_printer_id: Option<&'a str>,
    pub(crate) configuration_before: Option<&'a str>,
    pub(crate) configuration_after: Option<&'a str>,
    pub(crate) detail: Option<&'a str>,
    pub(crate) graph_request_id: Option<&'a str>,
}

/// Appends `record` inside the caller's transaction.
pub(crate) async fn append(tx: &mut super::Tx, record: &NewAudit<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, event, station_id, requested_by, user_upn, user_key, task_id, \
         printer_id, job_id, destination_printer_id, configuration_before, configuration_after, \
         detail, graph_request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(encode(record.at))
    .bind(record.event.as_str())
    .bind(record.station_id)
    .bind(record.requested_by)
    .bind(record.user_upn)
    .bind(record.user_upn.map(owner_key))
    .bind(record.task_id)
    .bind(record.printer_id)
    .bind(record.job_id)
    .bind(record.destination_printer_id)
    .bind(record.configuration_before)
    .bind(record.configuration_after)
    .bind(record.detail)
    .bind(record.graph_request_id)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("appending to the audit log"))?;
    Ok(())
}

impl Store {
    /// Audit records matching `filter`, newest first.
    pub async fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        // Each condition is switched off by a NULL parameter, so one static statement serves every
        // combination of filters.
        let rows = sqlx::query(
            "SELECT id, at, event, station_id, requested_by, user_upn, task_id, printer_id, job_id, \
             destination_printer_id, configuration_before, configuration_after, detail, \
             graph_request_id FROM audit \
             WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) \
             AND ($3 IS NULL OR user_key = $3) AND ($4 IS NULL OR event = $4) \
             AND ($6 IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.since.map(encode))
        .bind(filter.until.map(encode))
        .bind(filter.user.as_deref().map(owner_key))
        .bind(filter.event.map(TextEnum::as_str))
        // No limit is the largest one: SQLite's -1 is refused by PostgreSQL and PostgreSQL's NULL
        // by SQLite.
        .bind(filter.limit.map_or(i64::MAX, i64::from))
        .bind(filter.before_id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading the audit log"))?;
        rows.iter().map(audit_record).collect()
    }

    /// Appends a record about a sign-in at `station_id` (no job is involved: the job columns are
    /// empty), e.g. an Entra ID sign-in refused and why.
    pub async fn audit_sign_in(
        &self,
        at: OffsetDateTime,
        event: AuditEvent,
        station_id: Option<&str>,
        user_upn: Option<&str>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.write("auditing a sign-in").await?;
        append(
            &mut tx,
            &NewAudit {
                at,
                event,
                station_id,
                requested_by: user_upn,
                user_upn,
                task_id: "",
                printer_id: "",
                job_id: "",
                destination_printer_id: None,
                configuration_before: None,
                configuration_after: None,
                detail: Some(detail),
                graph_request_id: None,
            },
        )
        .await?;
        tx.commit()
            .await
            .map_err(StoreError::db("auditing a sign-in"))
    }

    /// Deletes audit records older than `older_than` (retention); returns how many.
    pub async fn prune_audit(&self, older_than: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(encode(older_than))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("pruning the audit log"))?;
        Ok(done.rows_affected())
    }
}

fn audit_record(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.int("id")?,
        at: row.time("at")?,
        event: row.word::<AuditEvent>("event")?,
        station_id: row.opt_text("station_id")?,
        requested_by: row.opt_text("requested_by")?,
        user_upn: row.opt_text("user_upn")?,
        task_id: row.text("task_id")?,
        printer_id: row.text("printer_id")?,
        job_id: row.text("job_id")?,
        destination_printer_id: row.opt_text("destination_printer_id")?,
        configuration_before: row.opt_json("configuration_before")?,
        configuration_after: row.opt_json("configuration_after")?,
        detail: row.opt_text("detail")?,
        graph_request_id: row.opt_text("graph_request_id")?,
    })
}
