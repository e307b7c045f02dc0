//! Fresh, isolated stores for tests: a temporary SQLite file, or a new PostgreSQL database on
//! the server named by `STEPHOOK_TEST_POSTGRES_URL` (when set).

use crate::Store;
use std::sync::atomic::{AtomicU32, Ordering};
use stephook_core::StoreArgs;

pub const POSTGRES_URL_VAR: &str = "STEPHOOK_TEST_POSTGRES_URL";
/// When set, each skipped test appends one line here, so `scripts/test` can count the skips
/// (cargo's summary would count them as passed).
pub const SKIP_LOG_VAR: &str = "STEPHOOK_TEST_SKIP_LOG";
/// server-everything's entry point (`dist/index.js`), installed from npm by `scripts/test`.
pub const MCP_EVERYTHING_VAR: &str = "STEPHOOK_TEST_MCP_EVERYTHING";
/// Databases made by tests start with this, so CI can drop what earlier runs left.
pub const TEST_DATABASE_PREFIX: &str = "stephook_test_";

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// Runs each named `async fn(Store)` as two tests, `sqlite::<name>` on a fresh SQLite file and
/// `postgres::<name>` on a fresh PostgreSQL database (reported as a skip when none is
/// configured): one body for both backends, so neither can drift from the other.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let test = $crate::testing::sqlite().await;
                super::$name(test.store.clone()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(test) = $crate::testing::postgres().await {
                    super::$name(test.store.clone()).await;
                }
            })*
        }
    };
}

/// A store that lives as long as this value (the SQLite file is removed on drop).
pub struct TestStore {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("stephook.db").display());
    let store = connect(&url).await;
    TestStore {
        store,
        url,
        _dir: Some(dir),
    }
}

/// `None` (reported as a skip, see [`skip`]) when no test PostgreSQL is configured.
pub async fn postgres() -> Option<TestStore> {
    let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
        skip(&format!(
            "{POSTGRES_URL_VAR} is not set (no PostgreSQL to test against)"
        ));
        return None;
    };
    let name = format!(
        "{TEST_DATABASE_PREFIX}{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let url = crate::scratch::ScratchDatabase::create(&server, &name)
        .await
        .expect("create a test database on STEPHOOK_TEST_POSTGRES_URL")
        .url;
    let store = connect(&url).await;
    Some(TestStore {
        store,
        url,
        _dir: None,
    })
}

/// The real MCP server the tool tests run, or `None` (reported as a skip, see [`skip`]).
pub fn mcp_everything() -> Option<String> {
    match std::env::var(MCP_EVERYTHING_VAR) {
        Ok(path) if std::path::Path::new(&path).is_file() => Some(path),
        _ => {
            skip(&format!(
                "{MCP_EVERYTHING_VAR} does not name server-everything's dist/index.js (scripts/test installs it with npm)"
            ));
            None
        }
    }
}

async fn connect(url: &str) -> Store {
    let config = StoreArgs::at(url)
        .validate()
        .expect("valid test database URL");
    Store::connect(&config).await.expect("open the test store")
}

/// A test whose prerequisite (PostgreSQL, the Temporal CLI, a browser) is missing calls this and
/// returns: it says so on stderr and in the skip log; under `CI=true` a missing prerequisite is
/// a failure, never a silent pass.
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: missing prerequisite under CI=true: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    if let Ok(path) = std::env::var(SKIP_LOG_VAR) {
        use std::io::Write as _;
        let line = format!("{test}: {why}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            eprintln!("cannot append to {SKIP_LOG_VAR} ({path}): {error}");
        }
    }
}

/// Makes everything stored about one step look `by_ms` older (created, updated, delivered and
/// attempted times), so a test can seed a store with old rows.
pub async fn age_step(store: &Store, id: &stephook_core::StepId, by_ms: i64) {
    let statements = [
        "UPDATE steps SET created_at = created_at - $1, updated_at = updated_at - $1 WHERE id = $2",
        "UPDATE webhook_deliveries SET created_at = created_at - $1, \
           updated_at = updated_at - $1, delivered_at = delivered_at - $1 WHERE step_id = $2",
        "UPDATE webhook_attempts SET attempted_at = attempted_at - $1 WHERE step_id = $2",
    ];
    let gate = store.write_gate().await;
    for sql in statements {
        sqlx::query(sql)
            .bind(by_ms)
            .bind(id.as_str())
            .execute(gate.pool())
            .await
            .expect("age a step's rows");
    }
}
