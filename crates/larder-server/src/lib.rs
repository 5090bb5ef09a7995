//! The larder HTTP server: the Simple API (PEP 503 HTML and PEP 691 JSON),
//! file downloads, health and metrics. Handlers are thin: they parse the
//! request, ask the indexes layer, and frame the answer.

pub mod auth;
pub mod cache;
mod dispatch;
pub mod error;
pub mod file_cache;
pub mod files;
mod list_page;
mod listen;
mod listener;
pub mod metrics;
mod named;
pub mod negotiate;
pub mod pages;
mod request_log;
mod routes;
pub mod sendfile;
mod upload;
mod upload_body;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use larder_indexes::Indexes;

pub use listen::ConnectionLimits;
pub use listener::{BindUnixError, Listener, SocketFile};
pub use routes::router;

use crate::cache::PageCache;
use crate::metrics::Metrics;

/// How often the server reads the journal for changes made by other
/// processes sharing the store, notified or not.
const JOURNAL_POLL: Duration = Duration::from_millis(500);

/// The most memory rendered pages may take.
const PAGE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The indexes served.
    pub indexes: Indexes,
    /// Rendered pages.
    pub pages: Arc<PageCache>,
    /// Which stored blob answers a file URL.
    pub files: file_cache::FileCache,
    /// One render per page at a time: concurrent misses for one page wait
    /// for the first render instead of each rendering a copy.
    pub renders: larder_proxy::flight::OnceMap<cache::PageKey, pages::Rendered>,
    /// Counters.
    pub metrics: Metrics,
    /// The largest file an upload may carry.
    pub max_upload_bytes: u64,
    /// The URL clients reach this server at, when configured (ends in
    /// `/`); else the web pages take it from each request.
    pub public_url: Option<String>,
}

impl AppState {
    /// Builds the state and starts the task that follows changes made to
    /// the store by other processes.
    pub async fn start(
        indexes: Indexes,
        max_upload_bytes: u64,
        public_url: Option<url::Url>,
    ) -> Result<Arc<Self>, larder_indexes::IndexError> {
        let serial = indexes.last_serial().await?;
        let pages = Arc::new(PageCache::new(PAGE_CACHE_BYTES, serial, indexes.registry().clone()));
        tokio::spawn(pages.clone().watch(indexes.clone(), JOURNAL_POLL));
        Ok(Arc::new(Self {
            metrics: Metrics::new(&indexes, pages.clone()),
            indexes,
            pages,
            files: Default::default(),
            renders: Default::default(),
            max_upload_bytes,
            public_url: public_url.map(String::from),
        }))
    }
}

/// A certificate chain and its private key, PEM files, for HTTPS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

/// Serves the routes on `listener` (over TLS when `tls` is given) until
/// `shutdown` completes, within `limits` (which hold for HTTPS as they do
/// for plain HTTP).
pub async fn serve(
    listener: Listener,
    state: Arc<AppState>,
    tls: Option<TlsFiles>,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let transport = match tls {
        None => listen::Transport::Plain,
        Some(tls) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot load TLS certificate {} / key {}: {e}", tls.cert.display(), tls.key.display()),
                    )
                })?;
            listen::Transport::Tls(tokio_rustls::TlsAcceptor::from(config.get_inner()))
        }
    };
    listen::serve(listener, dispatch::Dispatch::new(state), limits, transport, shutdown).await
}
