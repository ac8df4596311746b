//! [`StationState`]: everything the station and admin handlers share — the configured stations and
//! admin key, the users, lockout, failure budgets, PIN-check permits and sessions, the printer
//! capabilities cache, the policy, and the release service and store they act through — and the
//! credential checks on it.
//!
//! Invariants: station and admin keys are compared in constant time (every station's key is compared,
//! so the time does not reveal which one matched); a session token is accepted only together with the
//! key of the station it was made at (`X-Station-Key`); wrong keys are logged at most once a minute.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::http::{HeaderMap, header};
use time::Duration;

use super::budget::{BudgetPolicy, FailureBudget};
use super::directory::DirectoryLookup;
use super::error::ApiError;
use super::lockout::{Lockout, LockoutPolicy};
use super::phone::PhoneSignIn;
use super::sessions::{Presented, Session, Sessions};
use super::users::UserDirectory;
use crate::cache::{Fetch, TtlCache};
use crate::clock::SharedClock;
use crate::config::{Secret, Settings};
use crate::graph::GraphClient;
use crate::graph::model::Printer;
use crate::job::ReleasePolicy;
use crate::log_throttle::Throttle;
use crate::metrics::Metrics;
use crate::release::service::ReleaseService;
use crate::secrets::constant_time_eq;
use crate::store::Store;

/// The header carrying the station key on session calls (the bearer token is the session's).
pub const STATION_KEY_HEADER: &str = "x-station-key";

/// How long printer capabilities are kept before `GET printer` is asked again.
pub const PRINTER_CACHE: Duration = Duration::minutes(10);

/// How old a printer's status may be when a release asks whether it can print (the entry is shared
/// with the capabilities).
pub const PRINTER_STATUS_MAX_AGE: Duration = crate::job::readiness::STATUS_MAX_AGE;

/// How long a request waits for printer capabilities before it goes on without them (policy-only
/// checks): a kiosk must stay usable while Graph is slow or down.
pub const PRINTER_LOOKUP_WAIT: StdDuration = StdDuration::from_secs(2);

/// What a sign-in request must look like (`[users]`).
#[derive(Debug, Clone)]
pub struct SignInRules {
    /// `[users] card_pattern`, anchored.
    pub card_pattern: regex::Regex,
    /// `[users] card_requires_pin`.
    pub card_requires_pin: bool,
    /// `[users] pin_min_length`.
    pub pin_min_length: usize,
}

/// How many PIN checks may run at once: two per core, so a burst queues on nothing and the blocking
/// pool (and memory: ~19 MiB per argon2 run) stays bounded; the rest answer 429 at once.
fn pin_check_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// A configured release station.
#[derive(Debug, Clone)]
pub struct Station {
    /// Its id (audit log).
    pub id: String,
    /// Where its releases print.
    pub printer_id: String,
    /// `group`: stations people can walk between (`None`: the stations without a group).
    pub group: Option<String>,
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
    /// Sign-in outcomes, lockouts and PIN checks are counted here.
    pub metrics: Metrics,
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
    /// Members of the users file's `delegate_group`s, when it names any.
    delegate_groups: Option<crate::groups::GroupLookup>,
    lockout: Arc<Lockout>,
    budget: Arc<FailureBudget>,
    pin_checks: Arc<tokio::sync::Semaphore>,
    sign_in: SignInRules,
    metrics: Metrics,
    /// One warning a minute about wrong station or admin keys, however many arrive.
    refusals: Throttle,
    sessions: Sessions,
    printers: TtlCache<Printer>,
    policy: ReleasePolicy,
    /// Entra ID sign-in (`[phone]`), when on.
    phone: Option<Arc<PhoneSignIn>>,
    /// `[printing] pull_printers`.
    pull_printers: Vec<String>,
    /// Their names (one read per pull printer per ten minutes).
    pull_printer_names: TtlCache<crate::graph::pull_print::PullPrintPrinter>,
    /// Pull-print reads and releases (the person's delegated token).
    graph: GraphClient,
    release: ReleaseService,
    store: Store,
    clock: SharedClock,
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
                        group: s.group.clone(),
                        key,
                    })
                    .ok_or_else(|| format!("station `{}` has no key; set its key_file", s.id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let graph = deps.graph;
        let phone = PhoneSignIn::new(&settings.phone, &graph, deps.clock.clone());
        let fetch_graph = graph.clone();
        let fetch: Fetch<Printer> = Arc::new(move |printer_id: String| {
            let graph = fetch_graph.clone();
            Box::pin(async move { graph.get_printer(&printer_id).await })
        });
        let pull_graph = graph.clone();
        let pull_fetch: Fetch<crate::graph::pull_print::PullPrintPrinter> =
            Arc::new(move |id: String| {
                let graph = pull_graph.clone();
                Box::pin(async move { graph.get_pull_printer(&id).await })
            });
        let named = users.delegate_groups();
        let delegate_groups = (!named.is_empty())
            .then(|| crate::groups::GroupLookup::new(graph.clone(), deps.clock.clone(), named));
        let directory = settings.users.directory_lookup.then(|| {
            DirectoryLookup::new(
                graph.clone(),
                to_time(settings.users.directory_cache.0),
                settings.users.directory_cache_size,
                deps.clock.clone(),
            )
        });
        let card_pattern = crate::config::card_pattern(&settings.users.card_pattern)
            .map_err(|e| format!("users.card_pattern: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                stations,
                admin_key: settings.api.admin_key.clone(),
                users: Arc::new(users),
                directory,
                delegate_groups,
                lockout: Arc::new(
                    Lockout::new(LockoutPolicy::default(), deps.clock.clone())
                        .shared_through(&deps.store),
                ),
                budget: Arc::new(
                    FailureBudget::new(
                        BudgetPolicy {
                            per_station: settings.users.station_failure_budget,
                            global: settings.users.global_failure_budget,
                            window: to_time(settings.users.failure_window.0),
                        },
                        deps.clock.clone(),
                    )
                    .shared_through(&deps.store),
                ),
                pin_checks: Arc::new(tokio::sync::Semaphore::new(pin_check_permits())),
                sign_in: SignInRules {
                    card_pattern,
                    card_requires_pin: settings.users.card_requires_pin,
                    pin_min_length: settings.users.pin_min_length,
                },
                metrics: deps.metrics,
                refusals: Throttle::new(StdDuration::from_secs(60)),
                sessions: Sessions::new(
                    to_time(settings.users.session_idle.0),
                    to_time(settings.users.session_lifetime.0),
                    deps.clock.clone(),
                )
                .shared_through(&deps.store),
                printers: TtlCache::new(
                    "printer capabilities",
                    PRINTER_CACHE,
                    deps.clock.clone(),
                    fetch,
                ),
                policy: settings.release.policy(),
                phone,
                pull_printers: settings.printing.pull_printers.clone(),
                pull_printer_names: TtlCache::new(
                    "pull-print printers",
                    PRINTER_CACHE,
                    deps.clock.clone(),
                    pull_fetch,
                ),
                graph,
                release: deps.release,
                store: deps.store,
                clock: deps.clock,
            }),
        })
    }

    /// Entra ID sign-in from the phone and at the kiosk, when `[phone]` turns it on.
    pub fn phone(&self) -> Option<&PhoneSignIn> {
        self.inner.phone.as_deref()
    }

    /// `[printing] pull_printers`.
    pub fn pull_printers(&self) -> &[String] {
        &self.inner.pull_printers
    }

    /// A pull-print printer's name, when Graph tells it within the printer look-up's wait.
    pub async fn pull_printer_name(&self, id: &str) -> Option<String> {
        tokio::time::timeout(PRINTER_LOOKUP_WAIT, self.inner.pull_printer_names.get(id))
            .await
            .ok()?
            .ok()
            .map(|p| p.display_name)
            .filter(|n| !n.is_empty())
    }

    /// The Graph client.
    pub fn graph(&self) -> &GraphClient {
        &self.inner.graph
    }

    /// The users file.
    pub fn users(&self) -> Arc<UserDirectory> {
        Arc::clone(&self.inner.users)
    }

    /// The Entra ID card lookup, when enabled.
    pub fn directory(&self) -> Option<&DirectoryLookup> {
        self.inner.directory.as_ref()
    }

    /// Sign-in lockout.
    pub fn lockout(&self) -> &Arc<Lockout> {
        &self.inner.lockout
    }

    /// The per-station and global failure budgets.
    pub fn budget(&self) -> &Arc<FailureBudget> {
        &self.inner.budget
    }

    /// Permits for PIN checks (argon2 costs ~19 MiB and tens of milliseconds of a core each).
    pub fn pin_checks(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.pin_checks
    }

    /// What a sign-in must look like.
    pub fn sign_in_rules(&self) -> &SignInRules {
        &self.inner.sign_in
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
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

    /// The people whose jobs `upn` may see and release as their delegate: those who list `upn` in
    /// `delegates`, and those whose `delegate_group` has `upn` as a member (read from Entra ID,
    /// cached; when Graph cannot tell, only the first kind, and a warning).
    pub async fn delegators_of(&self, upn: &str) -> Vec<String> {
        let mut owners = self.inner.users.delegators_of(upn).to_vec();
        if let Some(lookup) = &self.inner.delegate_groups {
            let membership = lookup.membership(upn).await;
            if let Some(why) = &membership.unavailable {
                tracing::warn!(user = %upn, %why, "delegate groups cannot be read; only the users file's delegates apply");
            }
            for owner in self.inner.users.owners_delegating_to(&membership.member_of) {
                if !owner.eq_ignore_ascii_case(upn) && !owners.contains(&owner) {
                    owners.push(owner);
                }
            }
        }
        owners
    }

    /// Why `printer_id` cannot print now, from its status at most [`PRINTER_STATUS_MAX_AGE`] old;
    /// `None` when it can, and when Graph cannot tell us in time (a release then goes ahead, as it
    /// did before the printer was asked: the durable queue carries it either way).
    pub async fn not_ready(&self, printer_id: &str) -> Option<crate::job::readiness::NotReady> {
        let read = self
            .inner
            .printers
            .get_within(printer_id, PRINTER_STATUS_MAX_AGE);
        crate::job::readiness::read_within(printer_id, read).await
    }

    /// The other stations of `station`'s group with another printer, one per printer, in the
    /// configuration's order: where a person can walk to when this printer cannot print.
    pub fn group_stations(&self, station: &Station) -> Vec<&Station> {
        group_stations(&self.inner.stations, station)
    }

    /// The station whose key is the bearer token.
    pub fn station_by_key(&self, headers: &HeaderMap) -> Result<&Station, ApiError> {
        self.station_with_key(bearer(headers)?)
    }

    fn station_with_key(&self, presented: &str) -> Result<&Station, ApiError> {
        let mut found = None;
        for station in &self.inner.stations {
            if constant_time_eq(presented, station.key.expose()) {
                found = Some(station);
            }
        }
        found.ok_or_else(|| {
            if let Some(suppressed) = self.inner.refusals.allow() {
                tracing::warn!(suppressed, "a station call with an unknown key was refused");
            }
            ApiError::unauthorized(
                "this station key is not known; set up the station again with the key from the administrator",
            )
        })
    }

    /// The session whose token is the bearer token, presented together with the key of the station
    /// it was made at (`X-Station-Key`); extends it. A token alone, or with another station's key,
    /// is refused: a session seen over someone's shoulder or in a proxy log is useless elsewhere.
    /// The one exception is a phone's session (made by an Entra ID sign-in that a single-use code of
    /// a station's kiosk started): the phone has no station key, so its token alone is accepted, for
    /// that station only.
    pub async fn session(&self, headers: &HeaderMap) -> Result<(Session, &Station), ApiError> {
        let token = bearer(headers)?;
        let key = headers
            .get(STATION_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let (presented, keyed) = match key {
            Some(key) => {
                let station = self.station_with_key(key)?;
                (Presented::AtStation(&station.id), Some(station))
            }
            None => (Presented::Phone, None),
        };
        let session = self
            .inner
            .sessions
            .touch_as(token, presented)
            .await
            .map_err(|e| ApiError::store_unavailable("checking the session", &e))?
            .map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let station = match keyed {
            Some(station) => station,
            None => self.station(&session.station_id).ok_or_else(|| {
                ApiError::unauthorized(
                    "the station of this session is no longer configured; scan a new code",
                )
            })?,
        };
        Ok((session, station))
    }

    /// The configured station `id`.
    pub fn station(&self, id: &str) -> Option<&Station> {
        self.inner.stations.iter().find(|s| s.id == id)
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
            if let Some(suppressed) = self.inner.refusals.allow() {
                tracing::warn!(suppressed, "an admin call with a wrong key was refused");
            }
            Err(ApiError::unauthorized(
                "the admin key is wrong; use the key in [api] admin_key_file",
            ))
        }
    }
}

fn group_stations<'s>(stations: &'s [Station], station: &Station) -> Vec<&'s Station> {
    let mut found: Vec<&Station> = Vec::new();
    for other in stations {
        if other.group == station.group
            && other.printer_id != station.printer_id
            && !found.iter().any(|f| f.printer_id == other.printer_id)
        {
            found.push(other);
        }
    }
    found
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

#[cfg(test)]
mod tests {
    use super::*;

    fn station(id: &str, printer_id: &str, group: Option<&str>) -> Station {
        Station {
            id: id.to_owned(),
            printer_id: printer_id.to_owned(),
            group: group.map(str::to_owned),
            key: Secret::new(format!("{id}-key-0123456789")),
        }
    }

    #[test]
    fn the_group_is_the_other_printers_of_stations_in_the_same_group() {
        let stations = [
            station("a", "p1", Some("floor 2")),
            station("b", "p2", Some("floor 2")),
            station("b2", "p2", Some("floor 2")),
            station("c", "p1", Some("floor 2")),
            station("d", "p3", Some("floor 3")),
            station("e", "p4", None),
            station("f", "p5", None),
        ];
        let ids = |s: &Station| {
            group_stations(&stations, s)
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&stations[0]),
            ["b"],
            "one entry per printer, not its own"
        );
        assert!(ids(&stations[4]).is_empty());
        assert_eq!(
            ids(&stations[5]),
            ["f"],
            "stations without a group are one group"
        );
    }
}
