//! The caching proxy between clients and the upstream indexes.
//!
//! - Project pages are kept in the store with the time they were fetched.
//!   A fresh one is served as is; an old one is revalidated (conditionally
//!   when the upstream gave an `ETag`); when every upstream fails, the stored
//!   one is served and marked stale. A 404 from every upstream is
//!   remembered for a short while.
//! - Files are fetched once, streamed to every client that asks while they
//!   are written, verified against the upstream's sha256, and only then
//!   published. A bad body is discarded.
//! - The upstream's project list is kept in memory on its own TTL, and
//!   served stale when every upstream fails.
//! - Concurrent requests for one page or file cause one upstream request.

mod downloads;
pub mod evict;
pub mod flight;
mod lease;
pub mod metadata;
mod pages;
pub mod partial;
mod project_list;
pub mod range;
mod remote_metadata;
mod reserve;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use larder_index::Sha256;
use larder_store::Store;
use larder_upstream::{FetchFailure, Upstreams};

pub use downloads::{BatchFetch, DownloadError, FileBody, FileStreamBody, Unpublished};
pub use lease::LeaseGuard;
pub use pages::PageAnswer;
pub use partial::{FilePart, FileRequest};
pub use project_list::UpstreamNames;

/// How the proxy treats its cache.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// How long a fetched page is served without asking the upstream.
    pub page_ttl: Duration,
    /// How long "no upstream has this project" is remembered.
    pub negative_ttl: Duration,
    /// How long the upstream's project list (`/simple/`) is used before
    /// it is fetched again.
    pub project_list_ttl: Duration,
    /// After a failed refresh, how long the stale page is served before
    /// the upstreams are tried again.
    pub stale_retry: Duration,
    /// Never contact an upstream; serve only what is stored.
    pub offline: bool,
    /// Free bytes the data dir's disk must keep: below this, new upstream
    /// fetches are refused (507) and stored content is still served.
    /// 0 turns the reserve off.
    pub min_free_bytes: u64,
    /// The bounded cache: `None` keeps every file (and tracks no access).
    pub cache_limit: Option<evict::CacheLimit>,
    /// With a database other nodes share: how long a node's lease on an
    /// upstream fetch (a file, its core metadata, a project page) lasts unless renewed (it is renewed every third of
    /// that while the fetch runs), so how long the other nodes wait before
    /// taking over the fetch of a node that died.
    pub download_lease: Duration,
}

/// The default [`ProxySettings::download_lease`].
pub const DEFAULT_DOWNLOAD_LEASE: Duration = Duration::from_secs(30);

/// The default free-space reserve (512 MiB).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 512 << 20;

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            page_ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(60),
            project_list_ttl: Duration::from_secs(3600),
            stale_retry: Duration::from_secs(30),
            offline: false,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            cache_limit: None,
            download_lease: DEFAULT_DOWNLOAD_LEASE,
        }
    }
}

/// Where an answer came from, for logs, headers and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// Served from the store, fresh.
    Hit,
    /// Fetched from an upstream (new, or changed there).
    Miss,
    /// The upstream confirmed the stored copy is current.
    Revalidated,
    /// Every upstream failed; the stored copy was served.
    Stale,
    /// Offline mode; the stored copy was served.
    Offline,
}

impl CacheOutcome {
    /// The lowercase name used in headers, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Revalidated => "revalidated",
            Self::Stale => "stale",
            Self::Offline => "offline",
        }
    }
}

/// Why the proxy could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No upstream gave a usable answer and nothing usable is stored.
    #[error(transparent)]
    Upstream(#[from] FetchFailure),
    /// The download failed or its content did not check out.
    #[error(transparent)]
    Download(Arc<DownloadError>),
    /// A core metadata file fetched from `url` could not be stored (its
    /// digest did not check out).
    #[error("{url}: {source}; discarded")]
    Metadata {
        /// Where it came from.
        url: String,
        /// What failed.
        source: larder_store::BlobError,
    },
    /// A stored wheel's core metadata could not be extracted.
    #[error(transparent)]
    CoreMetadata(Box<metadata::MetadataError>),
    /// Reading a wheel's core metadata by ranges failed.
    #[error("{0}")]
    Ranges(String),
    /// The shared answer of a single flight that another request ran.
    #[error(transparent)]
    Shared(Arc<ProxyError>),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] larder_store::DbError),
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] larder_store::BlobError),
    /// Offline and not stored.
    #[error("{0} is not stored and larder is offline")]
    NotStored(String),
    /// Nothing to fetch it from.
    #[error("{0}")]
    NotAvailable(String),
    /// Fetching it would eat into the free-space reserve.
    #[error("{what} is not stored, and the disk has only {free} bytes free (reserve: {reserve}); not fetching it")]
    InsufficientStorage {
        /// What was asked for.
        what: String,
        /// Free bytes.
        free: u64,
        /// The reserve.
        reserve: u64,
    },
}

impl ProxyError {
    /// The error itself, through the sharing of single flights.
    pub fn unshared(&self) -> &ProxyError {
        match self {
            Self::Shared(error) => error.unshared(),
            other => other,
        }
    }
}

/// The caching proxy. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Replaced as a whole by [`Proxy::reload`].
    upstreams: ArcSwap<Upstreams>,
    /// Replaced as a whole by [`Proxy::reload`].
    settings: ArcSwap<ProxySettings>,
    reserve: reserve::Reserve,
    pages: pages::PageFlights,
    project_list: project_list::ListCache,
    downloads: downloads::Downloads,
    leases: lease::Leases,
    eviction: Option<evict::Eviction>,
}

impl Proxy {
    /// A proxy over `upstreams` storing into `store`.
    pub fn new(store: Store, upstreams: Upstreams, settings: ProxySettings) -> Self {
        let eviction = settings.cache_limit.clone().map(|limit| evict::Eviction::new(store.clone(), limit));
        Self {
            inner: Arc::new(Inner {
                eviction,
                store,
                upstreams: ArcSwap::from_pointee(upstreams),
                reserve: reserve::Reserve::new(settings.min_free_bytes),
                leases: lease::Leases::new(),
                settings: ArcSwap::from_pointee(settings),
                pages: Default::default(),
                project_list: Default::default(),
                downloads: Default::default(),
            }),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<ProxySettings> {
        self.inner.settings.load_full()
    }

    /// The upstreams in use (and their request counters).
    pub fn upstreams(&self) -> Arc<Upstreams> {
        self.inner.upstreams.load_full()
    }

    /// Replaces the upstreams and the settings while requests go on
    /// (a configuration reload): requests under way finish with what they
    /// started with, new ones use the new. What cannot change while
    /// running is kept as it was, and named in the answer: turning the
    /// bounded cache on or off, and the free-space reserve.
    pub fn reload(&self, upstreams: Upstreams, mut settings: ProxySettings) -> Vec<&'static str> {
        let old = self.inner.settings.load_full();
        let mut kept = Vec::new();
        if settings.cache_limit.is_some() != old.cache_limit.is_some() {
            settings.cache_limit.clone_from(&old.cache_limit);
            kept.push("max-cache-size (turning the bounded cache on or off)");
        }
        if settings.min_free_bytes != old.min_free_bytes {
            settings.min_free_bytes = old.min_free_bytes;
            kept.push("min-free-space");
        }
        if let (Some(eviction), Some(limit)) = (&self.inner.eviction, &settings.cache_limit) {
            eviction.set_limit(limit.clone());
        }
        self.inner.upstreams.store(Arc::new(upstreams));
        self.inner.settings.store(Arc::new(settings));
        kept
    }

    /// Notes that a client asked for a stored blob: the bounded cache
    /// evicts what was asked for least recently. Costs a map insert (and
    /// nothing without a cap).
    pub fn note_access(&self, sha256: &Sha256) {
        if let Some(eviction) = &self.inner.eviction {
            eviction.note(sha256);
        }
    }

    /// Starts the bounded cache's background passes (nothing without a
    /// cap). Call once, from within the runtime.
    pub fn start_eviction(&self) {
        if self.inner.eviction.is_some() {
            let proxy = self.clone();
            tokio::spawn(async move { proxy.inner.eviction.as_ref().expect("checked").run().await });
        }
    }

    /// Runs one eviction pass now (`None` without a cap).
    pub async fn evict_now(&self) -> Option<Result<evict::PassReport, evict::EvictError>> {
        Some(self.inner.eviction.as_ref()?.pass().await)
    }

    /// The eviction counters since start (`None` without a cap).
    pub fn eviction_counts(&self) -> Option<evict::EvictionCounts> {
        self.inner.eviction.as_ref().map(evict::Eviction::counts)
    }
}
