//! Keeping upstream project pages fresh in the store.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use larder_index::{CoreMetadataLink, DistFilename, NormalizedName, ProjectPage, Sha256, Yanked};
use larder_store::{FileRecord, PageState, UpstreamMeta};
use larder_upstream::{FetchedPage, PageFetch, Validator};

use crate::flight::OnceMap;
use crate::lease::Claim;
use crate::{CacheOutcome, Proxy, ProxyError};

/// Single-flight and back-off state for page refreshes.
#[derive(Default)]
pub(crate) struct PageFlights {
    flights: OnceMap<NormalizedName, Result<PageAnswer, Arc<ProxyError>>>,
    /// Projects whose last refresh failed, and when to try again.
    retry_after: Mutex<HashMap<NormalizedName, Instant>>,
    /// Refreshes this process has finished: a caller that counts the same
    /// before reading a page's state and when its refresh starts knows
    /// that no refresh of this process stored anything in between.
    finished: AtomicU64,
}

/// The stored state of a page as a caller of [`Proxy::refresh_page`] read
/// it, and [`PageFlights::finished`] before it did.
struct Looked {
    state: Option<PageState>,
    finished: u64,
}

/// What the proxy knows of a project after [`Proxy::refresh_page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageAnswer {
    /// The store has a page for it; render it from the store.
    Found {
        /// How it was obtained.
        outcome: CacheOutcome,
        /// How long it may be served before asking again.
        fresh_for: Duration,
    },
    /// No upstream has the project.
    NotFound {
        /// How it was known.
        outcome: CacheOutcome,
        /// How long the answer holds.
        fresh_for: Duration,
    },
}

impl Proxy {
    /// Brings the stored page of `name` up to date as the policy says:
    /// fresh pages are left alone, old ones revalidated, failures answered
    /// from the store when it has the page. Concurrent calls for one name
    /// make one upstream request.
    pub async fn refresh_page(&self, name: &NormalizedName) -> Result<PageAnswer, ProxyError> {
        let pages = &self.inner.pages;
        let finished = pages.finished.load(Ordering::SeqCst);
        let state = self.inner.store.db().page_state(name).await?;
        if let Some(answer) = self.answer_from_store(name, state.as_ref()) {
            return Ok(answer);
        }
        let refresh = move || async move {
            let answer = self.refresh_from_upstream(name, Looked { state, finished }).await.map_err(Arc::new);
            pages.finished.fetch_add(1, Ordering::SeqCst);
            answer
        };
        pages.flights.run(name, refresh).await.map_err(ProxyError::Shared)
    }

    /// The single flight of [`Proxy::refresh_page`]: asks the upstreams
    /// unless the store has been refreshed since the caller looked (by
    /// this process, or by another node). Of the nodes sharing the
    /// database, the one holding the page's lease asks; the others wait
    /// for it and answer from the store. (Another process on the same
    /// SQLite file is not waited for: it may refresh the page at the same
    /// moment, as before.)
    async fn refresh_from_upstream(&self, name: &NormalizedName, looked: Looked) -> Result<PageAnswer, ProxyError> {
        let inner = &self.inner;
        let db = inner.store.db();
        let refreshed = || async { Ok(self.answer_from_store(name, db.page_state(name).await?.as_ref())) };
        let ttl = inner.settings.load().download_lease;
        let _lease = match inner.leases.claim(db, format!("page:{name}"), ttl, refreshed).await? {
            Claim::Done(answer) => return Ok(answer),
            Claim::Ours(lease) => lease,
        };
        let state = if db.is_shared() || inner.pages.finished.load(Ordering::SeqCst) != looked.finished {
            db.page_state(name).await?
        } else {
            looked.state
        };
        if let Some(answer) = self.answer_from_store(name, state.as_ref()) {
            return Ok(answer);
        }
        let validator = state.as_ref().and_then(|s| {
            Some(Validator { source_url: s.source_url.as_deref()?.parse().ok()?, etag: s.etag.clone()? })
        });
        let stored = state.as_ref().is_some_and(|s| s.found);
        if let Err(full) = inner.reserve.check(&inner.store, name.as_str()) {
            return if stored { Ok(self.serve_stale(name)) } else { Err(full) };
        }
        match self.fetch_and_store(name, state.as_ref(), validator.as_ref()).await {
            // A write that failed (a full disk, say) leaves the stored page
            // as it was: serve it rather than fail.
            Err(ProxyError::Db(error)) if stored => {
                tracing::warn!(project = %name, %error, "cannot record the upstream's answer; serving the stored page (stale)");
                Ok(self.serve_stale(name))
            }
            answer => answer,
        }
    }

    /// Asks the upstreams for the page and stores what they say.
    async fn fetch_and_store(
        &self,
        name: &NormalizedName,
        state: Option<&PageState>,
        validator: Option<&Validator>,
    ) -> Result<PageAnswer, ProxyError> {
        let inner = &self.inner;
        let now = Timestamp::now();
        let ttl = inner.settings.load().page_ttl;
        match inner.upstreams.load_full().fetch_page(name, validator).await {
            Ok(PageFetch::Page(fetched)) => {
                let unchanged = state.is_some_and(|s| s.found && s.body_sha256 == Some(fetched.body_digest));
                if unchanged {
                    inner.store.db().touch_page(name, now, fetched.etag.as_deref()).await?;
                    return Ok(PageAnswer::Found { outcome: CacheOutcome::Revalidated, fresh_for: ttl });
                }
                self.store_page(name, *fetched, now).await?;
                Ok(PageAnswer::Found { outcome: CacheOutcome::Miss, fresh_for: ttl })
            }
            Ok(PageFetch::NotModified) => {
                inner.store.db().touch_page(name, now, None).await?;
                Ok(PageAnswer::Found { outcome: CacheOutcome::Revalidated, fresh_for: ttl })
            }
            Ok(PageFetch::NotFound) => {
                inner.store.db().mark_page_missing(name, now).await?;
                Ok(PageAnswer::NotFound { outcome: CacheOutcome::Miss, fresh_for: inner.settings.load().negative_ttl })
            }
            Err(failure) if state.is_some_and(|s| s.found) => {
                tracing::warn!(project = %name, error = %failure, "every upstream failed; serving the stored page (stale)");
                Ok(self.serve_stale(name))
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Serves the stored page as stale, and asks the upstreams again only
    /// after the back-off.
    fn serve_stale(&self, name: &NormalizedName) -> PageAnswer {
        let retry = self.inner.settings.load().stale_retry;
        self.inner.pages.retry_after.lock().expect("never poisoned").insert(name.clone(), Instant::now() + retry);
        PageAnswer::Found { outcome: CacheOutcome::Stale, fresh_for: retry }
    }

    /// The answer the store alone can give: offline, fresh, negative, or in
    /// the back-off after a failed refresh. `None` when upstreams must be
    /// asked.
    fn answer_from_store(&self, name: &NormalizedName, state: Option<&PageState>) -> Option<PageAnswer> {
        let settings = self.inner.settings.load();
        let found = state.is_some_and(|s| s.found);
        if settings.offline {
            let outcome = CacheOutcome::Offline;
            let fresh_for = settings.page_ttl;
            return Some(if found {
                PageAnswer::Found { outcome, fresh_for }
            } else {
                PageAnswer::NotFound { outcome, fresh_for }
            });
        }
        if let Some(state) = state {
            let age = Timestamp::now().duration_since(state.fetched_at).unsigned_abs();
            let ttl = if found { settings.page_ttl } else { settings.negative_ttl };
            if let Some(fresh_for) = ttl.checked_sub(age).filter(|left| !left.is_zero()) {
                let outcome = CacheOutcome::Hit;
                return Some(if found {
                    PageAnswer::Found { outcome, fresh_for }
                } else {
                    PageAnswer::NotFound { outcome, fresh_for }
                });
            }
        }
        let mut retry_after = self.inner.pages.retry_after.lock().expect("never poisoned");
        match retry_after.get(name).map(|at| at.saturating_duration_since(Instant::now())) {
            Some(wait) if found && !wait.is_zero() => {
                Some(PageAnswer::Found { outcome: CacheOutcome::Stale, fresh_for: wait })
            }
            Some(_) => {
                retry_after.remove(name);
                None
            }
            None => None,
        }
    }

    async fn store_page(&self, name: &NormalizedName, fetched: FetchedPage, now: Timestamp) -> Result<(), ProxyError> {
        let FetchedPage { page, source_url, etag, body_digest } = fetched;
        let files = proxied_files(name, &page);
        let meta = UpstreamMeta {
            versions: page.versions,
            tracks: page.tracks,
            alternate_locations: page.alternate_locations,
            status: page.status,
            last_serial: page.last_serial,
            namespaces: page.namespaces,
        };
        let state = PageState {
            fetched_at: now,
            found: true,
            source_url: Some(source_url.to_string()),
            etag,
            body_sha256: Some(body_digest),
        };
        let refused = self.inner.store.db().replace_page(name, name.as_str(), &state, &meta, &files).await?;
        for filename in refused {
            tracing::warn!(
                project = %name,
                %filename,
                "the upstream now lists other bytes under a filename larder already stored; keeping the stored file"
            );
        }
        Ok(())
    }
}

/// The files of an upstream page larder can proxy: every file listed with
/// a sha256 to verify the download against, whatever its name (eggs,
/// installers, versions that are not PEP 440, files named for another
/// project). A name larder cannot read leaves the file's version empty;
/// only a file without a sha256 is left out (and said so in the debug log).
fn proxied_files(name: &NormalizedName, page: &ProjectPage) -> Vec<FileRecord> {
    page.files
        .iter()
        .filter_map(|file| {
            let Some(sha256) = file.hashes.get("sha256").and_then(|h| Sha256::from_str(h).ok()) else {
                tracing::debug!(project = %name, filename = %file.filename, "upstream file without a sha256 not proxied");
                return None;
            };
            let version = DistFilename::parse_for(&file.filename, name)
                .ok()
                .filter(|dist| dist.name() == name)
                .map_or_else(String::new, |dist| dist.version().to_string());
            let (serve_metadata, metadata_sha256) = match &file.core_metadata {
                CoreMetadataLink::Absent => (false, None),
                CoreMetadataLink::Present(hashes) => {
                    (true, hashes.get("sha256").and_then(|h| Sha256::from_str(h).ok()))
                }
            };
            Some(FileRecord {
                filename: file.filename.clone(),
                version,
                sha256,
                size: file.size,
                upload_time: file.upload_time.clone(),
                requires_python: file.requires_python.clone(),
                metadata_sha256,
                serve_metadata,
                yanked: match &file.yanked {
                    Yanked::No => None,
                    Yanked::Yes(reason) => Some(reason.clone().unwrap_or_default()),
                },
                gpg_sig: file.gpg_sig,
                provenance: file.provenance.clone(),
                url: Some(file.url.clone()),
            })
        })
        .collect()
}
