//! Leases: which node does a piece of work (an upstream fetch) that every
//! node sharing the database would otherwise do at once.
//!
//! A lease has a name, a holder and an expiry. The holder renews it while
//! the work runs and releases it when done; a holder that dies stops
//! renewing, and once the lease has expired another node may take it.
//! Expiries are set and compared on the database's clock (the
//! `database_clock` view), never a node's: a node whose clock is off can
//! neither take a lease another still holds nor keep one past its time.

use std::time::Duration;

use super::backend::{Pool, on_pool, on_tx};
use super::{Database, DbError};

/// A lease's length in microseconds, as bound in the statements.
fn micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
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
        self.write_lease(
            "INSERT INTO leases (name, holder, expires_micros)
             VALUES ($1, $2, (SELECT now_micros FROM database_clock) + $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_micros = excluded.expires_micros
             WHERE leases.expires_micros <= (SELECT now_micros FROM database_clock)
                OR leases.holder = excluded.holder",
            name,
            holder,
            ttl,
        )
        .await
    }

    /// Extends the lease `holder` holds on `name` to `ttl` from now; false
    /// when it no longer holds it (it expired and another took it).
    pub async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, DbError> {
        self.write_lease(
            "UPDATE leases SET expires_micros = (SELECT now_micros FROM database_clock) + $3
             WHERE name = $1 AND holder = $2",
            name,
            holder,
            ttl,
        )
        .await
    }

    /// Runs `statement` (`$1` the lease's name, `$2` its holder, `$3` its
    /// length in microseconds) in a write transaction; whether it wrote a
    /// row.
    async fn write_lease(
        &self,
        statement: &'static str,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let written = on_tx!(tx, |conn| {
            sqlx::query(statement).bind(name).bind(holder).bind(micros(ttl)).execute(conn).await?.rows_affected()
        });
        tx.commit().await?;
        Ok(written > 0)
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
            sqlx::query_scalar(
                "SELECT expires_micros FROM leases
                 WHERE name = $1 AND expires_micros > (SELECT now_micros FROM database_clock)",
            )
            .bind(name)
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

    /// Sets the database's clock `ahead` of this process's (as the nodes'
    /// clocks would be if they ran that far behind the database's).
    async fn set_database_clock_ahead(db: &Database, ahead: Duration) {
        let (micros, statement) = (micros(ahead), |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql)));
        match &db.pool {
            Pool::Sqlite(conns) => statement(format!(
                "DROP VIEW database_clock;
                 CREATE VIEW database_clock AS
                 SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + {micros} AS now_micros"
            ))
            .execute(&mut *conns.acquire().await.unwrap())
            .await
            .map(drop),
            Pool::Postgres(pool) => statement(format!(
                "CREATE OR REPLACE VIEW database_clock AS
                 SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) + {micros} AS now_micros"
            ))
            .execute(pool)
            .await
            .map(drop),
        }
        .unwrap();
    }

    each_backend! {
    async fn leases_expire_by_the_database_clock_not_the_nodes(backend: Backend) {
        let test = TestDb::new(backend);
        let (a, b) = (test.open().await, test.open().await);
        let hour = Duration::from_secs(3600);
        // The nodes' clocks run an hour behind the database's.
        set_database_clock_ahead(&a, hour).await;
        assert!(a.take_lease("file:1", "node-a", LONG).await.unwrap());
        let expires = async {
            Ok::<i64, DbError>(on_pool!(&a.pool, |pool| {
                sqlx::query_scalar("SELECT expires_micros FROM leases WHERE name = 'file:1'").fetch_one(pool).await?
            }))
        };
        let expires = expires.await.unwrap();
        let node_now = jiff::Timestamp::now().as_microsecond();
        assert!(expires > node_now + micros(hour / 2), "expiry on the node's clock: {expires} vs now {node_now}");
        assert!(b.lease_held("file:1").await.unwrap());
        assert!(!b.take_lease("file:1", "node-b", LONG).await.unwrap(), "held by a");

        // Past its expiry on the database's clock (not on the nodes'), it
        // is free to take over, and a cannot renew it.
        set_database_clock_ahead(&a, hour + 2 * LONG).await;
        assert!(!b.lease_held("file:1").await.unwrap(), "expired on the database's clock");
        assert!(b.take_lease("file:1", "node-b", LONG).await.unwrap(), "taken over");
        assert!(!a.renew_lease("file:1", "node-a", LONG).await.unwrap());
    }
    }
}
