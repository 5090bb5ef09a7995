//! The PEP 792 status of hosted projects (`active` when never set).

use super::backend::{on_pool, on_tx};
use super::private::journal_project_change;
use super::{Database, DbError};
use larder_index::{NormalizedName, ProjectStatus};

impl Database {
    /// The status set for a hosted project, if any.
    pub async fn project_status(&self, index: &str, name: &NormalizedName) -> Result<Option<ProjectStatus>, DbError> {
        let row: Option<(String, Option<String>)> = on_pool!(&self.pool, |pool| {
            sqlx::query_as("SELECT status, reason FROM project_status WHERE index_name = $1 AND name = $2")
                .bind(index)
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(status, reason)| ProjectStatus { status, reason }))
    }

    /// Sets a hosted project's status (`active` with no reason removes
    /// it), as one journal entry so caches show it on the next request.
    /// Returns false when the index has no such project.
    pub async fn set_project_status(
        &self,
        index: &str,
        name: &NormalizedName,
        status: &ProjectStatus,
    ) -> Result<bool, DbError> {
        let mut tx = self.write().await?;
        let exists = on_tx!(tx, |conn| {
            sqlx::query("SELECT 1 FROM projects WHERE index_name = $1 AND name = $2")
                .bind(index)
                .bind(name.as_str())
                .fetch_optional(conn)
                .await?
                .is_some()
        });
        if !exists {
            return Ok(false);
        }
        on_tx!(tx, |conn| {
            if status.status == "active" && status.reason.is_none() {
                sqlx::query("DELETE FROM project_status WHERE index_name = $1 AND name = $2")
                    .bind(index)
                    .bind(name.as_str())
                    .execute(conn)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO project_status (index_name, name, status, reason) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (index_name, name) DO UPDATE SET status = excluded.status, reason = excluded.reason",
                )
                .bind(index)
                .bind(name.as_str())
                .bind(&status.status)
                .bind(&status.reason)
                .execute(conn)
                .await?;
            }
        });
        journal_project_change(&mut tx, index, name, "status").await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestDb, each_backend};
    use super::*;
    use crate::db::NewFile;

    each_backend! {
    async fn a_status_is_set_shown_and_cleared_with_a_journal_entry(backend: Backend) {
        let test = TestDb::new(backend);
        let db = test.open().await;
        let name = NormalizedName::new("demo").unwrap();
        let archived = ProjectStatus { status: "archived".into(), reason: Some("moved".into()) };
        assert!(!db.set_project_status("team", &name, &archived).await.unwrap(), "no such project");
        let file = NewFile {
            project: name.clone(),
            display_name: "demo".into(),
            version: "1.0".into(),
            filename: "demo-1.0.tar.gz".into(),
            sha256: larder_index::Sha256::of(b"demo"),
            size: 4,
            upload_time: jiff::Timestamp::now(),
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
        };
        db.add_files("team", &[file]).await.unwrap();
        let before = db.last_serial().await.unwrap();
        assert!(db.set_project_status("team", &name, &archived).await.unwrap());
        assert_eq!(db.project_status("team", &name).await.unwrap(), Some(archived));
        assert!(db.last_serial().await.unwrap() > before, "journaled");
        assert_eq!(db.project_status("other", &name).await.unwrap(), None);
        let active = ProjectStatus { status: "active".into(), reason: None };
        assert!(db.set_project_status("team", &name, &active).await.unwrap());
        assert_eq!(db.project_status("team", &name).await.unwrap(), None);
    }
    }
}
