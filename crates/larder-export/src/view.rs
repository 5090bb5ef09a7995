//! What a static copy of the store carries: one index (the default one
//! unless `--index` names another) as larder serves it, by the same rules
//! and the same code ([`larder_indexes::StoredView`]: a hosted project
//! name hides its bases completely unless merged on purpose, release-age
//! policies apply), restricted to what is stored and to filenames that are
//! safe as a path component.

use std::sync::Arc;

use larder_bundle::is_safe_filename;
use larder_index::ProjectPage;
use larder_indexes::pages::page_from_record;
use larder_indexes::{Indexes, StoredView, ViewProject};
use larder_store::Store;

use crate::Error;

/// Where file links point from a project page at `simple/<project>/`: the
/// same layout as the server, so pages are the ones it renders.
pub const FILES_BASE: &str = "../../files/";

/// A walk over the view, in project-name order.
pub struct View {
    inner: StoredView,
}

impl View {
    /// Starts a walk over the view of `index` (the default index when
    /// `None`) in `store`.
    pub async fn new(store: &Store, index: Option<&str>) -> Result<Self, Error> {
        let indexes = Indexes::new(store.clone(), None);
        let definition = match index {
            None => Arc::new(Indexes::default_index()),
            Some(name) => indexes.registry().get(name).await?.ok_or_else(|| Error::UnknownIndex(name.to_owned()))?,
        };
        Ok(Self { inner: StoredView::new(&indexes, definition).await? })
    }

    /// The next projects of the view (a few hundred), or none at the end.
    pub async fn next_batch(&mut self) -> Result<Vec<ViewProject>, Error> {
        let batch = self.inner.next_batch().await?;
        Ok(batch.into_iter().filter_map(safe_only).collect())
    }
}

/// The page of a project of the view, as the server renders it but
/// without serials: a static copy is identified by its content alone, so
/// two stores holding the same content export the same bytes, and a
/// re-export after changes that only moved serials writes nothing.
pub fn page(project: &ViewProject) -> ProjectPage {
    let mut record = project.record.clone();
    record.serial = 0;
    if let Some(meta) = &mut record.upstream {
        meta.last_serial = None;
    }
    let mut page = page_from_record(&project.name, record, FILES_BASE);
    page.last_serial = None;
    page
}

/// Leaves out files whose name is not a safe path component; `None` when
/// no file is left.
fn safe_only(mut project: ViewProject) -> Option<ViewProject> {
    let unsafe_names: Vec<String> =
        project.record.files.iter().filter(|f| !is_safe_filename(&f.filename)).map(|f| f.filename.clone()).collect();
    for filename in &unsafe_names {
        tracing::warn!(project = %project.name, %filename, "not exported: unsafe filename");
    }
    if !unsafe_names.is_empty() {
        project.record.files.retain(|f| is_safe_filename(&f.filename));
        for part in &mut project.parts {
            part.files.retain(|f| is_safe_filename(&f.filename));
        }
        project.parts.retain(|p| !p.files.is_empty());
    }
    (!project.record.files.is_empty()).then_some(project)
}
