//! The daemon makes room for its connections when it starts: started with a soft open-file limit
//! below its listeners' connection caps (systemd's default is 1024), it raises the limit and grows
//! its descriptor table to hold every listener's connection cap. Without this the first burst of connections (a wave of Graph's
//! deliveries) stalls while the kernel grows the table, and a flood past 1024 descriptors fails to be
//! accepted at all. A limit it cannot raise far enough is a warning naming the fix.

use crate::engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::{Bed, eventually};
use tokio::process::{Child, Command};

/// Starts `pullprintd run` on `bed` after `ulimit` (its arguments) lowered the open-file limit; the
/// log (stderr) is piped.
fn daemon_under(bed: &Bed, ulimit: &str) -> Child {
    let config = bed.dir.path().join("daemon.toml");
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"\npoll_interval = \"1h\"", "state.db"),
    )
    .unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit {ulimit} && exec \"$0\" run --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_pullprintd"))
        .arg(&config)
        .env_remove("PULLPRINTD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// A field of `/proc/{pid}/status` or `/proc/{pid}/limits`, read by `pick`.
fn proc_figure(pid: u32, file: &str, pick: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find_map(pick)
}

#[tokio::test]
async fn a_daemon_started_under_a_low_open_file_limit_raises_it_and_makes_room_for_every_connection()
 {
    let bed = Bed::default().await;
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    // A soft limit far below the need, whatever this machine's hard limit allows above it.
    let soft = 256;
    assert!(
        hard > soft,
        "this test needs a hard open-file limit above {soft}, not {hard}"
    );
    // Two listeners (stations, admin) of 512 connections each, and room for the rest.
    let want = (2 * 512 + 256_u64).min(hard);
    let mut daemon = daemon_under(&bed, &format!("-Sn {soft}"));
    let pid = daemon.id().unwrap();
    eventually(
        Duration::from_secs(30),
        "the daemon raises its open-file limit and grows its descriptor table",
        || async {
            let raised = proc_figure(pid, "limits", |line| {
                line.strip_prefix("Max open files")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
            let table = proc_figure(pid, "status", |line| {
                line.strip_prefix("FDSize:")?.trim().parse().ok()
            });
            raised.is_some_and(|limit| limit >= want) && table.is_some_and(|size| size >= want)
        },
    )
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon runs");
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_daemon_whose_open_file_limit_cannot_hold_its_connection_caps_says_how_to_fix_it_and_runs()
 {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let bed = Bed::default().await;
    // Soft and hard limit alike: the daemon cannot raise it to the 1,280 its two listeners need.
    let mut daemon = daemon_under(&bed, "-n 512");
    let mut log = BufReader::new(daemon.stderr.take().unwrap()).lines();
    let warning = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match log.next_line().await.unwrap() {
                Some(line) if line.contains("open-file limit") => return line,
                Some(_) => {}
                None => panic!("the daemon's output ended without the warning"),
            }
        }
    })
    .await
    .expect("the warning within 30 s");
    for part in ["512", "1280", "LimitNOFILE", "api.max_connections"] {
        assert!(warning.contains(part), "{part} missing from: {warning}");
    }
    assert!(daemon.try_wait().unwrap().is_none(), "the daemon runs");
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}
