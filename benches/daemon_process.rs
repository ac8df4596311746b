//! Benchmarks of the REAL daemon process (`pullprintd run`, built by `cargo bench` in the bench
//! profile, i.e. release) against the emulator in this process on loopback:
//!
//! 5. `memory` — idle RSS, CPU time (utime + stime) over 60 s idle, and peak RSS (`VmHWM`) with
//!    10,000 held jobs, from `/proc/PID/status` and `/proc/PID/stat`;
//! 6. `startup` — spawn → `READY=1` on a `NOTIFY_SOCKET` datagram socket (as systemd sees it), the
//!    emulator answering at once, on a fresh store each time.
//!
//! `cargo bench --bench daemon_process [-- NAME…]`; each prints a table and one `BENCH {json}` line.
#![allow(clippy::print_stdout)]

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pullprintd::emulator::NewJob;
use serde_json::{Value, json};
use support::{ADMIN_KEY, Ids, json_line, ms, r2, selected, summary, table};

const BINARY: &str = env!("CARGO_BIN_EXE_pullprintd");
const STARTS: usize = 10;
const IDLE: Duration = Duration::from_secs(60);
const HELD: usize = 10_000;
const USERS: usize = 200;

#[tokio::main]
async fn main() {
    if selected("startup") {
        startup().await;
    }
    if selected("memory") {
        memory().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Writes the configuration for a daemon against the emulator; returns its path and the port of its
/// admin listener (the admin API and `/metrics`).
fn configure(dir: &Path, ids: &Ids, poll: &str) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let admin_port = free_port();
    let text = support::settings_toml(
        dir,
        ids,
        USERS,
        &format!("mode = \"poll\"\npoll_interval = \"{poll}\""),
        &format!("127.0.0.1:{port}"),
    )
    .replace(
        "admin_listen = \"127.0.0.1:0\"",
        &format!("admin_listen = \"127.0.0.1:{admin_port}\""),
    );
    let path = dir.join("pullprintd.toml");
    std::fs::write(&path, text).expect("the configuration is written");
    (path, admin_port)
}

/// Starts `pullprintd run` with a notify socket; returns it once it said READY=1, and how long that took.
// The child is handed to the caller, which always ends it with `stop` (SIGTERM, then `wait`).
#[allow(clippy::zombie_processes)]
fn spawn_ready(config: &Path, socket_path: &Path) -> (Child, Duration) {
    let socket = UnixDatagram::bind(socket_path).expect("the notify socket binds");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    let started = Instant::now();
    let mut child = Command::new(BINARY)
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", socket_path)
        .env_remove("WATCHDOG_USEC")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let mut buffer = [0u8; 4096];
    loop {
        if started.elapsed() > Duration::from_secs(30) {
            // Reaped before failing: no zombie left behind.
            let _ = child.kill();
            let _ = child.wait();
            panic!("no READY=1 within 30 s");
        }
        let Ok(n) = socket.recv(&mut buffer) else {
            continue;
        };
        if String::from_utf8_lossy(&buffer[..n])
            .lines()
            .any(|l| l == "READY=1")
        {
            return (child, started.elapsed());
        }
    }
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("the daemon exits");
    assert_eq!(exit.code(), Some(0), "a clean stop");
}

/// A `/proc/PID/status` field in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status is read");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("the field is present")
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat is read");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the ")".
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn startup() {
    let (emulator, ids) = support::emulator().await;
    let mut times = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (config, _) = configure(dir.path(), &ids, "30s");
        let (child, took) =
            tokio::task::block_in_place(|| spawn_ready(&config, &dir.path().join("notify.sock")));
        times.push(ms(took));
        tokio::task::block_in_place(|| stop(child));
    }
    let (p50, _, max) = summary(&mut times);
    let min = times.first().copied().unwrap_or(f64::NAN);
    table(
        &format!(
            "Start-up to READY=1 (fresh store, {USERS} users, emulator instant), {STARTS} starts"
        ),
        &["min ms", "median ms", "max ms"],
        &[vec![
            format!("{min:.1}"),
            format!("{p50:.1}"),
            format!("{max:.1}"),
        ]],
    );
    json_line(
        "startup",
        &json!({"starts": STARTS, "min_ms": r2(min), "median_ms": r2(p50), "max_ms": r2(max)}),
    );
    emulator.shutdown().await;
}

async fn memory() {
    let (emulator, ids) = support::emulator().await;
    let queue = ids.queue.clone();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (config, port) = configure(dir.path(), &ids, "30s");
    let (child, _) =
        tokio::task::block_in_place(|| spawn_ready(&config, &dir.path().join("notify.sock")));
    let pid = child.id();
    // Idle: let start-up settle, then measure over IDLE (two 30 s polls of an empty task list).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_rss = status_kb(pid, "VmRSS");
    let cpu_before = cpu_seconds(pid);
    tokio::time::sleep(IDLE).await;
    let idle_cpu = cpu_seconds(pid) - cpu_before;
    let idle_rss_after = status_kb(pid, "VmRSS");
    let idle_hwm = status_kb(pid, "VmHWM");

    // 10,000 held jobs: submitted at once; the next poll holds them all.
    let control = emulator.control();
    for n in 0..HELD {
        control
            .submit_job(NewJob {
                printer_id: queue.clone(),
                user_principal_name: support::upn(n % USERS),
                user_display_name: Some(format!("User {}", n % USERS)),
                document_name: Some(format!("Quarterly report {n}.pdf")),
                configuration: Some(json!({"copies": 1, "colorMode": "color"})),
            })
            .expect("the emulator accepts a job");
    }
    // Count the held jobs from the bench's own connection to the store file (SQLite in WAL mode
    // lets another process read): asking the daemon to list 10,000 jobs every 2 s would measure
    // that listing, not the holding.
    let store = pullprintd::store::Store::open(dir.path().join("state.db"))
        .await
        .expect("the daemon's store opens for reading");
    let started = Instant::now();
    let held = loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "10,000 jobs are held within 3 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let count = store
            .all_held_jobs()
            .await
            .expect("the store answers")
            .len();
        if count >= HELD {
            break count;
        }
    };
    let held_rss = status_kb(pid, "VmRSS");
    let held_hwm = status_kb(pid, "VmHWM");
    // An administrator listing every held job (`pullprintd jobs`, which follows the listing's
    // pages): the heaviest admin request.
    let http = reqwest::Client::new();
    let mut listed = 0;
    let mut after: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("http://127.0.0.1:{port}/api/v1/admin/jobs"))
            .bearer_auth(ADMIN_KEY);
        if let Some(cursor) = &after {
            request = request.query(&[("after", cursor)]);
        }
        let page: Value = request
            .send()
            .await
            .expect("the admin API answers")
            .json()
            .await
            .expect("a JSON list");
        listed += page["jobs"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(listed, held);
    let listing_hwm = status_kb(pid, "VmHWM");
    let cpu_total = cpu_seconds(pid);
    tokio::task::block_in_place(|| stop(child));
    emulator.shutdown().await;

    let verdict = |value: f64, goal: f64| if value < goal { "met" } else { "MISSED" };
    table(
        "Memory and idle CPU of the real daemon (`pullprintd run`, release build)",
        &["figure", "value", "goal"],
        &[
            vec![
                "idle RSS after READY + 5 s".to_owned(),
                format!("{:.1} MB", mb(idle_rss)),
                format!("< 20 MB ({})", verdict(mb(idle_rss), 20.0)),
            ],
            vec![
                "idle RSS after 60 s idle".to_owned(),
                format!("{:.1} MB", mb(idle_rss_after)),
                String::new(),
            ],
            vec![
                "peak RSS while idle (VmHWM)".to_owned(),
                format!("{:.1} MB", mb(idle_hwm)),
                String::new(),
            ],
            vec![
                format!("CPU over {} s idle (utime+stime)", IDLE.as_secs()),
                format!(
                    "{:.3} s ({:.3} %)",
                    idle_cpu,
                    idle_cpu / IDLE.as_secs_f64() * 100.0
                ),
                String::new(),
            ],
            vec![
                format!("RSS with {held} held jobs"),
                format!("{:.1} MB", mb(held_rss)),
                String::new(),
            ],
            vec![
                format!("peak RSS with {held} held jobs (VmHWM)"),
                format!("{:.1} MB", mb(held_hwm)),
                format!("< 64 MB ({})", verdict(mb(held_hwm), 64.0)),
            ],
            vec![
                format!("peak RSS after listing all {held} through the admin API (pages of 500)"),
                format!("{:.1} MB", mb(listing_hwm)),
                format!("< 64 MB ({})", verdict(mb(listing_hwm), 64.0)),
            ],
            vec![
                "CPU of the whole run".to_owned(),
                format!("{cpu_total:.2} s"),
                String::new(),
            ],
        ],
    );
    json_line(
        "memory",
        &json!({"idle_rss_mb": r2(mb(idle_rss)), "idle_rss_after_60s_mb": r2(mb(idle_rss_after)),
               "idle_hwm_mb": r2(mb(idle_hwm)), "idle_cpu_s": idle_cpu, "idle_seconds": IDLE.as_secs(),
               "held_jobs": held, "held_rss_mb": r2(mb(held_rss)), "held_hwm_mb": r2(mb(held_hwm)),
               "admin_listing_hwm_mb": r2(mb(listing_hwm)),
               "whole_run_cpu_s": r2(cpu_total)}),
    );
}
