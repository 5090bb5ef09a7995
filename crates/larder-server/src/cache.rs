//! Rendered pages kept in memory, so a warm page request costs a lookup.
//!
//! Bounded by bytes (least recently used pages go first). An entry is valid
//! while (a) its project has not changed in the store since it was
//! rendered, (b) the index definitions have not changed (the registry's
//! generation), and (c) for a proxied page, its freshness has not run out.
//! Changes are learned from the store's journal: by this process directly
//! ([`PageCache::invalidate`]) and from other processes sharing the store
//! (the data dir, or the database of several nodes) by a watcher
//! ([`PageCache::watch`]) that the database's notifications wake at once,
//! and a poll every half second otherwise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use larder_index::{NormalizedName, PageFormat, Sha256};
use larder_indexes::{ChangeListener, ChangeNotice, IndexError, Indexes, Registry};

/// The header that says where an answer came from (`hit`, `miss`,
/// `stale`, `local`, ...).
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-larder-cache");

/// The header that carries a page's serial.
const SERIAL_HEADER: HeaderName = HeaderName::from_static("x-pypi-last-serial");

/// A page ready to send.
#[derive(Debug)]
pub struct RenderedPage {
    /// The body (gzip-compressed when `gzip` says so).
    pub body: Bytes,
    /// True when `body` is gzip-compressed (a large page, such as a whole
    /// index's project list, is kept that way).
    pub gzip: bool,
    /// The length of the body uncompressed.
    pub plain_len: u64,
    /// Its strong `ETag` (quoted).
    pub etag: HeaderValue,
    /// The headers of a `200` answer, built once: `Content-Type`, `Vary`,
    /// `ETag`, `Cache-Control`, `X-PyPI-Last-Serial`, [`CACHE_HEADER`] (as
    /// `hit`; a request sets its own outcome in place) and, for a body
    /// sent as it is kept (not gzip), `Content-Length`.
    pub headers: HeaderMap,
    /// How the page's content was obtained (`local`, `miss`, `stale`, ...),
    /// reported as `hit` on later cache hits unless it is `stale`.
    pub outcome: &'static str,
}

/// A page body as rendered: plain, or gzip-compressed (with its length
/// uncompressed).
pub enum Body {
    /// Uncompressed.
    Plain(Vec<u8>),
    /// Gzip-compressed.
    Gzip {
        /// The compressed bytes.
        compressed: Vec<u8>,
        /// The length uncompressed.
        plain_len: u64,
    },
}

impl RenderedPage {
    /// Wraps a rendered body, computing its ETag.
    pub fn new(body: String, format: PageFormat, last_serial: u64, outcome: &'static str) -> Self {
        Self::of(Body::Plain(body.into_bytes()), format, last_serial, outcome)
    }

    /// Wraps a body, plain or compressed, computing its ETag.
    pub fn of(body: Body, format: PageFormat, last_serial: u64, outcome: &'static str) -> Self {
        let (body, gzip, plain_len) = match body {
            Body::Plain(body) => {
                let len = body.len() as u64;
                (body, false, len)
            }
            Body::Gzip { compressed, plain_len } => (compressed, true, plain_len),
        };
        let digest = Sha256::of(&body).to_hex();
        let etag = HeaderValue::from_str(&format!("\"{}\"", &digest[..32])).expect("hex is a valid header value");
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
        let vary = if gzip { "Accept, Accept-Encoding" } else { "Accept" };
        headers.insert(header::VARY, HeaderValue::from_static(vary));
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::CACHE_CONTROL, cache_control(outcome));
        headers.insert(SERIAL_HEADER, HeaderValue::from(last_serial));
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        if !gzip {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Self { body: crate::sendfile::shareable(body), gzip, plain_len, etag, headers, outcome }
    }

    /// The outcome to report when this page is served again from memory.
    pub fn outcome_on_reuse(&self) -> &'static str {
        if self.outcome == "stale" { "stale" } else { "hit" }
    }
}

/// `Cache-Control` of a page: a proxied page may be reused for a minute
/// (larder itself refreshes it from the upstream on its own TTL); a local
/// page, which an upload changes at once, is revalidated on every use
/// (cheap with `If-None-Match`).
fn cache_control(outcome: &str) -> HeaderValue {
    if outcome == "local" {
        HeaderValue::from_static("max-age=0, must-revalidate")
    } else {
        HeaderValue::from_static("public, max-age=60")
    }
}

/// Which page: the project list (`None`) or one project's page, in a
/// format, of the default index (`None`) or a named one.
pub type PageKey = (Option<NormalizedName>, PageFormat, Option<String>);

/// The version of a page's inputs: the cache-wide epoch, the index
/// definitions' generation and the project's own generation, with the
/// count of changes the cache had seen (when it has seen none since, the
/// page is current without looking its project up). Read it before
/// reading the store for a page.
#[derive(Clone, Copy, Debug)]
pub struct Generation {
    changes: u64,
    epoch: u64,
    definitions: u64,
    project: u64,
}

#[derive(Clone)]
struct Entry {
    generation: Generation,
    fresh_until: Option<Instant>,
    page: Arc<RenderedPage>,
}

#[derive(Clone)]
struct EntryWeight;

impl quick_cache::Weighter<PageKey, Entry> for EntryWeight {
    fn weight(&self, _key: &PageKey, entry: &Entry) -> u64 {
        entry.page.body.len() as u64 + 256
    }
}

/// When the journal shows more changes than this at once, every page is
/// dropped instead of the projects one by one.
const MAX_TRACKED_CHANGES: i64 = 10_000;

/// The cache of rendered pages.
pub struct PageCache {
    pages: quick_cache::sync::Cache<PageKey, Entry, EntryWeight>,
    /// Whose generation says when the index definitions changed.
    registry: Registry,
    epoch: AtomicU64,
    generations: RwLock<HashMap<Option<NormalizedName>, u64>>,
    last_serial: AtomicU64,
    changes: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PageCache {
    /// A cache holding up to `max_bytes` of rendered pages, following the
    /// journal from `serial` and the definitions `registry` reads.
    pub fn new(max_bytes: u64, serial: u64, registry: Registry) -> Self {
        Self {
            pages: quick_cache::sync::Cache::with_weighter(4096, max_bytes, EntryWeight),
            registry,
            epoch: AtomicU64::new(0),
            generations: RwLock::new(HashMap::new()),
            last_serial: AtomicU64::new(serial),
            changes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The current generation of a page's inputs.
    pub fn generation(&self, project: &Option<NormalizedName>) -> Generation {
        // The change count first: a change made while the rest is read
        // makes the count differ later, and the page is then checked in full.
        let changes = self.changes.load(Ordering::Acquire);
        let generations = self.generations.read().expect("never poisoned");
        Generation {
            changes,
            epoch: self.epoch.load(Ordering::Acquire),
            definitions: self.registry.generation(),
            project: generations.get(project).copied().unwrap_or(0),
        }
    }

    /// Whether a page rendered at `generation` is still current: at once
    /// when no change was seen since (every invalidation and epoch counts
    /// one), else by its project's generation.
    fn is_current(&self, project: &Option<NormalizedName>, generation: &Generation) -> bool {
        if generation.changes == self.changes.load(Ordering::Acquire) {
            return generation.definitions == self.registry.generation();
        }
        let now = self.generation(project);
        (now.epoch, now.definitions, now.project) == (generation.epoch, generation.definitions, generation.project)
    }

    /// How many pages are kept, and their bytes.
    pub fn usage(&self) -> (usize, u64) {
        (self.pages.len(), self.pages.weight())
    }

    /// The cached page, if still valid.
    pub fn get(&self, key: &PageKey) -> Option<Arc<RenderedPage>> {
        let page = self.pages.get(key).and_then(|entry| {
            let fresh = entry.fresh_until.is_none_or(|until| Instant::now() < until);
            (fresh && self.is_current(&key.0, &entry.generation)).then_some(entry.page)
        });
        let counter = if page.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        page
    }

    /// Lookups so far that found a valid page, and those that did not.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// Keeps a page rendered from inputs read at `generation`, for at most
    /// `fresh_for` (`None`: until its project changes).
    pub fn insert(&self, key: PageKey, generation: Generation, fresh_for: Option<Duration>, page: Arc<RenderedPage>) {
        let fresh_until = fresh_for.map(|d| Instant::now() + d);
        self.pages.insert(key, Entry { generation, fresh_until, page });
    }

    /// How many changes to the store this cache has seen: anything
    /// remembered about the store at one count may be out of date at the
    /// next.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Marks a project's pages (and the project list) out of date.
    pub fn invalidate(&self, project: &NormalizedName) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        let mut generations = self.generations.write().expect("never poisoned");
        *generations.entry(Some(project.clone())).or_default() += 1;
        *generations.entry(None).or_default() += 1;
    }

    /// Reads the journal since the last look and invalidates what changed.
    pub async fn follow_journal(&self, indexes: &Indexes) -> Result<(), IndexError> {
        let since = self.last_serial.load(Ordering::Acquire);
        let changes = indexes.changes_since(since, MAX_TRACKED_CHANGES).await?;
        let Some(newest) = changes.last().map(|(serial, _)| *serial) else {
            return Ok(());
        };
        if changes.len() as i64 >= MAX_TRACKED_CHANGES {
            self.changes.fetch_add(1, Ordering::AcqRel);
            self.epoch.fetch_add(1, Ordering::AcqRel);
        } else {
            for (_, project) in &changes {
                self.invalidate(project);
            }
        }
        self.last_serial.store(newest, Ordering::Release);
        Ok(())
    }

    /// Follows changes forever: at once when the database says another
    /// node committed one (PostgreSQL's notifications), and every
    /// `interval` in any case, the backstop for a notification missed while
    /// reconnecting and the only way on SQLite.
    pub async fn watch(self: Arc<Self>, indexes: Indexes, interval: Duration) {
        let mut listener = match indexes.change_listener().await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes made by other nodes; polling only");
                None
            }
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let change = tokio::select! {
                _ = ticker.tick() => None,
                change = next_change(&mut listener, interval) => Some(change),
            };
            // Reading the index definitions again moves the registry's
            // generation when another process changed them (they are not
            // in the journal, so a notice of one says nothing of them).
            if change != Some(ChangeNotice::Journal)
                && let Err(error) = indexes.registry().reload().await
            {
                tracing::warn!(%error, "cannot read the index definitions; access rules may be stale");
            }
            if let Err(error) = self.follow_journal(&indexes).await {
                tracing::warn!(%error, "cannot read the store's journal; pages may be stale");
            }
        }
    }
}

/// The next change `listener` hears of; never, without one. While the
/// database cannot be reached, tries again every `pause`.
async fn next_change(listener: &mut Option<ChangeListener>, pause: Duration) -> ChangeNotice {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    loop {
        match listener.next().await {
            Ok(change) => return change,
            Err(error) => {
                tracing::debug!(%error, "lost the change notifications; polling until they are back");
                tokio::time::sleep(pause).await;
            }
        }
    }
}
