//! `pullprintd jobs`, `release` and `delete`: the real binary against the daemon's admin API (App +
//! emulator), with the admin key read from the configuration file.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use serde_json::json;
use station_support::*;

/// A configuration for the CLI: the daemon's admin address and the given admin key.
fn cli_config(bed: &Bed, admin_key: &str) -> std::path::PathBuf {
    let path = bed.dir.path().join(format!("cli-{}.toml", admin_key.len()));
    std::fs::write(
        &path,
        format!(
            "[graph]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\n[api]\nadmin_listen = \"{}\"\nadmin_key = \"{admin_key}\"\n",
            bed.admin
        ),
    )
    .unwrap();
    path
}

async fn pullprintd(args: Vec<String>) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(&args)
        .env_remove("PULLPRINTD_CONFIG")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn the_cli_lists_releases_and_deletes_held_jobs_with_the_admin_key() {
    let bed = Bed::start("").await;
    let (ada_job, ada_print) = bed.held_job(ADA, "cli-a.pdf", json!({"copies": 1})).await;
    let (bob_job, bob_print) = bed.held_job(BOB, "cli-b.pdf", json!({"copies": 1})).await;
    let config = cli_config(&bed, ADMIN_KEY);
    let config = config.to_str().unwrap();

    let (code, out, err) = pullprintd(args(&["jobs", "--config", config])).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&ada_job) && out.contains(&bob_job), "{out}");
    assert!(out.contains("cli-a.pdf") && out.contains(BOB), "{out}");

    let (code, out, err) = pullprintd(args(&[
        "release",
        &ada_job,
        "--copies",
        "3",
        "--duplex",
        "flipOnLongEdge",
        "--config",
        config,
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("released"), "{out}");
    let printed = bed.emulator.control().job(&ada_print).unwrap();
    assert_eq!(printed.configuration["copies"], 3);
    assert_eq!(printed.configuration["duplexMode"], "flipOnLongEdge");

    let (code, out, err) = pullprintd(args(&["delete", &bob_job, "--config", config])).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(
        bed.emulator.control().job(&bob_print).unwrap().state,
        "aborted"
    );

    let (code, _, err) = pullprintd(args(&["delete", &bob_job, "--config", config])).await;
    assert_eq!(code, 65, "an unknown job is a data error: {err}");
    assert!(err.contains("pullprintd jobs"), "{err}");
    bed.stop().await;
}

#[tokio::test]
async fn a_wrong_admin_key_is_a_configuration_error_and_a_stopped_daemon_is_unavailable() {
    let bed = Bed::start("").await;
    let wrong = cli_config(&bed, "not-the-admin-key-0123456789");
    let (code, _, err) = pullprintd(args(&["jobs", "--config", wrong.to_str().unwrap()])).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("admin key"), "{err}");
    let (code, _, err) = pullprintd(args(&[
        "release",
        "x",
        "--copies",
        "1000",
        "--config",
        cli_config(&bed, ADMIN_KEY).to_str().unwrap(),
    ]))
    .await;
    assert_eq!(code, 65, "{err}");
    // The bed's directory goes with it: keep a copy of the configuration elsewhere.
    let kept = tempfile::tempdir().unwrap();
    let config = kept.path().join("cli.toml");
    std::fs::copy(cli_config(&bed, ADMIN_KEY), &config).unwrap();
    bed.stop().await;
    let (code, _, err) = pullprintd(args(&["jobs", "--config", config.to_str().unwrap()])).await;
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("is `pullprintd run` running"), "{err}");
}
