//! Three real daemons on one PostgreSQL store against the emulator: releases are carried out by
//! whichever instance claims them, the leader is killed with SIGKILL mid-release and later another
//! instance too (the new leader), and at the end, checked on the emulator (Graph's side), every job ended exactly once
//! with its owner's configuration, no redirect was carried out twice, no task is left `processing`,
//! and the poller's leadership moved (the survivor's log and its `pullprintd_leader` metric say so).
//!
//! The people release at kiosks through the station API, spread over the three instances as a load
//! balancer would: each signs in (with their badge) at one instance and releases at the next, so
//! every release also crosses instances with a shared session; a kiosk whose instance died moves to
//! a live one. Releases at the lobby's kiosk are find-me redirects. Jobs: 300, or `PULLPRINTD_HA_JOBS`
//! for a quicker run.

use crate::engine_support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use engine_support::Bed;
use pullprintd::emulator::scenario::{Person, StationSpec, write_users_file};
use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::store::scratch::ScratchDatabase;
use pullprintd::store::{JobState, Store};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const QUEUE_KEY: &str = "queue-kiosk-key-0123456789";
const LOBBY_KEY: &str = "lobby-kiosk-key-0123456789";
const PEOPLE: usize = 7;

fn person(n: usize) -> String {
    format!("user{n}@contoso.example")
}

fn card(n: usize) -> String {
    format!("00000100{n:02}")
}

/// The address a daemon's log says its listener `what` took. The daemons listen on ports the kernel
/// picks (`:0`): ports picked by the test and bound later could be taken meanwhile by another test's
/// daemon.
fn listener_addr(log: &str, what: &str) -> Option<String> {
    let line = log.lines().find(|line| line.contains(what))?;
    // Without the colour codes of the text log format.
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let addr = plain.split("addr=").nth(1)?;
    Some(addr.split_whitespace().next()?.to_owned())
}

/// One daemon process and where to find it.
struct Instance {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Instance {
    fn start(config: &std::path::Path, log: std::path::PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("PULLPRINTD_CONFIG")
            .env("RUST_LOG", "pullprintd=info")
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        Self {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn led(&self) -> bool {
        self.log().contains("this instance now leads")
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            let _ = child.wait().await;
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// The station API's address (once the daemon listens).
    fn station(&self) -> Option<String> {
        listener_addr(&self.log(), "station API listening")
    }

    async fn metrics(&self) -> String {
        let addr = listener_addr(&self.log(), "admin API and metrics listening")
            .expect("the log names the admin listener");
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// What a job's owner chose: `Some((copies, colour))` to release it, `None` for a find-me redirect.
type Choice = Option<(u32, &'static str)>;

/// One person at a kiosk: signs in with their badge at `sign_in_at`, releases `tasks` (each with its
/// choice) at `release_at`, signs out. Returns the tasks the station API took (`200 released` or
/// `202 queued`); a refused or cut-off request leaves its job to a later round, as the person would
/// try again.
async fn at_kiosk(
    http: &reqwest::Client,
    sign_in_at: &str,
    release_at: &str,
    owner: usize,
    tasks: Vec<(String, Choice)>,
) -> Vec<String> {
    let key = if tasks.iter().any(|(_, choice)| choice.is_none()) {
        LOBBY_KEY
    } else {
        QUEUE_KEY
    };
    let Ok(response) = http
        .post(format!("http://{sign_in_at}/api/v1/sessions"))
        .bearer_auth(key)
        .json(&json!({"card": card(owner)}))
        .send()
        .await
    else {
        return Vec::new();
    };
    if response.status() != 201 {
        return Vec::new();
    }
    let session: Value = response.json().await.unwrap_or_default();
    let token = session["token"].as_str().unwrap_or_default().to_owned();
    let mut taken = Vec::new();
    for (task, choice) in tasks {
        let body = match choice {
            Some((copies, color)) => json!({"copies": copies, "colorMode": color}),
            None => json!({}),
        };
        let answer = http
            .post(format!("http://{release_at}/api/v1/jobs/{task}/release"))
            .bearer_auth(&token)
            .header("x-station-key", key)
            .json(&body)
            .send()
            .await;
        if let Ok(answer) = answer
            && (answer.status() == 200 || answer.status() == 202)
        {
            taken.push(task);
        }
    }
    let _ = http
        .delete(format!("http://{release_at}/api/v1/sessions/current"))
        .bearer_auth(&token)
        .header("x-station-key", key)
        .send()
        .await;
    taken
}

/// How many actions are claimed and unfinished now, by any instance.
async fn in_flight(store: &Store) -> usize {
    store
        .unfinished_actions()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.step != pullprintd::release::steps::Step::Queued)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_postgresql_survive_kill_9_of_the_leader_and_another_with_every_job_ending_once()
 {
    let Some(scratch) = ScratchDatabase::create().await else {
        return;
    };
    let jobs_wanted: usize = std::env::var("PULLPRINTD_HA_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let started = Instant::now();
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    // The store exists (schema migrated) before three daemons start on it.
    let store = Store::connect(scratch.url()).await.unwrap();

    let users = bed.dir.path().join("users.toml");
    let people: Vec<Person> = (0..PEOPLE)
        .map(|n| Person {
            upn: person(n),
            display_name: format!("User {n}"),
            card: card(n),
            pin: None,
            delegates: Vec::new(),
            delegate_group: None,
        })
        .collect();
    write_users_file(&users, "", &people).unwrap();
    let mut instances = Vec::new();
    for n in 0..3 {
        let mut config = bed.config("mode = \"poll\"\npoll_interval = \"1s\"", "unused.db");
        config.store_url = Some(scratch.url().url().to_string());
        config.stations = vec![
            StationSpec {
                id: "queue".to_owned(),
                printer_id: bed.queue.clone(),
                key: QUEUE_KEY.to_owned(),
            },
            StationSpec {
                id: "lobby".to_owned(),
                printer_id: bed.lobby.clone(),
                key: LOBBY_KEY.to_owned(),
            },
        ];
        config.users_file = Some(users.clone());
        let path = bed.dir.path().join(format!("instance-{n}.toml"));
        std::fs::write(&path, config.to_toml()).unwrap();
        instances.push(Instance::start(
            &path,
            bed.dir.path().join(format!("instance-{n}.log")),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let first_leader = loop {
        if let Some(i) = instances.iter().position(Instance::led) {
            break i;
        }
        assert!(Instant::now() < deadline, "one instance leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Each task call takes a while, so the kills land with releases under way.
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            latency_ms: 200,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });

    let mut jobs: HashMap<String, (String, Choice)> = HashMap::new(); // task → (job, choice)
    for n in 0..jobs_wanted {
        let job = bed.submit(&person(n % PEOPLE), &format!("ha-{n}.pdf"));
        let fate = (n % 5 != 4).then(|| {
            (
                u32::try_from(n % 4 + 1).unwrap(),
                if n % 2 == 0 { "color" } else { "grayscale" },
            )
        });
        jobs.insert(job.task_id.unwrap(), (job.job_id, fate));
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut released = std::collections::HashSet::new();
    // Jobs at a kiosk now, and the kiosk visits under way.
    let mut at_kiosks = std::collections::HashSet::new();
    let mut kiosks = tokio::task::JoinSet::new();
    let mut killed_leader = None;
    // Actions under way (claimed, not finished) when an instance was killed.
    let mut cut_off = 0;
    let mut killed_second = None;
    let settle = Duration::from_secs(300);
    let calm = Instant::now();
    loop {
        // The people release what the instances have taken in, a few more every moment (people
        // arrive at the kiosks over a while, and the visits go on while instances are killed, so
        // the kills land with releases under way), each at the kiosk of the printer they chose,
        // through whichever live instances the load balancer picks. Four new jobs a round (about 20
        // a second) leave the survivors time to elect a new leader (they try every 5 s) before the
        // work runs out, so the second kill always finds one.
        while let Some(visit) = kiosks.try_join_next() {
            let (sent, taken): (Vec<String>, Vec<String>) = visit.unwrap();
            for task in sent {
                at_kiosks.remove(&task);
            }
            released.extend(taken);
        }
        let mut visits: HashMap<(usize, bool), Vec<(String, Choice)>> = HashMap::new();
        let mut this_round = 0;
        for held in store.all_held_jobs().await.unwrap() {
            if this_round == 4 {
                break;
            }
            let task = &held.job.task_id;
            if held.state != JobState::Held || released.contains(task) || at_kiosks.contains(task) {
                continue;
            }
            let Some((_, fate)) = jobs.get(task) else {
                continue;
            };
            let owner = (0..PEOPLE)
                .find(|n| person(*n) == held.job.owner_upn)
                .expect("one of the people");
            visits
                .entry((owner, fate.is_none()))
                .or_default()
                .push((task.clone(), *fate));
            at_kiosks.insert(task.clone());
            this_round += 1;
        }
        let live: Vec<String> = instances
            .iter()
            .filter(|i| i.alive())
            .filter_map(Instance::station)
            .collect();
        for (k, ((owner, _), tasks)) in visits.into_iter().enumerate() {
            let sign_in_at = live[k % live.len()].clone();
            let release_at = live[(k + 1) % live.len()].clone();
            let http = http.clone();
            kiosks.spawn(async move {
                let sent = tasks.iter().map(|(task, _)| task.clone()).collect();
                (
                    sent,
                    at_kiosk(&http, &sign_in_at, &release_at, owner, tasks).await,
                )
            });
        }
        let done = control
            .printed(&bed.queue)
            .len()
            .saturating_add(control.printed(&bed.lobby).len());
        let under_way = in_flight(&store).await;
        if killed_leader.is_none() && done >= jobs_wanted / 5 && under_way > 0 {
            instances[first_leader].kill().await;
            killed_leader = Some(done);
            cut_off += under_way;
            eprintln!("killed the leader (instance {first_leader}) after {done} jobs printed");
        }
        // Later, once the leadership has moved, the new leader is killed too.
        if let (Some(at), None) = (killed_leader, killed_second) {
            let new_leader = (0..3).find(|i| *i != first_leader && instances[*i].led());
            if let Some(next) = new_leader
                && done >= (at + jobs_wanted / 10).min(jobs_wanted - 1)
                && under_way > 0
            {
                instances[next].kill().await;
                killed_second = Some(next);
                cut_off += under_way;
                eprintln!("killed the new leader (instance {next}) after {done} jobs printed");
            }
        }
        let processing = control
            .tasks()
            .iter()
            .filter(|t| t.state == "processing")
            .count();
        let open = store.count_held_jobs().await.unwrap();
        if done >= jobs_wanted && processing == 0 && open == 0 {
            break;
        }
        if calm.elapsed() > settle {
            let logs: Vec<String> = instances.iter().map(Instance::log).collect();
            panic!(
                "after {settle:?}: {processing} tasks processing, {open} jobs not ended, {} \
                 released at kiosks\n{}",
                released.len(),
                logs.join("\n-----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        killed_leader.is_some() && killed_second.is_some(),
        "both kills happened"
    );
    let survivor = (0..3)
        .find(|i| *i != first_leader && Some(*i) != killed_second)
        .unwrap();

    // Graph's side: where each job printed, by source job id.
    let mut printed: HashMap<String, Vec<Value>> = HashMap::new();
    for job in control.printed(&bed.queue) {
        printed
            .entry(job.job_id)
            .or_default()
            .push(job.configuration);
    }
    let mut redirected = 0;
    for job in control.printed(&bed.lobby) {
        let from = job.redirected_from.unwrap_or_default();
        let source = from.rsplit('/').next().unwrap_or_default().to_owned();
        redirected += 1;
        printed.entry(source).or_default().push(job.configuration);
    }
    for (task, (job, fate)) in &jobs {
        let copies = printed.get(job).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(copies.len(), 1, "job {job} (task {task}) printed once");
        match fate {
            Some((want, color)) => {
                assert_eq!(copies[0]["copies"], json!(want), "job {job}");
                assert_eq!(copies[0]["colorMode"], json!(color), "job {job}");
            }
            None => assert_eq!(copies[0]["copies"], json!(1), "job {job}"),
        }
    }
    let redirects = jobs.values().filter(|(_, fate)| fate.is_none()).count();
    assert_eq!(redirected, redirects, "no redirect carried out twice");
    assert!(
        control.tasks().iter().all(|t| t.state != "processing"),
        "no task is left processing"
    );

    // The leadership moved to the survivor: its log and its metric say so (within one lease of
    // the last kill, if the work ended before it took over).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !instances[survivor].led() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = instances[survivor].metrics().await;
    assert!(
        instances[survivor].led(),
        "the survivor took the leadership:\n{}",
        instances[survivor].log()
    );
    assert!(
        metrics.lines().any(|line| line == "pullprintd_leader 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(
            |line| line.starts_with("pullprintd_leadership_changes_total ")
                && line != "pullprintd_leadership_changes_total 0"
        ),
        "{metrics}"
    );
    eprintln!(
        "high availability: {jobs_wanted} jobs, leader {first_leader} and instance {killed_second:?} \
         killed with {cut_off} actions under way in all, instance {survivor} finished, {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for instance in &mut instances {
        instance.kill().await;
    }
    store.close().await;
}
