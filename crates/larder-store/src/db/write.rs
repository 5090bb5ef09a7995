//! Write transactions, one at a time per process.
//!
//! SQLite lets one writer in at a time. A connection it turns away retries
//! from its busy handler with growing sleeps (1, 2, 5, 10 ... 100 ms), so a
//! burst of concurrent writes (a cold install storing pages, metadata and
//! downloads at once) left requests asleep long after the database was
//! free again. This process's writers therefore wait in line on an async
//! lock first and are woken as soon as the previous one is done; writers
//! in other processes still meet SQLite's busy timeout.
//!
//! A transaction dropped without a successful `COMMIT` is rolled back
//! with a plain `ROLLBACK` before its connection goes back to the pool,
//! still holding the write turn; if that fails, the connection is closed
//! instead. (With sqlx's own transactions, a full disk poisoned the pool:
//! SQLite rolls a transaction back by itself on `SQLITE_FULL`, sqlx's
//! rollback then failed and left its count of open transactions at one,
//! and that pooled connection refused every later `BEGIN` ("begin_with at
//! non-zero transaction depth") for as long as the process lived.)

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Database, DbError};

/// The turn of this process's writers.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteTurn(Arc<Mutex<()>>);

/// A write transaction (`BEGIN IMMEDIATE`) holding this process's write
/// turn until it is committed or dropped (and rolled back).
pub(crate) struct WriteTx {
    /// `None` once handed to the rollback of [`Drop`].
    conn: Option<PoolConnection<Sqlite>>,
    committed: bool,
    turn: Option<OwnedMutexGuard<()>>,
}

impl Database {
    /// Waits for this process's write turn, then begins a write
    /// transaction.
    pub(crate) async fn write(&self) -> Result<WriteTx, DbError> {
        let turn = self.write_turn.0.clone().lock_owned().await;
        let conn = self.pool.acquire().await?;
        let mut tx = WriteTx { conn: Some(conn), committed: false, turn: Some(turn) };
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx).await?;
        Ok(tx)
    }
}

impl WriteTx {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        sqlx::query("COMMIT").execute(&mut *self).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let (Some(mut conn), turn) = (self.conn.take(), self.turn.take()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close_on_drop();
            return;
        };
        runtime.spawn(async move {
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                conn.close_on_drop();
            }
            // The connection goes back to the pool (or is closed), then
            // the next writer gets the turn.
            drop(conn);
            drop(turn);
        });
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("only Drop takes the connection")
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("only Drop takes the connection")
    }
}
