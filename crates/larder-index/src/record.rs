//! What an index holds about a project and its files, as plain data: the
//! rows the store reads back and writes, and what a snapshot of a whole
//! index (a static export, a bundle) carries.

use jiff::Timestamp;

use crate::{NormalizedName, ProjectStatus, Sha256, UploadTime};

/// A published file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// The distribution filename.
    pub filename: String,
    /// The version, as in the filename.
    pub version: String,
    /// Digest of the file.
    pub sha256: Sha256,
    /// Size in bytes (unknown for a proxied file the upstream did not
    /// describe, until it is stored).
    pub size: Option<u64>,
    /// When it was published (likewise), as the upstream wrote it.
    pub upload_time: Option<UploadTime>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// Digest of the core metadata file, when known.
    pub metadata_sha256: Option<Sha256>,
    /// Whether `.metadata` is advertised and served.
    pub serve_metadata: bool,
    /// `None` when not yanked, else the reason (possibly empty).
    pub yanked: Option<String>,
    /// Whether a GPG signature exists upstream (as the upstream said).
    pub gpg_sig: Option<bool>,
    /// PEP 740 provenance URL (as the upstream said).
    pub provenance: Option<String>,
    /// Where a proxied file is fetched from; `None` for hosted files.
    pub url: Option<String>,
}

/// Page-level fields an upstream gave for a project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamMeta {
    /// PEP 700 `versions`.
    pub versions: Vec<String>,
    /// PEP 708 `tracks`.
    pub tracks: Vec<String>,
    /// PEP 708 `alternate-locations`.
    pub alternate_locations: Vec<String>,
    /// PEP 792 status.
    pub status: Option<ProjectStatus>,
    /// The upstream's serial for the project (`_last-serial`,
    /// `X-PyPI-Last-Serial`), when it gave one.
    pub last_serial: Option<u64>,
    /// PEP 752 namespace fields: key to raw JSON text, as given (see
    /// [`crate::ProjectPage::namespaces`]).
    pub namespaces: std::collections::BTreeMap<String, String>,
}

/// One project of one index, as a snapshot carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotProject {
    /// The index that lists it.
    pub index: String,
    /// The normalized name.
    pub name: NormalizedName,
    /// The name as the project spells it.
    pub display_name: String,
    /// Its files, sorted by filename.
    pub files: Vec<FileRecord>,
    /// For a project of the upstream index: its page-level fields, and when
    /// the page was fetched.
    pub upstream: Option<SnapshotPage>,
}

/// The page-level fields of an upstream project in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPage {
    /// When the upstream page was fetched.
    pub fetched_at: Timestamp,
    /// What it said beyond its files.
    pub meta: UpstreamMeta,
}
