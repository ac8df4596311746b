//! Universal Print's native pull printing (Graph v1.0): `pullPrintPrinter`, a virtual printer whose
//! jobs wait in the cloud until their owner releases them at a member printer, and
//! `POST /print/printers/{printerId}/jobs/release`.
//!
//! Microsoft documents release as **delegated only** (least privileged `PrintJob.ReadWriteBasic`;
//! "Application permissions: Not supported"), so [`GraphClient::release_pull_job`] takes the signed-in
//! person's [`DelegatedToken`] and there is no way to call it with the app's token.
//!
//! What the documentation does not say, and what the daemon does about it (see
//! `docs/graph-pull-printing.md`):
//! - how a person's waiting jobs are listed: `GET /print/pullPrintPrinters/{id}/jobs` with the
//!   person's token (the `jobs` of `printerBase`, which `pullPrintPrinter` inherits); a tenant that
//!   answers 400, 403 or 404 to it shows no pull jobs, with a warning, rather than failing the list;
//! - what release answers: any 2xx is success, whatever its body (200 with the job, 202, 204);
//! - whether a release went through after a timeout or a 5xx: the job is read again
//!   ([`GraphClient::get_pull_job`], app token) — still waiting means not released.

use reqwest::Method;
use serde_json::json;

use super::client::{Auth, GraphClient, Request};
use super::device_code::DelegatedToken;
use super::error::GraphError;
use super::model::{PrintJob, PrintJobProcessingState, PrintJobStateDetail, Printer};
use super::retry::Idempotency;

/// A pull printer as the daemon needs it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullPrintPrinter {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub display_name: String,
    /// Every printer of the tenant is a member.
    #[serde(default)]
    pub include_all_printers: bool,
}

/// Whether `job` still waits on its pull printer for release.
pub fn waits_for_release(job: &PrintJob) -> bool {
    let detail = job
        .status
        .details
        .contains(&PrintJobStateDetail::ReleaseWait);
    match job.status.state {
        PrintJobProcessingState::Completed
        | PrintJobProcessingState::Canceled
        | PrintJobProcessingState::Aborted => false,
        PrintJobProcessingState::Paused | PrintJobProcessingState::Pending => true,
        _ => detail,
    }
}

impl GraphClient {
    /// `get_pull_printer` (app token: `PullPrintPrinter.Read.All`).
    pub async fn get_pull_printer(&self, id: &str) -> Result<PullPrintPrinter, GraphError> {
        let url = self.url(&["print", "pullPrintPrinters", id])?;
        self.send_json(Request {
            operation: "get_pull_printer",
            method: Method::GET,
            url,
            body: None,
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `list_pull_printer_members`: the printers a pull printer's jobs may be released at.
    pub async fn list_pull_printer_members(&self, id: &str) -> Result<Vec<Printer>, GraphError> {
        let url = self.url(&["print", "pullPrintPrinters", id, "printers"])?;
        self.list_all("list_pull_printer_members", url, Auth::App)
            .await
    }

    /// `list_pull_jobs`: the signed-in person's jobs on a pull printer (their delegated token).
    pub async fn list_pull_jobs(
        &self,
        person: &DelegatedToken,
        pull_printer_id: &str,
    ) -> Result<Vec<PrintJob>, GraphError> {
        let mut url = self.url(&["print", "pullPrintPrinters", pull_printer_id, "jobs"])?;
        // The document's name is the job's name, as for held jobs.
        url.query_pairs_mut().append_pair("$expand", "documents");
        self.list_all("list_pull_jobs", url, Auth::Delegated(person))
            .await
    }

    /// `get_pull_job` (app token): a job of a pull printer, or `None` when it is gone from there.
    pub async fn get_pull_job(
        &self,
        pull_printer_id: &str,
        job_id: &str,
    ) -> Result<Option<PrintJob>, GraphError> {
        let url = self.url(&[
            "print",
            "pullPrintPrinters",
            pull_printer_id,
            "jobs",
            job_id,
        ])?;
        let read = self
            .send_json(Request {
                operation: "get_pull_job",
                method: Method::GET,
                url,
                body: None,
                idempotency: Idempotency::Repeatable,
                auth: Auth::App,
            })
            .await;
        match read {
            Ok(job) => Ok(Some(job)),
            Err(error) if error.status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `release_pull_job`: prints the person's waiting job `job_id` at `printer_id` (a member of
    /// its pull printer). Delegated only, and not repeated on an uncertain outcome: the caller
    /// settles that by reading the job.
    pub async fn release_pull_job(
        &self,
        person: &DelegatedToken,
        printer_id: &str,
        job_id: &str,
    ) -> Result<(), GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs", "release"])?;
        self.send_no_content(Request {
            operation: "release_pull_job",
            method: Method::POST,
            url,
            body: Some(json!({ "jobId": job_id })),
            idempotency: Idempotency::NotRepeatable,
            auth: Auth::Delegated(person),
        })
        .await
    }
}
