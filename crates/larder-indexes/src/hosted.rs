//! Adding local distribution files to a hosted index (`larder add`).
//!
//! An add is all-or-nothing: every file is checked first (its name parses,
//! its core metadata is there and agrees with the name), then the blobs are
//! written, then every file is published in one database transaction. A bad
//! file anywhere means nothing of the invocation becomes visible.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use larder_index::{CoreMetadata, DistFilename};
use larder_store::{AddOutcome, NewFile, Store};

/// Why a file cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The path could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The filename is not a distribution filename.
    #[error("{path}: {source}")]
    Filename {
        /// The path.
        path: PathBuf,
        /// What is wrong with the name.
        source: larder_index::FilenameError,
    },
    /// The archive or its metadata is unreadable.
    #[error("{path}: {reason}")]
    Metadata {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The metadata names another project or version than the filename.
    #[error(
        "{path}: the file name says {file_name} {file_version} but its metadata says {metadata_name} {metadata_version}"
    )]
    Mismatch {
        /// The path.
        path: PathBuf,
        /// Project name from the filename.
        file_name: String,
        /// Version from the filename.
        file_version: String,
        /// `Name` from the metadata.
        metadata_name: String,
        /// `Version` from the metadata.
        metadata_version: String,
    },
    /// Several files failed the checks; nothing was added.
    #[error("{} file(s) cannot be added; nothing was added:\n  {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Rejected(Vec<AddError>),
    /// Storing failed.
    #[error(transparent)]
    Blob(#[from] larder_store::BlobError),
    /// Publishing failed (including a filename already published with
    /// other content).
    #[error(transparent)]
    Db(#[from] larder_store::DbError),
}

/// What an add did, file by file.
#[derive(Debug, Default)]
pub struct AddReport {
    /// `(filename, outcome)` in the order the files were given.
    pub files: Vec<(String, AddOutcome)>,
}

/// A file that passed every check and is ready to store.
struct CheckedFile {
    path: PathBuf,
    filename: String,
    dist: DistFilename,
    metadata_bytes: Vec<u8>,
    metadata: CoreMetadata,
}

/// Adds the distribution files at `paths` (files, or folders walked
/// recursively, hidden entries skipped) to `index`.
pub async fn add_paths(store: &Store, index: &str, paths: &[PathBuf]) -> Result<AddReport, AddError> {
    let files = expand_paths(paths)?;
    let checked = tokio::task::spawn_blocking(move || {
        let mut good = Vec::with_capacity(files.len());
        let mut bad = Vec::new();
        for path in &files {
            match check_file(path) {
                Ok(file) => good.push(file),
                Err(error) => bad.push(error),
            }
        }
        if bad.is_empty() { Ok(good) } else { Err(AddError::Rejected(bad)) }
    })
    .await
    .expect("checking files does not panic")?;

    let upload_time = Timestamp::now();
    let mut new_files = Vec::with_capacity(checked.len());
    let mut written = PutBlobs::new();
    for file in checked {
        let blob = written.note(store.blobs().put_file(&file.path, None).await?);
        let metadata_blob = written.note(store.blobs().put_bytes(&file.metadata_bytes, None).await?);
        new_files.push(NewFile {
            project: file.dist.name().clone(),
            display_name: file.metadata.name,
            version: file.dist.version().to_string(),
            filename: file.filename,
            sha256: blob.sha256,
            size: blob.size,
            upload_time,
            requires_python: file.metadata.requires_python,
            metadata_sha256: Some(metadata_blob.sha256),
            serve_metadata: matches!(file.dist, DistFilename::Wheel(_)),
        });
    }
    let outcomes = match store.db().add_files(index, &new_files).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            written.remove_unreferenced(store).await;
            return Err(error.into());
        }
    };
    Ok(AddReport { files: new_files.into_iter().map(|f| f.filename).zip(outcomes).collect() })
}

/// The blobs an add put, so that a refused add takes away those it wrote
/// itself instead of leaving them for `larder gc`.
struct PutBlobs {
    since: std::time::SystemTime,
    digests: Vec<larder_index::Sha256>,
}

impl PutBlobs {
    fn new() -> Self {
        // File times come from a coarse clock that may lag behind the
        // precise one by a tick: allow for it.
        let since = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        Self { since, digests: Vec::new() }
    }

    /// Notes a blob this add put.
    fn note(&mut self, blob: larder_store::BlobInfo) -> larder_store::BlobInfo {
        self.digests.push(blob.sha256);
        blob
    }

    /// Removes the blobs written during this add (not older ones it found
    /// in place) that no file row refers to: another writer may have
    /// published the same content meanwhile.
    async fn remove_unreferenced(self, store: &Store) {
        for digest in self.digests {
            let stat = store.blobs().stat(&digest).await;
            let written_now = stat.is_ok_and(|stat| stat.is_some_and(|stat| stat.modified >= self.since));
            if written_now
                && matches!(store.db().references(&digest).await, Ok(false))
                && let Err(error) = store.blobs().remove(&digest).await
            {
                tracing::warn!(%digest, %error, "cannot remove a blob of the refused add; `larder gc` will");
            }
        }
    }
}

/// Expands folders into the files below them, in a stable order.
fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AddError> {
    let mut files = Vec::new();
    for path in paths {
        let io_error = |source| AddError::Io { path: path.clone(), source };
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        if metadata.is_dir() {
            walk_dir(path, &mut files)?;
        } else if metadata.is_file() {
            files.push(path.clone());
        } else {
            return Err(io_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
        }
    }
    Ok(files)
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), AddError> {
    let io_error = |source| AddError::Io { path: dir.to_owned(), source };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io_error)?.collect::<Result<_, _>>().map_err(io_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(io_error)?.is_dir() {
            walk_dir(&path, files)?;
        } else if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        } else {
            // A FIFO, socket or device (opening a FIFO would wait for a
            // writer forever), or a dangling link.
            tracing::warn!(path = %path.display(), "not a regular file; skipped");
        }
    }
    Ok(())
}

/// Parses the filename, reads the core metadata and checks that both name
/// the same project and version.
fn check_file(path: &Path) -> Result<CheckedFile, AddError> {
    let filename = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dist = DistFilename::parse(&filename).map_err(|source| AddError::Filename { path: path.to_owned(), source })?;
    let file = std::fs::File::open(path).map_err(|source| AddError::Io { path: path.to_owned(), source })?;
    let (metadata_bytes, metadata) = larder_dist::read_checked_metadata(
        &filename,
        &dist,
        std::io::BufReader::new(file),
    )
    .map_err(|error| match error {
        larder_dist::DistError::Mismatch { file_name, file_version, metadata_name, metadata_version, .. } => {
            AddError::Mismatch { path: path.to_owned(), file_name, file_version, metadata_name, metadata_version }
        }
        other => AddError::Metadata { path: path.to_owned(), reason: other.to_string() },
    })?;
    Ok(CheckedFile { path: path.to_owned(), filename, dist, metadata_bytes, metadata })
}
