//! Per-key locks for single-flight work: the first caller for a key does
//! the work while later callers wait, then re-check what it stored.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// A lock per key, created on demand and dropped when nobody holds or
/// waits for it.
pub struct KeyedLocks<K> {
    locks: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self { locks: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Clone> KeyedLocks<K> {
    /// Waits for and takes the lock of `key`.
    pub async fn lock(&self, key: &K) -> KeyedGuard<'_, K> {
        let lock = {
            let mut locks = self.locks.lock().expect("keyed lock map is never poisoned");
            locks.entry(key.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        KeyedGuard { locks: self, key: key.clone(), guard: Some(guard) }
    }
}

/// Holds the lock of one key; releases it (and forgets the key when no one
/// else wants it) on drop.
pub struct KeyedGuard<'a, K: Hash + Eq> {
    locks: &'a KeyedLocks<K>,
    key: K,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<K: Hash + Eq> Drop for KeyedGuard<'_, K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.locks.locks.lock().expect("keyed lock map is never poisoned");
        if locks.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_no_leftover_keys() {
        let locks = Arc::new(KeyedLocks::<u32>::default());
        let inside = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    let _guard = locks.lock(&7).await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
