//! Mirroring a set of projects: refresh their pages, select their files,
//! download what is not stored yet, in parallel.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::{StreamExt, stream};
use larder_index::{IndexDefinition, NormalizedName};
use larder_indexes::{Indexes, PageSource};
use larder_proxy::Proxy;
use larder_store::{FileRecord, Store};

use crate::batch::Batch;
use crate::filter::FileFilter;
use crate::progress::Progress;

/// What a mirror run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Projects whose page was brought in.
    pub projects: u64,
    /// Projects no upstream has.
    pub missing: Vec<NormalizedName>,
    /// Projects skipped because a hosted project of that name hides them.
    pub shadowed: Vec<NormalizedName>,
    /// Files downloaded in this run (those fetched while resolving
    /// included).
    pub downloaded: u64,
    /// Of those, the files fetched while resolving (to read their core
    /// metadata or build requirements).
    pub while_resolving: u64,
    /// Of those, the files read only for their metadata, needed by no
    /// target, and removed again.
    pub discarded: u64,
    /// Files that were already stored.
    pub present: u64,
    /// Files the filters left out.
    pub filtered: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// What failed: `(project or file, reason)`.
    pub failures: Vec<(String, String)>,
}

/// The mirror engine: one store, one proxy, one filter, and the index it
/// fills the store for (whose shadowing and release-age rules decide what a
/// project's files are, as that index serves them).
pub struct Mirror {
    store: Store,
    proxy: Proxy,
    indexes: Indexes,
    index: Arc<IndexDefinition>,
    filter: FileFilter,
    width: usize,
    progress: Progress,
}

impl Mirror {
    /// A mirror for the default index (local packages over the upstream
    /// ones) that downloads up to `width` files (and pages) at once.
    pub fn new(store: Store, proxy: Proxy, filter: FileFilter, width: usize, progress: Progress) -> Self {
        let indexes = Indexes::new(store.clone(), Some(proxy.clone()));
        let index = Arc::new(Indexes::default_index());
        Self { store, proxy, indexes, index, filter, width: width.max(1), progress }
    }

    /// The same mirror, filling the store for `index` instead.
    pub fn for_index(self, index: Arc<IndexDefinition>) -> Self {
        Self { index, ..self }
    }

    /// The indexes, the door to what a project's files are.
    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// The index mirrored for.
    pub fn index(&self) -> &IndexDefinition {
        &self.index
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The proxy (for sources that read pages and metadata through it).
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The filter.
    pub fn filter(&self) -> &FileFilter {
        &self.filter
    }

    /// The progress reporter.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Mirrors `names` with the filter. Returns the projects completely
    /// mirrored (page and every selected file stored).
    pub async fn projects(&self, names: &[NormalizedName], summary: &mut Summary) -> HashSet<NormalizedName> {
        let names: Vec<&NormalizedName> = names.iter().filter(|n| self.filter.allows_project(n)).collect();
        let pages: Vec<(NormalizedName, Result<ProjectFiles, String>)> = stream::iter(names)
            .map(|name| async move { (name.clone(), self.project_files(name).await) })
            .buffer_unordered(self.width)
            .collect()
            .await;
        let mut wanted = Vec::new();
        let mut complete = HashSet::new();
        for (name, result) in pages {
            match result {
                Ok(ProjectFiles::Selected { files, filtered }) => {
                    summary.projects += 1;
                    summary.filtered += filtered;
                    complete.insert(name.clone());
                    wanted.extend(files.into_iter().map(|f| (name.clone(), f)));
                }
                Ok(ProjectFiles::Missing) => summary.missing.push(name),
                Ok(ProjectFiles::Shadowed) => summary.shadowed.push(name),
                Err(reason) => summary.failures.push((name.to_string(), reason)),
            }
        }
        for failed_project in self.download(wanted, summary).await {
            complete.remove(&failed_project);
        }
        complete
    }

    /// Downloads `files` (of the named projects) that are not stored yet,
    /// storing them a batch at a time; returns the projects that had a
    /// failure.
    pub async fn download(
        &self,
        files: Vec<(NormalizedName, FileRecord)>,
        summary: &mut Summary,
    ) -> HashSet<NormalizedName> {
        self.progress.add_files(files.len() as u64);
        let mut fetches = stream::iter(files)
            .map(|(project, file)| {
                // Each fetch is a task of its own, so that one taking its
                // lease (a database write) goes on while the run stores a
                // batch (which waits for that write's turn).
                let (proxy, record) = (self.proxy.clone(), file.clone());
                let fetch = tokio::spawn(async move { proxy.fetch_for_batch(&record).await });
                async move {
                    let result = fetch.await.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
                    (project, file, result)
                }
            })
            .buffer_unordered(self.width);
        let mut batch = Batch::default();
        let mut failed = HashSet::new();
        loop {
            let next = match batch.due() {
                Some(due) => tokio::time::timeout_at(due.into(), fetches.next()).await,
                None => Ok(fetches.next().await),
            };
            let Ok(next) = next else {
                // Due, with no download ended meanwhile.
                self.store_batch(&mut batch, summary, &mut failed).await;
                continue;
            };
            let Some((project, file, result)) = next else { break };
            match result {
                Ok(fetched) => {
                    let bytes = batch.push(project, &file, fetched);
                    self.progress.file_done(bytes);
                    if bytes == 0 {
                        summary.present += 1;
                    } else {
                        summary.downloaded += 1;
                        summary.bytes += bytes;
                    }
                }
                Err(error) => {
                    self.progress.file_done(0);
                    summary.failures.push((file.filename, error.to_string()));
                    failed.insert(project);
                }
            }
            if batch.is_full() {
                self.store_batch(&mut batch, summary, &mut failed).await;
            }
        }
        self.store_batch(&mut batch, summary, &mut failed).await;
        failed
    }

    /// Stores a batch of downloads; when that fails, its files count as
    /// failures of their projects.
    async fn store_batch(&self, batch: &mut Batch, summary: &mut Summary, failed: &mut HashSet<NormalizedName>) {
        if let Err((projects, reason)) = batch.store(&self.store).await {
            tracing::error!(%reason, "cannot store a batch of downloads");
            summary.failures.push((format!("a batch of {} files", projects.len()), reason));
            failed.extend(projects);
        }
    }

    /// Refreshes a project's page and returns the upstream files the
    /// filter keeps, as the index serves them.
    async fn project_files(&self, name: &NormalizedName) -> Result<ProjectFiles, String> {
        let answer = self.indexes.project_files(&self.index, name).await.map_err(|e| e.to_string())?;
        match answer {
            None => Ok(ProjectFiles::Missing),
            Some(answer) if answer.source == PageSource::Local => Ok(ProjectFiles::Shadowed),
            Some(answer) => {
                let all: Vec<FileRecord> = answer.files.into_iter().filter(|f| f.url.is_some()).collect();
                let files: Vec<FileRecord> = self.filter.select(&all).into_iter().cloned().collect();
                Ok(ProjectFiles::Selected { filtered: (all.len() - files.len()) as u64, files })
            }
        }
    }
}

/// What a project contributes to a run.
enum ProjectFiles {
    /// The files the filter keeps, and how many it left out.
    Selected { files: Vec<FileRecord>, filtered: u64 },
    /// No upstream has it.
    Missing,
    /// A hosted project of that name hides the upstream one.
    Shadowed,
}
