//! The door to content: pages, files and metadata of the default index
//! (the hosted `local` index layered over the proxied upstreams, read by
//! the same rule as every named index, see [`crate::named`]), and the
//! stored blobs behind file URLs.

use std::time::Duration;

use larder_index::{DistFilename, NormalizedName, ProjectPage, Sha256};
use larder_proxy::{CacheOutcome, FileBody, FileRequest, PageAnswer, Proxy, ProxyError};
use larder_store::{
    BlobError, BlobHandle, ChangeListener, DbError, FileRecord, ProjectRecord, Store, UPSTREAM_INDEX, Unavailable,
};

use crate::listing::ProjectListing;
use crate::named::{Purpose, Resolution, Resolved};
use crate::registry::Registry;

/// Why the index could not answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The proxy failed.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// Nothing by that name.
    #[error("{0}")]
    NotFound(String),
    /// The bounded cache's records could not be read.
    #[error(transparent)]
    Cache(#[from] larder_proxy::evict::EvictError),
    /// A page could not be rendered.
    #[error("cannot render the page: {0}")]
    Render(#[source] std::io::Error),
}

/// Where a page came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSource {
    /// The hosted index.
    Local,
    /// The upstreams, through the cache.
    Upstream(CacheOutcome),
}

/// A project lookup's answer.
#[derive(Debug)]
pub enum Lookup {
    /// The page.
    Found {
        /// The page.
        page: Box<ProjectPage>,
        /// Where it came from.
        source: PageSource,
        /// How long it may be reused without asking again (`None`: until
        /// the store's serial changes).
        fresh_for: Option<Duration>,
    },
    /// No such project, locally or upstream.
    NotFound {
        /// Whether the upstreams were asked, and how.
        outcome: Option<CacheOutcome>,
    },
}

/// The indexes larder serves: hosted packages over the proxied upstreams.
#[derive(Clone)]
pub struct Indexes {
    pub(crate) store: Store,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) registry: Registry,
}

impl Indexes {
    /// The hosted index alone (`proxy: None`) or layered over a proxy.
    pub fn new(store: Store, proxy: Option<Proxy>) -> Self {
        Self { registry: Registry::new(store.clone()), store, proxy }
    }

    /// The named indexes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The proxy, when upstreams are configured.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// Every project of the default index: the hosted ones the upstream's whole
    /// list (as the proxy keeps it) and those the proxy has fetched.
    pub async fn project_list(&self) -> Result<ProjectListing, IndexError> {
        self.named_project_list(&Self::default_index()).await
    }

    /// Adds what the upstreams list to a listing: the upstream's project
    /// list, then the projects the proxy has fetched (some may be gone
    /// from the list, or the list may be unavailable).
    pub(crate) async fn push_upstream_projects(&self, listing: &mut ProjectListing) -> Result<(), IndexError> {
        let Some(proxy) = &self.proxy else { return Ok(()) };
        if let Some(names) = proxy.project_names().await {
            listing.push_upstream(names);
        }
        listing.push_summaries(self.store.db().projects(UPSTREAM_INDEX).await?);
        Ok(())
    }

    /// A project's page in the default index: the hosted one if the name
    /// exists locally, otherwise the upstream one (refreshed as the cache
    /// policy says).
    pub async fn project_page(&self, name: &NormalizedName, files_base: &str) -> Result<Lookup, IndexError> {
        self.named_project_page(&Self::default_index(), name, files_base).await
    }

    /// A hosted (or layered) index's own project, as stored, with its
    /// status.
    pub(crate) async fn hosted_project(
        &self,
        index: &str,
        name: &NormalizedName,
    ) -> Result<Option<ProjectRecord>, DbError> {
        match self.store.db().project(index, name).await? {
            Some(record) => Ok(Some(self.with_status(index, name, record).await?)),
            None => Ok(None),
        }
    }

    /// A hosted project's record with the PEP 792 status set for it.
    pub(crate) async fn with_status(
        &self,
        index: &str,
        name: &NormalizedName,
        mut record: ProjectRecord,
    ) -> Result<ProjectRecord, DbError> {
        if let Some(status) = self.store.db().project_status(index, name).await? {
            record.upstream.get_or_insert_with(Default::default).status = Some(status);
        }
        Ok(record)
    }

    /// A project as the proxied upstreams have it (refreshed as the cache
    /// policy says; stored files only when offline).
    pub(crate) async fn upstream_project(
        &self,
        name: &NormalizedName,
        purpose: Purpose,
    ) -> Result<Resolution, IndexError> {
        let Some(proxy) = &self.proxy else {
            return Ok(Resolution::NotFound(None));
        };
        match proxy.refresh_page(name).await? {
            PageAnswer::NotFound { outcome, .. } => Ok(Resolution::NotFound(Some(outcome))),
            PageAnswer::Found { outcome, fresh_for } => match self.store.db().project(UPSTREAM_INDEX, name).await? {
                Some(mut record) => {
                    larder_proxy::metadata::complete(&self.store, &mut record.files).await;
                    if proxy.settings().offline {
                        record.files = crate::pages::stored_only(self.store.blobs(), record.files).await;
                    } else if purpose == Purpose::Serve {
                        advertise_wheel_metadata(&mut record.files);
                    }
                    Ok(Resolution::Found(Box::new(Resolved {
                        record,
                        source: PageSource::Upstream(outcome),
                        fresh_for: Some(fresh_for),
                    })))
                }
                None => Ok(Resolution::NotFound(Some(outcome))),
            },
        }
    }

    /// A distribution file by digest and filename: stored, or streamed from
    /// the upstream download (or, for a `HEAD` or a range of a file not
    /// stored, answered from the upstream without downloading it).
    pub async fn file(&self, sha256: &Sha256, filename: &str, request: &FileRequest) -> Result<FileBody, IndexError> {
        let record = self.record(sha256, filename).await?;
        if let Some(proxy) = &self.proxy {
            return Ok(proxy.open_file(&record, request).await?);
        }
        let handle = self.store.blobs().open(sha256).await?.ok_or_else(|| not_found(sha256, filename))?;
        Ok(FileBody::Stored(handle))
    }

    /// The stored core metadata file of a distribution, and whether it had
    /// to be fetched.
    pub async fn metadata(&self, sha256: &Sha256, filename: &str) -> Result<(BlobHandle, CacheOutcome), IndexError> {
        let record = self.record(sha256, filename).await?;
        if let Some(proxy) = &self.proxy {
            return Ok(proxy.open_metadata(&record).await?);
        }
        let no_metadata = || IndexError::NotFound(format!("{filename} has no core metadata file"));
        let digest = record.metadata_sha256.filter(|_| record.serve_metadata).ok_or_else(no_metadata)?;
        let handle = self.store.blobs().open(&digest).await?.ok_or_else(no_metadata)?;
        Ok((handle, CacheOutcome::Hit))
    }

    /// A stored blob by digest, as an earlier answer of [`Indexes::file`]
    /// or [`Indexes::metadata`] named it (`BlobHandle::info`): how a
    /// server's cache of file URLs serves a warm file again. `None` once
    /// the blob is gone.
    pub async fn blob(&self, sha256: &Sha256) -> Result<Option<BlobHandle>, IndexError> {
        let blob = self.store.blobs().open(sha256).await?;
        if let (Some(proxy), Some(_)) = (&self.proxy, &blob) {
            proxy.note_access(sha256);
        }
        Ok(blob)
    }

    /// Whether the blob of this digest is stored here.
    pub async fn is_stored(&self, sha256: &Sha256) -> bool {
        self.store.blobs().contains(sha256).await
    }

    /// The distribution files stored, by kind (hosted, mirrored, cached,
    /// evictable with the pins in force, evicted). Reads every file row.
    pub async fn store_sizes(&self) -> Result<larder_proxy::evict::StoreSizes, IndexError> {
        let settings = self.proxy.as_ref().map(larder_proxy::Proxy::settings);
        let pins = settings.as_ref().and_then(|s| s.cache_limit.as_ref()).map_or(&[][..], |l| &l.pins);
        Ok(larder_proxy::evict::store_sizes(&self.store, pins).await?)
    }

    /// Checks that the metadata database and the blob store both answer,
    /// each within `within`: what did not (empty when all is well).
    pub async fn check_store(&self, within: Duration) -> Vec<Unavailable> {
        self.store.check(within).await
    }

    /// The serial of the newest change to any index (0 when empty).
    pub async fn last_serial(&self) -> Result<u64, IndexError> {
        Ok(self.store.db().last_serial().await?)
    }

    /// The changes after `serial` (at most `limit`), oldest first, as
    /// `(serial, project)`: how a cache learns what other processes and
    /// nodes changed.
    pub async fn changes_since(&self, serial: u64, limit: i64) -> Result<Vec<(u64, NormalizedName)>, IndexError> {
        Ok(self.store.db().changes_since(serial, limit).await?)
    }

    /// Notifications of changes committed by any node sharing the
    /// database, to hear of them before the next poll of
    /// [`Indexes::changes_since`]; `None` when the database has none
    /// (SQLite).
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, IndexError> {
        Ok(self.store.db().change_listener().await?)
    }

    /// The row that answers for a file: a hosted one (served as stored,
    /// never from an upstream) before an upstream one.
    async fn record(&self, sha256: &Sha256, filename: &str) -> Result<FileRecord, IndexError> {
        let rows = self.store.db().file_rows(sha256, filename).await?;
        rows.into_iter().min_by_key(|row| row.url.is_some()).ok_or_else(|| not_found(sha256, filename))
    }
}

/// Advertises `.metadata` (PEP 714 `core-metadata: true` until its hash
/// is known) for every wheel of a proxied page: where the upstream has no
/// metadata file, the proxy reads it from the wheel by ranges on demand,
/// so resolvers never need the wheel itself. Only the page changes; the
/// stored row still says what the upstream offers.
fn advertise_wheel_metadata(files: &mut [FileRecord]) {
    for file in files.iter_mut().filter(|file| !file.serve_metadata) {
        file.serve_metadata = matches!(DistFilename::parse(&file.filename), Ok(DistFilename::Wheel(_)));
    }
}

fn not_found(sha256: &Sha256, filename: &str) -> IndexError {
    IndexError::NotFound(format!("no file {filename} with sha256 {sha256}"))
}
