//! The Simple API data model: what one project page and the project list
//! say, independent of how they are rendered (HTML or JSON).

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;
use pep440_rs::Version;

use crate::NormalizedName;
use crate::names::ListedProject;

/// The `/simple/` page: every project the index knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectList {
    /// Projects, each with its display name; sorted by normalized name.
    pub projects: Vec<ProjectListEntry>,
    /// The index's last change serial, sent as `_last-serial`.
    pub last_serial: Option<u64>,
}

/// One project of the project list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectListEntry {
    /// The name as the project spells it.
    pub display_name: String,
    /// The normalized name, used for the link.
    pub name: NormalizedName,
    /// The serial of the project's last change, when the index says (the
    /// private `_last-serial` key of a PEP 691 list; mirrors diff it).
    pub last_serial: Option<u64>,
}

impl ProjectListEntry {
    /// The entry as a [`ListedProject`] (what list writers take).
    pub fn listed(&self) -> ListedProject<'_> {
        ListedProject { name: self.name.as_str(), display_name: &self.display_name, last_serial: self.last_serial }
    }
}

/// The `/simple/<project>/` page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectPage {
    /// The normalized project name.
    pub name: NormalizedName,
    /// The files, in the order they are listed.
    pub files: Vec<FileEntry>,
    /// Every version of the project (PEP 700): the source's own list, in
    /// its order and spelling, when it gives one.
    pub versions: Vec<String>,
    /// The project's last change serial, when known.
    pub last_serial: Option<u64>,
    /// PEP 708 `tracks` URLs.
    pub tracks: Vec<String>,
    /// PEP 708 `alternate-locations` URLs.
    pub alternate_locations: Vec<String>,
    /// PEP 792 project status, when the source states one.
    pub status: Option<ProjectStatus>,
    /// PEP 752 namespace fields (JSON 1.5): each of [`NAMESPACE_KEYS`] the
    /// source's JSON page has, with its value as raw JSON text, passed on
    /// as given and never interpreted (the PEP is a draft; its key names
    /// have changed).
    pub namespaces: BTreeMap<String, String>,
}

/// The top-level keys of a PEP 691 project page that carry PEP 752
/// namespace data.
pub const NAMESPACE_KEYS: [&str; 2] = ["namespace", "namespaces"];

impl ProjectPage {
    /// The Simple API version this page needs: the lowest version that has
    /// every feature the page uses, and at least 1.1 (PEP 700).
    pub fn api_version(&self) -> &'static str {
        if !self.namespaces.is_empty() {
            "1.5"
        } else if self.status.is_some() {
            "1.4"
        } else if self.files.iter().any(|f| f.provenance.is_some()) {
            "1.3"
        } else if !self.tracks.is_empty() || !self.alternate_locations.is_empty() {
            "1.2"
        } else {
            "1.1"
        }
    }
}

/// PEP 792 project status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectStatus {
    /// `active`, `archived`, `quarantined` or `deprecated`.
    pub status: String,
    /// An optional reason shown to users.
    pub reason: Option<String>,
}

/// One distribution file on a project page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The filename (the anchor text, and the last segment of the URL).
    pub filename: String,
    /// Where the file is downloaded from, relative to the page or absolute.
    pub url: String,
    /// Hash name to lowercase hex digest (`sha256` first of all).
    pub hashes: BTreeMap<String, String>,
    /// The `Requires-Python` specifier.
    pub requires_python: Option<String>,
    /// Whether `<url>.metadata` exists (PEP 658/714), and its hashes.
    pub core_metadata: CoreMetadataLink,
    /// Whether a `.asc` signature exists beside the file.
    pub gpg_sig: Option<bool>,
    /// Yanked (PEP 592), with an optional reason.
    pub yanked: Yanked,
    /// Size in bytes (PEP 700), when known.
    pub size: Option<u64>,
    /// Upload time (PEP 700), when known, as the source wrote it.
    pub upload_time: Option<UploadTime>,
    /// PEP 740 provenance URL.
    pub provenance: Option<String>,
}

/// Whether a file's core metadata is served at `<url>.metadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoreMetadataLink {
    /// No metadata file.
    #[default]
    Absent,
    /// The metadata file exists; its hashes when known (may be empty).
    Present(BTreeMap<String, String>),
}

/// PEP 592 yank state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Yanked {
    /// Not yanked.
    #[default]
    No,
    /// Yanked, with a reason when one was given.
    Yes(Option<String>),
}

impl Yanked {
    /// Yanked with `reason` exactly as given (edge whitespace included);
    /// an empty reason is no reason.
    pub fn yes_with(reason: &str) -> Self {
        Self::Yes((!reason.is_empty()).then(|| reason.to_owned()))
    }
}

/// An upload time (PEP 700): the instant, and the text it is written as.
/// A time read from an upstream keeps the upstream's spelling (`...Z`
/// with or without fractions of a second); one larder sets itself is
/// written `yyyy-mm-ddThh:mm:ss.ffffffZ`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTime {
    at: Timestamp,
    text: String,
}

impl UploadTime {
    /// Reads an upload time as a source wrote it (surrounding whitespace
    /// aside); `None` when it is not an RFC 3339 time.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let at = text.parse().ok()?;
        Some(Self { at, text: text.to_owned() })
    }

    /// The text a source gave for `at`, when it names that instant to the
    /// microsecond (a stored text that does not is dropped); else `at` in
    /// the Simple API's own form.
    pub fn with_text(at: Timestamp, text: Option<&str>) -> Self {
        text.and_then(Self::parse)
            .filter(|parsed| parsed.at.as_microsecond() == at.as_microsecond())
            .unwrap_or_else(|| Self::from(at))
    }

    /// The instant.
    pub fn timestamp(&self) -> Timestamp {
        self.at
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<Timestamp> for UploadTime {
    fn from(at: Timestamp) -> Self {
        Self { at, text: format_upload_time(at) }
    }
}

impl std::fmt::Display for UploadTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Sorts version strings by PEP 440 and removes duplicates. Strings that
/// are not PEP 440 versions sort first, as text.
pub fn sorted_versions<'a>(versions: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut parsed: Vec<(Option<Version>, &str)> =
        versions.into_iter().map(|v| (Version::from_str(v).ok(), v)).collect();
    parsed.sort();
    parsed.dedup_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => x == y,
        _ => a.1 == b.1,
    });
    parsed.into_iter().map(|(_, v)| v.to_owned()).collect()
}

/// Formats a timestamp as the Simple API writes it:
/// `yyyy-mm-ddThh:mm:ss.ffffffZ`.
pub fn format_upload_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_pep_440_not_text() {
        let sorted = sorted_versions(["1.10", "1.9", "1.0rc1", "1.0", "1.0.0", "2.0.dev1", "1.0.post1"]);
        assert_eq!(sorted, ["1.0rc1", "1.0", "1.0.post1", "1.9", "1.10", "2.0.dev1"]);
    }

    #[test]
    fn upload_times_keep_the_text_they_were_read_from() {
        for text in ["2006-05-12T22:42:46Z", "2024-03-05T07:08:09.123Z", "2024-03-05T07:08:09.123456Z"] {
            let time = UploadTime::parse(&format!(" {text} ")).unwrap();
            assert_eq!(time.as_str(), text);
            assert_eq!(UploadTime::with_text(time.timestamp(), Some(text)).as_str(), text);
        }
        let at: Timestamp = "2024-03-05T07:08:09Z".parse().unwrap();
        assert_eq!(UploadTime::from(at).as_str(), "2024-03-05T07:08:09.000000Z");
        assert_eq!(UploadTime::with_text(at, Some("2001-01-01T00:00:00Z")).as_str(), "2024-03-05T07:08:09.000000Z");
        assert_eq!(UploadTime::parse("yesterday"), None);
    }

    #[test]
    fn upload_time_has_microseconds_and_z() {
        let t: Timestamp = "2024-03-05T07:08:09.123456789Z".parse().unwrap();
        assert_eq!(format_upload_time(t), "2024-03-05T07:08:09.123456Z");
        let t: Timestamp = "2024-03-05T07:08:09Z".parse().unwrap();
        assert_eq!(format_upload_time(t), "2024-03-05T07:08:09.000000Z");
    }
}
