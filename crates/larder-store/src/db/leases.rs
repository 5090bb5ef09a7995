//! Leases: which node does a piece of work (an upstream fetch) that every
//! node sharing the database would otherwise do at once.
//!
//! A lease has a name, a holder and an expiry. The holder renews it while
//! the work runs and releases it when done; a holder that dies stops
//! renewing, and once the lease has expired another node may take it.
//! Expiries are on the clock of the node that wrote them: nodes' clocks
//! are assumed close (a skew shortens or lengthens a lease by as much).

use std::time::Duration;

use jiff::Timestamp;

use super::backend::{Pool, on_pool, on_tx};
use super::{Database, DbError};

/// The expiry of a lease taken or renewed now for `ttl`, in microseconds.
fn expiry(ttl: Duration) -> i64 {
    Timestamp::now().as_microsecond().saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

impl Database {
    /// Whether other larder nodes may share this database (PostgreSQL), so
    /// that work they would all do is worth a lease.
    pub fn is_shared(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Takes the lease `name` for `holder` for `ttl`, unless another
    /// holder's lease on it has not expired. Whether `holder` has it.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let taken = on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO leases (name, holder, expires_micros) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_micros = excluded.expires_micros
                 WHERE leases.expires_micros <= $4 OR leases.holder = excluded.holder",
            )
            .bind(name)
            .bind(holder)
            .bind(expiry(ttl))
            .bind(Timestamp::now().as_microsecond())
            .execute(conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(taken > 0)
    }

    /// Extends the lease `holder` holds on `name` to `ttl` from now; false
    /// when it no longer holds it (it expired and another took it).
    pub async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let renewed = on_tx!(tx, |conn| {
            sqlx::query("UPDATE leases SET expires_micros = $3 WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .bind(expiry(ttl))
                .execute(conn)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(renewed > 0)
    }

    /// Gives up the lease `holder` holds on `name` (nothing when it no
    /// longer holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(conn)
                .await?;
        });
        tx.commit().await
    }

    /// Whether anyone holds an unexpired lease on `name` (a read: cheap
    /// to ask while waiting for another node's work).
    pub async fn lease_held(&self, name: &str) -> Result<bool, DbError> {
        let held: Option<i64> = on_pool!(&self.pool, |pool| {
            sqlx::query_scalar("SELECT expires_micros FROM leases WHERE name = $1 AND expires_micros > $2")
                .bind(name)
                .bind(Timestamp::now().as_microsecond())
                .fetch_optional(pool)
                .await?
        });
        Ok(held.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{TestDb, each_backend};

    const LONG: Duration = Duration::from_secs(60);

    each_backend! {
    async fn a_lease_is_held_by_one_holder_until_released_or_expired(backend: Backend) {
        let test = TestDb::new(backend);
        let (a, b) = (test.open().await, test.open().await);
        assert_eq!(a.is_shared(), matches!(backend, Backend::Postgres));
        assert!(!a.lease_held("file:1").await.unwrap());
        assert!(a.take_lease("file:1", "node-a", LONG).await.unwrap());
        assert!(b.lease_held("file:1").await.unwrap());
        assert!(!b.take_lease("file:1", "node-b", LONG).await.unwrap(), "held by a");
        assert!(b.take_lease("file:2", "node-b", LONG).await.unwrap(), "another name is another lease");
        assert!(a.take_lease("file:1", "node-a", LONG).await.unwrap(), "taking it again renews it");
        assert!(!b.renew_lease("file:1", "node-b", LONG).await.unwrap());
        assert!(a.renew_lease("file:1", "node-a", LONG).await.unwrap());
        b.release_lease("file:1", "node-b").await.unwrap();
        assert!(b.lease_held("file:1").await.unwrap(), "only the holder releases it");
        a.release_lease("file:1", "node-a").await.unwrap();
        assert!(!b.lease_held("file:1").await.unwrap());
        assert!(b.take_lease("file:1", "node-b", LONG).await.unwrap(), "free again");

        // A holder that stops renewing loses the lease once it expires.
        assert!(a.take_lease("file:3", "node-a", Duration::from_millis(200)).await.unwrap());
        assert!(!b.take_lease("file:3", "node-b", LONG).await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!b.lease_held("file:3").await.unwrap(), "expired");
        assert!(b.take_lease("file:3", "node-b", LONG).await.unwrap(), "taken over");
        assert!(!a.renew_lease("file:3", "node-a", LONG).await.unwrap(), "and a learns it lost it");
    }
    }
}
