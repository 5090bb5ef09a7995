//! The upstream's whole project list as the proxy last fetched it, kept as
//! one opaque body (the proxy chooses its form) so it outlives a restart.

use jiff::Timestamp;

use super::backend::{on_pool, on_tx};
use super::{Database, DbError};

impl Database {
    /// Keeps `body` as the upstream project list fetched at `fetched_at`,
    /// replacing the one kept before.
    pub async fn put_upstream_project_list(&self, fetched_at: Timestamp, body: &[u8]) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO upstream_project_list (id, fetched_at_micros, body) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET fetched_at_micros = excluded.fetched_at_micros, body = excluded.body",
            )
            .bind(fetched_at.as_microsecond())
            .bind(body)
            .execute(conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// The upstream project list kept last, and when it was fetched.
    pub async fn upstream_project_list(&self) -> Result<Option<(Timestamp, Vec<u8>)>, DbError> {
        let row: Option<(i64, Vec<u8>)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT fetched_at_micros, body FROM upstream_project_list WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        row.map(|(at, body)| {
            let at =
                Timestamp::from_microsecond(at).map_err(|_| DbError::Corrupt("upstream_project_list.fetched_at"))?;
            Ok((at, body))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;

    each_backend! {
    async fn the_project_list_is_kept_and_replaced(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        assert_eq!(db.upstream_project_list().await.unwrap(), None);
        let first = Timestamp::from_second(1_700_000_000).unwrap();
        db.put_upstream_project_list(first, b"one\0\xff").await.unwrap();
        assert_eq!(db.upstream_project_list().await.unwrap(), Some((first, b"one\0\xff".to_vec())));
        let second = Timestamp::from_second(1_700_000_600).unwrap();
        db.put_upstream_project_list(second, b"two").await.unwrap();
        assert_eq!(db.upstream_project_list().await.unwrap(), Some((second, b"two".to_vec())));
    }
    }
}
