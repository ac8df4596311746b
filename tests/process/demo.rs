//! `pullprintd demo`, the README's first command: it serves within seconds with no Microsoft account
//! and stops cleanly on Ctrl-C (SIGINT).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn the_demo_serves_the_kiosk_and_held_jobs_within_seconds_and_stops_on_ctrl_c() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The demo's log, shown if it never becomes ready.
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("demo.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The banner is printed once the daemon is built: read it line by line until the people.
    let banner = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.contains("Ctrl-C") {
                break;
            }
        }
        text
    });
    let banner = tokio::time::timeout(Duration::from_secs(60), banner)
        .await
        .expect("the banner within a minute")
        .unwrap();
    assert!(
        banner.contains(&format!("http://127.0.0.1:{port}/")),
        "{banner}"
    );
    assert!(banner.contains("card 1001"), "{banner}");

    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&base, &mut child, Some(&log_path)).await;
    let kiosk = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(kiosk.status(), 200);
    assert!(
        kiosk.text().await.unwrap().contains("<html"),
        "the kiosk page"
    );

    interrupt_and_expect_exit_0(child).await;
}

#[tokio::test]
async fn the_demo_keeps_running_when_its_standard_output_is_closed_before_the_banner() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The reader goes away at once (`pullprintd demo | head -0`): printing the banner meets a broken pipe.
    drop(child.stdout.take());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&base, &mut child, None).await;
    interrupt_and_expect_exit_0(child).await;
}

/// Polls `/readyz` until it answers 200 (an external process: its readiness endpoint is the signal
/// there is). Up to three minutes: on a loaded 2-core machine (the crash suites of this binary start
/// daemons at the same time) the first token, the subscription handshake and reconciliation take a
/// while. Fails at once if the demo exits, with its log when there is one.
async fn wait_until_ready(base: &str, child: &mut Child, log_path: Option<&Path>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let last = match reqwest::get(format!("{base}/readyz")).await {
            Ok(r) if r.status() == 200 => return,
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        let exited = child.try_wait().unwrap();
        if exited.is_some() || std::time::Instant::now() >= deadline {
            let log = log_path
                .map(|path| std::fs::read_to_string(path).unwrap_or_default())
                .unwrap_or_default();
            panic!(
                "the demo did not become ready; last /readyz answer: {last}; exited: {exited:?}; its log:\n{log}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ctrl-C (SIGINT), then the demo must exit 0.
async fn interrupt_and_expect_exit_0(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}
