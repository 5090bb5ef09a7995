//! Write transactions, one at a time per process.
//!
//! SQLite lets one writer in at a time. A connection it turns away retries
//! from its busy handler with growing sleeps (1, 2, 5, 10 ... 100 ms), so a
//! burst of concurrent writes (a cold install storing pages, metadata and
//! downloads at once) left requests asleep long after the database was
//! free again. This process's writers therefore wait in line on an async
//! lock first and are woken as soon as the previous one is done; writers
//! in other processes still meet SQLite's busy timeout.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Database, DbError};

/// The turn of this process's writers.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteTurn(Arc<Mutex<()>>);

/// A write transaction (`BEGIN IMMEDIATE`) holding this process's write
/// turn until it is committed or dropped (rolled back).
pub(crate) struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl Database {
    /// Waits for this process's write turn, then begins a write
    /// transaction.
    pub(crate) async fn write(&self) -> Result<WriteTx, DbError> {
        let turn = self.write_turn.0.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }
}

impl WriteTx {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> Result<(), DbError> {
        Ok(self.tx.commit().await?)
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}
