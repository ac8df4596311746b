//! Throwaway PostgreSQL databases for the tests and benchmarks of the PostgreSQL store: each
//! [`ScratchDatabase`] is a new database with a unique name on the test server, dropped when the
//! value is dropped, so parallel runs (and engineers sharing a server) never see each other's rows.
//!
//! The server is `PULLPRINTD_TEST_POSTGRES` (a URL to a database the user may connect to and whose
//! user may `CREATE DATABASE`), by default `postgres://root@127.0.0.1:5432/postgres`. When it cannot
//! be reached, [`ScratchDatabase::create`] says so and returns `None` so the test can skip, except
//! under `CI=true`, where a missing server must fail the run rather than pass it silently.
#![doc(hidden)]

use std::str::FromStr as _;

use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

use crate::config::DatabaseUrl;

/// The environment variable naming the test server.
pub const SERVER_ENV: &str = "PULLPRINTD_TEST_POSTGRES";
/// The server when [`SERVER_ENV`] is not set.
pub const DEFAULT_SERVER: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A database of its own on the test server; dropped (with any connection still open) on drop.
#[derive(Debug)]
pub struct ScratchDatabase {
    server: String,
    name: String,
    url: DatabaseUrl,
}

impl ScratchDatabase {
    /// Creates a new empty database. `None` (after printing why) when the server cannot be reached
    /// outside CI; panics under `CI=true`, or when the server is reached but refuses the database.
    #[allow(clippy::expect_used, clippy::panic)]
    pub async fn create() -> Option<Self> {
        let server = std::env::var(SERVER_ENV).unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        let options = sqlx::postgres::PgConnectOptions::from_str(&server).unwrap_or_else(|err| {
            panic!("{SERVER_ENV} = {server:?} is not a PostgreSQL URL: {err}")
        });
        let mut admin = match options.connect().await {
            Ok(conn) => conn,
            Err(err) => {
                let message = format!(
                    "PostgreSQL is not reachable at {server} ({err}): start it, or set {SERVER_ENV}"
                );
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("{message}");
                }
                eprintln!("skipped: {message}");
                return None;
            }
        };
        let name = format!(
            "pullprintd_test_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|err| panic!("cannot create the scratch database {name}: {err}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&server).expect("parsed above");
        url.set_path(&format!("/{name}"));
        let url = DatabaseUrl::parse(url.as_str()).expect("a postgres URL with a host");
        Some(Self { server, name, url })
    }

    /// The URL of the scratch database (for `[store] url`).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime that must not block on itself: a thread of its own with a
        // small runtime drops the database, and a failure only leaves a database behind.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&server).await.ok()?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the scratch database {}", self.name);
        }
    }
}
