//! The index model of larder: project names, distribution filenames,
//! versions, core metadata, and the Simple API pages (PEP 503 HTML and
//! PEP 691 JSON) as data and as rendered text.
//!
//! This crate does no I/O. Everything above it (storage, the proxy, the
//! server) speaks in its types.

pub mod definition;
pub mod digest;
pub mod filename;
pub mod format;
pub mod html;
pub mod json;
pub mod metadata;
pub mod name;
pub mod names;
pub mod parse;
pub mod pattern;
pub mod pypi_json;
pub mod record;
pub mod release_age;
pub mod simple;
pub mod tags;
pub mod upload;

pub use definition::{DefinitionError, IndexDefinition, IndexKind, LOCAL_INDEX, UPSTREAM_INDEX_NAME};
pub use digest::{Hasher, InvalidDigest, Sha256};
pub use filename::{DistFilename, FilenameError, PackageType, SdistFilename, SdistFormat, WheelFilename};
pub use format::PageFormat;
pub use metadata::{CoreMetadata, MetadataError};
pub use name::{InvalidName, NormalizedName};
pub use names::{ListedProject, NameList, NameListBuilder, SearchHits};
pub use pattern::{PatternError, ProjectPatterns};
pub use pep440_rs::Version;
pub use pypi_json::{JsonProject, ReleaseFile};
pub use record::{FileRecord, SnapshotPage, SnapshotProject, UpstreamMeta};
pub use release_age::ReleaseAgePolicy;
pub use simple::{
    CoreMetadataLink, FileEntry, ProjectList, ProjectListEntry, ProjectPage, ProjectStatus, UploadTime, Yanked,
};

/// Renders a project list in the given format.
pub fn render_project_list(list: &ProjectList, format: PageFormat) -> String {
    if format.is_html() { html::render_project_list(list) } else { json::render_project_list(list) }
}

/// Writes a project list of any size in the given format, a project at a
/// time.
pub fn write_project_list<'a>(
    out: &mut impl std::io::Write,
    projects: impl Iterator<Item = ListedProject<'a>>,
    last_serial: Option<u64>,
    format: PageFormat,
) -> std::io::Result<()> {
    if format.is_html() {
        html::write_project_list(out, projects)
    } else {
        json::write_project_list(out, projects, last_serial)
    }
}

/// Renders a project page in the given format.
pub fn render_project_page(page: &ProjectPage, format: PageFormat) -> String {
    if format.is_html() { html::render_project_page(page) } else { json::render_project_page(page) }
}

#[cfg(test)]
mod render_tests {
    use std::collections::BTreeMap;

    use super::*;

    fn page() -> ProjectPage {
        let hashes = |h: &str| BTreeMap::from([("sha256".to_owned(), h.to_owned())]);
        ProjectPage {
            name: NormalizedName::new("Demo").unwrap(),
            files: vec![
                FileEntry {
                    filename: "demo-1.0-py3-none-any.whl".into(),
                    url: "../../files/aa/demo-1.0-py3-none-any.whl".into(),
                    hashes: hashes("aa"),
                    requires_python: Some(">=3.8,<4".into()),
                    core_metadata: CoreMetadataLink::Present(hashes("bb")),
                    gpg_sig: None,
                    yanked: Yanked::No,
                    size: Some(123),
                    upload_time: UploadTime::parse("2024-01-02T03:04:05.5Z"),
                    provenance: None,
                },
                FileEntry {
                    filename: "demo-0.9.tar.gz".into(),
                    url: "../../files/cc/demo-0.9.tar.gz".into(),
                    hashes: hashes("cc"),
                    requires_python: None,
                    core_metadata: CoreMetadataLink::Absent,
                    gpg_sig: None,
                    yanked: Yanked::Yes(Some("broken <build>".into())),
                    size: Some(45),
                    upload_time: None,
                    provenance: None,
                },
            ],
            versions: vec!["0.9".into(), "1.0".into()],
            last_serial: Some(7),
            tracks: vec![],
            alternate_locations: vec![],
            status: None,
            namespaces: BTreeMap::new(),
        }
    }

    #[test]
    fn html_has_every_pep_503_attribute_escaped() {
        let html = render_project_page(&page(), PageFormat::Html);
        assert!(html.contains(r#"<meta name="pypi:repository-version" content="1.1">"#), "{html}");
        assert!(html.contains(
            r#"<a href="../../files/aa/demo-1.0-py3-none-any.whl#sha256=aa" data-requires-python="&gt;=3.8,&lt;4" data-dist-info-metadata="sha256=bb" data-core-metadata="sha256=bb">demo-1.0-py3-none-any.whl</a>"#
        ), "{html}");
        assert!(html.contains(
            r#"<a href="../../files/cc/demo-0.9.tar.gz#sha256=cc" data-yanked="broken &lt;build&gt;">demo-0.9.tar.gz</a>"#
        ), "{html}");
    }

    #[test]
    fn json_has_pep_691_and_700_fields() {
        let json: serde_json::Value = serde_json::from_str(&render_project_page(&page(), PageFormat::Json)).unwrap();
        assert_eq!(json["meta"]["api-version"], "1.1");
        assert_eq!(json["meta"]["_last-serial"], 7);
        assert_eq!(json["name"], "demo");
        assert_eq!(json["versions"], serde_json::json!(["0.9", "1.0"]));
        let wheel = &json["files"][0];
        assert_eq!(wheel["hashes"]["sha256"], "aa");
        assert_eq!(wheel["requires-python"], ">=3.8,<4");
        assert_eq!(wheel["core-metadata"], serde_json::json!({"sha256": "bb"}));
        assert_eq!(wheel["dist-info-metadata"], wheel["core-metadata"]);
        assert_eq!(wheel["yanked"], false);
        assert_eq!(wheel["size"], 123);
        assert_eq!(wheel["upload-time"], "2024-01-02T03:04:05.5Z", "passed through as written");
        let sdist = &json["files"][1];
        assert_eq!(sdist["core-metadata"], false);
        assert_eq!(sdist["yanked"], "broken <build>");
        assert!(sdist.get("requires-python").is_none());
    }

    #[test]
    fn later_features_raise_the_api_version() {
        let mut page = page();
        page.tracks.push("https://example.invalid/simple/demo/".into());
        let json: serde_json::Value = serde_json::from_str(&render_project_page(&page, PageFormat::Json)).unwrap();
        assert_eq!(json["meta"]["api-version"], "1.2");
        assert_eq!(json["meta"]["tracks"][0], "https://example.invalid/simple/demo/");
        page.status = Some(ProjectStatus { status: "archived".into(), reason: Some("done".into()) });
        let html = render_project_page(&page, PageFormat::Html);
        assert!(html.contains(r#"content="1.4""#));
        assert!(html.contains(r#"<meta name="pypi:project-status" content="archived">"#));
        assert!(html.contains(r#"<meta name="pypi:project-status-reason" content="done">"#));
    }

    #[test]
    fn project_list_links_normalized_names() {
        let list = ProjectList {
            projects: vec![ProjectListEntry {
                display_name: "Foo_Bar".into(),
                name: NormalizedName::new("Foo_Bar").unwrap(),
                last_serial: Some(2),
            }],
            last_serial: Some(3),
        };
        let html = render_project_list(&list, PageFormat::Html);
        assert!(html.contains(r#"<a href="foo-bar/">Foo_Bar</a>"#), "{html}");
        let json: serde_json::Value = serde_json::from_str(&render_project_list(&list, PageFormat::Json)).unwrap();
        assert_eq!(json["projects"][0]["name"], "Foo_Bar");
        assert_eq!(json["meta"]["_last-serial"], 3);
    }
}
