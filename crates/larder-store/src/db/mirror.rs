//! What `larder mirror --all` remembers between runs.

use std::collections::HashMap;

use jiff::Timestamp;
use larder_index::{NormalizedName, Sha256};
use sqlx::Row;

use super::{Database, DbError};

impl Database {
    /// Every project's last completely mirrored upstream serial.
    pub async fn mirror_serials(&self) -> Result<HashMap<NormalizedName, u64>, DbError> {
        let rows = sqlx::query("SELECT name, serial FROM mirror_serials").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let name =
                    NormalizedName::from_normalized(row.get("name")).ok_or(DbError::Corrupt("mirror_serials.name"))?;
                Ok((name, row.get::<i64, _>("serial") as u64))
            })
            .collect()
    }

    /// Records that each named project is mirrored up to its upstream
    /// serial, in one transaction.
    pub async fn set_mirror_serials(&self, serials: &[(NormalizedName, u64)]) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        for (name, serial) in serials {
            sqlx::query(
                "INSERT INTO mirror_serials (name, serial) VALUES (?, ?)
                 ON CONFLICT (name) DO UPDATE SET serial = excluded.serial",
            )
            .bind(name.as_str())
            .bind(*serial as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// The filter fingerprint the recorded serials were mirrored with.
    pub async fn mirror_fingerprint(&self) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT value FROM mirror_settings WHERE key = 'filter'")
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Starts mirroring under a new filter: every recorded serial is
    /// forgotten (so every project is looked at again) and the fingerprint
    /// kept, in one transaction, so a run killed after this resumes right.
    pub async fn reset_mirror_serials(&self, fingerprint: &str) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM mirror_serials").execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO mirror_settings (key, value) VALUES ('filter', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(fingerprint)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a project (it is gone upstream).
    pub async fn forget_mirror_serial(&self, name: &NormalizedName) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM mirror_serials WHERE name = ?").bind(name.as_str()).execute(&mut *tx).await?;
        tx.commit().await
    }

    /// Every blob digest a file row refers to (files and their metadata),
    /// for garbage collection.
    pub async fn referenced_digests(&self) -> Result<std::collections::HashSet<larder_index::Sha256>, DbError> {
        let rows = sqlx::query("SELECT sha256 AS digest FROM files UNION SELECT metadata_sha256 FROM files WHERE metadata_sha256 IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.get::<&str, _>("digest").parse().map_err(|_| DbError::Corrupt("files.sha256")))
            .collect()
    }

    /// Whether any file row refers to this blob (as a file or as its core
    /// metadata).
    pub async fn references(&self, digest: &larder_index::Sha256) -> Result<bool, DbError> {
        let hex = digest.to_hex();
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM files WHERE sha256 = ? UNION ALL SELECT 1 FROM files WHERE metadata_sha256 = ? LIMIT 1",
        )
        .bind(&hex)
        .bind(&hex)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
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
        let rows = sqlx::query(concat!(
            "SELECT index_name, checked_at_micros, ",
            file_columns!(),
            " FROM files WHERE (index_name, filename) > (?, ?) ORDER BY index_name, filename LIMIT ?"
        ))
        .bind(index)
        .bind(filename)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CheckedFile {
                    index: row.get("index_name"),
                    checked_at: row
                        .get::<Option<i64>, _>("checked_at_micros")
                        .map(|m| {
                            Timestamp::from_microsecond(m).map_err(|_| DbError::Corrupt("files.checked_at_micros"))
                        })
                        .transpose()?,
                    file: super::file_record(row)?,
                })
            })
            .collect()
    }

    /// Records that the blobs with these digests (files' blobs) were
    /// hashed at `at` and found sound, in one transaction.
    pub async fn record_checks(&self, digests: &[Sha256], at: Timestamp) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        for digest in digests {
            sqlx::query("UPDATE files SET checked_at_micros = ? WHERE sha256 = ?")
                .bind(at.as_microsecond())
                .bind(digest.to_hex())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Where the last rolling verification stopped.
    pub async fn verify_cursor(&self) -> Result<Option<(String, String)>, DbError> {
        Ok(sqlx::query_as("SELECT index_name, filename FROM verify_cursor WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Remembers where a rolling verification stopped (`None`: at the end,
    /// so the next one starts over).
    pub async fn set_verify_cursor(&self, cursor: Option<&(String, String)>) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM verify_cursor").execute(&mut *tx).await?;
        if let Some((index, filename)) = cursor {
            sqlx::query("INSERT INTO verify_cursor (id, index_name, filename) VALUES (1, ?, ?)")
                .bind(index)
                .bind(filename)
                .execute(&mut *tx)
                .await?;
        }
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
