//! The larder HTTP server: the Simple API (PEP 503 HTML and PEP 691 JSON),
//! file downloads, health. Handlers are thin: they parse the request, ask
//! the indexes layer, and frame the answer.

pub mod cache;
pub mod error;
pub mod files;
pub mod negotiate;
pub mod pages;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use larder_store::Store;

pub use routes::router;

use crate::cache::PageCache;

/// How often the server looks for changes made by other processes.
const SERIAL_POLL: Duration = Duration::from_millis(500);

/// What every handler shares.
pub struct AppState {
    /// The data directory.
    pub store: Store,
    /// Rendered pages.
    pub pages: Arc<PageCache>,
}

impl AppState {
    /// Builds the state and starts the task that follows changes made to
    /// the store by other processes.
    pub async fn start(store: Store) -> Result<Arc<Self>, larder_store::DbError> {
        let pages = Arc::new(PageCache::default());
        pages.observe_serial(store.db.last_serial().await?);
        tokio::spawn(pages.clone().watch(store.db.clone(), SERIAL_POLL));
        Ok(Arc::new(Self { store, pages }))
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
