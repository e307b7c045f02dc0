//! Opening the store: driver selection, SQLite pragmas, pool size, migrations.

use crate::{Store, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, migrate::Migrator};
use std::time::Duration;
use stephook_core::{DatabaseKind, StoreConfig};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// SQLite has one writer at a time; a few connections let reads proceed beside it (WAL).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Writes take turns (`Store::write_gate`) on one connection of their own, whose page cache
/// then stays valid from one write to the next.
const SQLITE_WRITE_CONNECTIONS: u32 = 1;
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
        let (pool, writes) = match kind {
            DatabaseKind::Sqlite => {
                let url = sqlite_url_creating_file(config.url.expose());
                // The writer first: it creates the file, and the migrations run on it below.
                let writes = sqlite_pool(&url, SQLITE_WRITE_CONNECTIONS)
                    .await
                    .map_err(connect_err)?;
                let reads = sqlite_pool(&url, SQLITE_MAX_CONNECTIONS)
                    .await
                    .map_err(connect_err)?;
                (reads, writes)
            }
            DatabaseKind::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(config.url.expose())
                    .await
                    .map_err(connect_err)?;
                (pool.clone(), pool)
            }
        };
        migrate(&writes, kind).await?;
        Ok(Self {
            pool,
            writes,
            kind,
            writer: Default::default(),
        })
    }
}

async fn sqlite_pool(url: &str, connections: u32) -> Result<sqlx::AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // An SQLite connection is a file handle in this process: it cannot go stale the way a
        // network connection does, and testing it costs a round trip to its thread on every
        // acquire (three per step).
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
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
    use std::time::Duration;
    use stephook_core::{DatabaseUrl, Step, StepId, StoreConfig};

    /// Writes take turns on one SQLite connection (whose page cache then stays valid), however
    /// many run at once, while reads go on beside an open write on connections of their own.
    #[tokio::test]
    async fn sqlite_writes_share_one_connection_and_reads_do_not_wait_for_them() {
        // Arrange
        let test = crate::testing::sqlite().await;
        let store = test.store.clone();
        let ids: Vec<StepId> = (0..16).map(|_| StepId::new_random()).collect();

        // Act: sixteen writers at once, then a read while a write transaction is open.
        let mut writers = tokio::task::JoinSet::new();
        for id in ids.clone() {
            let store = store.clone();
            writers
                .spawn(async move { store.insert_step(&Step::pending(id, "agent", None)).await });
        }
        let written = writers.join_all().await;
        let gate = store.write_gate().await;
        let open = gate.begin().await.expect("begin a write");
        let read = tokio::time::timeout(Duration::from_secs(2), store.step(&ids[0])).await;
        drop(open);
        drop(gate);

        // Assert
        assert!(written.iter().all(Result::is_ok), "{written:?}");
        assert_eq!(store.writes.size(), 1, "writes opened one connection");
        let read = read
            .expect("the read did not wait for the write")
            .expect("read");
        assert_eq!(read.map(|step| step.id), Some(ids[0].clone()));
    }

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
