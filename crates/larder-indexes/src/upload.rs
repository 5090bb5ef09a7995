//! Uploads to a hosted (or layered) index: the file's bytes are streamed
//! into a temporary blob while every digest is computed; then the form is
//! checked against them, the core metadata is read from the file itself
//! and checked against the filename and the form, and only then is the
//! blob published and the file row written, in one transaction that also
//! enforces "a published filename never changes its bytes", "a deleted
//! filename is never reused" and "one sdist per release".
//!
//! Nothing is visible before that transaction commits, so a crash or a
//! refused upload leaves at most an unreferenced blob (removed by `gc`).

use std::io::BufReader;

use jiff::Timestamp;
use larder_index::upload::{FormError, FormFields, UploadDigests, UploadForm};
use larder_index::{CoreMetadata, DistFilename, FilenameError, IndexDefinition, NormalizedName, Sha256};
use larder_store::{BlobError, BlobWriter, DbError, NewFile, Store, UploadDetails, UploadOutcome};

/// PEP 792 statuses under which a project takes no uploads.
const CLOSED: [&str; 2] = ["archived", "quarantined"];

/// The default largest upload.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1 << 30;

/// Why an upload is refused or failed. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The index does not take uploads.
    #[error("index {0} is a mirror and takes no uploads")]
    NotHosted(String),
    /// The form is incomplete, inconsistent, or contradicts the file.
    #[error(transparent)]
    Form(#[from] FormError),
    /// The filename is not a distribution filename.
    #[error("{0}")]
    Filename(#[from] FilenameError),
    /// The form has no file.
    #[error("the upload form has no 'content' file part")]
    NoContent,
    /// The file is larger than the limit.
    #[error("the upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The file's core metadata is missing or unreadable.
    #[error("{0}")]
    Metadata(String),
    /// Other bytes are already published under this filename.
    #[error("File already exists: {filename} is published in index {index} with other content (sha256 {existing})")]
    Exists {
        /// The index.
        index: String,
        /// The filename.
        filename: String,
        /// The digest of what is published.
        existing: Sha256,
    },
    /// The filename was deleted and is never reused.
    #[error("{0} was deleted from this index; a deleted filename is never reused: publish a new version")]
    Deleted(String),
    /// The project is archived or quarantined (PEP 792).
    #[error("project {project} in index {index} is {status}: it takes no uploads{}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Closed {
        /// The index.
        index: String,
        /// The project.
        project: NormalizedName,
        /// `archived` or `quarantined`.
        status: String,
        /// The reason given when the status was set.
        reason: Option<String>,
    },
    /// The release already has an sdist.
    #[error("{existing} is already the sdist of this release; one sdist per release")]
    SecondSdist {
        /// The sdist already there.
        existing: String,
    },
    /// Storing the bytes failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What an upload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uploaded {
    /// The file is published.
    Added,
    /// The same file was already published (a no-op).
    AlreadyPresent,
}

/// A file being received.
pub struct Upload {
    index: String,
    filename: String,
    dist: DistFilename,
    writer: BlobWriter,
    digests: UploadDigests,
    limit: u64,
}

impl Upload {
    /// Starts receiving `filename` for `index` (which must take uploads,
    /// for a project that is not archived or quarantined), refusing more
    /// than `limit` bytes.
    pub async fn start(
        store: &Store,
        index: &IndexDefinition,
        filename: &str,
        limit: u64,
    ) -> Result<Self, UploadError> {
        if !index.kind.takes_uploads() {
            return Err(UploadError::NotHosted(index.name.clone()));
        }
        let dist = DistFilename::parse(filename)?;
        check_open(store, &index.name, dist.name()).await?;
        Ok(Self {
            index: index.name.clone(),
            filename: filename.to_owned(),
            dist,
            writer: store.blobs().writer()?,
            digests: UploadDigests::default(),
            limit,
        })
    }

    /// The project the filename names.
    pub fn project(&self) -> &larder_index::NormalizedName {
        self.dist.name()
    }

    /// The filename.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// Appends received bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        if self.writer.size() + bytes.len() as u64 > self.limit {
            return Err(UploadError::TooLarge(self.limit));
        }
        self.digests.update(bytes);
        Ok(self.writer.write(bytes).await?)
    }

    /// Checks the received file against the form and its own metadata,
    /// then publishes it. `token` is the id of the token that uploaded it.
    pub async fn finish(
        self,
        store: &Store,
        fields: &FormFields,
        token: Option<&str>,
    ) -> Result<Uploaded, UploadError> {
        let form = UploadForm::from_fields(fields)?;
        let digests = self.digests.finish();
        form.check_digests(&digests)?;
        let metadata_bytes = read_metadata(self.writer.reader()?, self.filename.clone(), self.dist.clone()).await?;
        let metadata = CoreMetadata::parse(&metadata_bytes)
            .map_err(|e| UploadError::Metadata(format!("{}: {e}", self.filename)))?;
        form.check_against(&self.dist, &metadata)?;
        // The status may have changed while the body arrived.
        check_open(store, &self.index, self.dist.name()).await?;

        let blob = self.writer.commit(None).await?;
        let metadata_blob = store.blobs().put_bytes(&metadata_bytes, None).await?;
        let attestations = match &form.attestations {
            Some(json) => Some(store.blobs().put_bytes(json.as_bytes(), None).await?.sha256),
            None => None,
        };
        let file = NewFile {
            project: self.dist.name().clone(),
            display_name: metadata.name,
            version: self.dist.version().to_string(),
            filename: self.filename.clone(),
            sha256: blob.sha256,
            size: blob.size,
            upload_time: Timestamp::now(),
            requires_python: metadata.requires_python,
            metadata_sha256: Some(metadata_blob.sha256),
            serve_metadata: matches!(self.dist, DistFilename::Wheel(_)),
        };
        let details = UploadDetails {
            md5: hex::encode(digests.md5),
            blake2b_256: hex::encode(digests.blake2_256),
            attestations_sha256: attestations,
            token_id: token.map(str::to_owned),
        };
        match store.db().publish_upload(&self.index, &file, &details).await? {
            UploadOutcome::Added => Ok(Uploaded::Added),
            UploadOutcome::AlreadyPresent => Ok(Uploaded::AlreadyPresent),
            UploadOutcome::Conflict { existing } => {
                Err(UploadError::Exists { index: self.index, filename: self.filename, existing })
            }
            UploadOutcome::Deleted => Err(UploadError::Deleted(self.filename)),
            UploadOutcome::SecondSdist { existing } => Err(UploadError::SecondSdist { existing }),
        }
    }
}

/// Refuses uploads to a project that is archived or quarantined.
async fn check_open(store: &Store, index: &str, project: &NormalizedName) -> Result<(), UploadError> {
    match store.db().project_status(index, project).await? {
        Some(status) if CLOSED.contains(&status.status.as_str()) => Err(UploadError::Closed {
            index: index.to_owned(),
            project: project.clone(),
            status: status.status,
            reason: status.reason,
        }),
        _ => Ok(()),
    }
}

/// Reads the core metadata from the received file (bounded: a zip bomb
/// or a huge METADATA is refused, not unpacked).
async fn read_metadata(file: std::fs::File, filename: String, dist: DistFilename) -> Result<Vec<u8>, UploadError> {
    tokio::task::spawn_blocking(move || {
        larder_dist::read_core_metadata(&filename, &dist, BufReader::new(file))
            .map_err(|e| UploadError::Metadata(e.to_string()))
    })
    .await
    .expect("reading metadata does not panic")
}
