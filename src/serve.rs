//! Serving a router on one listener with the limits a daemon on an office LAN (and a webhook on the
//! internet) needs, which `axum::serve` does not offer:
//!
//! - a **header-read timeout**: a connection that does not send a complete request head within
//!   `header_read_timeout` is closed — idle connections (nothing sent) and slow-header ones alike,
//!   and a keep-alive connection idle between requests for as long;
//! - a **request timeout**: a request (reading its body included) not answered within
//!   `request_timeout` answers 408;
//! - a **connection cap**: beyond `max_connections` open connections, new ones are closed at once,
//!   so file descriptors and memory stay bounded whatever a client does;
//! - optional **TLS** (rustls) whose certificate is read again on `SIGHUP` ([`crate::tls`]); the
//!   handshake has the header-read timeout too;
//! - `X-Content-Type-Options: nosniff` on every answer.
//!
//! Before the first connection, [`reserve_descriptors`] makes room in the process's descriptor table
//! for every listener's connection cap, so a burst of connections is not stalled by the table growing.
//!
//! HTTP/1.1 only: stations, the CLI, Prometheus and Graph's notification delivery all speak it.
//! Shutdown: stop accepting, ask every connection to finish its request in flight, and wait at most
//! [`DRAIN`] for them.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::log_throttle::Throttle;
use crate::tls::ReloadableTls;

/// How long shutdown waits for requests in flight.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head (or the TLS handshake) must arrive within this.
    pub header_read_timeout: Duration,
    /// A request must be answered within this (408 otherwise).
    pub request_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown`, with `limits` and optional TLS. `name` names the
/// listener in logs (`stations`, `admin`, `webhook`).
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<ReloadableTls>>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let refused = Throttle::new(Duration::from_secs(60));
    let failed_accepts = Throttle::new(Duration::from_secs(60));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                if let Some(suppressed) = failed_accepts.allow() {
                    tracing::warn!(listener = name, %error, suppressed, "accepting a connection failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if let Some(suppressed) = refused.allow() {
                tracing::warn!(
                    listener = name,
                    max_connections = limits.max_connections,
                    suppressed,
                    "connection refused: the connection cap is reached (a flood, or raise max_connections)"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let tls = tls.as_ref().map(|t| t.acceptor());
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            match tls {
                None => drive(&builder, TokioIo::new(stream), service, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                            .await;
                    if let Ok(Ok(stream)) = handshake {
                        drive(&builder, TokioIo::new(stream), service, stop).await;
                    }
                }
            }
        });
    }
    connections.close();
    if tokio::time::timeout(DRAIN, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "connections still open after the drain time; closing them"
        );
    }
}

/// Descriptors counted beyond the listeners' connection caps: the stores' connections, Graph's
/// connections, the audit and log files.
const OTHER_DESCRIPTORS: usize = 256;

/// Makes room in this process's descriptor table for `connections` open at once, plus
/// [`OTHER_DESCRIPTORS`], now rather than during the first burst; returns the table's size after.
///
/// Why: Linux grows a process's descriptor table by doubling when a new descriptor does not fit, and
/// in a process with several threads each growth waits for an RCU grace period with the calling
/// thread blocked. Measured on a 2-vCPU virtual machine: 10–20 ms per growth, with both runtime
/// threads blocked in `accept(2)` and `socket(2)`, so the first wave of Graph's deliveries to a
/// freshly started daemon waited there, not on its own work. The table never shrinks, so growing it
/// once costs a few bytes per slot and nothing later.
///
/// When the soft `RLIMIT_NOFILE` is below the need it is raised towards the hard limit: systemd's
/// default soft limit is 1024, and systemd.exec(5) asks a service that needs more to raise it
/// itself. A limit that stays below the need is a warning naming the fix; other failures are
/// logged and ignored: the daemon works without the room, only slower in its first burst.
pub fn reserve_descriptors(any: impl std::os::fd::AsFd, connections: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let want = connections.saturating_add(OTHER_DESCRIPTORS) as u64;
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let mut room = soft;
    if soft < want {
        let raised = want.min(hard);
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => room = raised,
            Err(error) => {
                tracing::debug!(%error, soft, want, "cannot raise the open-file limit");
            }
        }
    }
    if room < want {
        tracing::warn!(
            open_file_limit = room,
            needed = want,
            "the open-file limit is below the listeners' connection caps (api.max_connections per \
             listener) plus {OTHER_DESCRIPTORS}; a flood of connections may fail to be accepted: raise \
             LimitNOFILE= in the unit (or ulimit -n) or lower api.max_connections"
        );
    }
    // The highest descriptor that fits under the limit; asking for it grows the table to hold it.
    let highest = want.min(room).saturating_sub(1);
    if let Ok(highest) = i32::try_from(highest)
        && let Err(error) = rustix::io::fcntl_dupfd_cloexec(any, highest).map(drop)
    {
        tracing::debug!(%error, highest, "cannot grow the descriptor table ahead of time");
    }
    descriptor_table_size()
}

/// The size of this process's descriptor table (`FDSize` in `/proc/self/status`); 0 where it cannot
/// be read.
pub fn descriptor_table_size() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("FDSize:"))
                .and_then(|size| size.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Serves one connection; on shutdown lets the request in flight finish, then closes.
async fn drive<I>(
    builder: &http1::Builder,
    io: I,
    service: TowerToHyperService<Router>,
    stop: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = stop.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_table_is_grown_at_start_to_hold_every_connection_the_caps_allow() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        // Far above what the other tests of this process open, so the growth is this call's.
        let connections = 3 * 1536;
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .map_or(usize::MAX, |hard| {
                usize::try_from(hard).unwrap_or(usize::MAX)
            });
        let want = (connections + OTHER_DESCRIPTORS).min(hard);
        let size = reserve_descriptors(&listener, connections);
        assert!(
            size >= want,
            "the table holds {size} descriptors, fewer than the {want} wanted"
        );
        assert_eq!(size, descriptor_table_size(), "and it stays grown");
    }
}
