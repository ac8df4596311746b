//! The real `pullprintd run` under a stand-in for systemd: READY only once it can work, WATCHDOG
//! pings while the engine turns, STOPPING and a clean exit on SIGTERM; and what `/readyz` and
//! `/metrics` show an operator meanwhile.
#![allow(clippy::unwrap_used)]

mod engine_support;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine_support::Bed;

/// Reads notifications until one equals `wanted`, within `deadline`; returns everything read.
fn read_until(socket: &UnixDatagram, wanted: &str, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < until {
        let Ok(n) = socket.recv(&mut buffer) else {
            continue; // read timeout: look at the deadline again
        };
        let message = String::from_utf8_lossy(&buffer[..n]).to_string();
        let found = message.lines().any(|line| line == wanted);
        seen.extend(message.lines().map(str::to_owned));
        if found {
            return seen;
        }
    }
    panic!("no {wanted} within {deadline:?}; saw {seen:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn under_systemd_the_daemon_says_ready_pings_the_watchdog_and_stops_cleanly() {
    let bed = Bed::default().await;
    let port = free_port();
    let admin_port = free_port();
    let config = bed.dir.path().join("pullprintd.toml");
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"\npoll_interval = \"1s\"", "state.db")
            .replace(
                "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
                &format!(
                    "listen = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\""
                ),
            ),
    )
    .unwrap();
    let socket_path = bed.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let socket = std::sync::Arc::new(socket);
    let reader = std::sync::Arc::clone(&socket);
    let ready = tokio::task::spawn_blocking(move || {
        read_until(&reader, "READY=1", Duration::from_secs(30))
    })
    .await
    .unwrap();
    assert!(
        ready.iter().all(|line| line != "WATCHDOG=1"),
        "no watchdog ping before READY: {ready:?}"
    );

    // Ready means ready: the API answers and says so.
    let base = format!("http://127.0.0.1:{port}");
    let readyz = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 200);
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pullprintd_"), "{metrics}");

    let reader = std::sync::Arc::clone(&socket);
    let pings = tokio::task::spawn_blocking(move || {
        let mut pings = 0;
        while pings < 3 {
            let seen = read_until(&reader, "WATCHDOG=1", Duration::from_secs(5));
            pings += seen.iter().filter(|l| *l == "WATCHDOG=1").count();
        }
        pings
    })
    .await
    .unwrap();
    assert!(pings >= 3);

    terminate(&child);
    let reader = std::sync::Arc::clone(&socket);
    tokio::task::spawn_blocking(move || read_until(&reader, "STOPPING=1", Duration::from_secs(15)))
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop exits 0");
}

#[tokio::test]
async fn a_refused_credential_stops_the_daemon_with_exit_78_and_never_says_ready() {
    let bed = Bed::default().await;
    let config = bed.dir.path().join("pullprintd.toml");
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"", "state.db")
            .replace(pullprintd::emulator::DEMO_CLIENT_SECRET, "a-wrong-secret"),
    )
    .unwrap();
    let socket_path = bed.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pullprintd"))
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(
        !stderr.contains("a-wrong-secret"),
        "the secret is never logged"
    );
    let mut buffer = [0u8; 4096];
    let mut notes = Vec::new();
    while let Ok(n) = socket.recv(&mut buffer) {
        notes.push(String::from_utf8_lossy(&buffer[..n]).to_string());
    }
    assert!(
        notes.iter().all(|n| !n.contains("READY=1")),
        "never READY: {notes:?}"
    );
}
