//! Which stored blob answers a file URL, remembered so a warm file request
//! costs a lookup and an open instead of a database query.
//!
//! Only stored files are remembered, and blobs never change, so an entry
//! can go out of date in two ways only: the file was removed from the
//! index, or the index definitions changed who may read it. Entries
//! therefore carry the store-change count of the page cache (which follows
//! the journal) and the registry's generation, and are dropped once either
//! moved; a blob found missing when opened is forgotten too. Each entry
//! keeps who may download the file, so a warm public file needs no check.

use std::sync::Arc;

use larder_index::Sha256;
use larder_indexes::FileAccess;
use quick_cache::Equivalent;

/// How many file URLs are remembered.
const CAPACITY: usize = 16_384;

/// A stored file: the blob that holds its bytes, and who may read it.
#[derive(Debug)]
pub struct StoredFile {
    /// The blob's digest (a `.metadata` URL's blob is not the file's).
    pub blob: Sha256,
    /// Who may download it.
    pub access: FileAccess,
    /// The store-change count and registry generation it was looked up at.
    seen: Seen,
}

/// When a file was looked up: the page cache's store-change count and the
/// registry's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The store-change count.
    pub changes: u64,
    /// The index definitions' generation.
    pub definitions: u64,
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
    /// The stored file behind a URL, if remembered since the store or the
    /// index definitions last changed (`now` is the current count).
    pub fn get(&self, sha256: &Sha256, filename: &str, now: Seen) -> Option<Arc<StoredFile>> {
        let key = FileKeyRef { sha256, filename };
        let file = self.entries.get(&key)?;
        if file.seen == now {
            return Some(file);
        }
        self.entries.remove(&key);
        None
    }

    /// Remembers a stored file looked up at `seen`.
    pub fn insert(&self, sha256: &Sha256, filename: &str, blob: Sha256, access: FileAccess, seen: Seen) {
        let key = FileKey { sha256: *sha256, filename: filename.into() };
        self.entries.insert(key, Arc::new(StoredFile { blob, access, seen }));
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
        let at = |changes, definitions| Seen { changes, definitions };
        cache.insert(&sha256, "a-1.0-py3-none-any.whl", blob, FileAccess::Public, at(7, 1));
        let file = cache.get(&sha256, "a-1.0-py3-none-any.whl", at(7, 1)).expect("remembered");
        assert_eq!((file.blob, &file.access), (blob, &FileAccess::Public));
        assert!(cache.get(&sha256, "b-1.0-py3-none-any.whl", at(7, 1)).is_none(), "another filename is another URL");
        assert!(cache.get(&sha256, "a-1.0-py3-none-any.whl", at(8, 1)).is_none(), "the store changed");
        assert!(cache.get(&sha256, "a-1.0-py3-none-any.whl", at(7, 1)).is_none(), "and the entry is gone");
        cache.insert(&sha256, "a-1.0-py3-none-any.whl", blob, FileAccess::Public, at(7, 1));
        assert!(cache.get(&sha256, "a-1.0-py3-none-any.whl", at(7, 2)).is_none(), "the definitions changed");
    }

    #[test]
    fn a_forgotten_entry_is_gone() {
        let cache = FileCache::default();
        let sha256 = Sha256::of(b"wheel");
        let at = Seen { changes: 0, definitions: 0 };
        cache.insert(&sha256, "a.whl", sha256, FileAccess::Public, at);
        cache.forget(&sha256, "a.whl");
        assert!(cache.get(&sha256, "a.whl", at).is_none());
    }
}
