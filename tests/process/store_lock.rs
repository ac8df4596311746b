//! One daemon per store, tried with real binaries: a second `pullprintd run` on the same store exits
//! at once with 75 (`EX_TEMPFAIL`) naming the store and the holder's PID, and after the holder is
//! killed with SIGKILL the kernel has released the lock, so the next start takes it.

use crate::engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::{Bed, eventually};
use pullprintd::store::StoreLock;
use tokio::process::{Child, Command};

fn daemon(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .env_remove("PULLPRINTD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// Waits until the lock file names `pid` as its holder.
async fn holds_the_lock(lock: &std::path::Path, pid: u32) {
    eventually(
        Duration::from_secs(30),
        "the daemon takes the store lock",
        || async { std::fs::read_to_string(lock).is_ok_and(|text| text.trim() == pid.to_string()) },
    )
    .await;
}

#[tokio::test]
async fn a_second_process_on_the_same_store_exits_75_naming_the_holder_and_a_killed_holder_frees_it()
 {
    let bed = Bed::default().await;
    let config = bed.dir.path().join("daemon.toml");
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"\npoll_interval = \"1h\"", "state.db"),
    )
    .unwrap();
    let store = bed.dir.path().join("state.db");
    let lock = StoreLock::path_for(&store);

    let mut first = daemon(&config);
    let first_pid = first.id().unwrap();
    holds_the_lock(&lock, first_pid).await;

    let second = daemon(&config);
    let output = tokio::time::timeout(Duration::from_secs(30), second.wait_with_output())
        .await
        .expect("the second daemon exits at once instead of running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains(&store.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("PID {first_pid}")), "{stderr}");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first daemon keeps running"
    );

    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let mut third = daemon(&config);
    let third_pid = third.id().unwrap();
    holds_the_lock(&lock, third_pid).await;
    assert!(third.try_wait().unwrap().is_none(), "the third daemon runs");
    third.start_kill().unwrap();
    third.wait().await.unwrap();
}
