//! Project lists of any size: an index's own projects merged with its
//! bases' and, where a mirror is among them, with the upstream's whole
//! list (about 740,000 names on the public index), without an entry
//! object per project. The merge follows the shadowing rule: the first
//! source that holds a name gives its entry (a hosted project before the
//! upstream one it hides).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use larder_index::names::{merge_sorted, search_all};
use larder_index::{ListedProject, NameList, NameListBuilder, PageFormat, SearchHits};
use larder_proxy::CacheOutcome;
use larder_store::ProjectSummary;

/// A project list, ready to render or search.
#[derive(Clone, Debug)]
pub struct ProjectListing {
    /// The sources, first winning.
    sources: Vec<Arc<NameList>>,
    /// Which of them is the upstream's list.
    upstream_source: Option<usize>,
    /// The store's last serial, the list's `_last-serial`.
    pub last_serial: u64,
    /// How the upstream's list was obtained, when one is part of it.
    pub upstream: Option<CacheOutcome>,
    /// How long the listing may be reused (`None`: until the store
    /// changes).
    pub fresh_for: Option<Duration>,
}

impl ProjectListing {
    /// An empty listing at `last_serial`.
    pub(crate) fn new(last_serial: u64) -> Self {
        Self { sources: Vec::new(), upstream_source: None, last_serial, upstream: None, fresh_for: None }
    }

    /// Adds projects read from the store, after the sources already added.
    pub(crate) fn push_summaries(&mut self, projects: Vec<ProjectSummary>) {
        let mut builder = NameListBuilder::default();
        for project in &projects {
            builder.push(&project.display_name, Some(project.serial));
        }
        self.sources.push(Arc::new(builder.finish()));
    }

    /// Adds the upstream's list, after the sources already added.
    pub(crate) fn push_upstream(&mut self, upstream: larder_proxy::UpstreamNames) {
        // Two mirrors among the bases share the one list.
        if !self.sources.iter().any(|source| Arc::ptr_eq(source, &upstream.names)) {
            self.upstream_source = Some(self.sources.len());
            self.sources.push(upstream.names);
        }
        self.upstream = Some(upstream.outcome);
        self.fresh_for = Some(self.fresh_for.map_or(upstream.fresh_for, |f| f.min(upstream.fresh_for)));
    }

    /// Every project, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = ListedProject<'_>> + '_ {
        merge_sorted(self.sources.iter().map(|list| list.iter()).collect())
    }

    /// How many projects (one pass over the list).
    pub fn count(&self) -> usize {
        match self.sources.as_slice() {
            [] => 0,
            [only] => only.len(),
            _ => self.iter().count(),
        }
    }

    /// How many projects the upstream's list holds, when it is part of
    /// this listing.
    pub fn upstream_count(&self) -> Option<usize> {
        self.upstream_source.map(|i| self.sources[i].len())
    }

    /// How many projects the store holds for this listing (hosted, and
    /// fetched through the proxy), counting a name in several indexes
    /// once per index.
    pub fn stored_count(&self) -> usize {
        let upstream = self.upstream_source;
        self.sources.iter().enumerate().filter(|(i, _)| Some(*i) != upstream).map(|(_, list)| list.len()).sum()
    }

    /// The projects whose name holds `query`, at most `limit`, best first.
    pub fn search(&self, query: &str, limit: usize) -> SearchHits<'_> {
        let lists: Vec<&NameList> = self.sources.iter().map(Arc::as_ref).collect();
        search_all(&lists, query, limit)
    }

    /// The project of this normalized name, as the listing has it.
    pub fn get(&self, name: &str) -> Option<ListedProject<'_>> {
        self.sources.iter().find_map(|list| list.get(name))
    }

    /// Writes the list as a Simple API page, a project at a time.
    pub fn write(&self, out: &mut impl Write, format: PageFormat) -> std::io::Result<()> {
        larder_index::write_project_list(out, self.iter(), Some(self.last_serial), format)
    }
}
