//! The two JSON documents that cross an air gap.
//!
//! - A **store manifest** (`larder export --manifest OUT.json`) says which
//!   blobs a store holds: `{"format": "larder-store-manifest", "version": 1,
//!   "blobs": {"<sha256>": <size>, ...}}`. Sent back across the gap, it lets
//!   the next bundle leave out what the other side already has.
//! - A **bundle manifest** is the first entry (`manifest.json`) of every
//!   bundle: the blobs the bundle carries (digest and size, checked on
//!   import) and every project and file row of the exported view.
//!
//! Reading either validates everything (names, filenames, digests, times,
//! duplicates) before anything is done with it.

use std::collections::{BTreeMap, HashSet};

use jiff::Timestamp;
use larder_index::definition::check_index_name;
use larder_index::{
    FileRecord, NormalizedName, ProjectStatus, Sha256, SnapshotPage, SnapshotProject,
    UPSTREAM_INDEX_NAME as UPSTREAM_INDEX, UploadTime, UpstreamMeta,
};
use serde::{Deserialize, Serialize};

/// The `format` of a store manifest.
const STORE_FORMAT: &str = "larder-store-manifest";
/// The `format` of a bundle manifest.
const BUNDLE_FORMAT: &str = "larder-bundle";
/// The version of both formats this larder writes and reads.
const VERSION: u32 = 1;

/// Blob digests and sizes.
pub type Blobs = BTreeMap<Sha256, u64>;

/// Which blobs a store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreManifest {
    /// Digest and size of every blob the store's view references.
    pub blobs: Blobs,
}

impl StoreManifest {
    /// Parses and validates a manifest; the error says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not JSON: not even UTF-8 text".to_owned())?;
        check_header(text, STORE_FORMAT)?;
        let wire: StoreWire = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Self { blobs: parse_blobs(&wire.blobs)? })
    }

    /// The manifest as JSON.
    pub fn to_json(&self) -> String {
        let wire = StoreWire { format: STORE_FORMAT.to_owned(), version: VERSION, blobs: blobs_wire(&self.blobs) };
        serde_json::to_string_pretty(&wire).expect("a manifest serializes")
    }
}

/// The manifest of a bundle: the blobs it carries and the rows of the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleManifest {
    /// Digest and size of every blob in the bundle.
    pub blobs: Blobs,
    /// Every project of the exported view with its files, local and
    /// upstream ones as they were listed.
    pub projects: Vec<SnapshotProject>,
}

impl BundleManifest {
    /// The manifest as JSON.
    pub fn to_json(&self) -> String {
        let wire = BundleWire {
            format: BUNDLE_FORMAT.to_owned(),
            version: VERSION,
            blobs: blobs_wire(&self.blobs),
            projects: self.projects.iter().map(ProjectWire::from).collect(),
        };
        serde_json::to_string(&wire).expect("a manifest serializes")
    }

    /// Parses and validates a bundle manifest; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        check_header(text, BUNDLE_FORMAT)?;
        let wire: BundleWire = serde_json::from_str(text).map_err(|e| format!("malformed manifest.json: {e}"))?;
        let mut names = HashSet::new();
        let mut filenames = HashSet::new();
        let mut projects = Vec::with_capacity(wire.projects.len());
        for project in wire.projects {
            let project = project.validate()?;
            if !names.insert((project.index.clone(), project.name.clone())) {
                return Err(format!("project {} is listed twice in index {}", project.name, project.index));
            }
            for file in &project.files {
                if !filenames.insert((project.index.clone(), file.filename.clone())) {
                    return Err(format!("file {} is listed twice in index {}", file.filename, project.index));
                }
            }
            projects.push(project);
        }
        Ok(Self { blobs: parse_blobs(&wire.blobs)?, projects })
    }
}

/// Checks `format` and `version` before the rest is parsed, so a document
/// of another kind or a newer larder gets a clear error.
fn check_header(text: &str, format: &str) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Header {
        format: Option<String>,
        version: Option<u32>,
    }
    let header: Header = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match (header.format.as_deref(), header.version) {
        (Some(found), _) if found != format => Err(format!("a {found:?} document, not a {format:?} one")),
        (Some(_), Some(VERSION)) => Ok(()),
        (Some(_), Some(version)) => Err(format!("format version {version}: this larder reads version {VERSION}")),
        _ => Err(format!("no \"format\": {format:?} and \"version\" fields")),
    }
}

fn blobs_wire(blobs: &Blobs) -> BTreeMap<String, u64> {
    blobs.iter().map(|(digest, size)| (digest.to_hex(), *size)).collect()
}

fn parse_blobs(blobs: &BTreeMap<String, u64>) -> Result<Blobs, String> {
    blobs.iter().map(|(digest, size)| Ok((digest_of(digest)?, *size))).collect()
}

fn digest_of(text: &str) -> Result<Sha256, String> {
    text.parse().map_err(|e: larder_index::InvalidDigest| e.to_string())
}

/// True when `filename` can be used as one path component: not empty, not
/// `.` or `..`, not hidden, no separator or control character.
pub fn is_safe_filename(filename: &str) -> bool {
    !filename.is_empty()
        && !filename.starts_with('.')
        && !filename.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

fn time_of(text: &str) -> Result<Timestamp, String> {
    text.parse().map_err(|e| format!("not a timestamp {text:?}: {e}"))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreWire {
    format: String,
    version: u32,
    blobs: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleWire {
    format: String,
    version: u32,
    blobs: BTreeMap<String, u64>,
    projects: Vec<ProjectWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectWire {
    index: String,
    name: String,
    display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<PageWire>,
    files: Vec<FileWire>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageWire {
    fetched_at: String,
    versions: Vec<String>,
    tracks: Vec<String>,
    alternate_locations: Vec<String>,
    status: Option<String>,
    status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_serial: Option<u64>,
    /// PEP 752 fields: key to raw JSON text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    namespaces: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWire {
    filename: String,
    version: String,
    sha256: String,
    size: Option<u64>,
    upload_time: Option<String>,
    requires_python: Option<String>,
    metadata_sha256: Option<String>,
    serve_metadata: bool,
    yanked: Option<String>,
    gpg_sig: Option<bool>,
    provenance: Option<String>,
    url: Option<String>,
}

impl From<&SnapshotProject> for ProjectWire {
    fn from(project: &SnapshotProject) -> Self {
        Self {
            index: project.index.clone(),
            name: project.name.to_string(),
            display_name: project.display_name.clone(),
            upstream: project.upstream.as_ref().map(|page| PageWire {
                fetched_at: page.fetched_at.to_string(),
                versions: page.meta.versions.clone(),
                tracks: page.meta.tracks.clone(),
                alternate_locations: page.meta.alternate_locations.clone(),
                status: page.meta.status.as_ref().map(|s| s.status.clone()),
                status_reason: page.meta.status.as_ref().and_then(|s| s.reason.clone()),
                last_serial: page.meta.last_serial,
                namespaces: page.meta.namespaces.clone(),
            }),
            files: project.files.iter().map(FileWire::from).collect(),
        }
    }
}

impl ProjectWire {
    fn validate(self) -> Result<SnapshotProject, String> {
        let name = NormalizedName::from_normalized(&self.name)
            .ok_or_else(|| format!("{:?} is not a normalized project name", self.name))?;
        if NormalizedName::new(&self.display_name).ok().as_ref() != Some(&name) {
            return Err(format!("display name {:?} does not name project {name}", self.display_name));
        }
        let upstream = match (self.index.as_str(), self.upstream) {
            (UPSTREAM_INDEX, page) => page.map(PageWire::validate).transpose()?,
            (hosted, page) => {
                check_index_name(hosted).map_err(|e| format!("project {name}: {e}"))?;
                if page.is_some() {
                    return Err(format!("project {name} of hosted index {hosted} has upstream page fields"));
                }
                None
            }
        };
        let files = self
            .files
            .into_iter()
            .map(|file| file.validate().map_err(|reason| format!("project {name}: {reason}")))
            .collect::<Result<_, _>>()?;
        Ok(SnapshotProject { index: self.index, name, display_name: self.display_name, files, upstream })
    }
}

impl PageWire {
    fn validate(self) -> Result<SnapshotPage, String> {
        Ok(SnapshotPage {
            fetched_at: time_of(&self.fetched_at)?,
            meta: UpstreamMeta {
                versions: self.versions,
                tracks: self.tracks,
                alternate_locations: self.alternate_locations,
                status: self.status.map(|status| ProjectStatus { status, reason: self.status_reason }),
                last_serial: self.last_serial,
                namespaces: self.namespaces,
            },
        })
    }
}

impl From<&FileRecord> for FileWire {
    fn from(file: &FileRecord) -> Self {
        Self {
            filename: file.filename.clone(),
            version: file.version.clone(),
            sha256: file.sha256.to_hex(),
            size: file.size,
            upload_time: file.upload_time.as_ref().map(ToString::to_string),
            requires_python: file.requires_python.clone(),
            metadata_sha256: file.metadata_sha256.map(|d| d.to_hex()),
            serve_metadata: file.serve_metadata,
            yanked: file.yanked.clone(),
            gpg_sig: file.gpg_sig,
            provenance: file.provenance.clone(),
            url: file.url.clone(),
        }
    }
}

impl FileWire {
    fn validate(self) -> Result<FileRecord, String> {
        if !is_safe_filename(&self.filename) {
            return Err(format!("unsafe filename {:?}", self.filename));
        }
        let context = |reason: String| format!("{}: {reason}", self.filename);
        Ok(FileRecord {
            sha256: digest_of(&self.sha256).map_err(context)?,
            size: self.size,
            upload_time: self
                .upload_time
                .as_deref()
                .map(|text| UploadTime::parse(text).ok_or_else(|| format!("not a timestamp {text:?}")))
                .transpose()
                .map_err(context)?,
            metadata_sha256: self.metadata_sha256.as_deref().map(digest_of).transpose().map_err(context)?,
            filename: self.filename,
            version: self.version,
            requires_python: self.requires_python,
            serve_metadata: self.serve_metadata,
            yanked: self.yanked,
            gpg_sig: self.gpg_sig,
            provenance: self.provenance,
            url: self.url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> SnapshotProject {
        SnapshotProject {
            index: UPSTREAM_INDEX.to_owned(),
            name: NormalizedName::new("Demo_Pkg").unwrap(),
            display_name: "Demo_Pkg".to_owned(),
            files: vec![FileRecord {
                filename: "demo_pkg-1.0-py3-none-any.whl".to_owned(),
                version: "1.0".to_owned(),
                sha256: Sha256::of(b"wheel"),
                size: Some(5),
                upload_time: UploadTime::parse("2024-01-02T03:04:05.123Z"),
                requires_python: Some(">=3.8".to_owned()),
                metadata_sha256: Some(Sha256::of(b"metadata")),
                serve_metadata: true,
                yanked: Some(String::new()),
                gpg_sig: None,
                provenance: None,
                url: Some("http://127.0.0.1:1/demo_pkg-1.0-py3-none-any.whl".to_owned()),
            }],
            upstream: Some(SnapshotPage {
                fetched_at: "2024-02-03T04:05:06Z".parse().unwrap(),
                meta: UpstreamMeta {
                    versions: vec!["1.0".to_owned()],
                    tracks: vec![],
                    alternate_locations: vec![],
                    status: Some(ProjectStatus { status: "archived".to_owned(), reason: None }),
                    last_serial: Some(42),
                    namespaces: BTreeMap::from([(
                        "namespace".to_owned(),
                        r#"{"prefix":"demo","open":false}"#.to_owned(),
                    )]),
                },
            }),
        }
    }

    #[test]
    fn bundle_manifest_round_trips() {
        let manifest = BundleManifest { blobs: Blobs::from([(Sha256::of(b"wheel"), 5)]), projects: vec![project()] };
        assert_eq!(BundleManifest::from_json(&manifest.to_json()).unwrap(), manifest);
    }

    #[test]
    fn malformed_bundle_manifests_are_refused_with_a_reason() {
        let good: serde_json::Value =
            serde_json::from_str(&BundleManifest { blobs: Blobs::new(), projects: vec![project()] }.to_json()).unwrap();
        type Break = fn(&mut serde_json::Value);
        let cases: [(&str, Break); 9] = [
            ("not JSON", |v| *v = serde_json::json!("[")),
            ("store-manifest", |v| v["format"] = "larder-store-manifest".into()),
            ("format version 2", |v| v["version"] = 2.into()),
            ("not a normalized", |v| v["projects"][0]["name"] = "Demo_Pkg".into()),
            ("unsafe filename", |v| v["projects"][0]["files"][0]["filename"] = "../x.whl".into()),
            ("not a sha256", |v| v["projects"][0]["files"][0]["sha256"] = "abc".into()),
            ("cannot name an index", |v| v["projects"][0]["index"] = "../other".into()),
            ("listed twice", |v| {
                let file = v["projects"][0]["files"][0].clone();
                v["projects"][0]["files"].as_array_mut().unwrap().push(file);
            }),
            ("unknown field", |v| v["projects"][0]["extra"] = true.into()),
        ];
        for (expected, break_it) in cases {
            let mut value = good.clone();
            break_it(&mut value);
            let text = if value.is_string() { value.as_str().unwrap().to_owned() } else { value.to_string() };
            let error = BundleManifest::from_json(&text).unwrap_err();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn store_manifest_round_trips_and_rejects_bad_digests() {
        let manifest = StoreManifest { blobs: Blobs::from([(Sha256::of(b"a"), 1), (Sha256::of(b"bb"), 2)]) };
        assert_eq!(StoreManifest::from_json(manifest.to_json().as_bytes()).unwrap(), manifest);
        for (content, expected) in [
            (&br#"{"format":"larder-store-manifest","version":1,"blobs":{"../x":1}}"#[..], "not a sha256"),
            (br#"{"format":"larder-bundle","version":1}"#, "a \"larder-bundle\" document"),
            (b"\x28\xb5\x2f\xfd\xff", "not even UTF-8"),
        ] {
            let error = StoreManifest::from_json(content).unwrap_err();
            assert!(error.contains(expected), "{expected:?} not in {error}");
        }
    }

    #[test]
    fn only_plain_names_are_safe_filenames() {
        assert!(is_safe_filename("demo-1.0-py3-none-any.whl"));
        assert!(is_safe_filename("demo-1.0+local.tar.gz"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\nb", "a\0b"] {
            assert!(!is_safe_filename(bad), "{bad:?}");
        }
    }
}
