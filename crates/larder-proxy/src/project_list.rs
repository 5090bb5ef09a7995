//! The upstream's project list (`/simple/`), kept fresh in memory on its
//! own TTL: fetched once per [`crate::ProxySettings::project_list_ttl`]
//! (one fetch however many requests wait for it), read into a compact
//! [`NameList`] without a structure per project, and served stale when
//! every upstream fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

#[derive(Clone)]
struct Fetched {
    names: Arc<NameList>,
    at: Instant,
}

impl Proxy {
    /// The upstream's project list, refreshed when its TTL has run out.
    /// When every upstream fails, the list fetched before is served
    /// (`stale`); `None` when there is none (or offline before any fetch):
    /// then only local projects can be listed.
    pub async fn project_names(&self) -> Option<UpstreamNames> {
        let settings = self.inner.settings.load_full();
        let cache = &self.inner.project_list;
        let current = cache.current.lock().expect("never poisoned").clone();
        if settings.offline {
            return current.map(|c| UpstreamNames {
                names: c.names,
                outcome: CacheOutcome::Offline,
                fresh_for: settings.stale_retry,
            });
        }
        if let Some(current) = &current
            && let Some(fresh_for) = settings.project_list_ttl.checked_sub(current.at.elapsed())
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
                let names = Arc::new(names);
                tracing::info!(projects = names.len(), bytes = names.heap_bytes(), "fetched the upstream project list");
                *inner.project_list.current.lock().expect("never poisoned") =
                    Some(Fetched { names: names.clone(), at: Instant::now() });
                *inner.project_list.retry_after.lock().expect("never poisoned") = None;
                Some(UpstreamNames {
                    names,
                    outcome: CacheOutcome::Miss,
                    fresh_for: inner.settings.load().project_list_ttl,
                })
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
}

fn stale(current: Option<Fetched>, retry: Duration) -> Option<UpstreamNames> {
    current.map(|c| UpstreamNames { names: c.names, outcome: CacheOutcome::Stale, fresh_for: retry })
}
