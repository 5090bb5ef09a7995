//! Where the resolver reads projects from: the [`PackageSource`] trait
//! that the mirror implements over its upstream client and store.

use std::error::Error;
use std::future::Future;
use std::sync::Arc;

use larder_index::{CoreMetadata, DistFilename, FilenameError, NormalizedName};
use pep508_rs::Requirement;

/// Why a source could not answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SourceError {
    /// The index has no such project (or the file has no metadata).
    /// For [`PackageSource::files`] this means the same as an empty list.
    #[error("not found on the index")]
    NotFound,
    /// The document exists but is unusable: malformed `METADATA`, an sdist
    /// whose `pyproject.toml` cannot be read, ... For metadata the
    /// resolver treats the release as unusable and tries other versions;
    /// for a file list or build requirements, what needs them fails.
    #[error("{0}")]
    Invalid(String),
    /// Fetching failed (network, upstream, storage). What needs the answer
    /// fails: the resolver does not silently fall back to older versions.
    #[error(transparent)]
    Fetch(Arc<dyn Error + Send + Sync>),
}

impl SourceError {
    /// Wraps a fetch error.
    pub fn fetch(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Fetch(Arc::from(error.into()))
    }
}

/// One distribution file of a project, as the index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The filename.
    pub filename: String,
    /// The parsed filename.
    pub dist: DistFilename,
    /// The index's `requires-python` for this file, verbatim. An invalid
    /// specifier is ignored (as pip does).
    pub requires_python: Option<String>,
    /// Yanked (PEP 592).
    pub yanked: bool,
}

impl SourceFile {
    /// Builds a file entry, parsing its filename.
    pub fn new(filename: &str, requires_python: Option<String>, yanked: bool) -> Result<Self, FilenameError> {
        Ok(Self { filename: filename.to_owned(), dist: DistFilename::parse(filename)?, requires_python, yanked })
    }
}

/// The index as the resolver sees it. Every call is made at most once per
/// argument during one [`resolve`](crate::resolve) (the resolver caches the
/// answers), and several calls may be in flight at once: the resolver
/// fetches the file lists of a package's dependencies ahead of need.
/// An implementation shared by several resolutions (one per target
/// environment) should cache across them itself.
pub trait PackageSource: Sync {
    /// Every distribution file of a project; empty or
    /// [`SourceError::NotFound`] when the index has none.
    fn files(&self, name: &NormalizedName) -> impl Future<Output = Result<Vec<SourceFile>, SourceError>> + Send;

    /// The core metadata of one wheel or sdist: from its PEP 658
    /// `.metadata` file when the index has one, else from the file itself
    /// (`METADATA` in a wheel, `PKG-INFO` in an sdist).
    fn metadata(
        &self,
        name: &NormalizedName,
        file: &SourceFile,
    ) -> impl Future<Output = Result<CoreMetadata, SourceError>> + Send;

    /// The build requirements of an sdist: `[build-system] requires` from
    /// its `pyproject.toml`, or the PEP 517 legacy default
    /// (`setuptools>=40.8.0`, `wheel`) when it has none.
    fn build_requires(
        &self,
        name: &NormalizedName,
        sdist: &SourceFile,
    ) -> impl Future<Output = Result<Vec<Requirement>, SourceError>> + Send;
}
