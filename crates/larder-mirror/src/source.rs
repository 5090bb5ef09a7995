//! What the resolver reads, answered through the proxy: project pages
//! (refreshed once per run), core metadata (PEP 658 `.metadata` when the
//! index has it, else from the downloaded file), and sdist build
//! requirements (from `pyproject.toml`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use larder_index::{CoreMetadata, NormalizedName, Sha256};
use larder_resolve::{PackageSource, SourceError, SourceFile};
use larder_store::FileRecord;
use pep508_rs::Requirement;
use tokio::sync::OnceCell;

use crate::run::Mirror;

/// PEP 517's build requirements for an sdist that declares none.
const LEGACY_BUILD_REQUIRES: [&str; 2] = ["setuptools>=40.8.0", "wheel"];

type Files = Result<Arc<Vec<FileRecord>>, SourceError>;

/// The mirror's view of the index for the resolver. One instance serves
/// every target environment of a run, so each page is fetched once.
pub struct MirrorSource<'a> {
    mirror: &'a Mirror,
    files: Mutex<HashMap<NormalizedName, Arc<OnceCell<Files>>>>,
    /// Files downloaded only to read their metadata (the index has no
    /// `.metadata` for them): the ones the resolution does not choose are
    /// removed again.
    probed: Mutex<Vec<FileRecord>>,
    /// Files downloaded (not found stored) to answer the resolver, and
    /// their sizes.
    fetched: Mutex<HashMap<Sha256, u64>>,
}

impl<'a> MirrorSource<'a> {
    /// A source reading through `mirror`'s proxy.
    pub fn new(mirror: &'a Mirror) -> Self {
        Self {
            mirror,
            files: Mutex::new(HashMap::new()),
            probed: Mutex::new(Vec::new()),
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// The files downloaded to answer the resolver, and their sizes.
    pub fn fetched(&self) -> HashMap<Sha256, u64> {
        self.fetched.lock().expect("never poisoned").clone()
    }

    /// The files downloaded only to read their metadata.
    pub fn probed(&self) -> Vec<FileRecord> {
        self.probed.lock().expect("never poisoned").clone()
    }

    /// The stored file rows of a project as the mirrored index serves it
    /// (a hosted project hides the upstream one).
    pub async fn records(&self, name: &NormalizedName) -> Files {
        let cell = self.files.lock().expect("never poisoned").entry(name.clone()).or_default().clone();
        cell.get_or_init(|| self.load(name)).await.clone()
    }

    async fn load(&self, name: &NormalizedName) -> Files {
        match self.mirror.indexes().project_files(self.mirror.index(), name).await.map_err(SourceError::fetch)? {
            None => Err(SourceError::NotFound),
            Some(answer) => Ok(Arc::new(answer.files)),
        }
    }

    async fn record(&self, name: &NormalizedName, filename: &str) -> Result<FileRecord, SourceError> {
        self.records(name)
            .await?
            .iter()
            .find(|f| f.filename == filename)
            .cloned()
            .ok_or_else(|| SourceError::Invalid(format!("{filename} is not listed for {name}")))
    }

    /// Stores the file (downloading it when needed) and returns its bytes
    /// as a local file.
    async fn stored(&self, record: &FileRecord) -> Result<std::fs::File, SourceError> {
        let downloaded = self.mirror.proxy().ensure_stored(record).await.map_err(SourceError::fetch)?;
        if downloaded > 0 {
            self.fetched.lock().expect("never poisoned").insert(record.sha256, downloaded);
        }
        let blobs = self.mirror.store().blobs();
        let blob = blobs.open(&record.sha256).await.map_err(SourceError::fetch)?;
        let blob = blob.ok_or_else(|| SourceError::fetch(larder_store::BlobError::Gone(record.sha256)))?;
        blob.into_file().await.map_err(SourceError::fetch)
    }
}

impl PackageSource for MirrorSource<'_> {
    async fn files(&self, name: &NormalizedName) -> Result<Vec<SourceFile>, SourceError> {
        Ok(self
            .records(name)
            .await?
            .iter()
            .filter_map(|f| SourceFile::new(&f.filename, f.requires_python.clone(), f.yanked.is_some()).ok())
            .collect())
    }

    async fn metadata(&self, name: &NormalizedName, file: &SourceFile) -> Result<CoreMetadata, SourceError> {
        let record = self.record(name, &file.filename).await?;
        let blobs = self.mirror.store().blobs();
        let stored_metadata = match record.metadata_sha256 {
            Some(digest) => blobs.contains(&digest).await,
            None => false,
        };
        let bytes = if record.serve_metadata || stored_metadata {
            let (blob, _) = self.mirror.proxy().open_metadata(&record).await.map_err(SourceError::fetch)?;
            blob.read_all().await.map_err(SourceError::fetch)?
        } else {
            if !blobs.contains(&record.sha256).await {
                self.probed.lock().expect("never poisoned").push(record.clone());
            }
            let blob = self.stored(&record).await?;
            let (filename, dist) = (file.filename.clone(), file.dist.clone());
            blocking(move || {
                let archive = std::io::BufReader::new(blob);
                larder_dist::read_core_metadata(&filename, &dist, archive)
                    .map_err(|e| SourceError::Invalid(e.to_string()))
            })
            .await?
        };
        CoreMetadata::parse(&bytes).map_err(|e| SourceError::Invalid(format!("{}: {e}", file.filename)))
    }

    async fn build_requires(&self, name: &NormalizedName, sdist: &SourceFile) -> Result<Vec<Requirement>, SourceError> {
        let record = self.record(name, &sdist.filename).await?;
        let blob = self.stored(&record).await?;
        let (filename, dist) = (sdist.filename.clone(), sdist.dist.clone());
        let pyproject = blocking(move || {
            let archive = std::io::BufReader::new(blob);
            larder_dist::read_sdist_file(&filename, &dist, archive, "pyproject.toml")
                .map_err(|e| SourceError::Invalid(e.to_string()))
        })
        .await?;
        build_requires(&sdist.filename, pyproject.as_deref())
    }
}

/// `[build-system] requires` of a `pyproject.toml`, or PEP 517's legacy
/// default when there is no file or no such table.
fn build_requires(filename: &str, pyproject: Option<&[u8]>) -> Result<Vec<Requirement>, SourceError> {
    let invalid = |why: String| SourceError::Invalid(format!("{filename}: pyproject.toml {why}"));
    let declared: Option<Vec<String>> = match pyproject {
        None => None,
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| invalid("is not UTF-8".into()))?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.message().to_owned()))?;
            match table.get("build-system").and_then(|b| b.get("requires")) {
                None => None,
                Some(requires) => Some(
                    requires
                        .as_array()
                        .ok_or_else(|| invalid("has a build-system.requires that is not a list".into()))?
                        .iter()
                        .map(|r| {
                            r.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| invalid("lists a non-string requirement".into()))
                        })
                        .collect::<Result<_, _>>()?,
                ),
            }
        }
    };
    let declared = declared.unwrap_or_else(|| LEGACY_BUILD_REQUIRES.map(str::to_owned).to_vec());
    declared.iter().map(|r| Requirement::from_str(r).map_err(|e| invalid(format!("requirement {r:?}: {e}")))).collect()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work).await.map_err(SourceError::fetch)?
}

#[cfg(test)]
mod tests {
    use super::build_requires;

    #[test]
    fn declared_or_legacy_build_requirements() {
        let declared = build_requires(
            "a-1.tar.gz",
            Some(b"[build-system]\nrequires = [\"hatchling>=1\", \"cffi; python_version < '3.13'\"]\n"),
        )
        .unwrap();
        assert_eq!(declared.len(), 2);
        assert_eq!(declared[0].name.to_string(), "hatchling");
        let legacy = build_requires("a-1.tar.gz", None).unwrap();
        assert_eq!(legacy.iter().map(|r| r.name.to_string()).collect::<Vec<_>>(), ["setuptools", "wheel"]);
        let no_table = build_requires("a-1.tar.gz", Some(b"[project]\nname = 'a'\n")).unwrap();
        assert_eq!(no_table.len(), 2);
        assert!(build_requires("a-1.tar.gz", Some(b"[build-system]\nrequires = 3\n")).is_err());
        assert!(build_requires("a-1.tar.gz", Some(b"not toml [")).is_err());
    }
}
