//! The writes of one transaction, sent together. sqlx runs each SQLite connection on a thread of
//! its own, so every statement is a round trip to that thread and back (two thread switches, and
//! a wait behind whatever else the runtime is doing); SQLite runs several statements of one query
//! in one such trip, `BEGIN` and `COMMIT` included. PostgreSQL cannot prepare several statements
//! at once: there each still runs on its own, as it would without a batch.

use crate::Store;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::encode::Encode;
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Arguments, Transaction, Type};
use stephook_core::DatabaseKind;

/// Statements run in order, in the caller's transaction ([`Batch::execute`]) or in one of their
/// own ([`Batch::commit`]). Each numbers its parameters from `$1`, as it would on its own.
pub(crate) struct Batch<'q> {
    kind: DatabaseKind,
    statements: Vec<Statement<'q>>,
}

pub(crate) struct Statement<'q> {
    sql: String,
    args: AnyArguments<'q>,
    /// The first value that could not be encoded; the batch fails with it, as a query would.
    error: Option<BoxDynError>,
}

impl<'q> Batch<'q> {
    pub(crate) fn new(kind: DatabaseKind) -> Self {
        Self {
            kind,
            statements: Vec::new(),
        }
    }

    pub(crate) fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Adds a statement; bind its parameters on what this returns.
    pub(crate) fn push(&mut self, sql: impl Into<String>) -> &mut Statement<'q> {
        self.statements.push(Statement {
            sql: sql.into(),
            args: AnyArguments::default(),
            error: None,
        });
        let last = self.statements.len() - 1;
        &mut self.statements[last]
    }

    pub(crate) async fn execute(self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        if self.statements.is_empty() {
            // Nothing to write (a terminal update without metrics or a notification).
            return Ok(());
        }
        let statements = match self.kind {
            DatabaseKind::Sqlite => vec![joined(self.statements)],
            DatabaseKind::Postgres => self.statements,
        };
        for statement in statements {
            fetch(statement, &mut **tx).await?;
        }
        Ok(())
    }
}

impl Batch<'_> {
    /// Runs the batch as a transaction of its own, under the store's write gate, and returns the
    /// rows its statements return (`RETURNING`), in order. On SQLite that is one trip: `BEGIN
    /// IMMEDIATE`, the statements and `COMMIT` as one query, where a sqlx transaction would take
    /// three. On PostgreSQL a lone statement runs without a transaction (it is atomic on its
    /// own); several run in one.
    pub(crate) async fn commit(self, store: &Store) -> Result<Vec<AnyRow>, sqlx::Error> {
        if self.statements.is_empty() {
            return Ok(Vec::new());
        }
        let gate = store.write_gate().await;
        match self.kind {
            DatabaseKind::Sqlite => commit_in_one_trip(joined(self.statements), gate.pool()).await,
            DatabaseKind::Postgres => {
                let mut statements = self.statements;
                if statements.len() == 1
                    && let Some(statement) = statements.pop()
                {
                    return fetch(statement, gate.pool()).await;
                }
                let mut tx = gate.begin().await?;
                let mut rows = Vec::new();
                for statement in statements {
                    rows.extend(fetch(statement, &mut *tx).await?);
                }
                tx.commit().await?;
                Ok(rows)
            }
        }
    }
}

async fn fetch<'e, 'q, E>(statement: Statement<'q>, executor: E) -> Result<Vec<AnyRow>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
    'q: 'e,
{
    if let Some(error) = statement.error {
        return Err(sqlx::Error::Encode(error));
    }
    sqlx::query_with(&statement.sql, statement.args)
        .fetch_all(executor)
        .await
}

/// `BEGIN IMMEDIATE; <statement>; COMMIT` as one query on one connection of the pool.
async fn commit_in_one_trip(
    statement: Statement<'_>,
    pool: &AnyPool,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let statement = Statement {
        sql: format!("BEGIN IMMEDIATE;\n{};\nCOMMIT", statement.sql),
        ..statement
    };
    let mut connection = UntilCommitted {
        connection: pool.acquire().await?,
        committed: false,
    };
    let rows = fetch(statement, &mut *connection.connection).await?;
    connection.committed = true;
    Ok(rows)
}

/// A connection whose query opened a transaction itself. Until that query is known to have
/// committed (it failed half-way, or the caller stopped waiting for it), the transaction may
/// still be open on the connection, and sqlx, which did not open it, would hand it to the next
/// caller that way, lock and all. Such a connection is closed instead, which rolls back.
struct UntilCommitted {
    connection: PoolConnection<Any>,
    committed: bool,
}

impl Drop for UntilCommitted {
    fn drop(&mut self) {
        if !self.committed {
            self.connection.close_on_drop();
        }
    }
}

impl<'q> Statement<'q> {
    /// Appends `sql` to the statement, its parameters numbered from `$1` as on their own: they
    /// are raised past those bound so far.
    pub(crate) fn append(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(&renumbered(sql, self.args.len()));
        self
    }

    pub(crate) fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        if let Err(error) = self.args.add(value)
            && self.error.is_none()
        {
            self.error = Some(error);
        }
        self
    }
}

/// One statement of them all: each one's parameters renumbered after those before it.
fn joined(statements: Vec<Statement<'_>>) -> Statement<'_> {
    let mut sql = String::new();
    let mut args = AnyArguments::default();
    let mut error = None;
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&renumbered(&statement.sql, args.len()));
        // `values` is sqlx's own buffer of encoded arguments (public, though not documented):
        // moving them keeps each value as its statement encoded it.
        args.values.0.extend(statement.args.values.0);
        error = error.or(statement.error);
    }
    Statement { sql, args, error }
}

/// `sql` with every `$N` parameter raised by `offset`. Our statements carry no `$` in literals.
fn renumbered(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let digits_start = at + 1;
        let mut digits_end = digits_start;
        while let Some(&(i, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits_end = i + 1;
            chars.next();
        }
        match sql[digits_start..digits_end].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&sql[digits_start..digits_end]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Batch, renumbered};
    use crate::{Store, testing};

    crate::on_both_databases!(
        a_failing_statement_undoes_the_whole_batch,
        a_failed_commit_undoes_its_writes_and_leaves_no_transaction_open,
        a_commit_returns_the_rows_of_its_statements_in_order,
    );

    /// A batch is only as good as its transaction: a statement that fails after others ran
    /// must leave nothing of theirs behind (SQLite runs the earlier ones before it prepares
    /// the failing one).
    async fn a_failing_statement_undoes_the_whole_batch(store: Store) {
        // Arrange: a first statement that works, a second that cannot.
        let mut batch = Batch::new(store.kind);
        one_row(&mut batch, "step-batch");
        batch
            .push("INSERT INTO no_such_table (a) VALUES ($1)")
            .bind(1_i64);

        // Act
        let gate = store.write_gate().await;
        let mut tx = gate.begin().await.expect("begin");
        let outcome = batch.execute(&mut tx).await;
        drop(tx);

        // Assert
        assert!(outcome.is_err(), "the second statement must fail");
        assert_eq!(rows_of(&store, "step-batch").await, 0);
    }

    /// Rows of `webhook_attempts` (a table without foreign keys: the first statement of a
    /// batch must be one that works on its own) under `id`.
    async fn rows_of(store: &Store, id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts WHERE step_id = $1")
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .expect("count")
    }

    fn one_row<'q>(batch: &mut Batch<'q>, id: &'q str) {
        batch
            .push(
                "INSERT INTO webhook_attempts (id, step_id, path, attempted_at, duration_ms, \
                   outcome) VALUES ($1, $1, 'activity', 0, 0, 'test')",
            )
            .bind(id);
    }

    /// Commits one row under each id, one batch each, in turn: what later writers see.
    async fn commit_one_row_each(store: &Store, ids: &[&str]) -> Vec<Result<(), String>> {
        let mut outcomes = Vec::new();
        for &id in ids {
            let mut batch = Batch::new(store.kind);
            one_row(&mut batch, id);
            outcomes.push(
                batch
                    .commit(store)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            );
        }
        outcomes
    }

    /// A batch that commits on its own opens its transaction in its own query: when a statement
    /// fails after `BEGIN`, the connection must not go back to the pool with that transaction
    /// open (every later write would then fail, or be rolled back with it).
    async fn a_failed_commit_undoes_its_writes_and_leaves_no_transaction_open(store: Store) {
        // Arrange
        let mut failing = Batch::new(store.kind);
        one_row(&mut failing, "step-failed");
        failing
            .push("INSERT INTO no_such_table (a) VALUES ($1)")
            .bind(1_i64);

        // Act
        let outcome = failing.commit(&store).await;
        let later = commit_one_row_each(
            &store,
            &[
                "step-later-1",
                "step-later-2",
                "step-later-3",
                "step-later-4",
            ],
        )
        .await;

        // Assert
        assert!(outcome.is_err(), "the second statement must fail");
        assert_eq!(rows_of(&store, "step-failed").await, 0);
        assert_eq!(later, vec![Ok(()); 4], "every later commit works");
        assert_eq!(rows_of(&store, "step-later-4").await, 1);
    }

    /// The caller may stop waiting half-way (the activity's store timeout): sqlx's worker then
    /// stops before `COMMIT`, and the half-done transaction must be rolled back, not handed on.
    #[tokio::test]
    async fn a_commit_abandoned_half_way_is_rolled_back_and_leaves_no_transaction_open() {
        // Arrange: a write, then a statement that runs long enough to be abandoned during it.
        let test = testing::sqlite().await;
        let store = &test.store;
        let mut slow = Batch::new(store.kind);
        one_row(&mut slow, "step-abandoned");
        slow.push(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000) \
             SELECT COUNT(*) FROM n",
        );

        // Act
        let abandoned =
            tokio::time::timeout(std::time::Duration::from_millis(30), slow.commit(store)).await;
        let later = commit_one_row_each(
            store,
            &[
                "step-after-1",
                "step-after-2",
                "step-after-3",
                "step-after-4",
            ],
        )
        .await;

        // Assert
        assert!(
            abandoned.is_err(),
            "the commit must still be running at 30 ms"
        );
        assert_eq!(later, vec![Ok(()); 4], "every later commit works");
        assert_eq!(rows_of(store, "step-abandoned").await, 0);
        assert_eq!(rows_of(store, "step-after-4").await, 1);
    }

    /// What the attempts read their fences from: the rows the statements return, in order.
    async fn a_commit_returns_the_rows_of_its_statements_in_order(store: Store) {
        // Arrange
        let mut batch = Batch::new(store.kind);
        for id in ["first", "second"] {
            batch
                .push(
                    "INSERT INTO webhook_attempts (id, step_id, path, attempted_at, duration_ms, \
                       outcome) VALUES ($1, $1, 'activity', 0, 0, $1) RETURNING outcome",
                )
                .bind(id);
        }

        // Act
        let rows = batch.commit(&store).await.expect("commit");

        // Assert
        let returned: Vec<String> = rows
            .iter()
            .map(|row| sqlx::Row::try_get(row, "outcome").expect("outcome"))
            .collect();
        assert_eq!(returned, ["first", "second"]);
    }

    #[test]
    fn parameters_are_raised_past_the_earlier_statements() {
        assert_eq!(
            renumbered("UPDATE t SET a = $1, b = $2 WHERE c = $10 AND d = $1", 3),
            "UPDATE t SET a = $4, b = $5 WHERE c = $13 AND d = $4"
        );
    }

    #[test]
    fn the_first_statement_and_text_without_parameters_stay_as_they_are() {
        assert_eq!(renumbered("SELECT $1, $2", 0), "SELECT $1, $2");
        assert_eq!(
            renumbered("DELETE FROM t WHERE a = 'x'", 5),
            "DELETE FROM t WHERE a = 'x'"
        );
        assert_eq!(renumbered("SELECT $ FROM t", 2), "SELECT $ FROM t");
    }
}
