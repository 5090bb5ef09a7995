//! Which indexes hold a file: what decides who may download it.

use super::backend::on_pool;
use super::{Database, DbError};
use larder_index::{NormalizedName, Sha256};

impl Database {
    /// Every index with a row for the file `filename` with digest `sha256`
    /// (listed or not: a file URL answers for either), with the project it
    /// belongs to there.
    pub async fn file_holders(
        &self,
        sha256: &Sha256,
        filename: &str,
    ) -> Result<Vec<(String, NormalizedName)>, DbError> {
        let rows: Vec<(String, String)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT index_name, project FROM files WHERE sha256 = $1 AND filename = $2")
                .bind(sha256.to_hex())
                .bind(filename)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(index, project)| {
                let project = NormalizedName::from_normalized(&project).ok_or(DbError::Corrupt("files.project"))?;
                Ok((index, project))
            })
            .collect()
    }
}
