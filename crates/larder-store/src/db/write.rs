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
//! On PostgreSQL, a write transaction also takes one transaction-level
//! advisory lock first, so writers of every node take turns as SQLite's
//! do: journal serials are then handed out in commit order (a reader that
//! follows `serial > N` never misses a change committed late under a
//! smaller serial), and the read-then-write steps of a transaction (an
//! upload's "is this filename taken?") see every earlier commit.
//!
//! A transaction dropped without a successful `COMMIT` is rolled back
//! with a plain `ROLLBACK` before its connection goes back to the pool,
//! still holding the write turn; if that fails, the connection is closed
//! instead. (With sqlx's own transactions, a full disk poisoned the pool:
//! SQLite rolls a transaction back by itself on `SQLITE_FULL`, sqlx's
//! rollback then failed and left its count of open transactions at one,
//! and that pooled connection refused every later `BEGIN` ("begin_with at
//! non-zero transaction depth") for as long as the process lived.)

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::backend::{Conn, Pool, on_tx};
use super::{Database, DbError};

/// The key of the advisory lock PostgreSQL writers take turns on (any
/// fixed number; "larder" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6c61_7264_6572;

/// The turn of this process's writers.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteTurn(Arc<Mutex<()>>);

/// A write transaction (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's `BEGIN`
/// and the writers' advisory lock) holding this process's write turn until
/// it is committed or dropped (and rolled back).
pub(crate) struct WriteTx {
    /// `None` once handed to the rollback of [`Drop`].
    conn: Option<Conn>,
    committed: bool,
    turn: Option<OwnedMutexGuard<()>>,
}

impl Database {
    /// Waits for this process's write turn, then begins a write
    /// transaction.
    pub(crate) async fn write(&self) -> Result<WriteTx, DbError> {
        let turn = self.take_turn().await;
        self.write_in_turn(turn).await
    }

    /// Waits for this process's write turn (held until dropped).
    pub(crate) async fn take_turn(&self) -> OwnedMutexGuard<()> {
        self.write_turn.0.clone().lock_owned().await
    }

    /// Begins a write transaction in a write turn taken already.
    pub(crate) async fn write_in_turn(&self, turn: OwnedMutexGuard<()>) -> Result<WriteTx, DbError> {
        let conn = match &self.pool {
            Pool::Sqlite(conns) => Conn::Sqlite(conns.acquire().await?),
            Pool::Postgres(pool) => Conn::Postgres(pool.acquire().await?),
        };
        let mut tx = WriteTx { conn: Some(conn), committed: false, turn: Some(turn) };
        match tx.conn() {
            Conn::Sqlite(conn) => {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut **conn).await?;
            }
            Conn::Postgres(conn) => {
                sqlx::query("BEGIN").execute(&mut **conn).await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK_KEY).execute(&mut **conn).await?;
            }
        }
        Ok(tx)
    }
}

impl WriteTx {
    /// The transaction's connection.
    pub(crate) fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("only Drop takes the connection")
    }

    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        on_tx!(self, |conn| sqlx::query("COMMIT").execute(conn).await.map(drop))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let (Some(conn), turn) = (self.conn.take(), self.turn.take()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            match conn {
                Conn::Sqlite(mut conn) => conn.close_on_drop(),
                Conn::Postgres(mut conn) => conn.close_on_drop(),
            }
            return;
        };
        runtime.spawn(async move {
            let mut tx = WriteTx { conn: Some(conn), committed: true, turn };
            let failed = on_tx!(tx, |conn| sqlx::query("ROLLBACK").execute(conn).await.map(drop)).is_err();
            if failed {
                match tx.conn() {
                    Conn::Sqlite(conn) => conn.close_on_drop(),
                    Conn::Postgres(conn) => conn.close_on_drop(),
                }
            }
            // The connection goes back to the pool (or is closed), then
            // the next writer gets the turn (fields drop in order).
            drop(tx);
        });
    }
}
