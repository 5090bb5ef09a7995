//! Single-flight across nodes. The once-map of each process decides which
//! of its requests fetches a file (or its core metadata, or a project
//! page) from upstream; when several nodes share
//! the database (PostgreSQL), a lease in it decides which node does. The
//! lease is taken before the upstream is asked, renewed while the fetch
//! runs and released once the result is stored (or the fetch failed); the
//! other nodes wait until it is released and then find the result stored.
//! A node that dies holding a lease stops renewing it: once it expires,
//! a waiting node takes it over and fetches the file itself. A mirror run
//! holds a file's lease until its batch is published.

use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

use larder_index::Sha256;
use larder_store::Database;
use tokio::task::JoinHandle;

use crate::ProxyError;

/// How often a node waiting for another's fetch looks whether it is done.
const POLL: Duration = Duration::from_millis(100);

/// The leases this process takes, under a holder name of its own.
pub(crate) struct Leases {
    holder: String,
}

/// The outcome of [`Leases::claim`].
pub(crate) enum Claim<T> {
    /// This node does the work, holding the lease until the guard drops.
    Ours(LeaseGuard),
    /// Another node did it meanwhile: its result.
    Done(T),
}

/// A lease held (renewed in the background) until dropped; or, on a
/// database no other node shares, nothing.
pub struct LeaseGuard {
    held: Option<Held>,
}

struct Held {
    db: Database,
    name: String,
    holder: String,
    renewal: JoinHandle<()>,
}

/// The name of the lease on fetching the file with this digest from
/// upstream: one for a client's download and a mirror's alike.
pub(crate) fn file_lease(sha256: &Sha256) -> String {
    format!("file:{sha256}")
}

impl Leases {
    /// The leases of this process, under a holder name no other process
    /// has.
    pub(crate) fn new() -> Self {
        let nonce = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
        Self { holder: format!("{}-{nonce:016x}", std::process::id()) }
    }

    /// Claims the work called `name` for this node: at once when no other
    /// node holds its lease, otherwise once that node let go of it (done,
    /// or failed) or died (its lease expired). `done` looks whether the
    /// work's result is there already (another node finished it): then
    /// there is nothing to claim. A lease lasts `ttl` unless renewed. On a
    /// database no other node shares, the work is always this node's.
    pub(crate) async fn claim<T, F, Fut>(
        &self,
        db: &Database,
        name: String,
        ttl: Duration,
        mut done: F,
    ) -> Result<Claim<T>, ProxyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, ProxyError>>,
    {
        if !db.is_shared() {
            return Ok(Claim::Ours(LeaseGuard { held: None }));
        }
        let mut waited = false;
        loop {
            if !db.lease_held(&name).await? && db.take_lease(&name, &self.holder, ttl).await? {
                let guard = self.guard(db, name, ttl);
                // Another node may have finished between the caller's look
                // and the lease being free.
                if let Some(result) = done().await? {
                    return Ok(Claim::Done(result));
                }
                if waited {
                    tracing::info!(lease = %guard.name(), "took over work another node held");
                }
                return Ok(Claim::Ours(guard));
            }
            waited = true;
            tokio::time::sleep(POLL).await;
        }
    }

    fn guard(&self, db: &Database, name: String, ttl: Duration) -> LeaseGuard {
        let renewal = tokio::spawn(renew(db.clone(), name.clone(), self.holder.clone(), ttl));
        LeaseGuard { held: Some(Held { db: db.clone(), name, holder: self.holder.clone(), renewal }) }
    }
}

/// Renews a lease every third of its length, until aborted or lost.
async fn renew(db: Database, name: String, holder: String, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        match db.renew_lease(&name, &holder, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lease = %name, "lost a lease (not renewed in time): another node may do the same work");
                return;
            }
            Err(error) => tracing::warn!(lease = %name, %error, "cannot renew a lease"),
        }
    }
}

impl LeaseGuard {
    fn name(&self) -> &str {
        self.held.as_ref().map_or("", |held| &held.name)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        held.renewal.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = held.db.release_lease(&held.name, &held.holder).await {
                    tracing::warn!(lease = %held.name, %error, "cannot release a lease; it expires by itself");
                }
            });
        }
    }
}
