//! Static tree exports.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use larder_export::{Placement, TreeOptions, TreeReport, export_tree};
use larder_index::{NormalizedName, PageFormat, Sha256};
use larder_indexes::LOCAL_INDEX;
use larder_indexes::pages::page_from_record;

use crate::common::{TestStore, UpstreamFile, metadata_text, read_tree, wheel_filename};

/// A local project `demo` (two wheels), an upstream project `remote` with
/// one stored file, one not stored and one whose metadata is not stored,
/// an upstream `demo` hidden by the local one, and an upstream `ghost`
/// with nothing stored.
async fn layered_store() -> TestStore {
    let store = TestStore::new().await;
    store.add_wheels(&[("demo", "1.0"), ("demo", "1.1")]).await;
    store
        .upstream_project(
            "Remote",
            &[
                UpstreamFile::stored("remote-1.0-py3-none-any.whl"),
                UpstreamFile { stored: false, ..UpstreamFile::stored("remote-0.9-py3-none-any.whl") },
                UpstreamFile { metadata_stored: false, ..UpstreamFile::stored("remote-0.8-py3-none-any.whl") },
                UpstreamFile { yanked: Some("broken"), ..UpstreamFile::stored("remote-0.7.tar.gz") },
            ],
        )
        .await;
    store.upstream_project("demo", &[UpstreamFile::stored("demo-9.0-py3-none-any.whl")]).await;
    store
        .upstream_project("ghost", &[UpstreamFile { stored: false, ..UpstreamFile::stored("ghost-1.0.tar.gz") }])
        .await;
    store
}

fn text(tree: &std::collections::BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(tree.get(path).unwrap_or_else(|| panic!("{path} missing from the tree")).clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_is_the_layered_view_of_what_is_stored() {
    let store = layered_store().await;
    let out = tempfile::tempdir().unwrap();
    let report = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    assert_eq!((report.projects, report.files), (2, 5), "{report:?}");
    let tree = read_tree(out.path());

    let list = text(&tree, "simple/index.html");
    assert!(list.contains(r#"<a href="demo/">demo</a>"#), "{list}");
    assert!(list.contains(r#"<a href="remote/">Remote</a>"#), "{list}");
    assert!(!list.contains("ghost"), "{list}");
    let list_json: serde_json::Value = serde_json::from_str(&text(&tree, "simple/index.json")).unwrap();
    assert_eq!(list_json["projects"], serde_json::json!([{"name": "demo"}, {"name": "Remote"}]));

    // The local project's pages are the server's (without serials), and
    // hide the upstream project of the same name.
    let name = NormalizedName::new("demo").unwrap();
    let record = store.store.db().project(LOCAL_INDEX, &name).await.unwrap().unwrap();
    let mut page = page_from_record(&name, record.clone(), "../../files/");
    assert_eq!(text(&tree, "simple/demo/index.html"), larder_index::render_project_page(&page, PageFormat::Html));
    page.last_serial = None;
    assert_eq!(text(&tree, "simple/demo/index.json"), larder_index::render_project_page(&page, PageFormat::Json));
    assert!(!text(&tree, "simple/demo/index.html").contains("demo-9.0"));

    // Every listed file and its metadata are there, byte for byte.
    for file in &record.files {
        let path = format!("files/{}/{}", file.sha256, file.filename);
        assert_eq!(Sha256::of(&tree[&path]), file.sha256);
        let metadata = text(&tree, &format!("{path}.metadata"));
        assert_eq!(metadata, metadata_text("demo", &file.version));
    }
    let json: serde_json::Value = serde_json::from_str(&text(&tree, "simple/demo/index.json")).unwrap();
    let wheel = &json["files"][0];
    assert_eq!(wheel["filename"], wheel_filename("demo", "1.0"));
    assert_eq!(wheel["core-metadata"]["sha256"], Sha256::of(metadata_text("demo", "1.0").as_bytes()).to_hex());
    assert!(json["meta"].get("_last-serial").is_none());

    // Upstream: only stored files, `.metadata` only where it is stored,
    // yanked files stay flagged.
    let remote = text(&tree, "simple/remote/index.html");
    assert!(remote.contains(">remote-1.0-py3-none-any.whl<"), "{remote}");
    assert!(!remote.contains("remote-0.9"), "{remote}");
    let line = |needle: &str| remote.lines().find(|l| l.contains(needle)).unwrap().to_owned();
    assert!(line(">remote-1.0-py3-none-any.whl<").contains("data-core-metadata=\"sha256="));
    assert!(!line(">remote-0.8-py3-none-any.whl<").contains("data-core-metadata"));
    assert!(line(">remote-0.7.tar.gz<").contains(r#"data-yanked="broken""#));
    let metadata_files: Vec<_> = tree.keys().filter(|p| p.ends_with(".metadata") && p.contains("remote")).collect();
    assert_eq!(metadata_files.len(), 1, "{metadata_files:?}");
    let remote_json: serde_json::Value = serde_json::from_str(&text(&tree, "simple/remote/index.json")).unwrap();
    // The upstream's own `versions` list, as it gave it.
    assert_eq!(remote_json["versions"], serde_json::json!(["0.9", "1.0"]));
    assert_eq!(remote_json["files"].as_array().unwrap().len(), 3);
    assert!(!tree.keys().any(|p| p.contains("ghost") || p.contains(".larder-tmp")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_export_writes_only_what_changed_and_removes_what_is_gone() {
    let store = layered_store().await;
    let out = tempfile::tempdir().unwrap();
    let first = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    // 5 files + 3 metadata files; 2 pages per project and for the list.
    assert_eq!((placed(&first), first.pages_written, first.removed), (8, 6, 0), "{first:?}");

    let again = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    let nothing = TreeReport { pages_written: 0, files_linked: 0, files_copied: 0, ..first };
    assert_eq!(again, nothing, "a re-export writes nothing");
    assert_eq!(again.writes(), 0);

    // A new release: its wheel and metadata, its project's two pages.
    store.add_wheels(&[("demo", "2.0")]).await;
    let added = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    assert_eq!((placed(&added), added.pages_written, added.removed), (2, 2, 0), "{added:?}");
    assert!(read_tree(out.path()).keys().any(|p| p.ends_with(&wheel_filename("demo", "2.0"))));

    // A project gone upstream, and leftovers of a killed export.
    store.store.db().mark_page_missing(&NormalizedName::new("remote").unwrap(), jiff::Timestamp::now()).await.unwrap();
    std::fs::write(out.path().join("simple/demo/.larder-tmp-x"), b"partial").unwrap();
    std::fs::write(out.path().join("README"), b"not larder's").unwrap();
    let removed = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    // The list's two pages; simple/remote/, 3 files/<sha>/ dirs, the temp file.
    assert_eq!((removed.pages_written, placed(&removed), removed.removed), (2, 0, 5), "{removed:?}");
    let tree = read_tree(out.path());
    assert!(!tree.keys().any(|p| p.contains("remote") || p.contains(".larder-tmp")), "{:?}", tree.keys());
    assert_eq!(tree["README"], b"not larder's");
    assert_eq!(tree.keys().filter(|p| p.starts_with("files/")).count(), 6);
}

fn placed(report: &TreeReport) -> u64 {
    report.files_linked + report.files_copied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_hard_links_where_everyone_may_read_them_else_copies() {
    let store = TestStore::new().await;
    store.add_wheels(&[("demo", "1.0")]).await;
    let name = NormalizedName::new("demo").unwrap();
    let file = store.store.db().project(LOCAL_INDEX, &name).await.unwrap().unwrap().files.remove(0);
    let blob = store.blob_path(&file.sha256);
    let metadata_blob = store.blob_path(&file.metadata_sha256.expect("a wheel has metadata"));
    let set_mode = |mode| {
        for path in [&blob, &metadata_blob] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    };
    let export = |placement| {
        let store = &store.store;
        let file = &file;
        async move {
            let out = tempfile::tempdir().unwrap();
            let report =
                export_tree(store, out.path(), TreeOptions { placement, ..TreeOptions::default() }).await.unwrap();
            let placed =
                std::fs::metadata(out.path().join(format!("files/{}/{}", file.sha256, file.filename))).unwrap();
            let page = std::fs::metadata(out.path().join("simple/demo/index.html")).unwrap();
            assert_eq!(page.permissions().mode() & 0o444, 0o444, "pages are readable by a web server");
            (report, placed)
        }
    };
    let same_inode = |placed: &std::fs::Metadata| placed.ino() == std::fs::metadata(&blob).unwrap().ino();

    // Blobs readable by their owner only: copied, readable by all...
    set_mode(0o600);
    let (report, placed) = export(Placement::Auto).await;
    assert_eq!((report.files_copied, report.files_linked), (2, 0));
    assert!(!same_inode(&placed));
    assert_eq!(placed.permissions().mode() & 0o444, 0o444);
    // ... unless links are asked for.
    let (report, placed) = export(Placement::Link).await;
    assert_eq!((report.files_copied, report.files_linked), (0, 2));
    assert!(same_inode(&placed));
    // A tree of links exported again by default gets copies instead.
    let out = tempfile::tempdir().unwrap();
    export_tree(&store.store, out.path(), TreeOptions { placement: Placement::Link, ..TreeOptions::default() })
        .await
        .unwrap();
    let report = export_tree(&store.store, out.path(), TreeOptions::default()).await.unwrap();
    assert_eq!((report.files_copied, report.files_linked, report.pages_written), (2, 0, 0));
    // Blobs readable by all (as the store publishes them) are linked,
    // unless copies are asked for.
    set_mode(0o644);
    let (report, placed) = export(Placement::Auto).await;
    assert_eq!(report.files_linked, 2, "the wheel and its metadata");
    assert!(same_inode(&placed));
    let (report, placed) = export(Placement::Copy).await;
    assert_eq!((report.files_copied, report.files_linked), (2, 0));
    assert!(!same_inode(&placed));
}
