//! The larder HTTP server: the Simple API (PEP 503 HTML and PEP 691 JSON),
//! file downloads, health and metrics. Handlers are thin: they parse the
//! request, ask the indexes layer, and frame the answer.

pub mod cache;
pub mod error;
pub mod files;
pub mod metrics;
pub mod negotiate;
pub mod pages;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use larder_indexes::Indexes;

pub use routes::router;

use crate::cache::PageCache;
use crate::metrics::Metrics;

/// How often the server reads the journal for changes made by other
/// processes sharing the data dir.
const JOURNAL_POLL: Duration = Duration::from_millis(500);

/// The most memory rendered pages may take.
const PAGE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The indexes served.
    pub indexes: Indexes,
    /// Rendered pages.
    pub pages: Arc<PageCache>,
    /// Counters.
    pub metrics: Metrics,
}

impl AppState {
    /// Builds the state and starts the task that follows changes made to
    /// the store by other processes.
    pub async fn start(indexes: Indexes) -> Result<Arc<Self>, larder_store::DbError> {
        let db = indexes.store().db.clone();
        let pages = Arc::new(PageCache::new(PAGE_CACHE_BYTES, db.last_serial().await?));
        tokio::spawn(pages.clone().watch(db, JOURNAL_POLL));
        Ok(Arc::new(Self { indexes, pages, metrics: Metrics::default() }))
    }
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
