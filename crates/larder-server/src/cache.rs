//! Rendered pages kept in memory, so a warm page request costs a map lookup.
//!
//! Entries are tagged with the store's journal serial at the time they were
//! read. A background task polls the serial ([`PageCache::watch`]); when
//! another writer (this process or another one sharing the data dir) has
//! changed anything, every older entry stops matching and is rendered anew.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::HeaderValue;
use bytes::Bytes;
use larder_index::{NormalizedName, PageFormat};
use larder_index::Sha256;
use larder_store::Database;

/// A page ready to send.
#[derive(Debug)]
pub struct RenderedPage {
    /// The body.
    pub body: Bytes,
    /// Its strong `ETag` (quoted).
    pub etag: HeaderValue,
    /// The serial sent as `X-PyPI-Last-Serial`.
    pub last_serial: u64,
    /// The `Content-Type`.
    pub format: PageFormat,
}

impl RenderedPage {
    /// Wraps a rendered body, computing its ETag.
    pub fn new(body: String, format: PageFormat, last_serial: u64) -> Self {
        let digest = Sha256::of(body.as_bytes()).to_hex();
        let etag = HeaderValue::from_str(&format!("\"{}\"", &digest[..32])).expect("hex is a valid header value");
        Self { body: Bytes::from(body), etag, last_serial, format }
    }
}

/// Which page: the project list (`None`) or one project's page.
pub type PageKey = (Option<NormalizedName>, PageFormat);

/// The cache of rendered pages.
#[derive(Default)]
pub struct PageCache {
    generation: AtomicU64,
    pages: RwLock<HashMap<PageKey, (u64, Arc<RenderedPage>)>>,
}

impl PageCache {
    /// The current generation: read it before reading the store for a page
    /// that will be [`PageCache::insert`]ed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached page, if it was rendered in the current generation.
    pub fn get(&self, key: &PageKey) -> Option<Arc<RenderedPage>> {
        let generation = self.generation();
        let pages = self.pages.read().expect("page cache lock is never poisoned");
        pages.get(key).filter(|(g, _)| *g == generation).map(|(_, page)| page.clone())
    }

    /// Keeps a page rendered from a store read at `generation`.
    pub fn insert(&self, key: PageKey, generation: u64, page: Arc<RenderedPage>) {
        let mut pages = self.pages.write().expect("page cache lock is never poisoned");
        pages.insert(key, (generation, page));
    }

    /// Moves to a new generation when the store's serial changed, dropping
    /// every page rendered before.
    pub fn observe_serial(&self, serial: u64) {
        if self.generation.swap(serial, Ordering::AcqRel) != serial {
            self.pages.write().expect("page cache lock is never poisoned").clear();
        }
    }

    /// Polls the database's serial forever, every `interval`.
    pub async fn watch(self: Arc<Self>, db: Database, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match db.last_serial().await {
                Ok(serial) => self.observe_serial(serial),
                Err(error) => tracing::warn!(%error, "cannot read the store's serial; pages may be stale"),
            }
        }
    }
}
