//! The JSON API (`/pypi/<project>/json` and `/pypi/<project>/<version>/json`)
//! that security scanners and update bots read: the release list, each
//! file with its digests, size, upload time and yank state, and `info`
//! from the core metadata of the release shown.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::Version;
use serde::Serialize;

use crate::filename::{DistFilename, PackageType};
use crate::metadata::CoreMetadata;
use crate::simple::{FileEntry, Yanked, format_upload_time};

/// A file of a release, as the JSON API lists it.
#[derive(Clone, Debug)]
pub struct ReleaseFile {
    /// The release (version as in the filename).
    pub version: String,
    /// The file as the Simple API describes it (its `url` should be
    /// absolute: JSON API readers do not resolve relative links).
    pub entry: FileEntry,
}

/// A project for the JSON API.
#[derive(Clone, Debug)]
pub struct JsonProject {
    /// The name as the project spells it.
    pub display_name: String,
    /// Every file of every release.
    pub files: Vec<ReleaseFile>,
    /// The serial of the project's last change.
    pub last_serial: u64,
}

impl JsonProject {
    /// The version `info` describes on the project document: the highest
    /// release with a file that is not yanked, final releases before
    /// pre-releases; failing that, the highest release.
    pub fn latest_version(&self) -> Option<&str> {
        let candidates = |stable_only: bool, live_only: bool| {
            self.files
                .iter()
                .filter(move |f| !live_only || matches!(f.entry.yanked, Yanked::No))
                .filter_map(|f| Version::from_str(&f.version).ok().map(|v| (v, f.version.as_str())))
                .filter(move |(v, _)| !stable_only || !v.any_prerelease())
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, text)| text)
        };
        candidates(true, true).or_else(|| candidates(false, true)).or_else(|| candidates(false, false))
    }

    /// Whether `version` is a release of this project (compared by PEP 440).
    pub fn release(&self, version: &str) -> Option<&str> {
        let wanted = Version::from_str(version).ok()?;
        self.files.iter().find(|f| Version::from_str(&f.version).ok().as_ref() == Some(&wanted)).map(|f| &*f.version)
    }

    /// Renders the project document (`version: None`, with `releases`) or
    /// one release's document. `info` is the core metadata of the release
    /// described (of [`JsonProject::latest_version`] for the project).
    pub fn render(&self, version: Option<&str>, info: Option<&CoreMetadata>) -> String {
        let shown = version.or_else(|| self.latest_version()).unwrap_or_default();
        let same = |v: &str| same_version(v, shown);
        let urls: Vec<FileJson<'_>> = self.files.iter().filter(|f| same(&f.version)).map(file_json).collect();
        let yanked = !urls.is_empty() && urls.iter().all(|f| f.yanked);
        let releases = version.is_none().then(|| {
            let mut releases: BTreeMap<&str, Vec<FileJson<'_>>> = BTreeMap::new();
            for file in &self.files {
                releases.entry(&file.version).or_default().push(file_json(file));
            }
            releases
        });
        let document = Document {
            info: Info {
                name: info.map_or(self.display_name.as_str(), |m| &m.name),
                version: shown,
                summary: info.and_then(|m| m.summary.as_deref()),
                requires_python: info.and_then(|m| m.requires_python.as_deref()),
                requires_dist: info.map(|m| &m.requires_dist[..]).filter(|r| !r.is_empty()),
                provides_extra: info.map(|m| &m.provides_extra[..]).filter(|r| !r.is_empty()),
                yanked,
                yanked_reason: urls.iter().find_map(|f| f.yanked_reason),
            },
            last_serial: self.last_serial,
            releases,
            urls,
            vulnerabilities: [],
        };
        serde_json::to_string(&document).expect("the JSON API document serializes")
    }
}

fn same_version(a: &str, b: &str) -> bool {
    a == b || matches!((Version::from_str(a), Version::from_str(b)), (Ok(x), Ok(y)) if x == y)
}

fn file_json(file: &ReleaseFile) -> FileJson<'_> {
    let entry = &file.entry;
    let dist = DistFilename::parse(&entry.filename).ok();
    let python_version = match &dist {
        Some(DistFilename::Wheel(wheel)) => wheel.python_tags.join("."),
        _ => "source".to_owned(),
    };
    let (yanked, yanked_reason) = match &entry.yanked {
        Yanked::No => (false, None),
        Yanked::Yes(reason) => (true, reason.as_deref()),
    };
    FileJson {
        filename: &entry.filename,
        url: &entry.url,
        size: entry.size,
        digests: entry.hashes.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        packagetype: dist.map_or(PackageType::Sdist, |d| d.package_type()).to_string(),
        python_version,
        requires_python: entry.requires_python.as_deref(),
        upload_time_iso_8601: entry.upload_time.as_ref().map(|t| format_upload_time(t.timestamp())),
        upload_time: entry.upload_time.as_ref().map(|t| t.timestamp().strftime("%Y-%m-%dT%H:%M:%S").to_string()),
        yanked,
        yanked_reason,
    }
}

#[derive(Serialize)]
struct Document<'a> {
    info: Info<'a>,
    last_serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    releases: Option<BTreeMap<&'a str, Vec<FileJson<'a>>>>,
    urls: Vec<FileJson<'a>>,
    vulnerabilities: [(); 0],
}

#[derive(Serialize)]
struct Info<'a> {
    name: &'a str,
    version: &'a str,
    summary: Option<&'a str>,
    requires_python: Option<&'a str>,
    requires_dist: Option<&'a [String]>,
    provides_extra: Option<&'a [String]>,
    yanked: bool,
    yanked_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    filename: &'a str,
    url: &'a str,
    size: Option<u64>,
    digests: BTreeMap<&'a str, &'a String>,
    packagetype: String,
    python_version: String,
    requires_python: Option<&'a str>,
    upload_time: Option<String>,
    upload_time_iso_8601: Option<String>,
    yanked: bool,
    yanked_reason: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simple::CoreMetadataLink;

    fn file(version: &str, filename: &str, yanked: Yanked) -> ReleaseFile {
        ReleaseFile {
            version: version.into(),
            entry: FileEntry {
                filename: filename.into(),
                url: format!("http://127.0.0.1/files/aa/{filename}"),
                hashes: BTreeMap::from([("sha256".into(), "aa".into()), ("md5".into(), "bb".into())]),
                requires_python: Some(">=3.8".into()),
                core_metadata: CoreMetadataLink::Absent,
                gpg_sig: None,
                yanked,
                size: Some(10),
                upload_time: crate::UploadTime::parse("2024-01-02T03:04:05.5Z"),
                provenance: None,
            },
        }
    }

    fn project() -> JsonProject {
        JsonProject {
            display_name: "Demo".into(),
            files: vec![
                file("1.0", "demo-1.0-py3-none-any.whl", Yanked::No),
                file("1.0", "demo-1.0.tar.gz", Yanked::No),
                file("2.0", "demo-2.0-py3-none-any.whl", Yanked::Yes(Some("broken".into()))),
                file("3.0rc1", "demo-3.0rc1-py3-none-any.whl", Yanked::No),
            ],
            last_serial: 9,
        }
    }

    #[test]
    fn the_latest_version_skips_yanked_and_pre_releases() {
        assert_eq!(project().latest_version(), Some("1.0"));
        assert_eq!(project().release("2.0.0"), Some("2.0"));
        assert_eq!(project().release("4"), None);
    }

    #[test]
    fn renders_releases_urls_and_info() {
        let info = CoreMetadata {
            name: "Demo".into(),
            version: "1.0".into(),
            summary: Some("a demo".into()),
            requires_dist: vec!["idna".into()],
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_str(&project().render(None, Some(&info))).unwrap();
        assert_eq!(json["info"]["version"], "1.0");
        assert_eq!(json["info"]["summary"], "a demo");
        assert_eq!(json["info"]["requires_dist"], serde_json::json!(["idna"]));
        assert_eq!(json["last_serial"], 9);
        assert_eq!(json["urls"].as_array().unwrap().len(), 2);
        assert_eq!(json["releases"].as_object().unwrap().len(), 3);
        let wheel = &json["urls"][0];
        assert_eq!(wheel["digests"]["sha256"], "aa");
        assert_eq!(wheel["packagetype"], "bdist_wheel");
        assert_eq!(wheel["python_version"], "py3");
        assert_eq!(wheel["upload_time_iso_8601"], "2024-01-02T03:04:05.500000Z");
        assert_eq!(json["urls"][1]["python_version"], "source");
        assert_eq!(json["vulnerabilities"], serde_json::json!([]));

        let one: serde_json::Value = serde_json::from_str(&project().render(Some("2.0"), None)).unwrap();
        assert!(one.get("releases").is_none());
        assert_eq!(one["info"]["yanked"], true);
        assert_eq!(one["info"]["yanked_reason"], "broken");
        assert_eq!(one["urls"][0]["yanked_reason"], "broken");
    }
}
