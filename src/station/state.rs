//! [`StationState`]: everything the station and admin handlers share — the configured stations and
//! admin key, the users, lockout and sessions, the printer capabilities cache, the policy, and the
//! release service and store they act through — and the credential checks on it.
//!
//! Invariants: station and admin keys are compared in constant time (every station's key is compared,
//! so the time does not reveal which one matched); a session token is valid only for the station it
//! was made at, which it identifies by itself.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::http::{HeaderMap, header};
use time::Duration;

use super::cache::{Fetch, TtlCache};
use super::directory::DirectoryLookup;
use super::error::ApiError;
use super::lockout::{Lockout, LockoutPolicy};
use super::sessions::{Session, SessionError, Sessions};
use super::users::UserDirectory;
use crate::clock::SharedClock;
use crate::config::{Secret, Settings};
use crate::graph::GraphClient;
use crate::graph::model::Printer;
use crate::job::ReleasePolicy;
use crate::release::service::ReleaseService;
use crate::secrets::constant_time_eq;
use crate::store::Store;

/// How long printer capabilities are kept before `GET printer` is asked again.
pub const PRINTER_CACHE: Duration = Duration::minutes(10);

/// How long a request waits for printer capabilities before it goes on without them (policy-only
/// checks): a kiosk must stay usable while Graph is slow or down.
pub const PRINTER_LOOKUP_WAIT: StdDuration = StdDuration::from_secs(2);

/// A configured release station.
#[derive(Debug, Clone)]
pub struct Station {
    /// Its id (audit log).
    pub id: String,
    /// Where its releases print.
    pub printer_id: String,
    key: Secret,
}

/// What the station state is built from, besides the settings.
#[derive(Debug, Clone)]
pub struct StationDeps {
    /// Lists held jobs and accepts actions.
    pub release: ReleaseService,
    /// The audit log.
    pub store: Store,
    /// `GET printer` and the directory card lookup.
    pub graph: GraphClient,
    /// Session expiry, lockout and caches.
    pub clock: SharedClock,
    /// Sign-in outcomes and lockouts are counted here.
    pub metrics: crate::metrics::Metrics,
}

/// Shared by every station and admin handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StationState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stations: Vec<Station>,
    admin_key: Option<Secret>,
    users: Arc<UserDirectory>,
    directory: Option<DirectoryLookup>,
    lockout: Lockout,
    sessions: Sessions,
    printers: TtlCache<Printer>,
    policy: ReleasePolicy,
    release: ReleaseService,
    store: Store,
    clock: SharedClock,
    metrics: crate::metrics::Metrics,
}

fn to_time(duration: StdDuration) -> Duration {
    Duration::try_from(duration).unwrap_or(Duration::MAX)
}

impl StationState {
    /// Builds the state; reads the users file. The error is a configuration problem (exit 78).
    pub fn new(settings: &Settings, deps: StationDeps) -> Result<Self, String> {
        let users = match &settings.users.file {
            Some(path) => UserDirectory::load(path).map_err(|e| e.to_string())?,
            None => UserDirectory::default(),
        };
        let stations = settings
            .stations
            .iter()
            .map(|s| {
                s.key
                    .clone()
                    .map(|key| Station {
                        id: s.id.clone(),
                        printer_id: s.printer_id.clone(),
                        key,
                    })
                    .ok_or_else(|| format!("station `{}` has no key; set its key_file", s.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let graph = deps.graph;
        let fetch_graph = graph.clone();
        let fetch: Fetch<Printer> = Arc::new(move |printer_id: String| {
            let graph = fetch_graph.clone();
            Box::pin(async move { graph.get_printer(&printer_id).await })
        });
        let directory = settings.users.directory_lookup.then(|| {
            DirectoryLookup::new(
                graph,
                to_time(settings.users.directory_cache.0),
                deps.clock.clone(),
            )
        });
        Ok(Self {
            inner: Arc::new(Inner {
                stations,
                admin_key: settings.api.admin_key.clone(),
                users: Arc::new(users),
                directory,
                lockout: Lockout::new(LockoutPolicy::default(), deps.clock.clone()),
                sessions: Sessions::new(to_time(settings.users.session_idle.0), deps.clock.clone()),
                printers: TtlCache::new(
                    "printer capabilities",
                    PRINTER_CACHE,
                    deps.clock.clone(),
                    fetch,
                ),
                policy: ReleasePolicy::from_settings(&settings.release),
                release: deps.release,
                store: deps.store,
                clock: deps.clock,
                metrics: deps.metrics,
            }),
        })
    }

    /// The users file.
    pub fn users(&self) -> Arc<UserDirectory> {
        Arc::clone(&self.inner.users)
    }

    /// The Entra ID card lookup, when enabled.
    pub fn directory(&self) -> Option<&DirectoryLookup> {
        self.inner.directory.as_ref()
    }

    /// The metrics (sign-in outcomes).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Sign-in lockout.
    pub fn lockout(&self) -> &Lockout {
        &self.inner.lockout
    }

    /// Live sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The `[release]` policy.
    pub fn policy(&self) -> ReleasePolicy {
        self.inner.policy
    }

    /// The release service.
    pub fn release(&self) -> &ReleaseService {
        &self.inner.release
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }

    /// The store (audit log).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The printer with its capabilities, if Graph answers within [`PRINTER_LOOKUP_WAIT`] (or it is
    /// cached); `None` otherwise, and the caller goes on with policy-only checks.
    pub async fn printer(&self, printer_id: &str) -> Option<Printer> {
        match tokio::time::timeout(PRINTER_LOOKUP_WAIT, self.inner.printers.get(printer_id)).await {
            Ok(Ok(printer)) => Some(printer),
            Ok(Err(error)) => {
                tracing::warn!(printer_id, %error, "printer capabilities unavailable; checking the policy only");
                None
            }
            Err(_) => {
                tracing::warn!(
                    printer_id,
                    "printer capabilities slow to arrive; checking the policy only"
                );
                None
            }
        }
    }

    /// The station whose key is the bearer token.
    pub fn station_by_key(&self, headers: &HeaderMap) -> Result<&Station, ApiError> {
        let presented = bearer(headers)?;
        let mut found = None;
        for station in &self.inner.stations {
            if constant_time_eq(presented, station.key.expose()) {
                found = Some(station);
            }
        }
        found.ok_or_else(|| {
            tracing::warn!("a station call with an unknown key was refused");
            ApiError::unauthorized(
                "this station key is not known; set up the station again with the key from the administrator",
            )
        })
    }

    /// The session (and its station) whose token is the bearer token; extends it.
    pub fn session(&self, headers: &HeaderMap) -> Result<(Session, &Station), ApiError> {
        let token = bearer(headers)?;
        let session = self.inner.sessions.resume(token).map_err(|e| match e {
            SessionError::Invalid | SessionError::OtherStation => {
                ApiError::unauthorized(format!("{e}"))
            }
        })?;
        let station = self
            .inner
            .stations
            .iter()
            .find(|s| s.id == session.station_id)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the session's station is no longer configured; sign in again",
                )
            })?;
        Ok((session, station))
    }

    /// The session token of the request, if any (sign-out).
    pub fn session_token<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
        bearer(headers)
    }

    /// Checks the admin key.
    pub fn admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = bearer(headers)?;
        let Some(key) = &self.inner.admin_key else {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: set [api] admin_key_file in the configuration",
            ));
        };
        if constant_time_eq(presented, key.expose()) {
            Ok(())
        } else {
            tracing::warn!("an admin call with a wrong key was refused");
            Err(ApiError::unauthorized(
                "the admin key is wrong; use the key in [api] admin_key_file",
            ))
        }
    }
}

/// The bearer token of `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "send the station key, session token or admin key as `Authorization: Bearer …`",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}
