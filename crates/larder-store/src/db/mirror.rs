//! What `larder mirror --all` remembers between runs.

use std::collections::HashMap;

use super::backend::{DbRow, on_pool, on_tx};
use super::{Database, DbError, batch};
use jiff::Timestamp;
use larder_index::{NormalizedName, Sha256};

/// The statement that records a chunk of `(name, serial)` (`WHERE TRUE`:
/// SQLite's parser needs a `WHERE` before an `ON CONFLICT` after a
/// `SELECT`).
static SET_MIRROR_SERIALS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO mirror_serials (name, serial)
         SELECT DISTINCT batch.column1, batch.column2 FROM ({}) AS batch WHERE TRUE
         ON CONFLICT (name) DO UPDATE SET serial = excluded.serial",
        batch::values_list(&["{}", "CAST({} AS BIGINT)"], 1)
    )
});

/// The statement that reads the recorded serials of a chunk of names.
static MIRROR_SERIALS_OF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let params: Vec<String> = (1..=batch::WIDTH).map(|i| format!("${i}")).collect();
    format!("SELECT name, serial FROM mirror_serials WHERE name IN ({})", params.join(", "))
});

/// `(name, serial)` rows of `mirror_serials`, read.
fn serial_rows<C: FromIterator<(NormalizedName, u64)>>(rows: Vec<(String, i64)>) -> Result<C, DbError> {
    rows.into_iter()
        .map(|(name, serial)| {
            let name = NormalizedName::from_normalized(&name).ok_or(DbError::Corrupt("mirror_serials.name"))?;
            Ok((name, serial as u64))
        })
        .collect()
}

impl Database {
    /// The last completely mirrored upstream serial of each of `names`
    /// that has one, a chunk of names per statement.
    pub async fn mirror_serials_of(&self, names: &[NormalizedName]) -> Result<HashMap<NormalizedName, u64>, DbError> {
        let mut serials = HashMap::with_capacity(names.len());
        for chunk in names.chunks(batch::WIDTH) {
            let rows: Vec<(String, i64)> = on_pool!(&self.pool, |pool| {
                let mut select = sqlx::query_as(sqlx::AssertSqlSafe(MIRROR_SERIALS_OF.as_str()));
                for name in batch::padded(chunk) {
                    select = select.bind(name.as_str());
                }
                select.fetch_all(pool).await?
            });
            serials.extend(serial_rows::<Vec<_>>(rows)?);
        }
        Ok(serials)
    }

    /// Up to `limit` recorded serials of the projects named after `after`
    /// (from the first when `None`), in name order: a walk over all of
    /// them a page at a time.
    pub async fn mirror_serials_after(
        &self,
        after: Option<&NormalizedName>,
        limit: i64,
    ) -> Result<Vec<(NormalizedName, u64)>, DbError> {
        let rows: Vec<(String, i64)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT name, serial FROM mirror_serials WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(after.map_or("", NormalizedName::as_str))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        serial_rows(rows)
    }

    /// Records that each named project (each named once) is mirrored up
    /// to its upstream serial, in one transaction, a chunk of projects per
    /// statement.
    pub async fn set_mirror_serials(&self, serials: &[(NormalizedName, u64)]) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        for chunk in serials.chunks(batch::WIDTH) {
            on_tx!(tx, |conn| {
                let mut upsert = sqlx::query(sqlx::AssertSqlSafe(SET_MIRROR_SERIALS.as_str()));
                for (name, serial) in batch::padded(chunk) {
                    upsert = upsert.bind(name.as_str()).bind(*serial as i64);
                }
                upsert.execute(conn).await?;
            });
        }
        tx.commit().await
    }

    /// The filter fingerprint the recorded serials were mirrored with.
    pub async fn mirror_fingerprint(&self) -> Result<Option<String>, DbError> {
        Ok(on_pool!(&self.pool, |pool| {
            sqlx::query_scalar("SELECT value FROM mirror_settings WHERE key = 'filter'").fetch_optional(pool).await?
        }))
    }

    /// Starts mirroring under a new filter: every recorded serial is
    /// forgotten (so every project is looked at again) and the fingerprint
    /// kept, in one transaction, so a run killed after this resumes right.
    pub async fn reset_mirror_serials(&self, fingerprint: &str) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM mirror_serials").execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO mirror_settings (key, value) VALUES ('filter', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a project (it is gone upstream).
    pub async fn forget_mirror_serial(&self, name: &NormalizedName) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM mirror_serials WHERE name = $1").bind(name.as_str()).execute(conn).await?;
        });
        tx.commit().await
    }

    /// Every blob digest a file row refers to (files and their metadata),
    /// for garbage collection.
    pub async fn referenced_digests(&self) -> Result<std::collections::HashSet<larder_index::Sha256>, DbError> {
        let digests: Vec<String> = on_pool!(&self.pool, |pool| {
            sqlx::query_scalar(
                "SELECT sha256 AS digest FROM files
                 UNION SELECT metadata_sha256 FROM files WHERE metadata_sha256 IS NOT NULL",
            )
            .fetch_all(pool)
            .await?
        });
        digests.iter().map(|digest| digest.parse().map_err(|_| DbError::Corrupt("files.sha256"))).collect()
    }

    /// Whether any file row refers to this blob (as a file or as its core
    /// metadata).
    pub async fn references(&self, digest: &larder_index::Sha256) -> Result<bool, DbError> {
        let hex = digest.to_hex();
        Ok(on_pool!(&self.pool, |pool| {
            sqlx::query(
                "SELECT 1 FROM files WHERE sha256 = $1 UNION ALL SELECT 1 FROM files WHERE metadata_sha256 = $1 LIMIT 1",
            )
            .bind(&hex)
            .fetch_optional(pool)
            .await?
            .is_some()
        }))
    }

    /// Up to `limit` file rows of any index after `cursor` (an
    /// `(index, filename)` from the previous batch; `None` to start), in
    /// key order, each with when `larder verify` last found its blobs
    /// sound: walks every file in bounded memory.
    pub async fn files_after(
        &self,
        cursor: Option<&(String, String)>,
        limit: i64,
    ) -> Result<Vec<CheckedFile>, DbError> {
        let (index, filename) = cursor.map_or(("", ""), |(i, f)| (i.as_str(), f.as_str()));
        on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT index_name, checked_at_micros, ",
                file_columns!(),
                " FROM files WHERE (index_name, filename) > ($1, $2) ORDER BY index_name, filename LIMIT $3"
            ))
            .bind(index)
            .bind(filename)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(CheckedFile {
                        index: row.col("index_name"),
                        checked_at: row
                            .col::<Option<i64>>("checked_at_micros")
                            .map(|m| {
                                Timestamp::from_microsecond(m).map_err(|_| DbError::Corrupt("files.checked_at_micros"))
                            })
                            .transpose()?,
                        file: super::file_record(row)?,
                    })
                })
                .collect()
        })
    }

    /// Records that the blobs with these digests (files' blobs) were
    /// hashed at `at` and found sound, in one transaction.
    pub async fn record_checks(&self, digests: &[Sha256], at: Timestamp) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        for digest in digests {
            on_tx!(tx, |conn| {
                sqlx::query("UPDATE files SET checked_at_micros = $1 WHERE sha256 = $2")
                    .bind(at.as_microsecond())
                    .bind(digest.to_hex())
                    .execute(conn)
                    .await?;
            });
        }
        tx.commit().await
    }

    /// Where the last rolling verification stopped.
    pub async fn verify_cursor(&self) -> Result<Option<(String, String)>, DbError> {
        Ok(on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT index_name, filename FROM verify_cursor WHERE id = 1").fetch_optional(pool).await?
        }))
    }

    /// Remembers where a rolling verification stopped (`None`: at the end,
    /// so the next one starts over).
    pub async fn set_verify_cursor(&self, cursor: Option<&(String, String)>) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM verify_cursor").execute(&mut *conn).await?;
            if let Some((index, filename)) = cursor {
                sqlx::query("INSERT INTO verify_cursor (id, index_name, filename) VALUES (1, $1, $2)")
                    .bind(index)
                    .bind(filename)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        tx.commit().await
    }
}

/// A file row as `larder verify` walks them.
#[derive(Clone, Debug)]
pub struct CheckedFile {
    /// The index that lists it.
    pub index: String,
    /// The file.
    pub file: super::FileRecord,
    /// When its blobs were last hashed and found sound.
    pub checked_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;
    use crate::db::proxied::tests::listed;
    use crate::db::proxied::{PageState, UpstreamMeta};

    each_backend! {
    /// What `mirror --all`, `gc` and `verify` keep between runs.
    async fn mirror_serials_references_and_verify_records(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let (a, b) = (NormalizedName::new("a").unwrap(), NormalizedName::new("b").unwrap());
        db.reset_mirror_serials("filter-1").await.unwrap();
        db.set_mirror_serials(&[(a.clone(), 3), (b.clone(), 4)]).await.unwrap();
        db.set_mirror_serials(&[(a.clone(), 5)]).await.unwrap();
        db.forget_mirror_serial(&b).await.unwrap();
        assert_eq!(db.mirror_serials_after(None, 10).await.unwrap(), [(a.clone(), 5)]);
        assert_eq!(db.mirror_serials_of(&[a.clone(), b.clone()]).await.unwrap(), HashMap::from([(a.clone(), 5)]));
        assert_eq!(db.mirror_fingerprint().await.unwrap().as_deref(), Some("filter-1"));
        // A run's chunk of projects, longer than one statement's.
        let many: Vec<(NormalizedName, u64)> =
            (0..40).map(|i| (NormalizedName::new(&format!("p{i}")).unwrap(), i)).collect();
        db.set_mirror_serials(&many).await.unwrap();
        let names: Vec<NormalizedName> = many.iter().map(|(name, _)| name.clone()).collect();
        let serials = db.mirror_serials_of(&names).await.unwrap();
        assert_eq!(serials.len(), 40);
        assert!(many.iter().all(|(name, serial)| serials[name] == *serial));
        // Walked in name order, a page at a time.
        let first = db.mirror_serials_after(None, 30).await.unwrap();
        let rest = db.mirror_serials_after(first.last().map(|(name, _)| name), 30).await.unwrap();
        assert_eq!((first.len(), rest.len()), (30, 11));
        assert!(first.iter().chain(&rest).map(|(name, _)| name).is_sorted());
        db.reset_mirror_serials("filter-2").await.unwrap();
        assert!(db.mirror_serials_after(None, 10).await.unwrap().is_empty());

        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let state = PageState { fetched_at: at, found: true, source_url: None, etag: None, body_sha256: None };
        let files = [listed("a-1.0.tar.gz", b"1"), listed("a-2.0.tar.gz", b"2")];
        db.replace_page(&a, "a", &state, &UpstreamMeta::default(), &files).await.unwrap();
        let metadata = Sha256::of(b"m");
        db.record_metadata(&files[0].sha256, &files[0].filename, &metadata, false).await.unwrap();
        let referenced = db.referenced_digests().await.unwrap();
        assert_eq!(referenced.len(), 3);
        assert!(db.references(&metadata).await.unwrap());
        assert!(!db.references(&Sha256::of(b"nothing")).await.unwrap());

        let first = db.files_after(None, 1).await.unwrap();
        assert_eq!((first.len(), first[0].file.filename.as_str(), first[0].checked_at), (1, "a-1.0.tar.gz", None));
        db.record_checks(&[files[1].sha256], at).await.unwrap();
        let cursor = (first[0].index.clone(), first[0].file.filename.clone());
        let rest = db.files_after(Some(&cursor), 10).await.unwrap();
        assert_eq!((rest.len(), rest[0].checked_at), (1, Some(at)));
        db.set_verify_cursor(Some(&cursor)).await.unwrap();
        assert_eq!(db.verify_cursor().await.unwrap(), Some(cursor));
        db.set_verify_cursor(None).await.unwrap();
        assert_eq!(db.verify_cursor().await.unwrap(), None);
    }
    }
}
