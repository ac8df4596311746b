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

// ---- secrets: credentials, the secrets each command needs, permission problems ------------------------

/// A configuration naming every secret relatively, as the install steps write it.
const RELATIVE: &str = r#"
[graph]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_file = "secrets/client-secret"

[intake]
mode = "poll"

[[stations]]
id = "lobby"
printer_id = "p1"
key_file = "secrets/lobby.key"

[api]
listen = "127.0.0.1:8"
admin_listen = "127.0.0.1:9"
admin_key_file = "secrets/admin.key"
"#;

fn secrets(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        std::fs::write(dir.join(name), format!("{name}-0123456789abcdef\n")).unwrap();
    }
}

#[test]
fn relative_secret_names_are_read_from_the_configuration_folder_in_a_root_shell() {
    let dir = tempfile::tempdir().unwrap();
    secrets(
        &dir.path().join("secrets"),
        &["client-secret", "lobby.key", "admin.key"],
    );
    let config = write(dir.path(), "pullprintd.toml", RELATIVE);
    // From another working directory, without systemd: relative to the configuration file.
    let out = Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .args(["check-config", "--config", &config])
        .current_dir("/")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn under_systemd_relative_secret_names_are_credentials_named_as_loadcredential_names_a_folders_files()
 {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pullprintd.toml", RELATIVE);
    // Nothing in the configuration folder: only $CREDENTIALS_DIRECTORY holds them, as
    // LoadCredential=secrets:/etc/pullprintd/secrets names them.
    let credentials = dir.path().join("credentials");
    secrets(
        &credentials,
        &[
            "secrets_client-secret",
            "secrets_lobby.key",
            "secrets_admin.key",
        ],
    );
    let out = pullprintd(
        &["check-config", "--config", &config],
        &[("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // A credential the unit does not pass is named, with the fix.
    std::fs::remove_file(credentials.join("secrets_lobby.key")).unwrap();
    let out = pullprintd(
        &["check-config", "--config", &config],
        &[("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("secrets_lobby.key"), "{stderr}");
    assert!(stderr.contains("LoadCredential="), "{stderr}");
}

#[test]
fn jobs_reads_only_the_admin_key_and_doctor_only_the_graph_credential() {
    let dir = tempfile::tempdir().unwrap();
    // Only the admin key exists: `jobs` gets past the configuration and fails only on the
    // connection (nothing listens on port 9: exit 69), not on the missing client secret (78).
    secrets(&dir.path().join("secrets"), &["admin.key"]);
    let config = write(dir.path(), "pullprintd.toml", RELATIVE);
    let out = pullprintd(&["jobs", "--config", &config], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(!stderr.contains("client-secret"), "{stderr}");

    // Everything else still needs what it uses: check-config reads every secret.
    let out = pullprintd(&["check-config", "--config", &config], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("graph.client_secret_file"), "{stderr}");
}

/// Runs the binary as an unprivileged user: through `setpriv` when the tests run as root (root reads
/// everything), directly otherwise. None when that is not possible here.
fn as_unprivileged(args: &[&str]) -> Option<Output> {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    let mut command = if root {
        let setpriv = Command::new("setpriv").arg("--version").output();
        if setpriv.is_err() {
            return None;
        }
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_pullprintd"));
        command
    } else {
        Command::new(env!("CARGO_BIN_EXE_pullprintd"))
    };
    Some(command.args(args).env_remove("RUST_LOG").output().unwrap())
}

#[test]
fn a_configuration_folder_the_user_cannot_enter_is_a_permission_problem_not_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pullprintd");
    std::fs::create_dir(&folder).unwrap();
    let config = write(&folder, "pullprintd.toml", VALID);
    // As the .deb's folder was before the fix: root:root 0750, and the user not in the group.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let Some(out) = as_unprivileged(&["check-config", "--config", &config]) else {
        eprintln!("skipped: running as root without setpriv");
        return;
    };
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(!stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot enter the folder {}", folder.display())),
        "{stderr}"
    );
    assert!(stderr.contains("uid "), "names the user: {stderr}");
}

#[test]
fn a_secret_file_the_user_cannot_read_is_a_permission_problem_naming_the_file_and_the_user() {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "the-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = write(
        dir.path(),
        "pullprintd.toml",
        &VALID.replace(
            "client_secret = \"the-secret-itself\"",
            "client_secret_file = \"client-secret\"",
        ),
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    if std::fs::metadata(&secret).is_ok() && as_unprivileged(&["--version"]).is_none() {
        eprintln!("skipped: running as root without setpriv");
        return;
    }
    // When not root, the file must be unreadable to this very user.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = as_unprivileged(&["check-config", "--config", &config]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", secret.display())),
        "{stderr}"
    );
}

#[test]
fn a_rule_that_can_never_match_exits_78_naming_both_rules_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "pullprintd.toml",
        &format!(
            "{VALID}\n[[rules]]\nname = \"hold everything\"\naction = \"hold\"\n\
             [[rules]]\nname = \"S2S grayscale\"\naction = \"release\"\n\
             match.printers = [\"p1\"]\nforce.color_mode = \"grayscale\"\n"
        ),
    );
    let out = pullprintd(&["check-config", "--config", &config], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("rules[1].match"), "{stderr}");
    assert!(stderr.contains("rule 1 \"S2S grayscale\""), "{stderr}");
    assert!(stderr.contains("rule 0 \"hold everything\""), "{stderr}");
    assert!(stderr.contains("move this rule above it"), "{stderr}");
}

#[test]
fn rules_test_says_which_rule_matches_without_reading_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "pullprintd.toml",
        "[graph]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"/nonexistent/secret\"\n\
         [[rules]]\nname = \"S2S grayscale\"\naction = \"release\"\n\
         match.printers = [\"p1\"]\nforce.color_mode = \"grayscale\"\n",
    );
    let out = pullprintd(
        &[
            "rules",
            "test",
            "--config",
            &config,
            "--printer",
            "p1",
            "--owner",
            "ada@contoso.com",
            "--name",
            "a.pdf",
            "--color",
            "color",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rule 0 \"S2S grayscale\" matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("decision: rule 0 \"S2S grayscale\": release"),
        "{stdout}"
    );
}
