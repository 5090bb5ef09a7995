//! Reading a named index: which project record answers for a name, by the
//! one shadowing rule, with the index's release-age policy applied.
//!
//! - A hosted index answers with its own uploads.
//! - A mirror answers with the proxied upstreams.
//! - A layered index answers with its own uploads when it holds the name
//!   (even with every file deleted: a published name stays reserved), and
//!   never asks its bases then, unless the project is listed to merge the
//!   bases' files in. Otherwise the first base that holds the name answers
//!   (bases are layered indexes or mirrors in their turn).
//!
//! Files from an upstream younger than an index's minimum release age are
//! left out at that index and every index above it; uploads are exempt.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use larder_index::simple::sorted_versions;
use larder_index::{IndexDefinition, IndexKind, NormalizedName, UploadTime};
use larder_proxy::CacheOutcome;
use larder_store::{FileRecord, ProjectRecord, UPSTREAM_INDEX};

use crate::layered::{IndexError, Indexes, Lookup, PageSource};
use crate::listing::ProjectListing;
use crate::pages::page_from_record;

/// The most bases deep a lookup goes (definitions are checked for cycles;
/// this only bounds a definition changed under a running lookup).
const MAX_DEPTH: usize = 16;

/// A project's files as an index answers for it (see
/// [`Indexes::project_files`]).
#[derive(Debug)]
pub struct ProjectFiles {
    /// Its files: hosted ones have no `url`, proxied ones do.
    pub files: Vec<FileRecord>,
    /// Where the answer came from: [`PageSource::Local`] when a hosted
    /// project answers alone (hiding the upstream one).
    pub source: PageSource,
}

/// A project record and where it came from.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The record (its files: hosted ones have no `url`, proxied ones do).
    pub record: ProjectRecord,
    /// Where it came from.
    pub source: PageSource,
    /// How long it may be reused (`None`: until the store changes).
    pub fresh_for: Option<Duration>,
}

/// The answer for a name.
#[derive(Debug)]
pub(crate) enum Resolution {
    /// A record answers (boxed: it is much larger than the other variant).
    Found(Box<Resolved>),
    /// No index in the chain has the name (and how the upstreams said so).
    NotFound(Option<CacheOutcome>),
}

impl Resolution {
    /// A hosted record's answer.
    pub(crate) fn local(record: ProjectRecord) -> Self {
        Self::Found(Box::new(Resolved { record, source: PageSource::Local, fresh_for: None }))
    }

    fn into_lookup(self, name: &NormalizedName, files_base: &str) -> Lookup {
        match self {
            Self::Found(found) => Lookup::Found {
                page: Box::new(page_from_record(name, found.record, files_base)),
                source: found.source,
                fresh_for: found.fresh_for,
            },
            Self::NotFound(outcome) => Lookup::NotFound { outcome },
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, IndexError>> + Send + 'a>>;

/// What a lookup is for: it decides how the upstream layer answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Serving pages: every proxied wheel advertises `.metadata` (read by
    /// ranges on demand), and offline only stored files are listed.
    Serve,
    /// Fetching (the mirror): the upstream rows as they are stored.
    Fetch,
}

/// Where the layers of an index read their records: the live store and
/// proxy, or a batch of a static view ([`crate::stored`]). The shadowing
/// rule ([`Indexes::resolve`]) is the same whatever the source.
pub(crate) trait Layers: Sync {
    /// What a hosted or layered index holds itself (a project row with no
    /// file left is still there: a published name stays reserved).
    fn own(
        &self,
        index: &str,
        name: &NormalizedName,
    ) -> impl Future<Output = Result<Option<ProjectRecord>, IndexError>> + Send;

    /// What the upstream mirror answers.
    fn mirror(&self, name: &NormalizedName) -> impl Future<Output = Result<Resolution, IndexError>> + Send;
}

/// The layers as the store and the proxy have them now.
pub(crate) struct Live<'a> {
    pub indexes: &'a Indexes,
    pub purpose: Purpose,
}

impl Layers for Live<'_> {
    async fn own(&self, index: &str, name: &NormalizedName) -> Result<Option<ProjectRecord>, IndexError> {
        Ok(self.indexes.hosted_project(index, name).await?)
    }

    async fn mirror(&self, name: &NormalizedName) -> Result<Resolution, IndexError> {
        self.indexes.upstream_project(name, self.purpose).await
    }
}

/// Which layers answer for a name in a hosted or layered index: the one
/// shadowing rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shadowing {
    /// The index's own project, hiding the bases completely.
    Own,
    /// The first base that has the name (the index has no such project).
    Bases,
    /// Both: the project is listed to merge its bases' files in.
    Merged,
}

impl Shadowing {
    fn of(index: &IndexDefinition, name: &NormalizedName, own: bool) -> Self {
        match own {
            false => Self::Bases,
            true if index.merge_bases.contains(name) && !index.kind.bases().is_empty() => Self::Merged,
            true => Self::Own,
        }
    }
}

impl Indexes {
    /// A project's page in a named index.
    pub async fn named_project_page(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
        files_base: &str,
    ) -> Result<Lookup, IndexError> {
        let live = Live { indexes: self, purpose: Purpose::Serve };
        Ok(self.resolve(&live, index, name, 0).await?.into_lookup(name, files_base))
    }

    /// The files a project has in `index` for a reader that fetches them
    /// (the mirror): hosted ones without a `url`, upstream ones with one;
    /// `None` when no layer has the name.
    pub async fn project_files(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
    ) -> Result<Option<ProjectFiles>, IndexError> {
        let live = Live { indexes: self, purpose: Purpose::Fetch };
        Ok(match self.resolve(&live, index, name, 0).await? {
            Resolution::Found(found) => Some(ProjectFiles { files: found.record.files, source: found.source }),
            Resolution::NotFound(_) => None,
        })
    }

    /// The project list of a named index: its own projects and its bases'.
    pub async fn named_project_list(&self, index: &IndexDefinition) -> Result<ProjectListing, IndexError> {
        let mut listing = ProjectListing::new(self.store.db().last_serial().await?);
        self.collect_projects(index, &mut listing, 0).await?;
        Ok(listing)
    }

    fn collect_projects<'a>(
        &'a self,
        index: &'a IndexDefinition,
        into: &'a mut ProjectListing,
        depth: usize,
    ) -> Boxed<'a, ()> {
        Box::pin(async move {
            match &index.kind {
                IndexKind::Mirror => self.push_upstream_projects(into).await?,
                IndexKind::Hosted | IndexKind::Layered { .. } => {
                    into.push_summaries(self.store.db().projects(&index.name).await?);
                    for base in index.kind.bases() {
                        if let Some(base) = self.base(base, depth).await? {
                            self.collect_projects(&base, into, depth + 1).await?;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// The indexes whose stored rows an index shows, in order of
    /// preference: itself (unless a mirror), then its bases' in turn, the
    /// upstream mirror as [`UPSTREAM_INDEX`]; each once.
    pub(crate) async fn store_indexes(&self, index: &IndexDefinition) -> Result<Vec<String>, IndexError> {
        let mut order = Vec::new();
        let mut pending = vec![(Arc::new(index.clone()), 0)];
        while let Some((index, depth)) = pending.pop() {
            let own = match index.kind {
                IndexKind::Mirror => UPSTREAM_INDEX.to_owned(),
                _ => index.name.clone(),
            };
            if !order.contains(&own) {
                order.push(own);
            }
            for base in index.kind.bases().iter().rev() {
                if let Some(base) = self.base(base, depth).await? {
                    pending.push((base, depth + 1));
                }
            }
        }
        Ok(order)
    }

    async fn base(&self, name: &str, depth: usize) -> Result<Option<Arc<IndexDefinition>>, IndexError> {
        if depth >= MAX_DEPTH {
            return Ok(None);
        }
        Ok(self.registry.get(name).await?)
    }

    /// Which record answers for `name` in `index`, read from `layers`.
    pub(crate) fn resolve<'a, L: Layers>(
        &'a self,
        layers: &'a L,
        index: &'a IndexDefinition,
        name: &'a NormalizedName,
        depth: usize,
    ) -> Boxed<'a, Resolution> {
        Box::pin(async move {
            let mut resolution = match &index.kind {
                IndexKind::Mirror => layers.mirror(name).await?,
                IndexKind::Hosted | IndexKind::Layered { .. } => {
                    let own = layers.own(&index.name, name).await?;
                    match (Shadowing::of(index, name, own.is_some()), own) {
                        (Shadowing::Own, Some(record)) => Resolution::local(record),
                        (_, own) => merged(own, self.first_base_with(layers, index, name, depth).await?),
                    }
                }
            };
            if let Resolution::Found(found) = &mut resolution {
                self.apply_release_age(index, name, found).await?;
            }
            Ok(resolution)
        })
    }

    async fn first_base_with<L: Layers>(
        &self,
        layers: &L,
        index: &IndexDefinition,
        name: &NormalizedName,
        depth: usize,
    ) -> Result<Resolution, IndexError> {
        let mut outcome = None;
        for base in index.kind.bases() {
            let Some(base) = self.base(base, depth).await? else { continue };
            match self.resolve(layers, &base, name, depth + 1).await? {
                Resolution::Found(found) => return Ok(Resolution::Found(found)),
                Resolution::NotFound(o) => outcome = outcome.or(o),
            }
        }
        Ok(Resolution::NotFound(outcome))
    }

    /// Leaves out upstream files younger than the index's minimum release
    /// age, and makes the answer expire when the next of them matures.
    async fn apply_release_age(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
        found: &mut Resolved,
    ) -> Result<(), IndexError> {
        let policy = &index.release_age;
        if !policy.applies_to(name) {
            return Ok(());
        }
        let now = Timestamp::now();
        let unknown: Vec<_> = found
            .record
            .files
            .iter()
            .filter(|f| f.url.is_some() && f.upload_time.is_none())
            .map(|f| f.sha256)
            .collect();
        let first_seen = self.store.db().first_seen(&unknown, now).await?;
        let mut next_maturity: Option<Timestamp> = None;
        let versions_before: HashSet<String> = found.record.files.iter().map(|f| f.version.clone()).collect();
        found.record.files.retain(|file| {
            if file.url.is_none() {
                return true;
            }
            let seen = first_seen.get(&file.sha256).copied().unwrap_or(now);
            match policy.matures_at(name, file.upload_time.as_ref().map(UploadTime::timestamp), seen) {
                Some(at) if at > now => {
                    next_maturity = Some(next_maturity.map_or(at, |n| n.min(at)));
                    false
                }
                _ => true,
            }
        });
        let versions_after: HashSet<&str> = found.record.files.iter().map(|f| f.version.as_str()).collect();
        if let Some(upstream) = &mut found.record.upstream {
            // A version whose every file is hidden is hidden too.
            upstream.versions.retain(|v| !versions_before.contains(v) || versions_after.contains(v.as_str()));
        }
        if let Some(at) = next_maturity {
            let until = Duration::try_from(now.duration_until(at)).unwrap_or_default();
            found.fresh_for = Some(found.fresh_for.map_or(until, |f| f.min(until)));
        }
        Ok(())
    }
}

/// A layered index's own record over what its bases answered: its own
/// alone, the bases' alone, or (for a project listed to merge) both, its
/// own files winning a filename both have.
fn merged(own: Option<ProjectRecord>, from_bases: Resolution) -> Resolution {
    match (own, from_bases) {
        (None, resolution) => resolution,
        (Some(record), Resolution::NotFound(_)) => Resolution::local(record),
        (Some(mut record), Resolution::Found(base)) => {
            let own: HashSet<String> = record.files.iter().map(|f| f.filename.clone()).collect();
            record.files.extend(base.record.files.into_iter().filter(|f| !own.contains(&f.filename)));
            record.files.sort_by(|a, b| a.filename.cmp(&b.filename));
            record.serial = record.serial.max(base.record.serial);
            let own_status = record.upstream.take().and_then(|meta| meta.status);
            record.upstream = base.record.upstream.map(|mut meta| {
                // The page lists the hosted releases besides the bases' ones.
                if !meta.versions.is_empty() {
                    let listed: HashSet<String> = meta.versions.iter().cloned().collect();
                    let hosted = record.files.iter().filter(|f| f.url.is_none()).map(|f| f.version.clone());
                    let extra: Vec<String> = hosted.filter(|v| !listed.contains(v)).collect();
                    meta.versions.extend(sorted_versions(extra.iter().map(String::as_str)));
                }
                meta.status = own_status.or(meta.status);
                meta
            });
            Resolution::Found(Box::new(Resolved { record, source: base.source, fresh_for: base.fresh_for }))
        }
    }
}
