//! Single-flight as one shape: a once-map. The first caller for a key
//! registers and does the work; every caller that comes while it runs
//! waits for, and shares, its result (the shape of uv's `once-map`).
//!
//! [`OnceMap::run`] forgets the key as soon as the work is done, so the
//! next caller starts afresh (a page refresh, a render). With
//! [`OnceMap::get_or_run`] the result stays until [`OnceMap::forget`]
//! (a download: its progress is shared for as long as it runs).
//!
//! If the caller doing the work goes away (its request is dropped), a
//! waiting caller takes the work over, so no waiter hangs.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Work in flight (or done) per key.
pub struct OnceMap<K, V> {
    entries: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> OnceMap<K, V> {
    /// The result of the work for `key`: the one in flight, or `work`
    /// run now. The key is forgotten once the work is done.
    pub async fn run<F: Future<Output = V>>(&self, key: &K, work: impl FnOnce() -> F) -> V {
        let cell = self.cell(key);
        let value = cell.get_or_init(work).await.clone();
        let mut entries = self.entries.lock().expect("never poisoned");
        if entries.get(key).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
            entries.remove(key);
        }
        value
    }

    /// The result of the work for `key`: the one in flight or done, or
    /// `work` run now. It stays until [`OnceMap::forget`].
    pub async fn get_or_run<F: Future<Output = V>>(&self, key: &K, work: impl FnOnce() -> F) -> V {
        self.cell(key).get_or_init(work).await.clone()
    }

    /// The result for `key`, when its work is done (and not forgotten);
    /// never starts any.
    pub fn get(&self, key: &K) -> Option<V> {
        self.entries.lock().expect("never poisoned").get(key).and_then(|cell| cell.get().cloned())
    }

    /// Forgets `key`, so the next caller runs the work again.
    pub fn forget(&self, key: &K) {
        self.entries.lock().expect("never poisoned").remove(key);
    }

    /// Forgets `key` if its result is done and `stale` says so.
    pub fn forget_if(&self, key: &K, stale: impl FnOnce(&V) -> bool) {
        let mut entries = self.entries.lock().expect("never poisoned");
        if entries.get(key).and_then(|cell| cell.get()).is_some_and(stale) {
            entries.remove(key);
        }
    }

    /// The results done so far.
    pub fn done(&self) -> Vec<V> {
        self.entries.lock().expect("never poisoned").values().filter_map(|cell| cell.get().cloned()).collect()
    }

    fn cell(&self, key: &K) -> Arc<OnceCell<V>> {
        self.entries.lock().expect("never poisoned").entry(key.clone()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_the_key_is_forgotten() {
        let map = Arc::new(OnceMap::<u32, u32>::default());
        let runs = Arc::new(AtomicU32::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (map, runs, gate) = (map.clone(), runs.clone(), gate.clone());
                tokio::spawn(async move {
                    map.run(&7, || async {
                        gate.notified().await;
                        runs.fetch_add(1, Ordering::SeqCst) + 40
                    })
                    .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        while runs.load(Ordering::SeqCst) == 0 {
            gate.notify_one();
            tokio::task::yield_now().await;
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 40);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(map.entries.lock().unwrap().is_empty());
        assert_eq!(map.run(&7, || async { 1 }).await, 1, "a later call runs anew");
    }

    #[tokio::test]
    async fn a_kept_result_stays_until_forgotten() {
        let map = OnceMap::<u32, u32>::default();
        assert_eq!(map.get_or_run(&1, || async { 5 }).await, 5);
        assert_eq!(map.get_or_run(&1, || async { 6 }).await, 5);
        assert_eq!(map.done(), [5]);
        map.forget_if(&1, |v| *v == 4);
        assert_eq!(map.get_or_run(&1, || async { 6 }).await, 5);
        map.forget_if(&1, |v| *v == 5);
        assert_eq!(map.get_or_run(&1, || async { 6 }).await, 6);
        map.forget(&1);
        assert!(map.done().is_empty());
    }

    #[tokio::test]
    async fn a_dropped_worker_hands_the_work_to_a_waiter() {
        let map = Arc::new(OnceMap::<u32, u32>::default());
        let first = {
            let map = map.clone();
            tokio::spawn(async move { map.run(&1, std::future::pending).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        let _ = first.await;
        assert_eq!(map.run(&1, || async { 3 }).await, 3);
    }
}
