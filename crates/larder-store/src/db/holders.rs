//! Which indexes hold a file: what decides who may download it.

use larder_index::{NormalizedName, Sha256};
use sqlx::Row;

use super::{Database, DbError};

impl Database {
    /// Every index with a row for the file `filename` with digest `sha256`
    /// (listed or not: a file URL answers for either), with the project it
    /// belongs to there.
    pub async fn file_holders(
        &self,
        sha256: &Sha256,
        filename: &str,
    ) -> Result<Vec<(String, NormalizedName)>, DbError> {
        let rows = sqlx::query("SELECT index_name, project FROM files WHERE sha256 = $1 AND filename = $2")
            .bind(sha256.to_hex())
            .bind(filename)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let project =
                    NormalizedName::from_normalized(row.get("project")).ok_or(DbError::Corrupt("files.project"))?;
                Ok((row.get("index_name"), project))
            })
            .collect()
    }
}
