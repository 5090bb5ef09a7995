//! The named indexes: the built-in `local` (hosted, filled by `larder add`)
//! and `upstream` (the proxied upstreams), and those defined in the store
//! (by `larder index create` or the config file). Definitions are checked
//! as a whole (bases exist, no cycles) before they are stored, and read
//! back at most once a second while serving, so a change made by another
//! process shows up within a second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use larder_index::{IndexDefinition, IndexKind, LOCAL_INDEX, UPSTREAM_INDEX_NAME};
use larder_store::{DbError, Store};

/// How long definitions read from the store are used before reading again.
const RELOAD_AFTER: Duration = Duration::from_secs(1);

/// Why a definition is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A base is not an index.
    #[error("index {index}: base {base:?} is not an index (see `larder index list`)")]
    UnknownBase {
        /// The index being defined.
        index: String,
        /// The missing base.
        base: String,
    },
    /// The bases would form a cycle.
    #[error("index {0}: its bases lead back to itself")]
    Cycle(String),
    /// A built-in index keeps its kind.
    #[error("index {0} is built in and stays {1}; only its settings can change")]
    BuiltInKind(String, &'static str),
    /// Still a base of another index.
    #[error("index {index} is a base of {user}; change {user} first")]
    InUse {
        /// The index to remove.
        index: String,
        /// An index that uses it.
        user: String,
    },
    /// No such index.
    #[error("no index named {0:?}")]
    Unknown(String),
    /// The store failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Every index by name.
pub type Definitions = BTreeMap<String, Arc<IndexDefinition>>;

/// Definitions and when they were read.
type Loaded = (Instant, Arc<Definitions>);

/// The definitions, read from the store and kept for a second.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    cached: Arc<Mutex<Option<Loaded>>>,
    /// Counts the changes seen in the definitions.
    generation: Arc<AtomicU64>,
}

impl Registry {
    /// A registry over the store's definitions.
    pub fn new(store: Store) -> Self {
        Self { store, cached: Arc::default(), generation: Arc::default() }
    }

    /// A number that changes whenever the definitions this registry read
    /// (or wrote) changed: what a cache of decisions made from them
    /// compares against. It follows changes made by other processes as
    /// [`Registry::all`] reads them again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every index: the built-ins, overridden by stored definitions of the
    /// same name.
    pub async fn all(&self) -> Result<Arc<Definitions>, DbError> {
        if let Some((at, definitions)) = self.cached.lock().expect("not poisoned").as_ref()
            && at.elapsed() < RELOAD_AFTER
        {
            return Ok(definitions.clone());
        }
        self.reload().await
    }

    /// Reads the definitions again now (another process changed them),
    /// moving [`Registry::generation`] if they differ.
    pub async fn reload(&self) -> Result<Arc<Definitions>, DbError> {
        let definitions = Arc::new(load(&self.store).await?);
        let before = self.cached.lock().expect("not poisoned").replace((Instant::now(), definitions.clone()));
        if before.is_some_and(|(_, before)| before != definitions) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(definitions)
    }

    /// One index by name.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<IndexDefinition>>, DbError> {
        Ok(self.all().await?.get(name).cloned())
    }

    /// Checks and stores a definition (creating or replacing the index).
    pub async fn put(&self, definition: IndexDefinition) -> Result<(), RegistryError> {
        let mut all = load(&self.store).await?;
        if let Some(kind) = built_in_kind(&definition.name)
            && kind != definition.kind
        {
            return Err(RegistryError::BuiltInKind(definition.name, kind.as_str()));
        }
        for base in definition.kind.bases() {
            if base != &definition.name && !all.contains_key(base) {
                return Err(RegistryError::UnknownBase { index: definition.name.clone(), base: base.clone() });
            }
        }
        all.insert(definition.name.clone(), Arc::new(definition.clone()));
        if reaches(&all, &definition.name, &definition.name, &mut Vec::new()) {
            return Err(RegistryError::Cycle(definition.name));
        }
        self.store.db().put_index(&definition).await?;
        self.forget();
        Ok(())
    }

    /// Removes a defined index (a built-in one goes back to its defaults).
    pub async fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let all = load(&self.store).await?;
        if let Some(user) = all.values().find(|d| d.kind.bases().iter().any(|b| b == name)) {
            return Err(RegistryError::InUse { index: name.to_owned(), user: user.name.clone() });
        }
        if !self.store.db().remove_index(name).await? {
            return Err(RegistryError::Unknown(name.to_owned()));
        }
        self.forget();
        Ok(())
    }

    fn forget(&self) {
        *self.cached.lock().expect("not poisoned") = None;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

fn built_in_kind(name: &str) -> Option<IndexKind> {
    match name {
        LOCAL_INDEX => Some(IndexKind::Hosted),
        UPSTREAM_INDEX_NAME => Some(IndexKind::Mirror),
        _ => None,
    }
}

async fn load(store: &Store) -> Result<Definitions, DbError> {
    let mut all: Definitions = [IndexDefinition::local(), IndexDefinition::upstream()]
        .into_iter()
        .map(|d| (d.name.clone(), Arc::new(d)))
        .collect();
    for definition in store.db().index_definitions().await? {
        all.insert(definition.name.clone(), Arc::new(definition));
    }
    Ok(all)
}

/// Whether `target` is reachable from `from` through bases.
fn reaches(all: &Definitions, from: &str, target: &str, path: &mut Vec<String>) -> bool {
    let Some(definition) = all.get(from) else { return false };
    for base in definition.kind.bases() {
        if base == target {
            return true;
        }
        if path.contains(base) {
            continue;
        }
        path.push(base.clone());
        if reaches(all, base, target, path) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layered(name: &str, bases: &[&str]) -> IndexDefinition {
        IndexDefinition::new(name, IndexKind::Layered { bases: bases.iter().map(|b| (*b).to_owned()).collect() })
            .unwrap()
    }

    #[tokio::test]
    async fn definitions_are_checked_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(Store::open(dir.path()).await.unwrap());
        assert_eq!(registry.all().await.unwrap().len(), 2, "local and upstream are built in");
        let generation = registry.generation();
        registry.put(layered("team", &["upstream"])).await.unwrap();
        assert!(registry.generation() > generation, "a change is seen");
        registry.put(layered("ml", &["team", "local"])).await.unwrap();
        assert!(matches!(registry.put(layered("team", &["ml"])).await, Err(RegistryError::Cycle(_))));
        assert!(matches!(registry.put(layered("x", &["nope"])).await, Err(RegistryError::UnknownBase { .. })));
        assert!(matches!(registry.remove("team").await, Err(RegistryError::InUse { .. })));
        let hosted_upstream = IndexDefinition::new("upstream", IndexKind::Hosted).unwrap();
        assert!(matches!(registry.put(hosted_upstream).await, Err(RegistryError::BuiltInKind(..))));
        let mut quiet = IndexDefinition::upstream();
        quiet.anonymous_read = false;
        registry.put(quiet).await.unwrap();
        assert!(!registry.get("upstream").await.unwrap().unwrap().anonymous_read);
        registry.remove("ml").await.unwrap();
        assert!(registry.get("ml").await.unwrap().is_none());
        assert!(matches!(registry.remove("ml").await, Err(RegistryError::Unknown(_))));
    }
}
