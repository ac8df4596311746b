//! A PostgreSQL store that cannot be used stops `pullprintd check-config` and `pullprintd run` at
//! once with a message naming the fix, and the exit code says whether to fix the configuration (78)
//! or wait for the server (69): an unreachable server, a refused login, a missing database, and a
//! database a newer pullprintd has upgraded.

use crate::engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::Bed;
use pullprintd::store::Store;
use pullprintd::store::scratch::ScratchDatabase;
use tokio::process::Command;

/// Runs `pullprintd COMMAND --config` on `bed`'s configuration with `[store] url = url`; returns the
/// exit code and standard error.
async fn pullprintd(bed: &Bed, command: &str, url: &str) -> (Option<i32>, String) {
    let mut config = bed.config("mode = \"poll\"\npoll_interval = \"1h\"", "unused.db");
    config.store_url = Some(url.to_owned());
    let path = bed.dir.path().join(format!("{command}.toml"));
    std::fs::write(&path, config.to_toml()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .arg(command)
        .arg("--config")
        .arg(&path)
        .env_remove("PULLPRINTD_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("pullprintd exits at once instead of running")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unreachable_database_server_exits_69_for_check_config_and_run_naming_the_server() {
    let bed = Bed::default().await;
    // Port 1 on the loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://pullprintd:secret-password@127.0.0.1:1/pullprintd";
    for command in ["check-config", "run"] {
        let (code, stderr) = pullprintd(&bed, command, url).await;
        assert_eq!(code, Some(69), "{command}: {stderr}");
        assert!(stderr.contains("127.0.0.1:1"), "{command}: {stderr}");
        assert!(
            stderr.contains("is PostgreSQL running"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("secret-password"), "{command}: {stderr}");
    }
}

#[tokio::test]
async fn a_refused_login_or_a_missing_database_exits_78_naming_what_to_fix() {
    let Some(scratch) = ScratchDatabase::create().await else {
        return;
    };
    let bed = Bed::default().await;
    let mut unknown_user = scratch.url().url().clone();
    unknown_user
        .set_username("no_such_pullprintd_user")
        .unwrap();
    let mut missing = scratch.url().url().clone();
    missing.set_path("/no_such_pullprintd_database");
    for (url, fix) in [
        (unknown_user.as_str(), "check the user and password"),
        (missing.as_str(), "the database does not exist"),
    ] {
        for command in ["check-config", "run"] {
            let (code, stderr) = pullprintd(&bed, command, url).await;
            assert_eq!(code, Some(78), "{command} {url}: {stderr}");
            assert!(stderr.contains(fix), "{command} {url}: {stderr}");
        }
    }
}

#[tokio::test]
async fn a_database_upgraded_by_a_newer_version_exits_78_and_is_left_unchanged() {
    let Some(scratch) = ScratchDatabase::create().await else {
        return;
    };
    let store = Store::connect(scratch.url()).await.unwrap();
    store.close().await;
    // What a newer pullprintd's migration would leave behind.
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(scratch.url().url().as_str())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(&raw)
    .await
    .unwrap();

    let bed = Bed::default().await;
    for command in ["check-config", "run"] {
        let (code, stderr) = pullprintd(&bed, command, scratch.url().url().as_str()).await;
        assert_eq!(code, Some(78), "{command}: {stderr}");
        assert!(
            stderr.contains("upgraded by a newer pullprintd") && stderr.contains("9999"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("run that newer version"),
            "{command}: {stderr}"
        );
    }
    let (newer,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 9999")
            .fetch_one(&raw)
            .await
            .unwrap();
    assert_eq!(newer, 1, "the newer version's record is left alone");
    raw.close().await;
}
