//! Opening the store: driver selection, SQLite pragmas, pool size, migrations.

use crate::{Store, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, migrate::Migrator};
use std::time::Duration;
use stephook_core::{DatabaseKind, StoreConfig};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// SQLite has one writer at a time; a few connections let reads proceed beside it (WAL).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL lets readers run beside the writer; NORMAL sync is durable against process crashes (the
/// WAL is fsynced at checkpoints); busy_timeout makes writers queue instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

impl Store {
    /// Opens (creating an SQLite file if needed) and migrates the store.
    pub async fn connect(config: &StoreConfig) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let kind = config.url.kind();
        let connect_err = |source| StoreError::Connect {
            url: config.url.to_string(),
            source,
        };
        let pool = match kind {
            DatabaseKind::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // An SQLite connection is a file handle in this process: it cannot go stale the
                // way a network connection does, and testing it costs a round trip to its thread
                // on every acquire (three per step).
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(SQLITE_PRAGMAS).await?;
                        Ok(())
                    })
                })
                .connect(&sqlite_url_creating_file(config.url.expose()))
                .await
                .map_err(connect_err)?,
            DatabaseKind::Postgres => AnyPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(config.url.expose())
                .await
                .map_err(connect_err)?,
        };
        migrate(&pool, kind).await?;
        Ok(Self {
            pool,
            kind,
            writer: Default::default(),
        })
    }
}

/// How often a process retries migrating an SQLite store that another process is migrating too.
const SQLITE_MIGRATE_TRIES: u32 = 20;
const SQLITE_MIGRATE_WAIT: Duration = Duration::from_millis(100);

/// Applies the migrations. PostgreSQL serializes migrators with an advisory lock; SQLite has no
/// such lock, so two processes starting on a fresh file (a worker and `stephook serve`) race, and
/// the loser fails on `_sqlx_migrations`' key. It retries: the winner's migrations are then
/// applied and only checked.
async fn migrate(pool: &sqlx::AnyPool, kind: DatabaseKind) -> Result<(), StoreError> {
    let mut tries = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(error) if kind == DatabaseKind::Sqlite && tries + 1 < SQLITE_MIGRATE_TRIES => {
                tries += 1;
                tracing::debug!(%error, tries, "another process is migrating the store; retrying");
                tokio::time::sleep(SQLITE_MIGRATE_WAIT).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// sqlx opens an SQLite file read-write but does not create it unless asked (`mode=rwc`); the
/// embedded default must work on a fresh machine.
fn sqlite_url_creating_file(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_url_creating_file;
    use crate::{Store, StoreError};
    use stephook_core::{DatabaseUrl, StoreConfig};

    /// Both URLs fail while their options are parsed, before any network or file access.
    #[tokio::test]
    async fn connect_errors_show_the_url_redacted() {
        for (raw, secrets) in [
            (
                "postgres://app:pg-pass-1@127.0.0.1:1/db?password=pg-pass-2&sslmode=bogus",
                ["pg-pass-1", "pg-pass-2"],
            ),
            (
                "sqlite://no-such-dir/steps.db?key=sq-key-1&auth_token=sq-key-2",
                ["sq-key-1", "sq-key-2"],
            ),
        ] {
            let config = StoreConfig {
                url: DatabaseUrl::parse(raw).unwrap(),
                is_default: false,
            };
            let Some(error) = Store::connect(&config).await.err() else {
                panic!("{raw} should not connect");
            };
            assert!(matches!(error, StoreError::Connect { .. }), "{error}");
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("REDACTED"), "{shown}");
            for secret in secrets {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn sqlite_urls_get_create_mode_once() {
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }
}
