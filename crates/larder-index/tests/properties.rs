//! Property tests: name normalization, PEP 440 ordering, platform tag
//! compatibility, and rendering a page then parsing it back.

use std::collections::BTreeMap;
use std::str::FromStr;

use larder_index::parse::{Url, parse_project_page};
use larder_index::tags::{Platform, TargetEnvironment};
use larder_index::{
    CoreMetadataLink, DistFilename, FileEntry, NormalizedName, PageFormat, ProjectPage, ProjectStatus, Version, Yanked,
    render_project_page,
};
use proptest::prelude::*;

fn project_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9._-]{0,16}[A-Za-z0-9])?"
}

/// `name` with each run of `.`, `_` and `-` replaced by `separator`.
fn with_separators(name: &str, separator: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '.' | '_' | '-') {
            if !in_run {
                out.push_str(separator);
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

fn version() -> impl Strategy<Value = String> {
    (
        prop::option::of(1u32..3),
        prop::collection::vec(0u32..30, 1..4),
        prop::option::of((prop::sample::select(vec!["a", "b", "rc"]), 0u32..5)),
        prop::option::of(0u32..5),
        prop::option::of(0u32..5),
    )
        .prop_map(|(epoch, release, pre, post, dev)| {
            let mut text = epoch.map(|e| format!("{e}!")).unwrap_or_default();
            text.push_str(&release.iter().map(u32::to_string).collect::<Vec<_>>().join("."));
            if let Some((kind, n)) = pre {
                text.push_str(&format!("{kind}{n}"));
            }
            if let Some(n) = post {
                text.push_str(&format!(".post{n}"));
            }
            if let Some(n) = dev {
                text.push_str(&format!(".dev{n}"));
            }
            text
        })
}

/// Text for a yank or status reason, with the characters both formats
/// must escape.
fn reason() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&\"'.,]{1,30}".prop_map(|s| s.trim().to_owned()).prop_filter("not empty", |s| !s.is_empty())
}

fn file_entry() -> impl Strategy<Value = FileEntry> {
    (
        version(),
        "[0-9a-f]{64}",
        prop::option::of(prop::sample::select(vec![">=3.8", ">=3.7,<4", "!=3.0.*"])),
        prop::option::of("[0-9a-f]{64}"),
        prop::option::of(prop::option::of(reason())),
        prop::option::of(any::<bool>()),
        prop::option::of(0u64..1 << 40),
    )
        .prop_map(|(version, sha, requires_python, metadata, yanked, gpg_sig, size)| {
            let filename = format!("demo-{version}-py3-none-any.whl");
            FileEntry {
                url: format!("https://files.invalid/packages/{sha}/{filename}"),
                filename,
                hashes: BTreeMap::from([("sha256".to_owned(), sha)]),
                requires_python: requires_python.map(str::to_owned),
                core_metadata: match metadata {
                    Some(hash) => CoreMetadataLink::Present(BTreeMap::from([("sha256".to_owned(), hash)])),
                    None => CoreMetadataLink::Absent,
                },
                gpg_sig,
                yanked: match yanked {
                    None => Yanked::No,
                    Some(reason) => Yanked::Yes(reason),
                },
                size,
                upload_time: None,
                provenance: None,
            }
        })
}

fn page() -> impl Strategy<Value = ProjectPage> {
    (prop::collection::vec(file_entry(), 0..6), prop::option::of(reason())).prop_map(|(mut files, status)| {
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        files.dedup_by(|a, b| a.filename == b.filename);
        let versions = larder_index::simple::sorted_versions(
            files.iter().map(|f| f.filename.trim_start_matches("demo-").trim_end_matches("-py3-none-any.whl")),
        );
        ProjectPage {
            name: NormalizedName::new("demo").unwrap(),
            files,
            versions,
            last_serial: None,
            tracks: Vec::new(),
            alternate_locations: Vec::new(),
            status: status.map(|reason| ProjectStatus { status: "archived".to_owned(), reason: Some(reason) }),
            namespaces: std::collections::BTreeMap::new(),
        }
    })
}

proptest! {
    #[test]
    fn normalizing_ignores_case_and_separator_spelling(name in project_name(), separator in "[-_.]") {
        let normalized = NormalizedName::new(&name).unwrap();
        prop_assert_eq!(&NormalizedName::new(normalized.as_str()).unwrap(), &normalized);
        prop_assert_eq!(&NormalizedName::new(&name.to_uppercase()).unwrap(), &normalized);
        prop_assert_eq!(&NormalizedName::new(&with_separators(&name, &separator)).unwrap(), &normalized);
        prop_assert!(!normalized.as_str().contains(['_', '.']) && !normalized.as_str().contains("--"));
    }

    #[test]
    fn versions_round_trip_and_order_totally(a in version(), b in version(), c in version()) {
        let (a, b, c) = (Version::from_str(&a).unwrap(), Version::from_str(&b).unwrap(), Version::from_str(&c).unwrap());
        prop_assert_eq!(&Version::from_str(&a.to_string()).unwrap(), &a);
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn dev_releases_sort_before_and_post_releases_after(release in prop::collection::vec(0u32..30, 1..4), n in 0u32..5) {
        let base = release.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        let final_release = Version::from_str(&base).unwrap();
        let dev = Version::from_str(&format!("{base}.dev{n}")).unwrap();
        let post = Version::from_str(&format!("{base}.post{n}")).unwrap();
        prop_assert!(dev < final_release && final_release < post);
    }

    #[test]
    fn manylinux_wheels_install_on_the_same_or_a_newer_glibc(
        wheel_minor in 5u16..40, target_minor in 5u16..40, arch in prop::sample::select(vec!["x86_64", "aarch64"]),
    ) {
        let expected = arch == "x86_64" && wheel_minor <= target_minor;
        let target = Platform::parse(&format!("manylinux_2_{target_minor}_x86_64")).unwrap();
        let wheel = Platform::parse(&format!("manylinux_2_{wheel_minor}_{arch}")).unwrap();
        prop_assert_eq!(target.accepts(&wheel), expected);
        prop_assert!(target.accepts(&Platform::Any));
        let environment = TargetEnvironment::parse("3.12", &format!("manylinux_2_{target_minor}_x86_64")).unwrap();
        let filename = format!("demo-1.0-cp312-cp312-manylinux_2_{wheel_minor}_{arch}.whl");
        let DistFilename::Wheel(wheel) = DistFilename::parse(&filename).unwrap() else { panic!("{filename}") };
        prop_assert_eq!(environment.is_compatible(&wheel), expected);
    }

    #[test]
    fn a_rendered_page_parses_back_to_itself(page in page()) {
        let url = Url::parse("https://larder.invalid/simple/demo/").unwrap();
        let json = render_project_page(&page, PageFormat::Json);
        let parsed = parse_project_page(json.as_bytes(), Some("application/vnd.pypi.simple.v1+json"), &url, &page.name);
        prop_assert_eq!(&parsed.unwrap(), &page);
        // HTML carries no sizes (PEP 700 fields are JSON only).
        let html = render_project_page(&page, PageFormat::Html);
        let parsed = parse_project_page(html.as_bytes(), Some("text/html"), &url, &page.name).unwrap();
        let mut without_sizes = page.clone();
        for file in &mut without_sizes.files {
            file.size = None;
        }
        prop_assert_eq!(parsed, without_sizes);
    }
}
