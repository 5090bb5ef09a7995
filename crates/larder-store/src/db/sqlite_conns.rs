//! The SQLite connections of a process: a bounded set, handed out one at a
//! time and taken back as they are dropped.
//!
//! sqlx's pool tests every connection it gets back with a ping before it
//! lends it again, in a task spawned for it; with SQLite that ping is a
//! round trip to the connection's worker thread, so every statement run on
//! the pool cost two trips to that thread instead of one (and a task). A
//! connection to a local file has nothing to check: its worker finishes
//! (and resets) a statement whose caller stopped waiting before it takes
//! the next command, and a write transaction left open is rolled back by
//! [`super::write::WriteTx`] before its connection comes back. So these
//! connections come back as they are, at once.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to a number of SQLite connections to one database file, opened as
/// they are first needed.
#[derive(Clone)]
pub(crate) struct SqliteConns(Arc<Shared>);

struct Shared {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Arc<Semaphore>,
}

/// A connection lent by [`SqliteConns`]; it goes back when dropped.
pub(crate) struct SqliteConn {
    /// `None` once closed for good ([`SqliteConn::close_on_drop`]).
    conn: Option<SqliteConnection>,
    home: Arc<Shared>,
    /// Dropped after the connection is back (fields drop after `drop`).
    _permit: OwnedSemaphorePermit,
}

impl SqliteConns {
    /// Opens the first of at most `max` connections with `options` (so a
    /// database that cannot be opened fails here).
    pub(crate) async fn open(options: SqliteConnectOptions, max: usize) -> Result<Self, sqlx::Error> {
        let first = options.connect().await?;
        let shared = Shared { options, idle: Mutex::new(vec![first]), permits: Arc::new(Semaphore::new(max)) };
        Ok(Self(Arc::new(shared)))
    }

    /// A connection: an idle one, or a new one while fewer than the
    /// maximum are open; otherwise waits for one to come back.
    pub(crate) async fn acquire(&self) -> Result<SqliteConn, sqlx::Error> {
        let permit = self.0.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let idle = self.0.idle.lock().expect("never poisoned").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.0.options.connect().await?,
        };
        Ok(SqliteConn { conn: Some(conn), home: self.0.clone(), _permit: permit })
    }

    /// Closes the idle connections (those lent out close as they come
    /// back only if dropped with [`SqliteConn::close_on_drop`]).
    #[cfg(test)]
    pub(crate) async fn close(&self) {
        let idle = std::mem::take(&mut *self.0.idle.lock().expect("never poisoned"));
        for conn in idle {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

impl SqliteConn {
    /// Closes the connection when dropped instead of giving it back (its
    /// state is in doubt).
    pub(crate) fn close_on_drop(&mut self) {
        self.conn = None;
    }
}

impl Deref for SqliteConn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("only close_on_drop takes the connection")
    }
}

impl DerefMut for SqliteConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("only close_on_drop takes the connection")
    }
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.home.idle.lock().expect("never poisoned").push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// Whether the connection holds the TEMP table `name` an earlier
    /// borrower made (TEMP tables belong to one connection).
    async fn has(conn: &mut SqliteConnection, name: &str) -> bool {
        sqlx::query("SELECT 1 FROM temp.sqlite_master WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await
            .unwrap()
            .is_some()
    }

    async fn mark(conn: &mut SqliteConnection, name: &str) {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TEMP TABLE {name} (x)"))).execute(conn).await.unwrap();
    }

    #[tokio::test]
    async fn connections_come_back_at_most_max_are_open_and_a_doubtful_one_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new().filename(dir.path().join("db")).create_if_missing(true);
        let conns = SqliteConns::open(options, 2).await.unwrap();
        let mut first = conns.acquire().await.unwrap();
        mark(&mut first, "one").await;
        drop(first);
        let mut first = conns.acquire().await.unwrap();
        assert!(has(&mut first, "one").await, "the connection given back is lent again");
        let mut second = conns.acquire().await.unwrap();
        assert!(!has(&mut second, "one").await, "a second connection is opened while the first is out");
        mark(&mut second, "two").await;
        let mut third = Box::pin(conns.acquire());
        assert!((&mut third).now_or_never().is_none());
        drop(second);
        let mut third = third.await.unwrap();
        assert!(has(&mut third, "two").await, "with 2 out, a third borrower waited for one to come back");
        third.close_on_drop();
        drop(third);
        drop(first);
        let (mut a, mut b) = (conns.acquire().await.unwrap(), conns.acquire().await.unwrap());
        assert!(!has(&mut a, "two").await && !has(&mut b, "two").await, "the closed connection is not lent again");
    }
}
