//! Positional arguments for queries whose WHERE clause is assembled from optional filters:
//! each filter pushes its value and gets its `$n` back, so the placeholders and the binds can
//! never drift apart.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

#[derive(Debug, Default)]
pub(crate) struct SqlArgs {
    args: Vec<Arg>,
}

impl SqlArgs {
    /// Adds a text argument and returns its placeholder.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> String {
        self.args.push(Arg::Text(value.into()));
        format!("${}", self.args.len())
    }

    /// Adds an integer argument and returns its placeholder.
    pub(crate) fn int(&mut self, value: i64) -> String {
        self.args.push(Arg::Int(value));
        format!("${}", self.args.len())
    }

    pub(crate) fn bind_all<'q>(
        &self,
        mut query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.clone()),
                Arg::Int(int) => query.bind(*int),
            };
        }
        query
    }
}

/// Which way a keyset page walks over `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

impl SortOrder {
    pub(crate) fn reversed(self) -> Self {
        match self {
            Self::Asc => Self::Desc,
            Self::Desc => Self::Asc,
        }
    }

    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::Asc => "ASC",
            Self::Desc => "DESC",
        }
    }

    /// The comparison that selects rows after a cursor when walking in this order.
    pub(crate) fn after_op(self) -> &'static str {
        match self {
            Self::Asc => ">",
            Self::Desc => "<",
        }
    }
}

/// `(time, id)` strictly after the cursor `(cursor_time, cursor_id)` in `order`. Spelled out
/// rather than as a row-value comparison so that both databases use the `(time, id)` index.
pub(crate) fn keyset_after(
    args: &mut SqlArgs,
    time_col: &str,
    id_col: &str,
    order: SortOrder,
    cursor_time: i64,
    cursor_id: &str,
) -> String {
    let op = order.after_op();
    let t1 = args.int(cursor_time);
    let t2 = args.int(cursor_time);
    let id = args.text(cursor_id);
    format!("({time_col} {op} {t1} OR ({time_col} = {t2} AND {id_col} {op} {id}))")
}
