//! The command line as an administrator meets it: the real binary, its output and its exit codes.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn pullprintd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pullprintd"));
    command.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const VALID: &str = r#"
[graph]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret = "the-secret-itself"

[intake]
mode = "poll"
"#;

#[test]
fn check_config_prints_the_effective_settings_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pullprintd.toml", VALID);
    let out = pullprintd(&["check-config", "--config", &config], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(
        stdout.contains("client_secret = \"[REDACTED]\""),
        "{stdout}"
    );
    assert!(!stdout.contains("the-secret-itself"), "{stdout}");
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pullprintd.toml", VALID);
    let out = pullprintd(
        &["check-config", "--config", &config],
        &[
            ("PULLPRINTD__INTAKE__POLL_INTERVAL", "45s"),
            (
                "PULLPRINTD__PRINTING__QUEUE_PRINTERS",
                "printer-a,printer-b",
            ),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("poll_interval = \"45s\""), "{stdout}");
    assert!(stdout.contains("\"printer-a\""), "{stdout}");
    assert!(stdout.contains("\"printer-b\""), "{stdout}");
}

#[test]
fn a_bad_configuration_exits_78_naming_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "pullprintd.toml",
        &VALID.replace("[graph]", "[graph]\ncloud = \"china\""),
    );
    let out = pullprintd(&["check-config", "--config", &config], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("graph.cloud"), "{stderr}");
    assert!(stderr.contains("21Vianet"), "{stderr}");
}

#[test]
fn a_missing_configuration_file_exits_78_and_says_where_the_example_is() {
    let out = pullprintd(
        &["check-config", "--config", "/nonexistent/pullprintd.toml"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("config/pullprintd.toml"), "{stderr}");
}

#[test]
fn an_unknown_command_is_a_usage_error_64() {
    let out = pullprintd(&["prnt"], &[]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn help_is_not_an_error() {
    let out = pullprintd(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("check-config"));
}

#[test]
fn hash_pin_prints_an_argon2id_hash_and_refuses_short_pins() {
    use std::io::Write;
    let run = |pin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
            .arg("hash-pin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run("2468\n");
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("$argon2id$v=19$"));
    let short = run("12\n");
    assert_eq!(short.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 4"));
}
