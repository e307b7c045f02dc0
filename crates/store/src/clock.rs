//! The database's clock. Due times and leases are compared on one clock, the database's, so two
//! dispatchers on machines whose clocks disagree still agree on when a row is due and when a
//! lease has run out.

use stephook_core::DatabaseKind;

/// SQL for "now" in Unix milliseconds, on the database's clock. SQLite's `julianday('now')` is
/// stable within one statement; PostgreSQL's `clock_timestamp()` is the real time, not the
/// transaction's start.
pub(crate) fn now_sql(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        DatabaseKind::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}
