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
use larder_index::{IndexDefinition, IndexKind, NormalizedName, ProjectList, UploadTime};
use larder_proxy::CacheOutcome;
use larder_store::{ProjectRecord, ProjectSummary, UPSTREAM_INDEX};

use crate::layered::{IndexError, Indexes, Lookup, PageSource};
use crate::pages::page_from_record;

/// The most bases deep a lookup goes (definitions are checked for cycles;
/// this only bounds a definition changed under a running lookup).
const MAX_DEPTH: usize = 16;

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
    fn into_lookup(self, name: &NormalizedName, files_base: &str) -> Lookup {
        match self {
            Self::Found(found) => Lookup::Found {
                page: page_from_record(name, found.record, files_base),
                source: found.source,
                fresh_for: found.fresh_for,
            },
            Self::NotFound(outcome) => Lookup::NotFound { outcome },
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, IndexError>> + Send + 'a>>;

impl Indexes {
    /// A project's page in a named index.
    pub async fn named_project_page(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
        files_base: &str,
    ) -> Result<Lookup, IndexError> {
        Ok(self.resolve(index, name, 0).await?.into_lookup(name, files_base))
    }

    /// The project list of a named index: its own projects and its bases'.
    pub async fn named_project_list(&self, index: &IndexDefinition) -> Result<ProjectList, IndexError> {
        let mut projects = Vec::new();
        self.collect_projects(index, &mut projects, 0).await?;
        self.merged_project_list(projects).await
    }

    fn collect_projects<'a>(
        &'a self,
        index: &'a IndexDefinition,
        into: &'a mut Vec<ProjectSummary>,
        depth: usize,
    ) -> Boxed<'a, ()> {
        Box::pin(async move {
            match &index.kind {
                IndexKind::Mirror if self.proxy.is_some() => {
                    into.extend(self.store.db().projects(UPSTREAM_INDEX).await?)
                }
                IndexKind::Mirror => {}
                IndexKind::Hosted | IndexKind::Layered { .. } => {
                    into.extend(self.store.db().projects(&index.name).await?);
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

    async fn base(&self, name: &str, depth: usize) -> Result<Option<Arc<IndexDefinition>>, IndexError> {
        if depth >= MAX_DEPTH {
            return Ok(None);
        }
        Ok(self.registry.get(name).await?)
    }

    /// Which record answers for `name` in `index`.
    pub(crate) fn resolve<'a>(
        &'a self,
        index: &'a IndexDefinition,
        name: &'a NormalizedName,
        depth: usize,
    ) -> Boxed<'a, Resolution> {
        Box::pin(async move {
            let mut resolution = match &index.kind {
                IndexKind::Mirror => self.upstream_project(name).await?,
                IndexKind::Hosted | IndexKind::Layered { .. } => {
                    let own = self.store.db().project(&index.name, name).await?;
                    let merge = index.merge_bases.contains(name);
                    match own {
                        Some(record) if !merge || index.kind.bases().is_empty() => {
                            Resolution::Found(Box::new(Resolved { record, source: PageSource::Local, fresh_for: None }))
                        }
                        own => {
                            let from_bases = self.first_base_with(index, name, depth).await?;
                            merged(own, from_bases)
                        }
                    }
                }
            };
            if let Resolution::Found(found) = &mut resolution {
                self.apply_release_age(index, name, found).await?;
            }
            Ok(resolution)
        })
    }

    async fn first_base_with(
        &self,
        index: &IndexDefinition,
        name: &NormalizedName,
        depth: usize,
    ) -> Result<Resolution, IndexError> {
        let mut outcome = None;
        for base in index.kind.bases() {
            let Some(base) = self.base(base, depth).await? else { continue };
            match self.resolve(&base, name, depth + 1).await? {
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
        (Some(record), Resolution::NotFound(_)) => {
            Resolution::Found(Box::new(Resolved { record, source: PageSource::Local, fresh_for: None }))
        }
        (Some(mut record), Resolution::Found(base)) => {
            let own: HashSet<String> = record.files.iter().map(|f| f.filename.clone()).collect();
            record.files.extend(base.record.files.into_iter().filter(|f| !own.contains(&f.filename)));
            record.files.sort_by(|a, b| a.filename.cmp(&b.filename));
            record.serial = record.serial.max(base.record.serial);
            record.upstream = base.record.upstream;
            Resolution::Found(Box::new(Resolved { record, source: base.source, fresh_for: base.fresh_for }))
        }
    }
}
