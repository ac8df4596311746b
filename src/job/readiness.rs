//! Whether a printer can print now, read from Graph's `printer.status` (`printerStatus`: `state`, a
//! `printerProcessingState`, and `details`, `printerProcessingStateDetail` members) and
//! `isAcceptingJobs`. The station (before a person's release) and intake (before a rule's release or
//! redirect) read the printer through a short cache and ask here; [`read_within`] bounds that read.
//!
//! Which states and details stop a release is a choice Microsoft leaves to us: a `stopped` printer,
//! one not accepting jobs, and the details that mean no paper can come out (jammed, paused, out of
//! paper or toner, a door open, shut down, unreachable) stop it; warnings (`tonerLow`, `mediaLow`,
//! `…AlmostFull`) and members we do not know (`unknownFutureValue`, new ones) do not: a printer
//! that might print is better than a person sent away for nothing.

use std::future::Future;

use crate::graph::GraphError;
use crate::graph::enums::PrinterProcessingState;
use crate::graph::model::Printer;

/// How old a printer's status may be when a release asks whether it can print: short, so a
/// cleared jam is seen within seconds, and long enough that a queue of people (or a burst of
/// rule-released jobs) at one printer costs one `GET printer`.
pub const STATUS_MAX_AGE: time::Duration = time::Duration::seconds(10);

/// How long a release waits for the printer's status before it goes on without it: a kiosk must
/// stay usable, and intake must keep moving, while Graph is slow or down.
pub const STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `printerProcessingStateDetail` members that mean the printer cannot print, and how a person
/// reads each.
const BLOCKING: &[(&str, &str)] = &[
    ("paused", "it is paused"),
    ("movingToPaused", "it is pausing"),
    ("stopping", "it is stopping"),
    ("shutdown", "it is switched off"),
    ("timedOut", "it is offline (not reachable)"),
    (
        "connectingToDevice",
        "it is offline (connecting to the device)",
    ),
    ("mediaJam", "paper is jammed"),
    ("mediaEmpty", "it is out of paper"),
    ("mediaNeeded", "it needs paper"),
    ("coverOpen", "a cover is open"),
    ("doorOpen", "a door is open"),
    ("interlockOpen", "an interlock is open"),
    ("inputTrayMissing", "an input tray is missing"),
    ("outputTrayMissing", "the output tray is missing"),
    ("outputAreaFull", "the output tray is full"),
    ("markerSupplyEmpty", "it is out of toner or ink"),
    ("tonerEmpty", "it is out of toner"),
    ("developerEmpty", "it is out of developer"),
    ("markerWasteFull", "the waste toner container is full"),
    ("spoolAreaFull", "its spool area is full"),
    ("fuserOverTemp", "the fuser is too hot"),
    ("fuserUnderTemp", "the fuser is warming up"),
    ("opticalPhotoConductorLifeOver", "its drum needs replacing"),
    (
        "interpreterResourceUnavailable",
        "it cannot interpret documents right now",
    ),
];

/// Why a printer cannot print now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// Graph's `state` as written (`stopped`, `idle`, …).
    pub state: String,
    /// The blocking `details` members (Graph's names), in Graph's order; empty when only the state
    /// or `isAcceptingJobs` stops it.
    pub details: Vec<String>,
    /// For people: "paper is jammed, a door is open".
    pub reason: String,
}

/// Why `printer_id` cannot print now, from `read` (a cached `GET printer`), or `None` when it can,
/// and when Graph cannot tell within [`STATUS_WAIT`]: the release then goes ahead, as it did before
/// printers were asked (logged).
pub async fn read_within(
    printer_id: &str,
    read: impl Future<Output = Result<Printer, GraphError>>,
) -> Option<NotReady> {
    match tokio::time::timeout(STATUS_WAIT, read).await {
        Ok(Ok(printer)) => not_ready(&printer),
        Ok(Err(error)) => {
            tracing::warn!(printer_id, %error, "printer status unavailable; releasing without it");
            None
        }
        Err(_) => {
            tracing::warn!(
                printer_id,
                "printer status slow to arrive; releasing without it"
            );
            None
        }
    }
}

/// Why `printer` cannot print now, or `None` when it can (or nothing says it cannot).
pub fn not_ready(printer: &Printer) -> Option<NotReady> {
    let status = printer.status.as_ref();
    let state = status.map_or_else(|| "unknown".to_owned(), |s| s.state.as_str().to_owned());
    let details: Vec<String> = status
        .map(|s| {
            s.details
                .iter()
                .filter(|d| BLOCKING.iter().any(|(member, _)| member == d))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut reasons: Vec<&str> = Vec::new();
    for detail in &details {
        if let Some((_, reason)) = BLOCKING.iter().find(|(member, _)| member == detail)
            && !reasons.contains(reason)
        {
            reasons.push(reason);
        }
    }
    let stopped = status.is_some_and(|s| s.state == PrinterProcessingState::Stopped);
    if reasons.is_empty() && stopped {
        reasons.push("it is stopped");
    }
    if printer.is_accepting_jobs == Some(false) {
        reasons.push("it is not accepting jobs");
    }
    if reasons.is_empty() {
        return None;
    }
    Some(NotReady {
        state,
        details,
        reason: reasons.join(", "),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::model::PrinterStatus;

    fn printer(state: PrinterProcessingState, details: &[&str]) -> Printer {
        serde_json::from_value::<Printer>(serde_json::json!({"id": "p", "displayName": "P"}))
            .map(|mut p| {
                p.status = Some(PrinterStatus {
                    state,
                    description: None,
                    details: details.iter().map(|d| (*d).to_owned()).collect(),
                });
                p
            })
            .unwrap()
    }

    #[test]
    fn a_jam_or_a_pause_stops_a_release_and_says_why() {
        let jammed = not_ready(&printer(PrinterProcessingState::Stopped, &["mediaJam"])).unwrap();
        assert_eq!(jammed.state, "stopped");
        assert_eq!(jammed.details, ["mediaJam"]);
        assert_eq!(jammed.reason, "paper is jammed");
        let paused = not_ready(&printer(
            PrinterProcessingState::Idle,
            &["paused", "tonerLow", "doorOpen"],
        ))
        .unwrap();
        assert_eq!(paused.details, ["paused", "doorOpen"]);
        assert_eq!(paused.reason, "it is paused, a door is open");
    }

    #[test]
    fn a_stopped_printer_without_details_is_not_ready() {
        let stopped = not_ready(&printer(PrinterProcessingState::Stopped, &[])).unwrap();
        assert_eq!(stopped.reason, "it is stopped");
    }

    #[test]
    fn warnings_unknown_members_and_a_missing_status_do_not_stop_a_release() {
        for details in [
            &["tonerLow", "mediaLow"][..],
            &["unknownFutureValue"],
            &["none"],
        ] {
            assert_eq!(
                not_ready(&printer(PrinterProcessingState::Processing, details)),
                None
            );
        }
        let mut no_status = printer(PrinterProcessingState::Idle, &[]);
        no_status.status = None;
        assert_eq!(not_ready(&no_status), None);
        assert_eq!(
            not_ready(&printer(PrinterProcessingState::UnknownFutureValue, &[])),
            None
        );
    }

    #[test]
    fn every_blocking_detail_is_a_member_of_graphs_enumeration() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/graph/print-openapi-v1.0.json"
        );
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let members = &schema["components"]["schemas"]["microsoft.graph.printerProcessingStateDetail"]
            ["enum"];
        let members: Vec<&str> = members
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m.as_str())
            .collect();
        for (member, _) in BLOCKING {
            assert!(members.contains(member), "{member} is not a Graph member");
        }
    }

    #[test]
    fn a_printer_not_accepting_jobs_is_not_ready() {
        let mut closed = printer(PrinterProcessingState::Idle, &[]);
        closed.is_accepting_jobs = Some(false);
        assert_eq!(
            not_ready(&closed).unwrap().reason,
            "it is not accepting jobs"
        );
    }
}
