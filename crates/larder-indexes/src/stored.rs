//! An index as a static copy carries it (`larder export`): the projects it
//! serves, by the same shadowing and release-age rules as the server
//! ([`crate::named`]), read from what is stored and nothing else. A file
//! whose blob is missing is left out, `.metadata` is advertised only when
//! its blob is stored too, and the upstream is never asked.
//!
//! The view is walked in project-name order a batch at a time (one cursor
//! per stored index the index shows), so memory stays bounded whatever the
//! size of the store.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use larder_index::{IndexDefinition, NormalizedName};
use larder_proxy::CacheOutcome;
use larder_store::db::snapshot::SnapshotProject;
use larder_store::{Blobs, Database, ProjectRecord, UPSTREAM_INDEX};

use crate::layered::{IndexError, Indexes, PageSource};
use crate::named::{Layers, Resolution, Resolved};
use crate::pages::stored_only;

/// Projects read from the database per query.
const BATCH: u32 = 500;

/// One project of the view.
#[derive(Clone, Debug)]
pub struct ViewProject {
    /// The normalized name.
    pub name: NormalizedName,
    /// The record the index serves (stored files only; serials are the
    /// store's).
    pub record: ProjectRecord,
    /// The stored rows behind it, one per stored index that contributes a
    /// file (each file under the first index, in order of preference, that
    /// lists it): what a bundle carries so that an import recreates them.
    pub parts: Vec<SnapshotProject>,
}

/// A walk over the view of one index, in project-name order.
pub struct StoredView {
    indexes: Indexes,
    index: Arc<IndexDefinition>,
    cursors: Vec<Cursor>,
}

impl StoredView {
    /// Starts a walk over the view of `index`.
    pub async fn new(indexes: &Indexes, index: Arc<IndexDefinition>) -> Result<Self, IndexError> {
        let db = indexes.store().db();
        let cursors = indexes.store_indexes(&index).await?.into_iter().map(|name| Cursor::new(db, name)).collect();
        Ok(Self { indexes: indexes.clone(), index, cursors })
    }

    /// The next projects of the view (a few hundred), or none at the end.
    /// A project the index shows with no stored file is left out.
    pub async fn next_batch(&mut self) -> Result<Vec<ViewProject>, IndexError> {
        let mut batch = Vec::new();
        while batch.len() < BATCH as usize {
            let mut next: Option<NormalizedName> = None;
            for cursor in &mut self.cursors {
                if let Some(head) = cursor.peek().await? {
                    next = Some(next.map_or_else(|| head.name.clone(), |n| n.min(head.name.clone())));
                }
            }
            let Some(name) = next else { break };
            let mut parts = Vec::new();
            for cursor in &mut self.cursors {
                if cursor.peek().await?.is_some_and(|head| head.name == name) {
                    parts.push(stored_part(self.indexes.store().blobs(), cursor.pop()).await);
                }
            }
            if let Some(project) = self.project(name, parts).await? {
                batch.push(project);
            }
        }
        Ok(batch)
    }

    async fn project(
        &self,
        name: NormalizedName,
        parts: Vec<SnapshotProject>,
    ) -> Result<Option<ViewProject>, IndexError> {
        let layers = Stored { indexes: &self.indexes, parts: &parts };
        let Resolution::Found(found) = self.indexes.resolve(&layers, &self.index, &name, 0).await? else {
            return Ok(None);
        };
        if found.record.files.is_empty() {
            return Ok(None);
        }
        let mut shown: HashSet<(&str, _)> =
            found.record.files.iter().map(|f| (f.filename.as_str(), f.sha256)).collect();
        let parts = parts
            .iter()
            .filter_map(|part| {
                let files: Vec<_> =
                    part.files.iter().filter(|f| shown.remove(&(f.filename.as_str(), f.sha256))).cloned().collect();
                (!files.is_empty()).then(|| SnapshotProject { files, ..part.clone() })
            })
            .collect();
        Ok(Some(ViewProject { name, record: found.record, parts }))
    }
}

/// A stored project row with only its stored files.
async fn stored_part(blobs: &Blobs, mut project: SnapshotProject) -> SnapshotProject {
    project.files = stored_only(blobs, std::mem::take(&mut project.files)).await;
    project
}

/// The layers as one batch of stored rows has them, for one name.
struct Stored<'a> {
    indexes: &'a Indexes,
    parts: &'a [SnapshotProject],
}

impl Stored<'_> {
    fn part(&self, index: &str) -> Option<ProjectRecord> {
        self.parts.iter().find(|p| p.index == index).map(|part| ProjectRecord {
            display_name: part.display_name.clone(),
            serial: 0,
            files: part.files.clone(),
            upstream: part.upstream.as_ref().map(|page| page.meta.clone()),
        })
    }
}

impl Layers for Stored<'_> {
    async fn own(&self, index: &str, name: &NormalizedName) -> Result<Option<ProjectRecord>, IndexError> {
        match self.part(index) {
            Some(record) => Ok(Some(self.indexes.with_status(index, name, record).await?)),
            None => Ok(None),
        }
    }

    async fn mirror(&self, _name: &NormalizedName) -> Result<Resolution, IndexError> {
        Ok(match self.part(UPSTREAM_INDEX) {
            Some(record) => Resolution::Found(Box::new(Resolved {
                record,
                source: PageSource::Upstream(CacheOutcome::Hit),
                fresh_for: None,
            })),
            None => Resolution::NotFound(None),
        })
    }
}

/// The projects of one stored index, read a batch at a time.
struct Cursor {
    db: Database,
    index: String,
    after: Option<NormalizedName>,
    buffer: VecDeque<SnapshotProject>,
    exhausted: bool,
}

impl Cursor {
    fn new(db: &Database, index: String) -> Self {
        Self { db: db.clone(), index, after: None, buffer: VecDeque::new(), exhausted: false }
    }

    /// The next project, reading the next batch when the buffer is empty.
    async fn peek(&mut self) -> Result<Option<&SnapshotProject>, IndexError> {
        if self.buffer.is_empty() && !self.exhausted {
            let batch = self.db.snapshot_projects(&self.index, self.after.as_ref(), BATCH).await?;
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
