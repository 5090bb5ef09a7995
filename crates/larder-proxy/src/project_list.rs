//! The upstream's project list (`/simple/`), kept fresh in memory on its
//! own TTL: fetched once per [`crate::ProxySettings::project_list_ttl`]
//! (one fetch however many requests wait for it), read into a compact
//! [`NameList`] without a structure per project, and served stale when
//! every upstream fails. Each list fetched is also kept in the store
//! (compressed, one row), and read back by the first request after a
//! restart, so a larder restarted while the upstream is down still lists
//! it. With a database other nodes share, a node whose list went stale
//! first reads the kept one, which another node may have fetched since.

use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use jiff::Timestamp;
use larder_index::parse::for_each_listed_project;
use larder_index::{NameList, NameListBuilder};

use crate::flight::OnceMap;
use crate::{CacheOutcome, Proxy, ProxyError};

/// The upstream's names as the proxy has them.
#[derive(Clone, Debug)]
pub struct UpstreamNames {
    /// Every project the upstream lists, sorted.
    pub names: Arc<NameList>,
    /// How they were obtained.
    pub outcome: CacheOutcome,
    /// How long they may be used before asking again.
    pub fresh_for: Duration,
}

/// The list in memory, single-flight fetches and the back-off after a
/// failure.
#[derive(Default)]
pub(crate) struct ListCache {
    current: Mutex<Option<Fetched>>,
    flight: OnceMap<(), Option<UpstreamNames>>,
    retry_after: Mutex<Option<Instant>>,
    /// Set once the list kept in the store was read (or found missing).
    kept_read: tokio::sync::OnceCell<()>,
}

#[derive(Clone)]
struct Fetched {
    names: Arc<NameList>,
    /// When the list was fetched (by this node or another).
    fetched_at: Timestamp,
    /// When the list's TTL runs out.
    fresh_until: Instant,
}

impl Fetched {
    /// How long the list stays fresh; `None` once it is not.
    fn fresh_for(&self) -> Option<Duration> {
        self.fresh_until.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }
}

impl Proxy {
    /// The upstream's project list, refreshed when its TTL has run out.
    /// When every upstream fails, the list fetched before (in this run or
    /// kept in the store by an earlier one) is served (`stale`); `None`
    /// when there is none (or offline before any fetch): then only local
    /// projects can be listed.
    pub async fn project_names(&self) -> Option<UpstreamNames> {
        let settings = self.inner.settings.load_full();
        let cache = &self.inner.project_list;
        cache.kept_read.get_or_init(|| self.read_kept_list()).await;
        let current = cache.current.lock().expect("never poisoned").clone();
        if settings.offline {
            return current.map(|c| UpstreamNames {
                names: c.names,
                outcome: CacheOutcome::Offline,
                fresh_for: settings.stale_retry,
            });
        }
        if let Some(current) = &current
            && let Some(fresh_for) = current.fresh_for()
        {
            return Some(UpstreamNames { names: current.names.clone(), outcome: CacheOutcome::Hit, fresh_for });
        }
        let backing_off = cache.retry_after.lock().expect("never poisoned").is_some_and(|at| Instant::now() < at);
        if backing_off {
            return stale(current, settings.stale_retry);
        }
        cache.flight.run(&(), || self.fetch_project_names(current)).await
    }

    async fn fetch_project_names(&self, current: Option<Fetched>) -> Option<UpstreamNames> {
        let inner = &self.inner;
        let current = match self.newer_kept_list(current.as_ref()).await {
            Some(kept) => {
                *inner.project_list.current.lock().expect("never poisoned") = Some(kept.clone());
                if let Some(fresh_for) = kept.fresh_for() {
                    return Some(UpstreamNames { names: kept.names, outcome: CacheOutcome::Hit, fresh_for });
                }
                Some(kept)
            }
            None => current,
        };
        let read = |body: bytes::Bytes, content_type: Option<String>| async move {
            tokio::task::spawn_blocking(move || {
                let mut builder = NameListBuilder::default();
                for_each_listed_project(&body, content_type.as_deref(), |name, serial| {
                    builder.push(name, serial);
                })
                .map_err(|e| e.to_string())?;
                Ok(builder.finish())
            })
            .await
            .map_err(|e| e.to_string())?
        };
        match inner.upstreams.load_full().fetch_project_list_with(read).await {
            Ok(names) => {
                let (names, fetched_at) = (Arc::new(names), Timestamp::now());
                tracing::info!(projects = names.len(), bytes = names.heap_bytes(), "fetched the upstream project list");
                let ttl = inner.settings.load().project_list_ttl;
                *inner.project_list.current.lock().expect("never poisoned") =
                    Some(Fetched { names: names.clone(), fetched_at, fresh_until: Instant::now() + ttl });
                *inner.project_list.retry_after.lock().expect("never poisoned") = None;
                self.keep_list(names.clone(), fetched_at).await;
                Some(UpstreamNames { names, outcome: CacheOutcome::Miss, fresh_for: ttl })
            }
            Err(failure) => {
                let error = ProxyError::Upstream(failure);
                tracing::warn!(%error, stale = current.is_some(), "cannot refresh the upstream project list");
                *inner.project_list.retry_after.lock().expect("never poisoned") =
                    Some(Instant::now() + inner.settings.load().stale_retry);
                stale(current, inner.settings.load().stale_retry)
            }
        }
    }

    /// Keeps a list just fetched in the store (a failure is logged: the
    /// list is still served from memory).
    async fn keep_list(&self, names: Arc<NameList>, fetched_at: Timestamp) {
        let body = match tokio::task::spawn_blocking(move || compress(&names)).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => return tracing::warn!(%error, "cannot compress the upstream project list to keep it"),
            Err(error) => return tracing::warn!(%error, "cannot compress the upstream project list to keep it"),
        };
        if let Err(error) = self.inner.store.db().put_upstream_project_list(fetched_at, &body).await {
            tracing::warn!(%error, "cannot keep the upstream project list in the store");
        }
    }

    /// Reads the list an earlier run kept into memory, fresh for what is
    /// left of its TTL (unless a list was fetched meanwhile).
    async fn read_kept_list(&self) {
        let Some(kept) = self.kept_list().await else { return };
        let mut current = self.inner.project_list.current.lock().expect("never poisoned");
        if current.is_none() {
            *current = Some(kept);
        }
    }

    /// The kept list when another node sharing the database fetched it
    /// after `current` was (`None` on a database of this node's own).
    async fn newer_kept_list(&self, current: Option<&Fetched>) -> Option<Fetched> {
        if !self.inner.store.db().is_shared() {
            return None;
        }
        self.kept_list().await.filter(|kept| current.is_none_or(|current| kept.fetched_at > current.fetched_at))
    }

    /// The list kept in the store, fresh for what is left of its TTL
    /// (`None` when there is none, or it cannot be read: said in the log).
    async fn kept_list(&self) -> Option<Fetched> {
        let (fetched_at, body) = match self.inner.store.db().upstream_project_list().await {
            Ok(Some(kept)) => kept,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, "cannot read the upstream project list kept in the store");
                return None;
            }
        };
        let names = match tokio::task::spawn_blocking(move || decompress(&body)).await {
            Ok(Ok(names)) => Arc::new(names),
            Ok(Err(error)) => {
                tracing::warn!(%error, "the upstream project list kept in the store is damaged");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the upstream project list kept in the store");
                return None;
            }
        };
        let age = Duration::try_from(fetched_at.duration_until(Timestamp::now())).unwrap_or_default();
        let left = self.inner.settings.load().project_list_ttl.saturating_sub(age);
        tracing::info!(projects = names.len(), fetched_at = %fetched_at, "read the upstream project list kept in the store");
        Some(Fetched { names, fetched_at, fresh_until: Instant::now() + left })
    }
}

fn stale(current: Option<Fetched>, retry: Duration) -> Option<UpstreamNames> {
    current.map(|c| UpstreamNames { names: c.names, outcome: CacheOutcome::Stale, fresh_for: retry })
}

/// A list as kept in the store: its text form, gzip-compressed (fast:
/// the list is written once per TTL and read once per start).
fn compress(names: &NameList) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(names.to_text().as_bytes())?;
    encoder.finish()
}

/// Reads a list kept by [`compress`].
fn decompress(body: &[u8]) -> std::io::Result<NameList> {
    let mut text = String::new();
    GzDecoder::new(body).read_to_string(&mut text)?;
    Ok(NameList::from_text(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_list_reads_back_the_same() {
        let mut builder = NameListBuilder::default();
        builder.push("Zope.Interface", Some(3));
        builder.push("django", None);
        let names = builder.finish();
        let back = decompress(&compress(&names).unwrap()).unwrap();
        assert!(back.iter().eq(names.iter()));
        assert!(decompress(b"not gzip").is_err());
    }
}
