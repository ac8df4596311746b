//! Benchmarks of the daemon in this process against the emulator on loopback, with an injected
//! per-call Graph latency of 0 ms and 20 ms:
//!
//! 1. `release_overhead` — station API release call → task completed at the emulator, minus the
//!    injected latency × the Graph calls that release made; p50/p99/max over 1,000 releases.
//! 2. `burst` — 10,000 jobs submitted at once → all held; then release-all by 200 people (50 jobs
//!    each, concurrently) → all tasks completed; both against the ideal bound.
//!    `burst_postgres` — the same on a PostgreSQL store, with one instance and with three sharing it
//!    (at 20 ms; `PULLPRINTD_BENCH_BURST_PER_USER` sets the jobs per person of both, e.g. 1 for a
//!    smoke run).
//! 3. `graph_calls` — Graph calls per job for each path, against the fewest each path can make.
//! 4. `webhook_ack` — acknowledgement latency of `/graph/notifications` under a flood of 5,000.
//!    `notification_intake` — 1,000 notifications (with `parentUrl`) at 20 ms Graph latency, from 64
//!    clients: time until every job is held, in jobs per second, against the ideal (one `GET job` a
//!    job × 20 ms ÷ the Graph slots).
//! 5. `s2s` — Microsoft's sample workload as a rule: 200 jobs submitted at once to a printer whose
//!    `[[rules]]` entry releases them in grayscale, notifications delivered by the emulator (with
//!    `parentUrl`) to the webhook, 20 ms Graph latency; time to the last task completed, Graph calls
//!    per job, acknowledgement p50/p99/max, against the ideal. `PULLPRINTD_BENCH_S2S_JOBS=20` for a
//!    smoke run.
//!
//! `cargo bench --bench engine [-- NAME…]`; each benchmark prints a table and one `BENCH {json}` line.
#![allow(clippy::print_stdout)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use pullprintd::store::DiscoveredVia;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use support::{
    Bed, BenchStore, LOBBY_KEY, MAX_CONCURRENT, QUEUE_KEY, json_line, ms, r2, selected, summary,
    table,
};

const LATENCIES: [u64; 2] = [0, 20];

#[tokio::main]
async fn main() {
    if selected("release_overhead") {
        release_overhead().await;
    }
    if selected("burst") {
        burst().await;
    }
    if selected("burst_postgres") {
        burst_postgres().await;
    }
    if selected("graph_calls") {
        graph_calls().await;
    }
    if selected("webhook_ack") {
        webhook_ack().await;
    }
    if selected("notification_intake") {
        notification_intake().await;
    }
    if selected("s2s") {
        s2s().await;
    }
}

/// Submits `jobs` jobs per user for `users` users and polls once; returns the poll's duration.
async fn hold(bed: &Bed, users: usize, jobs: usize) -> Duration {
    for n in 0..jobs {
        for user in 0..users {
            bed.submit(user, n);
        }
    }
    let started = Instant::now();
    let report = bed
        .poller
        .poll(DiscoveredVia::Poll)
        .await
        .expect("the poll succeeds");
    // The daemon's own poll may be storing some of them meanwhile (this poll then skips them):
    // what counts is that every job is held.
    let want = (users * jobs) as u64;
    if report.stored < users * jobs {
        support::until(
            Duration::from_secs(60),
            Duration::from_millis(5),
            "every job is held",
            || async { bed.store.count_held_jobs().await.unwrap_or(0) >= want },
        )
        .await;
    }
    started.elapsed()
}

/// The held jobs' ids (task ids) of user `i`.
async fn held_ids(bed: &Bed, user: usize) -> Vec<String> {
    bed.store
        .held_jobs_for_owner(&support::upn(user))
        .await
        .expect("the store lists held jobs")
        .into_iter()
        .map(|j| j.job.task_id)
        .collect()
}

// ---- 1. release overhead ------------------------------------------------------------------------

async fn release_overhead() {
    const RELEASES: usize = 1000;
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    for latency in LATENCIES {
        let bed = Bed::start(1).await;
        hold(&bed, 1, RELEASES + 1).await;
        let token = bed.sign_in(QUEUE_KEY, 0).await;
        let mut ids = held_ids(&bed, 0).await;
        // One release first, outside the figures: it fills the printer-capabilities cache (GET printer).
        let warm = ids.pop().expect("a job to warm up with");
        let answer = bed
            .post(&token, &format!("/api/v1/jobs/{warm}/release"), &json!({}))
            .await;
        assert_eq!(answer.status(), 200);
        bed.set_latency(latency);
        let mut overheads = Vec::with_capacity(RELEASES);
        let mut totals = Vec::with_capacity(RELEASES);
        let mut calls_total = 0;
        for id in &ids {
            let before = bed.graph_calls();
            let started = Instant::now();
            let answer = bed
                .post(&token, &format!("/api/v1/jobs/{id}/release"), &json!({}))
                .await;
            let took = started.elapsed();
            assert_eq!(answer.status(), 200, "released, Graph confirmed");
            let calls = bed.graph_calls() - before;
            calls_total += calls;
            totals.push(ms(took));
            overheads.push(ms(took) - (calls * latency) as f64);
        }
        // The 200 answer came after Graph's PATCH task answered: the emulator has it completed.
        assert_eq!(bed.completed_tasks(), RELEASES + 1);
        let (p50, p99, max) = summary(&mut overheads);
        let (t50, t99, tmax) = summary(&mut totals);
        let per = calls_total as f64 / RELEASES as f64;
        rows.push(vec![
            format!("{latency} ms"),
            format!("{per:.2}"),
            format!("{t50:.2}"),
            format!("{t99:.2}"),
            format!("{p50:.2}"),
            format!("{p99:.2}"),
            format!("{max:.2}"),
        ]);
        figures.insert(
            format!("latency_{latency}ms"),
            json!({"releases": RELEASES, "graph_calls_per_release": per,
                   "total_p50_ms": r2(t50), "total_p99_ms": r2(t99), "total_max_ms": r2(tmax),
                   "overhead_p50_ms": r2(p50), "overhead_p99_ms": r2(p99), "overhead_max_ms": r2(max)}),
        );
        bed.stop().await;
    }
    table(
        "Release overhead: POST /api/v1/jobs/{id}/release → 200 (task completed), 1,000 sequential releases",
        &[
            "Graph latency",
            "calls/release",
            "total p50 ms",
            "total p99 ms",
            "overhead p50 ms",
            "overhead p99 ms",
            "overhead max ms",
        ],
        &rows,
    );
    json_line("release_overhead", &Value::Object(figures));
}

// ---- 2. burst -----------------------------------------------------------------------------------

/// Jobs per person in the burst: 50 (10,000 in all), or `PULLPRINTD_BENCH_BURST_PER_USER` for a
/// smoke run.
fn burst_per_user() -> usize {
    std::env::var("PULLPRINTD_BENCH_BURST_PER_USER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

async fn burst() {
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    for latency in LATENCIES {
        if let Some((mut more, key, figure)) = burst_once(BenchStore::Sqlite, latency).await {
            rows.append(&mut more);
            figures.insert(key, figure);
        }
    }
    burst_table(&rows);
    json_line("burst", &Value::Object(figures));
}

/// The same burst on a PostgreSQL store, with one instance and with three sharing it (people spread
/// over the instances, each kept on one as a load balancer would), at 20 ms Graph latency.
async fn burst_postgres() {
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    for instances in [1, 3] {
        if let Some((mut more, key, figure)) = burst_once(BenchStore::Postgres(instances), 20).await
        {
            rows.append(&mut more);
            figures.insert(key, figure);
        }
    }
    if rows.is_empty() {
        return;
    }
    burst_table(&rows);
    json_line("burst_postgres", &Value::Object(figures));
}

fn burst_table(rows: &[Vec<String>]) {
    table(
        &format!(
            "Burst: {} jobs held at once, then release-all by 200 people (ideal = min calls × latency ÷ {MAX_CONCURRENT})",
            200 * burst_per_user()
        ),
        &[
            "store",
            "Graph latency",
            "phase",
            "Graph calls",
            "took s",
            "ideal s",
            "ratio",
            "jobs/s",
        ],
        rows,
    );
}

/// One burst on `store` at `latency`: the table rows, the figures' key and the figures; `None`
/// when the store is not available here.
async fn burst_once(store: BenchStore, latency: u64) -> Option<(Vec<Vec<String>>, String, Value)> {
    const USERS: usize = 200;
    let per_user = burst_per_user();
    let jobs = USERS * per_user;
    let (label, key) = match store {
        BenchStore::Sqlite => ("SQLite".to_owned(), format!("latency_{latency}ms")),
        BenchStore::Postgres(n) => (
            format!("PostgreSQL ×{n}"),
            format!("postgres_{n}_latency_{latency}ms"),
        ),
    };
    let bed = Arc::new(Bed::start_on(USERS, store).await?);
    let mut tokens = Vec::with_capacity(USERS);
    for user in 0..USERS {
        tokens.push(bed.sign_in(QUEUE_KEY, user).await);
    }
    // Warm the printer-capabilities cache, so release-all makes only the releases' calls.
    let warm = bed.submit(USERS - 1, 9999);
    bed.poller.poll(DiscoveredVia::Poll).await.expect("poll");
    let answer = bed
        .post(
            &tokens[USERS - 1],
            &format!(
                "/api/v1/jobs/{}/release",
                warm.task_id.expect("a held task")
            ),
            &json!({}),
        )
        .await;
    assert_eq!(answer.status(), 200);
    bed.set_latency(latency);
    bed.emulator.control().reset_call_counts();

    let intake = hold(&bed, USERS, per_user).await;
    let intake_calls = bed.graph_calls();
    let pages = jobs.div_ceil(100) as u64;
    let intake_minimum = pages + jobs as u64;
    bed.emulator.control().reset_call_counts();

    let started = Instant::now();
    let answers = futures::future::join_all(tokens.iter().map(|token| {
        let bed = Arc::clone(&bed);
        let token = token.clone();
        async move {
            let answer = bed
                .post(&token, "/api/v1/jobs/release-all", &json!({}))
                .await;
            assert_eq!(answer.status(), 200, "release-all answers 200");
            let body: Value = answer.json().await.expect("a JSON answer");
            body["results"].as_array().map_or(0, Vec::len)
        }
    }))
    .await;
    let answered = started.elapsed();
    assert_eq!(
        answers.iter().sum::<usize>(),
        jobs,
        "every job was released"
    );
    let total_completed = jobs + 1;
    support::until(
        Duration::from_secs(600),
        Duration::from_millis(20),
        "every task completed",
        || {
            let bed = Arc::clone(&bed);
            async move { bed.completed_tasks() == total_completed }
        },
    )
    .await;
    let release = started.elapsed();
    let release_calls = bed.graph_calls();
    let ideal = |calls: u64| calls as f64 * latency as f64 / MAX_CONCURRENT as f64 / 1000.0;
    let intake_ideal = ideal(intake_minimum);
    let release_ideal = ideal(jobs as u64);
    let ratio = |took: Duration, ideal: f64| {
        if latency == 0 {
            None
        } else {
            Some(took.as_secs_f64() / ideal)
        }
    };
    let intake_ratio = ratio(intake, intake_ideal);
    let release_ratio = ratio(release, release_ideal);
    let show = |r: Option<f64>| r.map_or("—".to_owned(), |r| format!("{r:.2}×"));
    let rows = vec![
        vec![
            label.clone(),
            format!("{latency} ms"),
            "intake (poll)".to_owned(),
            format!("{intake_calls} (min {intake_minimum})"),
            format!("{:.2}", intake.as_secs_f64()),
            format!("{intake_ideal:.2}"),
            show(intake_ratio),
            format!("{:.0}", jobs as f64 / intake.as_secs_f64()),
        ],
        vec![
            label,
            format!("{latency} ms"),
            "release-all".to_owned(),
            format!("{release_calls} (min {jobs})"),
            format!("{:.2}", release.as_secs_f64()),
            format!("{release_ideal:.2}"),
            show(release_ratio),
            format!("{:.0}", jobs as f64 / release.as_secs_f64()),
        ],
    ];
    let figures = json!({"jobs": jobs, "users": USERS,
           "intake_s": r2(intake.as_secs_f64()), "intake_graph_calls": intake_calls,
           "intake_min_calls": intake_minimum, "intake_ideal_s": r2(intake_ideal),
           "intake_ratio": intake_ratio.map(r2), "intake_jobs_per_s": r2(jobs as f64 / intake.as_secs_f64()),
           "release_all_answered_s": r2(answered.as_secs_f64()),
           "release_s": r2(release.as_secs_f64()), "release_graph_calls": release_calls,
           "release_ideal_s": r2(release_ideal), "release_ratio": release_ratio.map(r2),
           "release_jobs_per_s": r2(jobs as f64 / release.as_secs_f64())});
    match Arc::try_unwrap(bed) {
        Ok(bed) => bed.stop().await,
        Err(_) => panic!("the bed is still shared"),
    }
    Some((rows, key, figures))
}

// ---- 3. Graph calls per job ----------------------------------------------------------------------

/// One path's measured calls against the minimum.
struct PathCalls {
    path: &'static str,
    jobs: u64,
    calls: u64,
    minimum: u64,
}

async fn graph_calls() {
    const N: usize = 20;
    let bed = Bed::start(1).await;
    let control = bed.emulator.control();
    let mut paths = Vec::new();
    let root = bed.emulator.graph_url();

    // Poll intake: one page serves every task, then one GET job per new task.
    for n in 0..N {
        bed.submit(0, n);
    }
    control.reset_call_counts();
    bed.poller
        .poll(DiscoveredVia::Poll)
        .await
        .expect("the poll succeeds");
    paths.push(PathCalls {
        path: "poll intake (one page)",
        jobs: N as u64,
        calls: bed.graph_calls(),
        minimum: 1 + N as u64,
    });

    // Notification intake, with and without parentUrl.
    let client_state = bed
        .store
        .client_state_or_create(pullprintd::secrets::random_token)
        .await
        .expect("the clientState");
    for (path, parent, minimum) in [
        ("notification intake with parentUrl", true, 1),
        ("notification intake without parentUrl", false, 2),
    ] {
        let submitted: Vec<_> = (0..N).map(|n| bed.submit(0, 100 + n)).collect();
        control.reset_call_counts();
        for job in &submitted {
            let task = job.task_id.clone().expect("a held task");
            let body = notification(
                &bed,
                client_state.expose_secret(),
                &task,
                parent.then(|| format!("{root}/print/printers/{}/jobs/{}", bed.queue, job.job_id)),
            );
            let answer = bed
                .http
                .post(bed.url("/graph/notifications"))
                .json(&body)
                .send()
                .await
                .expect("the webhook answers");
            assert_eq!(answer.status(), 202);
        }
        for job in &submitted {
            let task = job.task_id.clone().expect("a held task");
            support::until(
                Duration::from_secs(30),
                Duration::from_millis(5),
                "the notified job is held",
                || {
                    let store = bed.store.clone();
                    let task = task.clone();
                    async move { store.held_job(&task).await.ok().flatten().is_some() }
                },
            )
            .await;
        }
        paths.push(PathCalls {
            path,
            jobs: N as u64,
            calls: bed.graph_calls(),
            minimum: minimum * N as u64,
        });
    }

    // Releases: warm each station's printer-capabilities cache first (one GET printer per printer
    // and cache lifetime, shared by every job: not a per-job cost).
    let queue = bed.sign_in(QUEUE_KEY, 0).await;
    let lobby = bed.sign_in(LOBBY_KEY, 0).await;
    let mut ids = held_ids(&bed, 0).await;
    control.reset_call_counts();
    for token in [&queue, &lobby] {
        let id = ids.pop().expect("a held job");
        let answer = bed
            .post(token, &format!("/api/v1/jobs/{id}/release"), &json!({}))
            .await;
        assert_eq!(answer.status(), 200);
    }
    let printer_reads = control.calls_to("GET /print/printers/{id}");
    let cases: [(&'static str, &String, Option<Value>, u64); 4] = [
        (
            "same-printer release, no changes",
            &queue,
            Some(json!({})),
            1,
        ),
        (
            "same-printer release with changes",
            &queue,
            Some(json!({"copies": 2})),
            2,
        ),
        ("find-me release (redirect)", &lobby, Some(json!({})), 1),
        ("delete", &queue, None, 2),
    ];
    let per_case = ids.len() / cases.len();
    assert!(per_case >= 5, "enough held jobs for every path");
    for (path, token, body, minimum) in cases {
        let batch: Vec<String> = ids.drain(..per_case).collect();
        control.reset_call_counts();
        for id in &batch {
            let answer = match &body {
                Some(body) => {
                    bed.post(token, &format!("/api/v1/jobs/{id}/release"), body)
                        .await
                }
                None => bed
                    .authorised(
                        bed.http.delete(bed.url(&format!("/api/v1/jobs/{id}"))),
                        token,
                    )
                    .send()
                    .await
                    .expect("the delete is answered"),
            };
            assert_eq!(answer.status(), 200, "{path}: Graph confirmed");
        }
        paths.push(PathCalls {
            path,
            jobs: per_case as u64,
            calls: bed.graph_calls(),
            minimum: minimum * per_case as u64,
        });
    }
    let tokens = control
        .call_counts()
        .iter()
        .filter(|(route, _)| route.contains("oauth2"))
        .flat_map(|(_, s)| s.values())
        .sum::<u64>();
    bed.stop().await;

    let rows: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let verdict = if p.calls == p.minimum {
                "equal".to_owned()
            } else {
                format!("{:+}", p.calls as i64 - p.minimum as i64)
            };
            vec![
                p.path.to_owned(),
                p.jobs.to_string(),
                format!("{:.2}", p.calls as f64 / p.jobs as f64),
                format!("{:.2}", p.minimum as f64 / p.jobs as f64),
                verdict,
            ]
        })
        .collect();
    table(
        "Graph calls per job, from the emulator's call counts (latency 0 ms)",
        &["path", "jobs", "calls/job", "minimum/job", "vs minimum"],
        &rows,
    );
    println!(
        "  plus, once per printer and cache lifetime (not per job): {printer_reads} GET printer for 2 printers"
    );
    json_line(
        "graph_calls",
        &json!({
            "paths": paths.iter().map(|p| json!({"path": p.path, "jobs": p.jobs, "calls": p.calls,
                "minimum": p.minimum, "equal": p.calls == p.minimum})).collect::<Vec<_>>(),
            "printer_capability_reads": printer_reads,
            "token_requests_after_start": tokens,
        }),
    );
}

/// A `created` change notification for `task`, as Graph sends it.
fn notification(bed: &Bed, client_state: &str, task: &str, parent_url: Option<String>) -> Value {
    let resource = format!("print/taskDefinitions/{}/tasks/{task}", bed.definition);
    let mut data =
        json!({"@odata.type": "#microsoft.graph.printTask", "@odata.id": resource, "id": task});
    if let Some(url) = parent_url {
        data["parentUrl"] = json!(url);
    }
    json!({"value": [{
        "subscriptionId": "bench-subscription",
        "changeType": "created",
        "clientState": client_state,
        "tenantId": bed.emulator.tenant_id(),
        "resource": resource,
        "resourceData": data,
    }]})
}

/// `count` jobs submitted, and one `created` notification (with `parentUrl`) for each, as bodies to
/// POST to the webhook.
async fn notified_jobs(bed: &Bed, count: usize) -> Vec<String> {
    let client_state = bed
        .store
        .client_state_or_create(pullprintd::secrets::random_token)
        .await
        .expect("the clientState");
    let root = bed.emulator.graph_url();
    (0..count)
        .map(|n| {
            let job = bed.submit(0, n);
            let task = job.task_id.expect("a held task");
            let url = format!("{root}/print/printers/{}/jobs/{}", bed.queue, job.job_id);
            notification(bed, client_state.expose_secret(), &task, Some(url)).to_string()
        })
        .collect()
}

/// POSTs every body to the webhook from `clients` concurrent clients; each acknowledgement's time in
/// milliseconds.
async fn post_notifications(bed: &Arc<Bed>, bodies: Vec<String>, clients: usize) -> Vec<f64> {
    futures::stream::iter(bodies)
        .map(|body| {
            let bed = Arc::clone(bed);
            async move {
                let sent = Instant::now();
                let answer = bed
                    .http
                    .post(bed.url("/graph/notifications"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the webhook answers");
                let took = sent.elapsed();
                assert_eq!(answer.status(), 202, "acknowledged");
                ms(took)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await
}

// ---- 4. webhook acknowledgement under a flood ------------------------------------------------------

async fn webhook_ack() {
    const NOTIFICATIONS: usize = 5000;
    const CLIENTS: usize = 64;
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    for latency in LATENCIES {
        let bed = Arc::new(Bed::start(1).await);
        let bodies = notified_jobs(&bed, NOTIFICATIONS).await;
        bed.set_latency(latency);
        let started = Instant::now();
        let mut latencies = post_notifications(&bed, bodies, CLIENTS).await;
        let flood = started.elapsed();
        let (p50, p99, max) = summary(&mut latencies);
        // At 0 ms the jobs' lookups finish quickly: report how long until all 5,000 were held.
        let held = if latency == 0 {
            let bed2 = Arc::clone(&bed);
            support::until(
                Duration::from_secs(300),
                Duration::from_millis(50),
                "every notified job is held",
                move || {
                    let bed = Arc::clone(&bed2);
                    async move {
                        bed.store.all_held_jobs().await.map_or(0, |j| j.len()) == NOTIFICATIONS
                    }
                },
            )
            .await;
            Some(started.elapsed().as_secs_f64())
        } else {
            None
        };
        rows.push(vec![
            format!("{latency} ms"),
            format!("{p50:.2}"),
            format!("{p99:.2}"),
            format!("{max:.2}"),
            format!("{:.0}", NOTIFICATIONS as f64 / flood.as_secs_f64()),
            held.map_or("—".to_owned(), |s| format!("{s:.1}")),
        ]);
        figures.insert(
            format!("latency_{latency}ms"),
            json!({"notifications": NOTIFICATIONS, "clients": CLIENTS,
                   "ack_p50_ms": r2(p50), "ack_p99_ms": r2(p99), "ack_max_ms": r2(max),
                   "acks_per_s": r2(NOTIFICATIONS as f64 / flood.as_secs_f64()),
                   "all_held_s": held.map(r2)}),
        );
        match Arc::try_unwrap(bed) {
            Ok(bed) => bed.stop().await,
            Err(_) => panic!("the bed is still shared"),
        }
    }
    table(
        "Webhook acknowledgement: 5,000 notifications from 64 concurrent clients",
        &[
            "Graph latency",
            "ack p50 ms",
            "ack p99 ms",
            "ack max ms",
            "acks/s",
            "all held after s",
        ],
        &rows,
    );
    json_line("webhook_ack", &Value::Object(figures));
}

/// Notification intake at 20 ms: how fast jobs announced by notifications become held.
async fn notification_intake() {
    const NOTIFICATIONS: usize = 1000;
    const CLIENTS: usize = 64;
    const LATENCY_MS: u64 = 20;
    let bed = Arc::new(Bed::start(1).await);
    let bodies = notified_jobs(&bed, NOTIFICATIONS).await;
    bed.set_latency(LATENCY_MS);
    bed.emulator.control().reset_call_counts();
    let started = Instant::now();
    post_notifications(&bed, bodies, CLIENTS).await;
    let bed2 = Arc::clone(&bed);
    support::until(
        Duration::from_secs(300),
        Duration::from_millis(10),
        "every notified job is held",
        move || {
            let bed = Arc::clone(&bed2);
            async move { bed.store.count_held_jobs().await.unwrap_or(0) == NOTIFICATIONS as u64 }
        },
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    let calls: u64 = bed
        .emulator
        .control()
        .call_counts()
        .iter()
        .filter(|(route, _)| !route.contains("oauth2"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    let ideal = calls as f64 * LATENCY_MS as f64 / MAX_CONCURRENT as f64 / 1000.0;
    let rate = NOTIFICATIONS as f64 / took;
    table(
        "Notification intake: 1,000 notifications from 64 clients, 20 ms Graph latency",
        &[
            "notifications",
            "Graph calls",
            "all held after s",
            "ideal s",
            "ratio",
            "jobs/s",
        ],
        &[vec![
            NOTIFICATIONS.to_string(),
            calls.to_string(),
            format!("{took:.2}"),
            format!("{ideal:.2}"),
            format!("{:.2}", took / ideal),
            format!("{rate:.0}"),
        ]],
    );
    json_line(
        "notification_intake",
        &json!({"notifications": NOTIFICATIONS, "graph_calls": calls, "all_held_s": r2(took),
                "ideal_s": r2(ideal), "ratio": r2(took / ideal), "jobs_per_s": r2(rate)}),
    );
    match Arc::try_unwrap(bed) {
        Ok(bed) => bed.stop().await,
        Err(_) => panic!("the bed is still shared"),
    }
}

// ---- 5. S2S: auto-release by a rule, from notifications -----------------------------------------

/// How many jobs `s2s` submits (`PULLPRINTD_BENCH_S2S_JOBS`, default 200).
fn s2s_jobs() -> usize {
    std::env::var("PULLPRINTD_BENCH_S2S_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(200)
}

/// The daemon's own answer time from its `webhook_answer_seconds` histogram: the upper bounds (ms)
/// of the buckets holding the median and the 99th percentile.
async fn daemon_answer_bounds(admin: std::net::SocketAddr) -> (f64, f64) {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("the daemon's metrics")
        .text()
        .await
        .expect("the metrics' text");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix("pullprintd_webhook_answer_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le * 1000.0, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    let bound = |share: f64| {
        buckets
            .iter()
            .find(|(_, count)| *count >= share * total)
            .map_or(f64::NAN, |(le, _)| *le)
    };
    (bound(0.5), bound(0.99))
}

async fn s2s() {
    const LATENCY_MS: u64 = 20;
    let jobs = s2s_jobs();
    let (emulator, ids) = support::emulator().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The public URL must name the port before the daemon binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let mut text = support::settings_toml(
        dir.path(),
        &ids,
        1,
        &format!(
            "mode = \"webhook\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        &format!("127.0.0.1:{port}"),
    );
    text.push_str(&format!(
        "\n[[rules]]\nname = \"S2S grayscale\"\naction = \"release\"\nmatch.printers = [\"{}\"]\n\
         force.color_mode = \"grayscale\"\n",
        ids.queue
    ));
    let settings = pullprintd::config::Settings::from_toml(&text).expect("the bench configuration");
    let daemon = pullprintd::emulator::scenario::RunningDaemon::start(
        settings,
        pullprintd::app::AppOptions::default(),
    )
    .await
    .expect("the daemon builds");
    let control = emulator.control();
    support::until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        "the subscription",
        || {
            let control = control.clone();
            async move { control.subscriptions().len() == 1 }
        },
    )
    .await;
    // Let the start-up polls finish before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    control.reset_call_counts();
    control.set_faults(support::latency(LATENCY_MS));
    let before_deliveries = control.deliveries().len();
    let started = Instant::now();
    for n in 0..jobs {
        control
            .submit_job(pullprintd::emulator::NewJob {
                printer_id: ids.queue.clone(),
                user_principal_name: support::upn(0),
                user_display_name: None,
                document_name: Some(format!("s2s-{n}.pdf")),
                configuration: Some(json!({"copies": 1, "colorMode": "color"})),
            })
            .expect("the job is submitted");
    }
    let completed = |control: &pullprintd::emulator::Control| {
        control
            .tasks()
            .iter()
            .filter(|t| t.state == "completed")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while completed(&control) < jobs {
        assert!(
            Instant::now() < deadline,
            "every task completed within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = started.elapsed();
    let calls: u64 = control
        .call_counts()
        .iter()
        .filter(|(route, _)| !route.contains("oauth2"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    // Which routes the calls went to, so a figure above 3.0 per job names its cause.
    let by_route: serde_json::Map<String, Value> = control
        .call_counts()
        .iter()
        .filter(|(route, _)| !route.contains("oauth2"))
        .map(|(route, by_status)| (route.clone(), json!(by_status.values().sum::<u64>())))
        .collect();
    println!("Graph calls by route: {}", Value::Object(by_route.clone()));
    let grayscale = control
        .printed(&ids.queue)
        .iter()
        .filter(|p| p.configuration["colorMode"] == "grayscale")
        .count();
    assert_eq!(grayscale, jobs, "every job printed in grayscale");
    let mut acks: Vec<f64> = control.deliveries()[before_deliveries..]
        .iter()
        .filter(|d| d.kind == "created" && d.outcome == "delivered")
        .map(|d| d.elapsed_us as f64 / 1000.0)
        .collect();
    let delivered = acks.len();
    let (p50, p99, max) = summary(&mut acks);
    let own = daemon_answer_bounds(daemon.admin_addr).await;
    let per_job = calls as f64 / jobs as f64;
    let ideal = calls as f64 * LATENCY_MS as f64 / MAX_CONCURRENT as f64 / 1000.0;
    let seconds = took.as_secs_f64();
    table(
        &format!(
            "S2S: {jobs} jobs released by a grayscale rule from emulator notifications, {LATENCY_MS} ms Graph latency"
        ),
        &[
            "jobs",
            "took s",
            "Graph calls/job",
            "ideal s",
            "ratio",
            "acks",
            "ack p50 ms",
            "ack p99 ms",
            "ack max ms",
            "own p50 ≤ ms",
            "own p99 ≤ ms",
        ],
        &[vec![
            jobs.to_string(),
            format!("{seconds:.2}"),
            format!("{per_job:.2}"),
            format!("{ideal:.2}"),
            format!("{:.2}", seconds / ideal),
            delivered.to_string(),
            format!("{p50:.2}"),
            format!("{p99:.2}"),
            format!("{max:.2}"),
            format!("{}", own.0),
            format!("{}", own.1),
        ]],
    );
    println!(
        "(ack: timed by the emulator, from each POST's start to its answer; own: the daemon's \
         webhook_answer_seconds histogram, from the request read to the answer, as bucket bounds)"
    );
    json_line(
        "s2s",
        &json!({"jobs": jobs, "latency_ms": LATENCY_MS, "concurrency": MAX_CONCURRENT,
                "took_s": r2(seconds), "graph_calls": calls, "calls_per_job": r2(per_job),
                "ideal_s": r2(ideal), "ratio": r2(seconds / ideal),
                "acks": delivered, "ack_p50_ms": r2(p50), "ack_p99_ms": r2(p99), "ack_max_ms": r2(max),
                "own_answer_p50_le_ms": own.0, "own_answer_p99_le_ms": own.1,
                "calls_by_route": by_route}),
    );
    daemon.stop().await.expect("the daemon stops cleanly");
    emulator.shutdown().await;
}
