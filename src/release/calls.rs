//! The bridge from the pure step machine ([`super::steps`]) to the Graph client: send a
//! [`GraphCall`], read a [`Probe`], and classify Graph's errors into the step machine's [`Failure`]s.
//!
//! Invariant: the classification never turns "may have happened" into "did not happen": a timeout, a
//! broken connection after sending, or a success whose body cannot be read is [`Failure::Unknown`],
//! which the step machine settles by reading the job before anything is repeated.

use super::steps::{Failure, GraphCall, JobState, Observation, ObservedJob, TaskState};
use crate::graph::{
    Expand, GraphClient, GraphError, PrintJobProcessingState, PrintTaskProcessingState,
};
use crate::store::Action;

/// Sends `call` for `action`. `abort_reason` overrides the reason of an abort (the hold timeout
/// words it from the configured duration).
pub async fn send(
    graph: &GraphClient,
    action: &Action,
    call: &GraphCall,
    abort_reason: Option<&str>,
) -> Result<(), Failure> {
    let result = match call {
        GraphCall::PatchJob { configuration } => {
            graph
                .update_job_configuration(&action.printer_id, &action.job_id, configuration)
                .await
        }
        GraphCall::CompleteTask => {
            graph
                .update_task_status(
                    &action.definition_id,
                    &action.task_id,
                    &PrintTaskProcessingState::Completed,
                    "Released by pullprintd",
                )
                .await
        }
        GraphCall::Redirect {
            destination_printer_id,
            configuration,
        } => graph
            .redirect_job(
                &action.printer_id,
                &action.job_id,
                destination_printer_id,
                Some(configuration),
            )
            .await
            .map(|_| ()),
        GraphCall::Abort { reason } => {
            graph
                .abort_job(
                    &action.printer_id,
                    &action.job_id,
                    Some(abort_reason.unwrap_or(reason)),
                )
                .await
        }
        GraphCall::AbortTask => {
            graph
                .update_task_status(
                    &action.definition_id,
                    &action.task_id,
                    &PrintTaskProcessingState::Aborted,
                    "Aborted by pullprintd",
                )
                .await
        }
    };
    result.map_err(|error| classify(&error))
}

/// Reads the job with its tasks: what a [`super::steps::Probe`] needs.
pub async fn probe(graph: &GraphClient, action: &Action) -> Result<Observation, Failure> {
    match graph
        .get_job(&action.printer_id, &action.job_id, &[Expand::Tasks])
        .await
    {
        Ok(job) => {
            let task_state = job
                .tasks
                .unwrap_or_default()
                .iter()
                .find(|task| task.id == action.task_id)
                .map(|task| task_state(&task.status.state));
            Ok(Observation::Found(ObservedJob {
                job_state: job_state(&job.status.state),
                task_state,
                redirected_to: job.redirected_to,
            }))
        }
        Err(error) if error.is_not_found() => Ok(Observation::JobNotFound),
        Err(error) => Err(classify(&error)),
    }
}

/// What a Graph error means for the step machine.
pub fn classify(error: &GraphError) -> Failure {
    if let Some(request_id) = error.request_id() {
        tracing::debug!(request_id, %error, "Graph call failed");
    }
    match error {
        GraphError::OutcomeUnknown { .. } | GraphError::InvalidResponse { .. } => {
            Failure::Unknown {
                error: error.to_string(),
            }
        }
        // A request that timed out may have reached Graph; one that never connected did not.
        GraphError::Transport {
            timed_out: true, ..
        } => Failure::Unknown {
            error: error.to_string(),
        },
        GraphError::Api(api) if error.is_transient() => Failure::Transient {
            error: error.to_string(),
            retry_after: api
                .retry_after
                .and_then(|after| time::Duration::try_from(after).ok()),
        },
        // Token trouble (Entra down, a secret that expired) happens before Graph is asked: nothing
        // took effect, and the action must wait for the credential to be fixed rather than fail.
        GraphError::Transport { .. } | GraphError::Token(_) => Failure::Transient {
            error: error.to_string(),
            retry_after: None,
        },
        // A 401 that survived the client's one token refresh (a token that expired again before
        // use, a clock skew, a credential revoked meanwhile): Graph refused the caller, not the
        // request, so nothing took effect; like token trouble, the action waits and tries again.
        GraphError::Api(api) if api.status == 401 => Failure::Transient {
            error: error.to_string(),
            retry_after: None,
        },
        _ => Failure::Permanent {
            reason: error.to_string(),
        },
    }
}

fn task_state(state: &PrintTaskProcessingState) -> TaskState {
    match state {
        PrintTaskProcessingState::Pending => TaskState::Pending,
        PrintTaskProcessingState::Processing => TaskState::Processing,
        PrintTaskProcessingState::Completed => TaskState::Completed,
        PrintTaskProcessingState::Aborted => TaskState::Aborted,
        _ => TaskState::Other,
    }
}

fn job_state(state: &PrintJobProcessingState) -> JobState {
    match state {
        PrintJobProcessingState::Pending => JobState::Pending,
        PrintJobProcessingState::Processing => JobState::Processing,
        PrintJobProcessingState::Paused => JobState::Paused,
        PrintJobProcessingState::Stopped => JobState::Stopped,
        PrintJobProcessingState::Completed => JobState::Completed,
        PrintJobProcessingState::Canceled => JobState::Canceled,
        PrintJobProcessingState::Aborted => JobState::Aborted,
        _ => JobState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ApiError;

    #[test]
    fn a_401_after_the_token_refresh_is_waited_out_not_a_refusal_of_the_action() {
        let error: GraphError = ApiError {
            operation: "update_task_status",
            status: 401,
            code: "InvalidAuthenticationToken".to_owned(),
            message: "Lifetime validation failed, the token is expired.".to_owned(),
            request_id: Some("req-1".to_owned()),
            client_request_id: "cli-1".to_owned(),
            retry_after: None,
            attempts: 2,
        }
        .into();
        assert!(
            matches!(classify(&error), Failure::Transient { .. }),
            "{:?}",
            classify(&error)
        );
    }
}
