//! The store contract, run on both backends (a SQLite file in a temporary directory and a scratch
//! PostgreSQL database): atomicity of the action queue, restart survival, intake dedupe, owner
//! visibility, inbox, subscription, audit. Then the SQLite file's own clear errors and settings.
//!
//! Each contract test is an `async fn(Backend)`; `on_both_backends!` at the end runs it as
//! `store::sqlite::NAME` and `store::postgres::NAME`.
#![allow(clippy::unwrap_used)]

use crate::engine_support::{Backend, TestDatabase, configuration};
use pullprintd::release::steps::Step;
use pullprintd::store::{
    ActionKind, AuditEvent, AuditFilter, DiscoveredVia, EnqueueError, Inserted, JobState,
    MarkedGone, NewAction, NewHeldJob, Outcome, Store, StoreError, Subscription,
};
use secrecy::ExposeSecret;
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-03-02 08:00 UTC);

/// A new store on `backend`, and the database it lives in (removed when dropped); `None` when the
/// backend is not available here (the test then skips, having said why).
async fn fresh(backend: Backend) -> Option<(TestDatabase, Store)> {
    let database = TestDatabase::new(backend).await?;
    let store = database.open().await;
    Some((database, store))
}

fn job(task: &str, owner: &str) -> NewHeldJob {
    NewHeldJob {
        task_id: task.to_owned(),
        definition_id: "def-1".to_owned(),
        printer_id: "printer-a".to_owned(),
        job_id: format!("job-{task}"),
        owner_upn: owner.to_owned(),
        owner_name: Some("Ada Lovelace".to_owned()),
        owner_id: Some("oid-ada".to_owned()),
        name: format!("{task}.pdf"),
        configuration: configuration(json!({"copies": 1, "colorMode": "color"})),
        submitted_at: T0,
        discovered_at: T0 + Duration::seconds(5),
        discovered_via: DiscoveredVia::Poll,
    }
}

fn release(task: &str) -> NewAction {
    NewAction {
        task_id: task.to_owned(),
        kind: ActionKind::Release,
        changes: Some(configuration(json!({"copies": 2, "colorMode": "color"}))),
        destination_printer_id: None,
        station_id: Some("lobby".to_owned()),
        requested_by: "ada@example.org".to_owned(),
        requested_at: T0 + Duration::minutes(10),
    }
}

async fn held(store: &Store, task: &str, owner: &str) {
    assert_eq!(
        store.insert_held_job(&job(task, owner)).await.unwrap(),
        Inserted::New
    );
}

async fn enqueueing_flips_the_job_to_acting_and_hides_it_from_the_station_at_once(
    backend: Backend,
) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "ada@example.org").await;

    let id = store.enqueue(&release("t1")).await.unwrap();

    let job = store.held_job("t1").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Acting);
    assert!(
        store
            .held_jobs_for_owner("ada@example.org")
            .await
            .unwrap()
            .is_empty()
    );
    let actions = store.unfinished_actions().await.unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].id, id);
    assert_eq!(actions[0].step, Step::Queued);
    assert_eq!(actions[0].attempts, 0);
    assert_eq!(actions[0].next_attempt_at, T0 + Duration::minutes(10));
    assert_eq!(actions[0].held_configuration, job.job.configuration);
    assert_eq!(actions[0].printer_id, "printer-a");
    assert_eq!(actions[0].definition_id, "def-1");
}

async fn a_configuration_with_properties_this_version_does_not_know_survives_the_store(
    backend: Backend,
) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let submitted =
        json!({"copies": 1, "colorMode": "sepia", "tonerSaver": true, "binding": {"edge": "left"}});
    let chosen =
        json!({"copies": 2, "colorMode": "sepia", "tonerSaver": true, "binding": {"edge": "left"}});
    let mut new = job("t1", "ada@example.org");
    new.configuration = configuration(submitted.clone());
    assert_eq!(store.insert_held_job(&new).await.unwrap(), Inserted::New);
    let mut asked = release("t1");
    asked.changes = Some(configuration(chosen.clone()));
    store.enqueue(&asked).await.unwrap();

    let held = store.held_job("t1").await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&held.job.configuration).unwrap(),
        submitted
    );
    let action = &store.unfinished_actions().await.unwrap()[0];
    assert_eq!(
        serde_json::to_value(&action.held_configuration).unwrap(),
        submitted
    );
    assert_eq!(
        serde_json::to_value(action.changes.as_ref()).unwrap(),
        chosen
    );
}

async fn a_second_action_on_the_same_job_is_refused_as_not_held(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "ada@example.org").await;
    let id = store.enqueue(&release("t1")).await.unwrap();

    let mut delete = release("t1");
    delete.kind = ActionKind::Delete;
    delete.changes = None;
    let second = store.enqueue(&delete).await;
    assert!(
        matches!(
            second,
            Err(EnqueueError::NotHeld {
                state: JobState::Acting,
                ..
            })
        ),
        "{second:?}"
    );

    store
        .finish(id, Outcome::Released, "printed", T0 + Duration::minutes(11))
        .await
        .unwrap();
    let after_end = store.enqueue(&delete).await;
    assert!(
        matches!(
            after_end,
            Err(EnqueueError::NotHeld {
                state: JobState::Ended,
                ..
            })
        ),
        "{after_end:?}"
    );
    assert_eq!(store.unfinished_actions().await.unwrap(), vec![]);
}

async fn a_batch_queues_every_held_job_in_one_commit_and_refuses_the_others_on_their_own(
    backend: Backend,
) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    for task in ["t1", "t2", "t3"] {
        held(&store, task, "ada@example.org").await;
    }
    let busy = store.enqueue(&release("t2")).await.unwrap();
    let mut redirect_home = release("t3");
    redirect_home.kind = ActionKind::Redirect;
    redirect_home.destination_printer_id = Some("printer-a".to_owned());

    let answers = store
        .enqueue_all(&[
            release("t1"),
            release("t2"),
            release("nope"),
            redirect_home,
            release("t3"),
            release("t1"),
        ])
        .await;

    assert_eq!(answers.len(), 6);
    let first = answers[0].as_ref().copied().expect("t1 is queued");
    assert!(
        matches!(
            &answers[1],
            Err(EnqueueError::NotHeld {
                state: JobState::Acting,
                ..
            })
        ),
        "{:?}",
        answers[1]
    );
    assert!(
        matches!(&answers[2], Err(EnqueueError::UnknownTask { task_id }) if task_id == "nope"),
        "{:?}",
        answers[2]
    );
    assert!(
        matches!(&answers[3], Err(EnqueueError::Invalid(_))),
        "{:?}",
        answers[3]
    );
    let third = answers[4]
        .as_ref()
        .copied()
        .expect("t3 is queued after its refused redirect");
    assert!(
        matches!(
            &answers[5],
            Err(EnqueueError::NotHeld {
                state: JobState::Acting,
                ..
            })
        ),
        "the same job twice in one batch is queued once: {:?}",
        answers[5]
    );
    let mut unfinished: Vec<_> = store
        .unfinished_actions()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.task_id))
        .collect();
    unfinished.sort();
    assert_eq!(
        unfinished,
        vec![
            (busy, "t2".to_owned()),
            (first, "t1".to_owned()),
            (third, "t3".to_owned())
        ]
    );
    for task in ["t1", "t3"] {
        assert_eq!(
            store.held_job(task).await.unwrap().unwrap().state,
            JobState::Acting
        );
    }
}

async fn a_batch_larger_than_one_statement_queues_every_job_once(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    // One more than a statement's slice of the batch.
    let tasks: Vec<String> = (0..501).map(|n| format!("t{n}")).collect();
    for task in &tasks {
        held(&store, task, "ada@example.org").await;
    }
    let batch: Vec<NewAction> = tasks.iter().map(|task| release(task)).collect();

    let answers = store.enqueue_all(&batch).await;

    let ids: Vec<_> = answers.into_iter().map(|answer| answer.unwrap()).collect();
    let unfinished = store.unfinished_actions().await.unwrap();
    assert_eq!(unfinished.len(), 501);
    for (task, id) in tasks.iter().zip(&ids) {
        let action = unfinished.iter().find(|a| a.id == *id).unwrap();
        assert_eq!(
            &action.task_id, task,
            "each answer names its own job's action"
        );
        assert_eq!(action.step, Step::Queued);
    }
}

async fn an_unknown_task_is_refused_distinctly_from_a_busy_one(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let result = store.enqueue(&release("nope")).await;
    assert!(
        matches!(result, Err(EnqueueError::UnknownTask { ref task_id }) if task_id == "nope"),
        "{result:?}"
    );
}

async fn a_redirect_needs_a_destination_other_than_the_jobs_own_printer(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "ada@example.org").await;
    let mut redirect = release("t1");
    redirect.kind = ActionKind::Redirect;
    assert!(matches!(
        store.enqueue(&redirect).await,
        Err(EnqueueError::Invalid(_))
    ));
    redirect.destination_printer_id = Some("printer-a".to_owned());
    assert!(matches!(
        store.enqueue(&redirect).await,
        Err(EnqueueError::Invalid(_))
    ));
    // Refusals leave the job held.
    assert_eq!(
        store.held_job("t1").await.unwrap().unwrap().state,
        JobState::Held
    );
    redirect.destination_printer_id = Some("printer-lobby".to_owned());
    store.enqueue(&redirect).await.unwrap();
}

async fn the_database_itself_refuses_a_second_unfinished_action_for_a_task(backend: Backend) {
    let Some((database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "ada@example.org").await;
    store.enqueue(&release("t1")).await.unwrap();

    // Bypass the store's state check, as a buggy caller might.
    let raw = database.raw().await;
    let second = sqlx::query(
        "INSERT INTO actions (task_id, kind, requested_by, requested_at, step, next_attempt_at) \
         VALUES ('t1', 'delete', 'admin', '2026-03-02T09:00:00.000000000Z', 'queued', \
         '2026-03-02T09:00:00.000000000Z')",
    )
    .execute(&raw)
    .await;
    let err = second.expect_err("the partial unique index refuses it");
    assert!(
        err.as_database_error()
            .is_some_and(sqlx::error::DatabaseError::is_unique_violation),
        "{err}"
    );
    raw.close().await;
}

async fn finishing_ends_the_job_and_appends_the_audit_record_once(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "Ada@Example.org").await;
    let id = store.enqueue(&release("t1")).await.unwrap();
    store
        .record_step(id, Step::PatchJobDone, Some("req-patch"))
        .await
        .unwrap();
    let at = T0 + Duration::minutes(11);
    assert_eq!(
        store.count_held_jobs().await.unwrap(),
        1,
        "acting still counts"
    );

    let closed = store
        .finish(id, Outcome::Released, "released: printed", at)
        .await
        .unwrap();
    assert_eq!(
        closed.submitted_at,
        store
            .held_job("t1")
            .await
            .unwrap()
            .unwrap()
            .job
            .submitted_at
    );
    assert_eq!(
        store.count_held_jobs().await.unwrap(),
        0,
        "ended jobs do not"
    );

    let job = store.held_job("t1").await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Ended);
    assert_eq!(job.outcome, Some(Outcome::Released));
    assert_eq!(job.ended_at, Some(at));
    assert_eq!(
        store.action_outcome(id).await.unwrap(),
        Some((Outcome::Released, Some("released: printed".to_owned())))
    );
    let audit = store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Released),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    let record = &audit[0];
    assert_eq!(record.at, at);
    assert_eq!(record.station_id.as_deref(), Some("lobby"));
    assert_eq!(record.requested_by.as_deref(), Some("ada@example.org"));
    assert_eq!(record.user_upn.as_deref(), Some("Ada@Example.org"));
    assert_eq!(record.job_id, "job-t1");
    assert_eq!(
        record.configuration_before,
        Some(configuration(json!({"copies": 1, "colorMode": "color"})))
    );
    assert_eq!(
        record.configuration_after,
        Some(configuration(json!({"copies": 2, "colorMode": "color"})))
    );
    assert_eq!(record.graph_request_id.as_deref(), Some("req-patch"));

    // Exactly once: a second finish, or any change after it, is refused and writes nothing.
    let again = store.finish(id, Outcome::Failed, "late", at).await;
    assert!(
        matches!(again, Err(StoreError::ActionNotPending(a)) if a == id),
        "{again:?}"
    );
    assert!(matches!(
        store.record_step(id, Step::CompleteTaskSending, None).await,
        Err(StoreError::ActionNotPending(_))
    ));
    assert!(matches!(
        store.reschedule(id, at, "late").await,
        Err(StoreError::ActionNotPending(_))
    ));
    let all = store.audit_query(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.event).collect::<Vec<_>>(),
        vec![AuditEvent::Released, AuditEvent::Held]
    );
}

async fn a_restart_finds_unfinished_actions_at_their_recorded_step(backend: Backend) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let id = {
        let store = database.open().await;
        held(&store, "t1", "ada@example.org").await;
        let mut redirect = release("t1");
        redirect.kind = ActionKind::Redirect;
        redirect.destination_printer_id = Some("printer-lobby".to_owned());
        let id = store.enqueue(&redirect).await.unwrap();
        store
            .record_step(id, Step::RedirectSending, None)
            .await
            .unwrap();
        store
            .reschedule(id, T0 + Duration::minutes(12), "timed out after 30 s")
            .await
            .unwrap();
        // No orderly close: the store is simply dropped, as a killed process would leave it.
        drop(store);
        id
    };

    let store = database.open().await;
    let actions = store.unfinished_actions().await.unwrap();
    assert_eq!(actions.len(), 1);
    let action = &actions[0];
    assert_eq!(action.id, id);
    assert_eq!(action.kind, ActionKind::Redirect);
    assert_eq!(action.step, Step::RedirectSending);
    assert_eq!(action.attempts, 1);
    assert_eq!(action.last_error.as_deref(), Some("timed out after 30 s"));
    assert_eq!(action.next_attempt_at, T0 + Duration::minutes(12));
    assert_eq!(
        action.destination_printer_id.as_deref(),
        Some("printer-lobby")
    );
    assert_eq!(
        store.held_job("t1").await.unwrap().unwrap().state,
        JobState::Acting
    );
}

async fn due_actions_wait_for_their_next_attempt_time_and_come_earliest_first(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    for task in ["t1", "t2", "t3"] {
        held(&store, task, "ada@example.org").await;
    }
    let first = store.enqueue(&release("t1")).await.unwrap();
    let second = store.enqueue(&release("t2")).await.unwrap();
    let third = store.enqueue(&release("t3")).await.unwrap();
    store
        .reschedule(first, T0 + Duration::hours(1), "503")
        .await
        .unwrap();

    let now = T0 + Duration::minutes(10);
    let due: Vec<_> = store
        .due_actions(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(due, vec![second, third]);
    assert_eq!(store.due_actions(now, 1).await.unwrap().len(), 1);
    let later: Vec<_> = store
        .due_actions(T0 + Duration::hours(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(later, vec![second, third, first]);
}

async fn claiming_takes_due_actions_earliest_first_or_every_one_at_start(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    for task in ["t1", "t2", "t3"] {
        held(&store, task, "ada@example.org").await;
    }
    let first = store.enqueue(&release("t1")).await.unwrap();
    let second = store.enqueue(&release("t2")).await.unwrap();
    let third = store.enqueue(&release("t3")).await.unwrap();
    store
        .reschedule(first, T0 + Duration::hours(1), "503")
        .await
        .unwrap();
    let now = T0 + Duration::minutes(10);
    let lease = Duration::seconds(30);
    let ids = |actions: Vec<pullprintd::store::Action>| -> Vec<_> {
        actions.into_iter().map(|a| a.id).collect()
    };

    let due = store.claim_actions(now, lease, 10, false).await.unwrap();
    assert_eq!(ids(due), vec![second, third]);
    // The actions a daemon drives now are left out of its next claim, not read again.
    let besides = store
        .claim_actions_except(now, lease, 10, true, &[second])
        .await
        .unwrap();
    assert_eq!(ids(besides), vec![third, first]);
    // A daemon's own claims are renewed, not refused; a start takes every one, due or not.
    let all = store.claim_actions(now, lease, 10, true).await.unwrap();
    assert_eq!(ids(all), vec![second, third, first]);
    let action = store.action(first).await.unwrap().unwrap();
    assert_eq!(action.attempts, 1);
    assert!(store.renew_lease(first, now + lease).await.unwrap());
    store
        .finish(first, Outcome::Released, "printed", now)
        .await
        .unwrap();
    assert!(!store.renew_lease(first, now + lease).await.unwrap());
}

async fn writes_of_many_actions_at_once_each_land_exactly_as_alone(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let tasks: Vec<String> = (0..40).map(|n| format!("t{n}")).collect();
    let mut ids = Vec::new();
    for task in &tasks {
        held(&store, task, "ada@example.org").await;
        ids.push(store.enqueue(&release(task)).await.unwrap());
    }
    let outcomes = [Outcome::Released, Outcome::Deleted, Outcome::Failed];
    let at = T0 + Duration::minutes(11);
    let finish = |n: usize| {
        let store = store.clone();
        let id = ids[n];
        async move {
            store
                .finish(id, outcomes[n % 3], &format!("detail of {id}"), at)
                .await
        }
    };
    // First, writes that all succeed: half record an intent, a quarter finish, all at once, so
    // that they share commits where the store groups them.
    let steps = ids[..20].iter().map(|id| {
        let store = store.clone();
        let id = *id;
        async move { store.record_step(id, Step::CompleteTaskSending, None).await }
    });
    let (stepped, finished) = tokio::join!(
        futures::future::join_all(steps),
        futures::future::join_all((20..30).map(finish))
    );
    assert!(stepped.iter().all(Result::is_ok), "{stepped:?}");
    assert!(finished.iter().all(Result::is_ok), "{finished:?}");
    for id in &ids[..20] {
        let action = store.action(*id).await.unwrap().unwrap();
        assert_eq!(action.step, Step::CompleteTaskSending);
    }
    // Then a group where one finish is sent twice and a step goes to an action that is finishing.
    let late_step = {
        let store = store.clone();
        let id = ids[38];
        async move {
            tokio::task::yield_now().await;
            store.record_step(id, Step::CompleteTaskSending, None).await
        }
    };
    let (finished, late) = tokio::join!(
        futures::future::join_all((30..40).chain([39]).map(finish)),
        late_step
    );
    // The finish sent twice ends its action once; the other is told it is no longer pending.
    let twice = [&finished[9], &finished[10]];
    assert_eq!(twice.iter().filter(|r| r.is_ok()).count(), 1, "{twice:?}");
    assert!(
        twice
            .iter()
            .any(|r| matches!(r, Err(StoreError::ActionNotPending(_))))
    );
    assert!(finished[..9].iter().all(Result::is_ok), "{finished:?}");
    // A step for an action that may have finished meanwhile is written only if it had not.
    if late.is_err() {
        assert!(matches!(late, Err(StoreError::ActionNotPending(_))));
    }
    let audit = store.audit_query(&AuditFilter::default()).await.unwrap();
    for (n, (task, id)) in tasks.iter().zip(&ids).enumerate().skip(20) {
        let outcome = outcomes[n % 3];
        let job = store.held_job(task).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Ended, "{task}");
        assert_eq!(job.outcome, Some(outcome), "{task}");
        assert_eq!(
            store.action_outcome(*id).await.unwrap(),
            Some((outcome, Some(format!("detail of {id}"))))
        );
        let records: Vec<_> = audit
            .iter()
            .filter(|r| &r.task_id == task && r.event != AuditEvent::Held)
            .collect();
        assert_eq!(records.len(), 1, "{task}: {records:?}");
        assert_eq!(records[0].event, AuditEvent::from(outcome));
        assert_eq!(records[0].at, at);
        assert_eq!(records[0].requested_by.as_deref(), Some("ada@example.org"));
        assert_eq!(records[0].user_upn.as_deref(), Some("ada@example.org"));
        assert_eq!(records[0].detail, Some(format!("detail of {id}")));
        assert_eq!(records[0].station_id.as_deref(), Some("lobby"));
        assert_eq!(
            records[0].configuration_before,
            Some(configuration(json!({"copies": 1, "colorMode": "color"})))
        );
        assert_eq!(
            records[0].configuration_after,
            Some(configuration(json!({"copies": 2, "colorMode": "color"})))
        );
    }
    // The actions that only stepped are still under way, their jobs acting.
    for task in &tasks[..20] {
        let job = store.held_job(task).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Acting);
    }
}

async fn a_persons_held_jobs_come_with_their_hold_rules_terms_in_one_read(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let terms = json!({"force": {"colorMode": "grayscale"}});
    store
        .insert_held_job_then(&job("t1", "ada@example.org"), None, None, Some(&terms))
        .await
        .unwrap();
    held(&store, "t2", "Ada@Example.org").await;
    held(&store, "t3", "grace@example.org").await;
    let listed = store
        .held_jobs_and_terms_for_owner("ada@example.org")
        .await
        .unwrap();
    let listed: Vec<_> = listed
        .into_iter()
        .map(|(job, terms)| (job.job.task_id, terms))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("t1".to_owned(), Some(terms.clone())),
            ("t2".to_owned(), None)
        ]
    );
    assert_eq!(store.held_job_terms("t1").await.unwrap(), Some(terms));
}

async fn a_task_seen_twice_is_stored_once_and_needs_no_second_lookup(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    assert!(!store.task_known("t1").await.unwrap());
    let lease = Duration::minutes(2);

    assert!(
        store
            .claim_discovery("t1", DiscoveredVia::Webhook, T0, lease)
            .await
            .unwrap()
    );
    // The poll sees the same task while the webhook path looks it up.
    assert!(
        !store
            .claim_discovery("t1", DiscoveredVia::Poll, T0 + Duration::seconds(30), lease)
            .await
            .unwrap()
    );
    held(&store, "t1", "ada@example.org").await;
    assert!(store.task_known("t1").await.unwrap());
    assert!(
        !store
            .claim_discovery("t1", DiscoveredVia::Poll, T0 + Duration::hours(1), lease)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .insert_held_job(&job("t1", "ada@example.org"))
            .await
            .unwrap(),
        Inserted::AlreadyKnown
    );
    // Another task id for the same printer job is the same job.
    let mut same_job = job("t1-dup", "ada@example.org");
    same_job.job_id = "job-t1".to_owned();
    assert_eq!(
        store.insert_held_job(&same_job).await.unwrap(),
        Inserted::AlreadyKnown
    );
    let held_events = store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Held),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(held_events.len(), 1);
}

async fn a_lapsed_or_released_lookup_claim_can_be_taken_again(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let lease = Duration::minutes(2);
    assert!(
        store
            .claim_discovery("t1", DiscoveredVia::Webhook, T0, lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_discovery("t1", DiscoveredVia::Poll, T0 + lease, lease)
            .await
            .unwrap(),
        "the first claim lapsed"
    );
    store.release_claim("t1").await.unwrap();
    assert!(
        store
            .claim_discovery("t1", DiscoveredVia::Poll, T0 + lease, lease)
            .await
            .unwrap(),
        "a released claim is free at once"
    );
}

async fn owners_see_only_their_held_jobs_whatever_the_case_of_their_upn(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "Ada@Example.org").await;
    held(&store, "t2", "ada@example.org").await;
    held(&store, "t3", "grace@example.org").await;
    held(&store, "t4", "ADA@EXAMPLE.ORG").await;
    store.enqueue(&release("t4")).await.unwrap();

    let tasks: Vec<_> = store
        .held_jobs_for_owner("aDa@eXample.ORG")
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job.task_id)
        .collect();
    assert_eq!(tasks, vec!["t1", "t2"]);
    assert_eq!(store.all_held_jobs().await.unwrap().len(), 4);
}

async fn the_sweeper_sees_only_held_jobs_submitted_before_the_cut_off(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "old", "ada@example.org").await;
    let mut young = job("young", "ada@example.org");
    young.submitted_at = T0 + Duration::hours(3);
    store.insert_held_job(&young).await.unwrap();
    held(&store, "busy", "ada@example.org").await;
    store.enqueue(&release("busy")).await.unwrap();

    let expired: Vec<_> = store
        .held_jobs_older_than(T0 + Duration::hours(1))
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job.task_id)
        .collect();
    assert_eq!(expired, vec!["old"]);
}

async fn a_job_that_left_processing_elsewhere_ends_as_gone_unless_an_action_owns_it(
    backend: Backend,
) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    held(&store, "t1", "ada@example.org").await;
    held(&store, "t2", "ada@example.org").await;
    store.enqueue(&release("t2")).await.unwrap();
    let at = T0 + Duration::hours(1);

    assert_eq!(
        store
            .mark_gone("t1", at, "task completed elsewhere")
            .await
            .unwrap(),
        MarkedGone::Ended
    );
    assert_eq!(
        store.mark_gone("t2", at, "task completed").await.unwrap(),
        MarkedGone::NotHeld
    );
    assert_eq!(
        store.mark_gone("t1", at, "again").await.unwrap(),
        MarkedGone::NotHeld
    );
    assert_eq!(
        store.mark_gone("unknown", at, "x").await.unwrap(),
        MarkedGone::NotHeld
    );

    let t1 = store.held_job("t1").await.unwrap().unwrap();
    assert_eq!(
        (t1.state, t1.outcome),
        (JobState::Ended, Some(Outcome::Gone))
    );
    assert_eq!(
        store.held_job("t2").await.unwrap().unwrap().state,
        JobState::Acting
    );
    let gone = store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Gone),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].detail.as_deref(), Some("task completed elsewhere"));
}

async fn the_inbox_keeps_a_batch_until_each_item_is_done(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    let ids = store
        .inbox_push(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#], T0)
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);

    let pending = store.inbox_pending(2).await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|i| i.payload.as_str())
            .collect::<Vec<_>>(),
        vec![r#"{"n":1}"#, r#"{"n":2}"#]
    );
    assert_eq!(pending[0].received_at, T0);

    store
        .inbox_done(&[ids[0], ids[2]], T0 + Duration::seconds(1))
        .await
        .unwrap();
    let left: Vec<_> = store
        .inbox_pending(10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(left, vec![ids[1]]);
    assert_eq!(
        store.inbox_prune(T0 + Duration::minutes(1)).await.unwrap(),
        2
    );
}

async fn the_client_state_is_generated_once_and_survives_restarts_and_resubscription(
    backend: Backend,
) {
    let Some(database) = TestDatabase::new(backend).await else {
        return;
    };
    let first = {
        let store = database.open().await;
        let state = store
            .client_state_or_create(|| "secret-one".to_owned())
            .await
            .unwrap();
        store
            .save_subscription(&Subscription {
                id: "sub-1".to_owned(),
                resource: "print/printers/printer-a/jobs".to_owned(),
                notification_url: "https://print.example.org/graph/notifications".to_owned(),
                expires_at: T0 + Duration::days(2),
                created_at: T0,
            })
            .await
            .unwrap();
        store.close().await;
        state.expose_secret().to_owned()
    };
    assert_eq!(first, "secret-one");

    let store = database.open().await;
    let again = store
        .client_state_or_create(|| panic!("must not generate a second clientState"))
        .await
        .unwrap();
    assert_eq!(again.expose_secret(), "secret-one");
    let subscription = store.subscription().await.unwrap().unwrap();
    assert_eq!(subscription.id, "sub-1");
    assert_eq!(subscription.expires_at, T0 + Duration::days(2));

    store.delete_subscription().await.unwrap();
    assert_eq!(store.subscription().await.unwrap(), None);
    let kept = store
        .client_state_or_create(|| "secret-two".to_owned())
        .await
        .unwrap();
    assert_eq!(kept.expose_secret(), "secret-one");
}

async fn a_subscription_saved_before_any_client_state_still_gets_one_later(backend: Backend) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    assert_eq!(store.subscription().await.unwrap(), None);
    store
        .save_subscription(&Subscription {
            id: "sub-1".to_owned(),
            resource: "r".to_owned(),
            notification_url: "https://x".to_owned(),
            expires_at: T0,
            created_at: T0,
        })
        .await
        .unwrap();
    let state = store
        .client_state_or_create(|| "generated".to_owned())
        .await
        .unwrap();
    assert_eq!(state.expose_secret(), "generated");
    assert_eq!(store.subscription().await.unwrap().unwrap().id, "sub-1");
}

async fn audit_queries_filter_by_time_user_and_event_and_pruning_drops_old_records(
    backend: Backend,
) {
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    // Held events at T0 + 5 s for each job (discovered_at).
    held(&store, "t1", "ada@example.org").await;
    held(&store, "t2", "grace@example.org").await;
    let id = store.enqueue(&release("t1")).await.unwrap();
    store
        .finish(id, Outcome::Released, "printed", T0 + Duration::hours(2))
        .await
        .unwrap();

    let ada = store
        .audit_query(&AuditFilter {
            user: Some("ADA@example.org".to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ada.iter().map(|r| r.event).collect::<Vec<_>>(),
        vec![AuditEvent::Released, AuditEvent::Held]
    );

    let window = store
        .audit_query(&AuditFilter {
            since: Some(T0),
            until: Some(T0 + Duration::hours(1)),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 2);
    assert!(window.iter().all(|r| r.event == AuditEvent::Held));

    let newest = store
        .audit_query(&AuditFilter {
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].event, AuditEvent::Released);

    assert_eq!(store.prune_audit(T0 + Duration::hours(1)).await.unwrap(), 2);
    let left = store.audit_query(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        left.iter().map(|r| r.event).collect::<Vec<_>>(),
        vec![AuditEvent::Released]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_pressing_print_all_at_once_does_not_hold_back_the_releases_under_way() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).await.unwrap();
    held(&store, "under-way", "grace@example.org").await;
    let under_way = store.enqueue(&release("under-way")).await.unwrap();
    let people: Vec<Vec<NewAction>> = (0..24)
        .map(|person| {
            (0..40)
                .map(|n| {
                    let mut action = release(&format!("p{person}-{n}"));
                    action.requested_by = format!("p{person}@example.org");
                    action
                })
                .collect()
        })
        .collect();
    for (person, actions) in people.iter().enumerate() {
        for action in actions {
            held(&store, &action.task_id, &format!("p{person}@example.org")).await;
        }
    }
    let order = std::sync::Mutex::new(Vec::new());
    let crowd = people.iter().map(|actions| async {
        let answers = store.enqueue_all(actions).await;
        assert!(answers.iter().all(Result::is_ok));
        order.lock().unwrap().push("print all");
    });
    // The release under way writes its intent while every "print all" is waiting to be queued.
    let step = async {
        tokio::task::yield_now().await;
        store
            .record_step(under_way, Step::CompleteTaskSending, None)
            .await
            .unwrap();
        order.lock().unwrap().push("intent");
    };
    tokio::join!(futures::future::join_all(crowd), step);
    let order = order.into_inner().unwrap();
    let position = order.iter().position(|o| *o == "intent").unwrap();
    assert!(
        position <= 6,
        "the intent waited for {position} of {} print-alls",
        order.len() - 1
    );
}

#[tokio::test]
async fn a_store_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("state.db");
    let err = Store::open(&path).await.expect_err("the parent is missing");
    let message = err.to_string();
    assert!(message.contains("cannot create the store at"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("[store] path"), "{message}");
}

/// Makes `path` unwritable even for root (tests may run as root, which ignores file modes), and
/// undoes it on drop so the temporary directory can be removed.
struct ReadOnly {
    path: std::path::PathBuf,
    immutable: bool,
}

impl ReadOnly {
    /// `None` when this machine offers no way to make the file read-only for this user.
    fn make(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let mut guard = Self {
            path: path.to_owned(),
            immutable: false,
        };
        if std::fs::OpenOptions::new().write(true).open(path).is_err() {
            return Some(guard);
        }
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status();
        guard.immutable = matches!(status, Ok(s) if s.success());
        let writable = std::fs::OpenOptions::new().write(true).open(path).is_ok();
        (!writable).then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.path)
                .status();
        }
    }
}

#[tokio::test]
async fn a_read_only_store_file_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).await.unwrap();
    held(&store, "t1", "ada@example.org").await;
    store.close().await;
    let file = dir.path().join(pullprintd::store::DEFAULT_FILE_NAME);
    let Some(_read_only) = ReadOnly::make(&file) else {
        eprintln!("skipped: this machine cannot make a file read-only for the test's user");
        return;
    };

    // Either opening or the first write must fail, and say what to fix.
    let message = match Store::open_in(dir.path()).await {
        Err(err) => err.to_string(),
        Ok(store) => {
            let err = store
                .insert_held_job(&job("t2", "ada@example.org"))
                .await
                .expect_err("writing a read-only store fails");
            store.close().await;
            err.to_string()
        }
    };
    eprintln!("{message}");
    assert!(message.contains("read-only"), "{message}");
}

#[tokio::test]
async fn the_store_file_is_in_wal_mode_so_station_reads_never_wait_for_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).await.unwrap();
    store.close().await;
    let url = format!(
        "sqlite://{}",
        dir.path()
            .join(pullprintd::store::DEFAULT_FILE_NAME)
            .display()
    );
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    raw.close().await;
}

async fn held_jobs_come_in_pages_by_cursor_in_order_of_submission_then_task(backend: Backend) {
    use pullprintd::store::JobCursor;
    let Some((_database, store)) = fresh(backend).await else {
        return;
    };
    // Submitted in pairs at one time, inserted out of order.
    for n in [4, 0, 3, 1, 5, 2, 6] {
        let mut one = job(&format!("t{n}"), "ada@example.org");
        one.job_id = format!("job-t{n}");
        one.submitted_at = T0 + Duration::seconds(n / 2);
        assert_eq!(store.insert_held_job(&one).await.unwrap(), Inserted::New);
    }
    let mut listed = Vec::new();
    let mut after: Option<JobCursor> = None;
    loop {
        let page = store.held_jobs_page(after.as_ref(), 3).await.unwrap();
        let Some(last) = page.last() else {
            break;
        };
        // Through its token, as the admin listing passes it.
        after = Some(JobCursor::parse(&JobCursor::after(last).token()).unwrap());
        listed.extend(page.into_iter().map(|held| held.job.task_id));
    }
    assert_eq!(listed, ["t0", "t1", "t2", "t3", "t4", "t5", "t6"]);
    store.enqueue(&release("t5")).await.unwrap();
    let all = store.held_jobs_page(None, 100).await.unwrap();
    assert_eq!(all.len(), 7, "an acting job is listed until it ends");
    assert!(JobCursor::parse("not a cursor").is_none());
}

async fn a_kiosk_code_is_used_once_however_many_daemons_race_for_it(backend: Backend) {
    use pullprintd::store::CodeUse;
    let Some((database, one)) = fresh(backend).await else {
        return;
    };
    let two = database.open().await;
    one.phone_code_issue("code-1", "lobby", T0 + Duration::seconds(60), T0)
        .await
        .unwrap();
    let uses: Vec<_> = (0..20)
        .map(|n| {
            let store = if n % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move {
                store
                    .phone_code_use("code-1", T0 + Duration::seconds(5))
                    .await
            })
        })
        .collect();
    let mut valid = 0;
    for used in uses {
        match used.await.unwrap().unwrap() {
            CodeUse::Valid { station_id } => {
                assert_eq!(station_id, "lobby");
                valid += 1;
            }
            CodeUse::Used => {}
            other => panic!("a raced code is valid or used, not {other:?}"),
        }
    }
    assert_eq!(valid, 1, "one sign-in per code");
    one.phone_code_issue("code-2", "lobby", T0 + Duration::seconds(60), T0)
        .await
        .unwrap();
    assert_eq!(
        two.phone_code_use("code-2", T0 + Duration::seconds(60))
            .await
            .unwrap(),
        CodeUse::Expired
    );
    assert_eq!(
        two.phone_code_use("never-shown", T0).await.unwrap(),
        CodeUse::Unknown
    );
}

async fn a_sign_in_under_way_is_taken_by_one_callback_at_any_daemon(backend: Backend) {
    use pullprintd::store::PendingLogin;
    let Some((database, one)) = fresh(backend).await else {
        return;
    };
    let two = database.open().await;
    let login = PendingLogin {
        station_id: "lobby".to_owned(),
        browser: "browser-digest".to_owned(),
        nonce: "nonce".to_owned(),
        verifier: "verifier".to_owned(),
        at_kiosk: false,
        expires_at: T0 + Duration::minutes(10),
    };
    one.phone_login_begin("state-1", &login, T0).await.unwrap();
    let (a, b) = tokio::join!(
        one.phone_login_take("state-1"),
        two.phone_login_take("state-1")
    );
    let taken: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![login], "taken once, by one daemon");
}

async fn a_pull_print_job_has_one_release_under_way_or_done_and_it_settles_once_with_its_audit(
    backend: Backend,
) {
    use pullprintd::store::PullBegin;
    let Some((database, one)) = fresh(backend).await else {
        return;
    };
    let two = database.open().await;
    let begin = |store: Store| async move {
        store
            .pull_release_begin(
                "pull-1",
                "job-1",
                "printer-a",
                "lobby",
                "ada@example.org",
                T0,
            )
            .await
            .unwrap()
    };
    let (a, b) = tokio::join!(begin(one.clone()), begin(two.clone()));
    let started: Vec<i64> = [&a, &b]
        .iter()
        .filter_map(|b| match b {
            PullBegin::Started(id) => Some(*id),
            PullBegin::Exists(_) => None,
        })
        .collect();
    assert_eq!(started.len(), 1, "one release under way: {a:?} {b:?}");
    let id = started[0];
    // A refusal frees the job for another try; a release then settles once.
    assert!(
        one.pull_release_settle(id, false, "refused", T0)
            .await
            .unwrap()
    );
    let PullBegin::Started(again) = begin(two.clone()).await else {
        panic!("a failed release does not block the next one");
    };
    assert!(
        two.pull_release_settle(again, true, "released", T0)
            .await
            .unwrap()
    );
    assert!(
        !one.pull_release_settle(again, true, "released", T0)
            .await
            .unwrap()
    );
    assert!(matches!(begin(one.clone()).await, PullBegin::Exists(r) if r.state == "released"));
    let audit = one.audit_query(&AuditFilter::default()).await.unwrap();
    let events: Vec<AuditEvent> = audit.iter().map(|r| r.event).collect();
    assert_eq!(events, vec![AuditEvent::Released, AuditEvent::Failed]);
    assert_eq!(
        audit[0].destination_printer_id.as_deref(),
        Some("printer-a")
    );
    assert_eq!(audit[0].job_id, "job-1");
}

crate::on_both_backends!(
    claiming_takes_due_actions_earliest_first_or_every_one_at_start,
    writes_of_many_actions_at_once_each_land_exactly_as_alone,
    a_persons_held_jobs_come_with_their_hold_rules_terms_in_one_read,
    enqueueing_flips_the_job_to_acting_and_hides_it_from_the_station_at_once,
    a_configuration_with_properties_this_version_does_not_know_survives_the_store,
    a_second_action_on_the_same_job_is_refused_as_not_held,
    a_batch_queues_every_held_job_in_one_commit_and_refuses_the_others_on_their_own,
    a_batch_larger_than_one_statement_queues_every_job_once,
    an_unknown_task_is_refused_distinctly_from_a_busy_one,
    a_redirect_needs_a_destination_other_than_the_jobs_own_printer,
    the_database_itself_refuses_a_second_unfinished_action_for_a_task,
    finishing_ends_the_job_and_appends_the_audit_record_once,
    due_actions_wait_for_their_next_attempt_time_and_come_earliest_first,
    a_task_seen_twice_is_stored_once_and_needs_no_second_lookup,
    a_lapsed_or_released_lookup_claim_can_be_taken_again,
    owners_see_only_their_held_jobs_whatever_the_case_of_their_upn,
    the_sweeper_sees_only_held_jobs_submitted_before_the_cut_off,
    a_job_that_left_processing_elsewhere_ends_as_gone_unless_an_action_owns_it,
    the_inbox_keeps_a_batch_until_each_item_is_done,
    a_subscription_saved_before_any_client_state_still_gets_one_later,
    audit_queries_filter_by_time_user_and_event_and_pruning_drops_old_records,
    a_restart_finds_unfinished_actions_at_their_recorded_step,
    the_client_state_is_generated_once_and_survives_restarts_and_resubscription,
    held_jobs_come_in_pages_by_cursor_in_order_of_submission_then_task,
    a_kiosk_code_is_used_once_however_many_daemons_race_for_it,
    a_sign_in_under_way_is_taken_by_one_callback_at_any_daemon,
    a_pull_print_job_has_one_release_under_way_or_done_and_it_settles_once_with_its_audit,
);

#[tokio::test]
async fn a_second_daemon_takes_over_an_action_only_after_the_first_ones_lease_lapses_and_the_late_one_is_fenced_off()
 {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let (one, two) = (database.open().await, database.open().await);
    assert_ne!(one.instance(), two.instance());
    held(&one, "t1", "ada@example.org").await;
    let id = one.enqueue(&release("t1")).await.unwrap();
    let now = T0 + Duration::minutes(10);
    let lease = Duration::seconds(30);

    assert_eq!(
        one.claim_actions(now, lease, 10, false)
            .await
            .unwrap()
            .len(),
        1
    );
    one.record_step(id, Step::CompleteTaskSending, None)
        .await
        .unwrap();
    // While the first holds a live lease, the second gets nothing, even at its start.
    assert!(
        two.claim_actions(now, lease, 10, true)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + Duration::seconds(20);
    assert!(
        two.claim_actions(later, lease, 10, false)
            .await
            .unwrap()
            .is_empty()
    );
    // Its timer fires when the lease may lapse, not at the past due time (no busy loop).
    assert_eq!(two.next_action_due().await.unwrap(), Some(now + lease));

    // The first dies without renewing: once the lease lapses, the second claims the action at the
    // recorded intent, which it settles by reading Graph first.
    let lapsed = now + lease;
    let taken = two.claim_actions(lapsed, lease, 10, false).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].step, Step::CompleteTaskSending);

    // The first comes back late: its renewal and its writes change nothing.
    assert!(!one.renew_lease(id, lapsed + lease).await.unwrap());
    assert!(matches!(
        one.record_step(id, Step::PatchJobDone, None).await,
        Err(StoreError::ActionNotPending(_))
    ));
    assert!(matches!(
        one.finish(id, Outcome::Released, "late", lapsed).await,
        Err(StoreError::ActionNotPending(_))
    ));
    two.finish(id, Outcome::Released, "printed", lapsed)
        .await
        .unwrap();
    let audit = two.audit_query(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.event == AuditEvent::Released)
            .count(),
        1,
        "settled once"
    );
}

#[tokio::test]
async fn one_daemon_leads_a_shared_store_and_another_takes_over_when_it_lets_go() {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let (one, two) = (database.open().await, database.open().await);
    let lock = one
        .try_lead()
        .await
        .unwrap()
        .expect("the first daemon leads");
    assert!(
        two.try_lead().await.unwrap().is_none(),
        "one leader at a time"
    );
    lock.release().await;
    let mut taken = two
        .try_lead()
        .await
        .unwrap()
        .expect("the second takes over");
    assert!(taken.still_held().await);
}

#[tokio::test]
async fn a_sqlite_store_always_leads_its_only_daemon() {
    let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
    let store = database.open().await;
    let mut lock = store.try_lead().await.unwrap().expect("leads");
    assert!(lock.still_held().await);
    assert!(store.try_lead().await.unwrap().is_some());
}
