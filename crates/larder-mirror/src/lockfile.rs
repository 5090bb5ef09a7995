//! Lock files as mirror input: a PEP 751 `pylock.toml` (what `uv export`
//! and `pip lock` write) and a `uv.lock` name the exact files to install,
//! with their digests. Exactly those files are mirrored; nothing is
//! resolved, so no target environment is needed.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use larder_index::{NormalizedName, Sha256};
use serde::Deserialize;

use crate::requirements::Rejected;
use crate::run::{Mirror, Summary};
use crate::source::MirrorSource;

/// One file a lock file pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedFile {
    /// Its project.
    pub project: NormalizedName,
    /// Its filename.
    pub filename: String,
    /// The digest the lock file records, when it records one.
    pub sha256: Option<Sha256>,
}

/// Why a lock file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// It is not valid TOML of the expected shape.
    #[error("{path} is not a valid lock file: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
}

/// Whether `path` names a lock file (`pylock.toml`, `pylock.<name>.toml`,
/// `uv.lock`) rather than a requirements file.
pub fn is_lock_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == "uv.lock" || (name.starts_with("pylock.") && name.ends_with(".toml"))
}

/// The files a lock file pins, and the packages it names that cannot be
/// mirrored from an index (VCS, directories, archives by URL).
pub fn read_lock_file(path: &Path) -> Result<(Vec<LockedFile>, Vec<Rejected>), LockError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LockError::Io { path: shown.clone(), source })?;
    let invalid = |e: toml::de::Error| LockError::Invalid { path: shown.clone(), message: e.message().to_owned() };
    let packages: Vec<(String, Vec<Artifact>, Option<&'static str>)> =
        if path.file_name().is_some_and(|n| n == "uv.lock") {
            let lock: UvLock = toml::from_str(&text).map_err(invalid)?;
            lock.package.into_iter().map(UvPackage::into_parts).collect()
        } else {
            let lock: PyLock = toml::from_str(&text).map_err(invalid)?;
            lock.packages.into_iter().map(PyLockPackage::into_parts).collect()
        };
    let mut files = Vec::new();
    let mut rejected = Vec::new();
    for (name, artifacts, not_from_an_index) in packages {
        let reject = |reason: String| Rejected { location: format!("{shown}: {name}"), reason };
        if let Some(reason) = not_from_an_index {
            rejected.push(reject(reason.to_owned()));
            continue;
        }
        let Ok(project) = NormalizedName::new(&name) else {
            rejected.push(reject("not a valid project name".into()));
            continue;
        };
        for artifact in artifacts {
            match artifact.locked(&project) {
                Ok(file) => files.push(file),
                Err(reason) => rejected.push(reject(reason)),
            }
        }
    }
    Ok((files, rejected))
}

/// Mirrors exactly the `locked` files: each project's page is refreshed
/// once, and a file is fetched only when the index lists it under that
/// filename with the digest the lock file records.
pub async fn mirror_locked(mirror: &Mirror, locked: &[LockedFile], summary: &mut Summary) {
    let mut by_project: BTreeMap<&NormalizedName, Vec<&LockedFile>> = BTreeMap::new();
    for file in locked {
        by_project.entry(&file.project).or_default().push(file);
    }
    let source = MirrorSource::new(mirror);
    let mut files = Vec::new();
    for (project, wanted) in by_project {
        let records = match source.records(project).await {
            Ok(records) => records,
            Err(error) => {
                summary.failures.push((project.to_string(), error.to_string()));
                continue;
            }
        };
        summary.projects += 1;
        for file in wanted {
            match records.iter().find(|r| r.filename == file.filename) {
                None => {
                    summary.failures.push((file.filename.clone(), format!("the index does not list it for {project}")))
                }
                Some(record) if file.sha256.is_some_and(|locked| locked != record.sha256) => summary.failures.push((
                    file.filename.clone(),
                    format!(
                        "the lock file records sha256 {}, the index lists {}",
                        file.sha256.map(|d| d.to_string()).unwrap_or_default(),
                        record.sha256
                    ),
                )),
                Some(record) => files.push((project.clone(), record.clone())),
            }
        }
    }
    mirror.download(files, summary).await;
}

/// A wheel or sdist as a lock file describes it.
#[derive(Debug, Default, Deserialize)]
struct Artifact {
    /// pylock.toml: the filename, when given.
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    /// pylock.toml: `{sha256 = "..."}`.
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    /// uv.lock: `"sha256:..."`.
    hash: Option<String>,
}

impl Artifact {
    fn locked(self, project: &NormalizedName) -> Result<LockedFile, String> {
        let from_location = self
            .url
            .as_deref()
            .or(self.path.as_deref())
            .and_then(|location| location.split(['?', '#']).next())
            .and_then(|location| location.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .map(percent_decode);
        let filename = self.name.or(from_location).ok_or("a file with neither name, url nor path")?;
        let hex = self
            .hashes
            .get("sha256")
            .cloned()
            .or_else(|| self.hash.and_then(|h| h.strip_prefix("sha256:").map(str::to_owned)));
        let sha256 = hex
            .map(|hex| Sha256::from_str(&hex).map_err(|_| format!("{filename}: sha256 {hex:?} is not a digest")))
            .transpose()?;
        Ok(LockedFile { project: project.clone(), filename, sha256 })
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// PEP 751 `pylock.toml`.
#[derive(Debug, Deserialize)]
struct PyLock {
    #[serde(default)]
    packages: Vec<PyLockPackage>,
}

#[derive(Debug, Deserialize)]
struct PyLockPackage {
    name: String,
    vcs: Option<toml::Value>,
    directory: Option<toml::Value>,
    archive: Option<toml::Value>,
    sdist: Option<Artifact>,
    #[serde(default)]
    wheels: Vec<Artifact>,
}

impl PyLockPackage {
    fn into_parts(self) -> (String, Vec<Artifact>, Option<&'static str>) {
        let elsewhere = if self.vcs.is_some() {
            Some("a VCS checkout cannot be mirrored from an index")
        } else if self.directory.is_some() {
            Some("a local directory cannot be mirrored from an index")
        } else if self.archive.is_some() {
            Some("an archive by URL cannot be mirrored from an index")
        } else {
            None
        };
        (self.name, self.sdist.into_iter().chain(self.wheels).collect(), elsewhere)
    }
}

/// `uv.lock`.
#[derive(Debug, Deserialize)]
struct UvLock {
    #[serde(default)]
    package: Vec<UvPackage>,
}

#[derive(Debug, Deserialize)]
struct UvPackage {
    name: String,
    #[serde(default)]
    source: BTreeMap<String, toml::Value>,
    sdist: Option<Artifact>,
    #[serde(default)]
    wheels: Vec<Artifact>,
}

impl UvPackage {
    fn into_parts(self) -> (String, Vec<Artifact>, Option<&'static str>) {
        // The project itself (editable, virtual) has no files to mirror.
        let own = self.source.contains_key("editable") || self.source.contains_key("virtual");
        let elsewhere = if own || self.source.contains_key("registry") || self.source.is_empty() {
            None
        } else {
            Some("a package from a VCS, a path or a URL cannot be mirrored from an index")
        };
        let artifacts = if own { Vec::new() } else { self.sdist.into_iter().chain(self.wheels).collect() };
        (self.name, artifacts, elsewhere)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: char) -> String {
        std::iter::repeat_n(byte, 64).collect()
    }

    fn read(name: &str, text: &str) -> (Vec<LockedFile>, Vec<Rejected>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read_lock_file(&path).unwrap()
    }

    #[test]
    fn lock_files_are_told_from_requirements_files() {
        for name in ["pylock.toml", "pylock.dev.toml", "uv.lock"] {
            assert!(is_lock_file(Path::new(name)), "{name}");
        }
        for name in ["requirements.txt", "pyproject.toml", "pylock.txt"] {
            assert!(!is_lock_file(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn a_pylock_names_its_wheels_and_sdists() {
        let text = format!(
            r#"lock-version = "1.0"
created-by = "uv"
[[packages]]
name = "Demo_Pkg"
version = "1.0"
index = "http://127.0.0.1:9/simple"
sdist = {{ url = "http://127.0.0.1:9/files/demo_pkg-1.0.tar.gz", hashes = {{ sha256 = "{a}" }} }}
wheels = [
  {{ name = "demo_pkg-1.0-py3-none-any.whl", url = "http://127.0.0.1:9/x/y", hashes = {{ sha256 = "{b}" }} }},
]
[[packages]]
name = "from-git"
vcs = {{ type = "git", url = "http://127.0.0.1:9/repo.git", commit-id = "abc" }}
"#,
            a = digest('a'),
            b = digest('b')
        );
        let (files, rejected) = read("pylock.toml", &text);
        let names: Vec<_> = files.iter().map(|f| (f.project.as_str(), f.filename.as_str())).collect();
        assert_eq!(names, [("demo-pkg", "demo_pkg-1.0.tar.gz"), ("demo-pkg", "demo_pkg-1.0-py3-none-any.whl")]);
        assert_eq!(files[1].sha256, Some(digest('b').parse().unwrap()));
        assert_eq!(rejected.len(), 1);
        assert!(rejected[0].location.ends_with("from-git"), "{rejected:?}");
    }

    #[test]
    fn a_uv_lock_names_registry_files_and_skips_the_project_itself() {
        let text = format!(
            r#"version = 1
requires-python = ">=3.12"
[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
[[package]]
name = "demo"
version = "2.0"
source = {{ registry = "http://127.0.0.1:9/simple" }}
sdist = {{ url = "http://127.0.0.1:9/files/demo-2.0.tar.gz", hash = "sha256:{a}", size = 10 }}
wheels = [{{ url = "http://127.0.0.1:9/files/demo-2.0-py3-none-any.whl", hash = "sha256:{b}", size = 9 }}]
[[package]]
name = "forked"
version = "1.0"
source = {{ git = "http://127.0.0.1:9/forked.git?rev=1" }}
"#,
            a = digest('a'),
            b = digest('b')
        );
        let (files, rejected) = read("uv.lock", &text);
        let names: Vec<_> = files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(names, ["demo-2.0.tar.gz", "demo-2.0-py3-none-any.whl"]);
        assert_eq!(files[0].sha256, Some(digest('a').parse().unwrap()));
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(rejected[0].location.ends_with("forked"));
    }

    #[test]
    fn a_broken_lock_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uv.lock");
        std::fs::write(&path, "package = 3").unwrap();
        assert!(matches!(read_lock_file(&path), Err(LockError::Invalid { .. })));
    }
}
