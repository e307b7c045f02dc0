//! The writes of one transaction, sent together. sqlx runs each SQLite connection on a thread of
//! its own, so every statement is a round trip to that thread and back (two thread switches, and
//! a wait behind whatever else the runtime is doing); SQLite runs several statements of one query
//! in one such trip. PostgreSQL cannot prepare several statements at once: there each still runs
//! on its own, as it would without a batch.

use sqlx::any::AnyArguments;
use sqlx::encode::Encode;
use sqlx::error::BoxDynError;
use sqlx::{Any, Arguments, Transaction, Type};
use stephook_core::DatabaseKind;

/// Statements run in order, in the caller's transaction. Each numbers its parameters from `$1`,
/// as it would on its own.
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
            if let Some(error) = statement.error {
                return Err(sqlx::Error::Encode(error));
            }
            sqlx::query_with(&statement.sql, statement.args)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

impl<'q> Statement<'q> {
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

    /// A batch is only as good as its transaction: a statement that fails after others ran
    /// must leave nothing of theirs behind (SQLite runs the earlier ones before it prepares
    /// the failing one).
    async fn a_failing_statement_undoes_the_whole_batch(store: Store) {
        // Arrange: a first statement that works, a second that cannot.
        let mut batch = Batch::new(store.kind);
        batch
            .push("INSERT INTO step_messages (step_id, seq, message) VALUES ($1, $2, $3)")
            .bind("step-batch")
            .bind(0_i64)
            .bind("kept?");
        batch
            .push("INSERT INTO no_such_table (a) VALUES ($1)")
            .bind(1_i64);

        // Act
        let mut tx = store.begin_write().await.expect("begin");
        let outcome = batch.execute(&mut tx).await;
        drop(tx);

        // Assert
        assert!(outcome.is_err(), "the second statement must fail");
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM step_messages WHERE step_id = 'step-batch'")
                .fetch_one(&store.pool)
                .await
                .expect("count");
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_failing_statement_undoes_the_whole_batch_on_sqlite() {
        a_failing_statement_undoes_the_whole_batch(testing::sqlite().await.store).await;
    }

    #[tokio::test]
    async fn a_failing_statement_undoes_the_whole_batch_on_postgres() {
        if let Some(test) = testing::postgres().await {
            a_failing_statement_undoes_the_whole_batch(test.store).await;
        }
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
