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
//! A transaction that does not end in a successful `COMMIT` closes its
//! connection instead of handing it back to the pool. SQLite may already
//! have rolled the transaction back itself (a full disk: `SQLITE_FULL`
//! during a statement or the commit), and then sqlx's own rollback fails
//! and leaves its count of open transactions at one: the pooled connection
//! refused every later `BEGIN` ("begin_with at non-zero transaction depth")
//! for as long as the process lived. Closing the connection rolls back
//! whatever is left, and the pool opens a fresh one.

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
/// turn until it is committed or dropped (rolled back by closing its
/// connection).
pub(crate) struct WriteTx {
    conn: PoolConnection<Sqlite>,
    committed: bool,
    _turn: OwnedMutexGuard<()>,
}

impl Database {
    /// Waits for this process's write turn, then begins a write
    /// transaction.
    pub(crate) async fn write(&self) -> Result<WriteTx, DbError> {
        let turn = self.write_turn.0.clone().lock_owned().await;
        let conn = self.pool.acquire().await?;
        let mut tx = WriteTx { conn, committed: false, _turn: turn };
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx.conn).await?;
        Ok(tx)
    }
}

impl WriteTx {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}
