//! What a static copy of the store carries: the default index as larder
//! serves it (the local index over the upstream one; a local project name
//! hides the upstream project completely, stored files or not), restricted
//! to what is stored. A file whose blob is missing is left out, `.metadata`
//! is advertised only when its blob is stored, and a project left with no
//! file is left out.
//!
//! The view is walked in project-name order a batch at a time, so memory
//! stays bounded whatever the size of the store.

use std::collections::VecDeque;

use larder_index::{NormalizedName, ProjectPage};
use larder_indexes::LOCAL_INDEX;
use larder_indexes::pages::page_from_record;
use larder_store::db::snapshot::SnapshotProject;
use larder_store::{Blobs, Database, ProjectRecord, Store, UPSTREAM_INDEX};

use crate::Error;

/// Where file links point from a project page at `simple/<project>/`: the
/// same layout as the server, so pages are the ones it renders.
pub const FILES_BASE: &str = "../../files/";

/// Projects read from the database per query.
const BATCH: u32 = 500;

/// A walk over the view, in project-name order.
pub struct View {
    blobs: Blobs,
    local: Cursor,
    upstream: Cursor,
}

impl View {
    /// Starts a walk over the view of `store`.
    pub fn new(store: &Store) -> Self {
        Self {
            blobs: store.blobs().clone(),
            local: Cursor::new(store.db(), LOCAL_INDEX),
            upstream: Cursor::new(store.db(), UPSTREAM_INDEX),
        }
    }

    /// The next projects of the view (a few hundred), or none at the end.
    pub async fn next_batch(&mut self) -> Result<Vec<SnapshotProject>, Error> {
        let mut batch = Vec::new();
        while batch.len() < BATCH as usize {
            let local = self.local.peek().await?.map(|p| p.name.clone());
            let upstream = self.upstream.peek().await?.map(|p| p.name.clone());
            let project = match (local, upstream) {
                (None, None) => break,
                (Some(local), Some(upstream)) if local == upstream => {
                    self.upstream.pop();
                    self.local.pop()
                }
                (Some(local), Some(upstream)) if local < upstream => self.local.pop(),
                (Some(_), None) => self.local.pop(),
                _ => self.upstream.pop(),
            };
            if let Some(project) = stored_only(&self.blobs, project).await {
                batch.push(project);
            }
        }
        Ok(batch)
    }
}

/// The page of a project of the view, as the server renders it but
/// without serials: a static copy is identified by its content alone, so
/// two stores holding the same content export the same bytes, and a
/// re-export after changes that only moved serials writes nothing.
pub fn page(project: &SnapshotProject) -> ProjectPage {
    let record = ProjectRecord {
        display_name: project.display_name.clone(),
        serial: 0,
        files: project.files.clone(),
        upstream: project.upstream.as_ref().map(|page| page.meta.clone()),
    };
    let mut page = page_from_record(&project.name, record, FILES_BASE);
    page.last_serial = None;
    page
}

/// True when `filename` can be used as one path component: not empty, not
/// `.` or `..`, not hidden, no separator or control character.
pub fn is_safe_filename(filename: &str) -> bool {
    !filename.is_empty()
        && !filename.starts_with('.')
        && !filename.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Keeps the files whose blob is stored, advertising `.metadata` only
/// where its blob is stored too; `None` when no file is left.
async fn stored_only(blobs: &Blobs, mut project: SnapshotProject) -> Option<SnapshotProject> {
    let safe: Vec<_> = std::mem::take(&mut project.files)
        .into_iter()
        .filter(|file| {
            let safe = is_safe_filename(&file.filename);
            if !safe {
                tracing::warn!(project = %project.name, filename = %file.filename, "not exported: unsafe filename");
            }
            safe
        })
        .collect();
    project.files = larder_indexes::pages::stored_only(blobs, safe).await;
    (!project.files.is_empty()).then_some(project)
}

/// The projects of one index, read a batch at a time.
struct Cursor {
    db: Database,
    index: &'static str,
    after: Option<NormalizedName>,
    buffer: VecDeque<SnapshotProject>,
    exhausted: bool,
}

impl Cursor {
    fn new(db: &Database, index: &'static str) -> Self {
        Self { db: db.clone(), index, after: None, buffer: VecDeque::new(), exhausted: false }
    }

    /// The next project, reading the next batch when the buffer is empty.
    async fn peek(&mut self) -> Result<Option<&SnapshotProject>, Error> {
        if self.buffer.is_empty() && !self.exhausted {
            let batch = self.db.snapshot_projects(self.index, self.after.as_ref(), BATCH).await?;
            self.exhausted = batch.len() < BATCH as usize;
            self.after = batch.last().map(|p| p.name.clone());
            self.buffer.extend(batch);
        }
        Ok(self.buffer.front())
    }

    /// Takes the project [`Cursor::peek`] returned.
    fn pop(&mut self) -> SnapshotProject {
        self.buffer.pop_front().expect("pop follows a successful peek")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_safe_filenames() {
        assert!(is_safe_filename("demo-1.0-py3-none-any.whl"));
        assert!(is_safe_filename("demo-1.0+local.tar.gz"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\nb", "a\0b"] {
            assert!(!is_safe_filename(bad), "{bad:?}");
        }
    }
}
