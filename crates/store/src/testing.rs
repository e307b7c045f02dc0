//! Fresh, isolated stores for tests: a temporary SQLite file, or a new PostgreSQL database on
//! the server named by `STEPHOOK_TEST_POSTGRES_URL` (when set).

use crate::Store;
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicU32, Ordering};
use stephook_core::StoreArgs;

pub const POSTGRES_URL_VAR: &str = "STEPHOOK_TEST_POSTGRES_URL";
/// Databases made by tests start with this, so CI can drop what earlier runs left.
pub const TEST_DATABASE_PREFIX: &str = "stephook_test_";

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

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

/// `None` (with a notice on stderr) when no test PostgreSQL is configured.
pub async fn postgres() -> Option<TestStore> {
    let Ok(server) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("notice: {POSTGRES_URL_VAR} is not set; skipping the PostgreSQL variant");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!(
        "{TEST_DATABASE_PREFIX}{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::AnyConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL server");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await
        .expect("drop an old test database");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&server).expect("STEPHOOK_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    let url = url.to_string();
    let store = connect(&url).await;
    Some(TestStore {
        store,
        url,
        _dir: None,
    })
}

async fn connect(url: &str) -> Store {
    let config = StoreArgs {
        database_url: url.into(),
    }
    .validate()
    .expect("valid test database URL");
    Store::connect(&config).await.expect("open the test store")
}
