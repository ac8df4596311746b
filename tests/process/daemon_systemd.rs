//! The real `pullprintd run` under a stand-in for systemd: READY once the store and the listener are
//! up (Entra ID refusing or unreachable is a readiness reason on the status line and `/readyz`, not a
//! start condition), WATCHDOG pings while the engine turns, STOPPING and a clean exit on SIGTERM,
//! journald priorities; and what `/readyz` and `/metrics` show an operator meanwhile.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

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

use engine_support::free_port;

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

    // READY means serving: the API answers at once; /readyz turns 200 when the first token arrives
    // (READY no longer waits for Entra ID), which the instant emulator gives within moments.
    let base = format!("http://127.0.0.1:{port}");
    let mut status = 0;
    for _ in 0..100 {
        status = reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "/readyz once the first token is in");
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

/// Starts `pullprintd run` on `config` under a NOTIFY_SOCKET stand-in, logging for journald; returns
/// the child and the socket.
fn start_under_systemd(bed: &Bed, config: &std::path::Path) -> (Child, UnixDatagram) {
    let socket_path = bed.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("PULLPRINTD__LOG__FORMAT", "journald")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, socket)
}

/// Reads notifications until a `STATUS=` line contains `wanted`; returns that line.
fn status_containing(socket: &UnixDatagram, wanted: &str, deadline: Duration) -> String {
    let until = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < until {
        let Ok(n) = socket.recv(&mut buffer) else {
            continue;
        };
        for line in String::from_utf8_lossy(&buffer[..n]).lines() {
            if line.starts_with("STATUS=") && line.contains(wanted) {
                return line.to_owned();
            }
            seen.push(line.to_owned());
        }
    }
    panic!("no STATUS line with {wanted:?} within {deadline:?}; saw {seen:?}");
}

#[tokio::test]
async fn a_refused_credential_no_longer_blocks_ready_it_is_a_readiness_reason_and_an_error_in_the_journal()
 {
    let bed = Bed::default().await;
    let port = free_port();
    let config = bed.dir.path().join("pullprintd.toml");
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"", "state.db")
            .replace(pullprintd::emulator::DEMO_CLIENT_SECRET, "a-wrong-secret")
            .replace(
                "\nlisten = \"127.0.0.1:0\"\n",
                &format!("\nlisten = \"127.0.0.1:{port}\"\n"),
            ),
    )
    .unwrap();
    let (child, socket) = start_under_systemd(&bed, &config);
    let socket = std::sync::Arc::new(socket);

    // READY as soon as the store and the listener are up: Entra ID's answer is not waited for.
    let reader = std::sync::Arc::clone(&socket);
    let ready = tokio::task::spawn_blocking(move || {
        read_until(&reader, "READY=1", Duration::from_secs(30))
    })
    .await
    .unwrap();
    // The refusal becomes the status line (sent with READY when it was already known, else after)
    // and the /readyz reason.
    let status = match ready
        .iter()
        .find(|line| line.starts_with("STATUS=") && line.contains("refused"))
    {
        Some(line) => line.clone(),
        None => {
            let reader = std::sync::Arc::clone(&socket);
            tokio::task::spawn_blocking(move || {
                status_containing(&reader, "refused", Duration::from_secs(20))
            })
            .await
            .unwrap()
        }
    };
    assert!(status.contains("AADSTS7000215"), "{status}");
    let readyz = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    let body = readyz.text().await.unwrap();
    assert!(body.contains("refused the Graph credential"), "{body}");

    terminate(&child);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "a clean stop: {stderr}");
    assert!(
        !stderr.contains("a-wrong-secret"),
        "the secret is never logged"
    );
    // journald reads the priority from the line's `<N>` prefix: the refusal is an error (3).
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("<3>") && line.contains("refused the Graph credential")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|line| line.starts_with("<6>")),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_entra_id_does_not_delay_ready_and_the_status_line_says_why() {
    let bed = Bed::default().await;
    let config = bed.dir.path().join("pullprintd.toml");
    // Nothing listens on port 9 of the loopback: connections are refused at once.
    let text = bed.settings_toml("mode = \"poll\"", "state.db");
    let text = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("login_url") {
                "login_url = \"http://127.0.0.1:9\"".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("127.0.0.1:9\""),
        "the test bed sets login_url: {text}"
    );
    std::fs::write(&config, text).unwrap();
    let (child, socket) = start_under_systemd(&bed, &config);
    let socket = std::sync::Arc::new(socket);
    // READY within seconds, while the token request is still being retried (for up to two minutes):
    // the old daemon sent READY only after a token, so systemd's start timeout killed it in a loop.
    let reader = std::sync::Arc::clone(&socket);
    let ready = tokio::task::spawn_blocking(move || {
        read_until(&reader, "READY=1", Duration::from_secs(30))
    })
    .await
    .unwrap();
    let status = ready
        .iter()
        .find(|line| line.starts_with("STATUS="))
        .cloned()
        .unwrap_or_default();
    assert!(
        status.contains("not ready for") && status.contains("Graph token"),
        "{ready:?}"
    );
    terminate(&child);
    let status = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap().status)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
