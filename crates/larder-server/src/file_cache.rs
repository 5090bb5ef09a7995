//! Which stored blob answers a file URL, remembered so a warm file request
//! costs a lookup and an open instead of a database query.
//!
//! Only stored files are remembered, and blobs never change, so an entry
//! can go out of date in one way only: the file was removed from the index.
//! Entries therefore carry the store-change count of the page cache (which
//! follows the journal) and are dropped once the store has changed since;
//! a blob found missing when opened is forgotten too.

use std::sync::Arc;

use larder_index::Sha256;
use quick_cache::Equivalent;

/// How many file URLs are remembered.
const CAPACITY: usize = 16_384;

/// A stored file: the blob that holds its bytes.
#[derive(Debug)]
pub struct StoredFile {
    /// The blob's digest (a `.metadata` URL's blob is not the file's).
    pub blob: Sha256,
    /// The store-change count it was looked up at.
    changes: u64,
}

#[derive(Hash, PartialEq, Eq)]
struct FileKey {
    sha256: Sha256,
    filename: Box<str>,
}

/// A [`FileKey`] borrowed from a request, hashing the same way.
#[derive(Hash)]
struct FileKeyRef<'a> {
    sha256: &'a Sha256,
    filename: &'a str,
}

impl Equivalent<FileKey> for FileKeyRef<'_> {
    fn equivalent(&self, key: &FileKey) -> bool {
        *self.sha256 == key.sha256 && self.filename == &*key.filename
    }
}

/// The remembered file URLs: `/files/<sha256>/<filename>` (and its
/// `.metadata`) to the stored blob.
pub struct FileCache {
    entries: quick_cache::sync::Cache<FileKey, Arc<StoredFile>>,
}

impl Default for FileCache {
    fn default() -> Self {
        Self { entries: quick_cache::sync::Cache::new(CAPACITY) }
    }
}

impl FileCache {
    /// The stored file behind a URL, if remembered since the store last
    /// changed (`changes` is the page cache's current count).
    pub fn get(&self, sha256: &Sha256, filename: &str, changes: u64) -> Option<Arc<StoredFile>> {
        let key = FileKeyRef { sha256, filename };
        let file = self.entries.get(&key)?;
        if file.changes == changes {
            return Some(file);
        }
        self.entries.remove(&key);
        None
    }

    /// Remembers a stored file looked up at store-change count `changes`.
    pub fn insert(&self, sha256: &Sha256, filename: &str, blob: Sha256, changes: u64) {
        let key = FileKey { sha256: *sha256, filename: filename.into() };
        self.entries.insert(key, Arc::new(StoredFile { blob, changes }));
    }

    /// Forgets a URL whose blob turned out to be gone.
    pub fn forget(&self, sha256: &Sha256, filename: &str) {
        self.entries.remove(&FileKeyRef { sha256, filename });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_until_the_store_changes() {
        let cache = FileCache::default();
        let sha256 = Sha256::of(b"wheel");
        let blob = Sha256::of(b"blob");
        cache.insert(&sha256, "a-1.0-py3-none-any.whl", blob, 7);
        let file = cache.get(&sha256, "a-1.0-py3-none-any.whl", 7).expect("remembered");
        assert_eq!(file.blob, blob);
        assert!(cache.get(&sha256, "b-1.0-py3-none-any.whl", 7).is_none(), "another filename is another URL");
        assert!(cache.get(&sha256, "a-1.0-py3-none-any.whl", 8).is_none(), "the store changed");
        assert!(cache.get(&sha256, "a-1.0-py3-none-any.whl", 7).is_none(), "and the entry is gone");
    }

    #[test]
    fn a_forgotten_entry_is_gone() {
        let cache = FileCache::default();
        let sha256 = Sha256::of(b"wheel");
        cache.insert(&sha256, "a.whl", sha256, 0);
        cache.forget(&sha256, "a.whl");
        assert!(cache.get(&sha256, "a.whl", 0).is_none());
    }
}
