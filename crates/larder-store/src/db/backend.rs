//! The two databases behind one query layer: a pool of either kind, and
//! the macros that run one statement text on whichever it is.
//!
//! Every statement is written once, in the SQL both SQLite and PostgreSQL
//! accept (`$1` placeholders, `INSERT ... ON CONFLICT`, `RETURNING`,
//! `IS DISTINCT FROM`, `TRUE`/`FALSE`), and compiled once per backend by
//! [`on_pool!`] and [`on_tx!`]: each expands its body into one `match`
//! arm per backend, so the SQLite path runs sqlx's SQLite driver directly,
//! with nothing in between (no `sqlx::Any`, which copies every row into
//! type-erased values and cannot name a backend's own types).

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, PgPool, Postgres, Row, Sqlite, Type};

use super::sqlite_conns::{SqliteConn, SqliteConns};

/// A connection pool to the metadata database, of either backend.
#[derive(Clone)]
pub(crate) enum Pool {
    /// The embedded SQLite database.
    Sqlite(SqliteConns),
    /// A PostgreSQL server.
    Postgres(PgPool),
}

#[cfg(test)]
impl Pool {
    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(conns) => conns.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A pooled connection, of either backend.
pub(crate) enum Conn {
    /// To the SQLite database.
    Sqlite(SqliteConn),
    /// To the PostgreSQL server.
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$pool` bound to an executor of whichever backend
/// `$pools` (a [`Pool`]) is: the body is compiled once per backend. On
/// SQLite that is one connection, taken for the body (so `$pool` runs one
/// statement, or is reborrowed); on PostgreSQL the pool itself.
macro_rules! on_pool {
    ($pools:expr, |$pool:ident| $body:expr) => {
        match $pools {
            $crate::db::backend::Pool::Sqlite(conns) => {
                let mut conn = conns.acquire().await?;
                let $pool: &mut sqlx::SqliteConnection = &mut conn;
                $body
            }
            $crate::db::backend::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to one connection (`&mut
/// SqliteConnection` or `&mut PgConnection`) taken from `$pools` for the
/// body: the body is compiled once per backend.
macro_rules! on_conn {
    ($pools:expr, |$conn:ident| $body:expr) => {
        match $pools {
            $crate::db::backend::Pool::Sqlite(conns) => {
                let mut conn = conns.acquire().await?;
                let $conn: &mut sqlx::SqliteConnection = &mut conn;
                $body
            }
            $crate::db::backend::Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let $conn: &mut sqlx::PgConnection = &mut conn;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection (`&mut SqliteConnection`
/// or `&mut PgConnection`) of a write transaction: the body is compiled
/// once per backend.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx.conn() {
            $crate::db::backend::Conn::Sqlite($conn) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *$conn;
                $body
            }
            $crate::db::backend::Conn::Postgres($conn) => {
                let $conn: &mut sqlx::PgConnection = &mut *$conn;
                $body
            }
        }
    };
}

pub(crate) use {on_conn, on_pool, on_tx};

/// A value both backends can decode from a column.
pub(crate) trait Column<'r>: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres> {}

impl<'r, T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>> Column<'r> for T {}

/// A result row of either backend, read by column name.
pub(crate) trait DbRow {
    /// The value of `column`; panics when the row has no such column or
    /// it does not decode as `T` (a query and its reader disagree).
    fn col<'r, T: Column<'r>>(&'r self, column: &str) -> T;
}

impl DbRow for SqliteRow {
    fn col<'r, T: Column<'r>>(&'r self, column: &str) -> T {
        self.get(column)
    }
}

impl DbRow for PgRow {
    fn col<'r, T: Column<'r>>(&'r self, column: &str) -> T {
        self.get(column)
    }
}
