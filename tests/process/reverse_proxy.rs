//! The shipped nginx example (`deploy/nginx/pullprintd-webhook.conf`) in front of the daemon, with
//! the real nginx: Graph's notifications and validation handshake pass through to the webhook
//! listener (`[intake] listen`); the kiosk, the station and admin APIs, `/metrics` and `/readyz` are
//! 404 at the proxy and never reach the daemon.
//!
//! The test copy of the example changes only its `listen` lines (a free loopback port instead of
//! 443), its two certificate lines (a throwaway certificate made with `openssl`) and the upstream's
//! `server` line (the daemon's webhook port); everything else is the file as shipped. nginx runs as a
//! child with its own prefix, pid file, logs and temporary folders in a temporary directory.
//!
//! Without nginx (or openssl) the test is skipped with a message, except under `CI=true`, where it
//! fails.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine_support::Bed;
use pullprintd::app::{App, AppOptions};
use tokio_util::sync::CancellationToken;

const EXAMPLE: &str = include_str!("../../deploy/nginx/pullprintd-webhook.conf");

/// Replaces `from` (which must be in `text`: the example and this test must not drift apart).
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the nginx example no longer contains `{from}`; update the test"
    );
    text.replace(from, to)
}

/// The example with the test's ports and certificate; nothing else changed.
fn render(nginx_port: u16, webhook: SocketAddr, cert: &Path, key: &Path) -> String {
    let text = replace(
        EXAMPLE,
        "    listen 443 ssl;\n    listen [::]:443 ssl;\n",
        &format!("    listen 127.0.0.1:{nginx_port} ssl;\n"),
    );
    let text = replace(
        &text,
        "ssl_certificate /etc/ssl/certs/print-webhook.example.org.pem;",
        &format!("ssl_certificate {};", cert.display()),
    );
    let text = replace(
        &text,
        "ssl_certificate_key /etc/ssl/private/print-webhook.example.org.key;",
        &format!("ssl_certificate_key {};", key.display()),
    );
    replace(
        &text,
        "server 127.0.0.1:8443;",
        &format!("server {webhook};"),
    )
}

/// The main configuration around the example, standing in for Debian's `/etc/nginx/nginx.conf`:
/// every path inside `dir`. The access log records where each request went (`-`: nowhere).
fn main_config(dir: &Path, site: &Path) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         \x20   log_format upstream '$request_method $uri $status upstream=$upstream_addr';\n\
         \x20   access_log {d}/access.log upstream;\n\
         \x20   client_body_temp_path {d}/body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {site};\n\
         }}\n",
        site = site.display()
    )
}

/// A throwaway self-signed server certificate for 127.0.0.1, made with the openssl command.
fn throwaway_certificate(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    made.then_some((cert, key))
}

fn find_nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

use engine_support::free_port;

/// nginx in the foreground; stopped (SIGTERM, then waited for) when dropped, so its workers go too.
struct Nginx {
    child: Child,
}

impl Nginx {
    /// Asks nginx to stop and waits for it, so its access log is complete.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn the_nginx_example_publishes_the_webhook_and_nothing_else() {
    let under_ci = std::env::var("CI").as_deref() == Ok("true");
    let Some(nginx) = find_nginx() else {
        assert!(
            !under_ci,
            "nginx is required under CI for the reverse-proxy test: apt-get install -y nginx"
        );
        eprintln!("skipped: nginx is not installed (apt-get install -y nginx)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = throwaway_certificate(dir.path()) else {
        assert!(
            !under_ci,
            "openssl is required under CI for the reverse-proxy test"
        );
        eprintln!("skipped: no openssl command to make a throwaway certificate");
        return;
    };

    let bed = Bed::default().await;
    let mut settings = bed.settings("", "state.db");
    settings.intake.listen = Some("127.0.0.1:0".parse().unwrap());
    let app = App::build(settings, AppOptions::default()).await.unwrap();
    let webhook_addr = app.intake_addr().expect("a webhook listener");
    let stations = app.local_addr();
    let webhook = app.webhook();
    let stop = CancellationToken::new();
    let daemon = tokio::spawn(app.run_until_stopped(stop.clone()));

    let port = free_port();
    let site = dir.path().join("pullprintd-webhook.conf");
    std::fs::write(&site, render(port, webhook_addr, &cert, &key)).unwrap();
    let main = dir.path().join("nginx.conf");
    std::fs::write(&main, main_config(dir.path(), &site)).unwrap();
    let error_log = dir.path().join("error.log");
    let mut proxy = Nginx {
        child: Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&main)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    };
    // nginx is another process with no readiness signal: poll its port, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            panic!(
                "nginx exited ({status}) with the example configuration:\n{}",
                std::fs::read_to_string(&error_log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");

    // Graph's validation handshake: the token comes back, from pullprintd (its nosniff header).
    let validation = https
        .post(format!(
            "{base}/graph/notifications?validationToken=Validation%3A%20Testing"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(validation.status(), 200);
    assert_eq!(validation.headers()["x-content-type-options"], "nosniff");
    assert_eq!(validation.text().await.unwrap(), "Validation: Testing");

    // A notification reaches the webhook: 202, and the daemon counted it (a wrong clientState, so
    // it is counted as forged and dropped; what matters here is that it arrived).
    let notification = https
        .post(format!("{base}/graph/notifications"))
        .header("content-type", "application/json")
        .body(
            r#"{"value":[{"clientState":"not-the-secret","resource":"print/printers/x/jobs/y"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(notification.status(), 202);
    assert_eq!(webhook.forged(), 1, "the notification reached the daemon");

    // Everything else is 404 at the proxy (403 for another method on the webhook's path), answered
    // by nginx: no nosniff header, which pullprintd puts on every answer.
    let refused = [
        ("GET", "/", 404),
        ("GET", "/api/v1/station", 404),
        ("GET", "/api/v1/sessions", 404),
        ("POST", "/api/v1/sessions", 404),
        ("GET", "/api/v1/admin/jobs", 404),
        ("GET", "/metrics", 404),
        ("GET", "/readyz", 404),
        ("GET", "/healthz", 404),
        ("POST", "/graph/notifications/extra", 404),
        ("GET", "/graph/notifications?validationToken=x", 403),
    ];
    for (method, path, status) in refused {
        let response = https
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            status,
            "{method} {path} through the proxy"
        );
        assert!(
            !response.headers().contains_key("x-content-type-options"),
            "{method} {path} was answered by pullprintd, not by the proxy"
        );
    }
    // The same paths do exist on the daemon's station listener, so the 404s above are the proxy's.
    let readyz = reqwest::get(format!("http://{stations}/readyz"))
        .await
        .unwrap();
    assert_ne!(
        readyz.status(),
        404,
        "/readyz exists on the station listener"
    );

    // nginx's own record: only the two webhook requests went upstream, to the webhook listener.
    proxy.stop();
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let upstream = format!("upstream={webhook_addr}");
    let went: Vec<&str> = log.lines().filter(|l| !l.ends_with("upstream=-")).collect();
    assert_eq!(
        went.len(),
        2,
        "only the webhook requests went upstream:\n{log}"
    );
    for line in &went {
        assert!(
            line.starts_with("POST /graph/notifications ") && line.ends_with(&upstream),
            "{line}"
        );
    }
    assert_eq!(log.lines().count(), 2 + refused.len(), "{log}");

    stop.cancel();
    daemon.await.unwrap().unwrap();
}
