//! Bundles: round trips, repeated and incremental imports.

use larder_export::{
    BundleOptions, export_bundle, import_bundle, read_store_manifest, store_manifest, write_store_manifest,
};
use larder_store::db::snapshot::SnapshotChanges;

use crate::common::{TestStore, UpstreamFile, bundle_entries, visible_state, wheel_filename};

async fn source_store() -> TestStore {
    let store = TestStore::new().await;
    store.add_wheels(&[("demo", "1.0"), ("other-pkg", "0.1")]).await;
    store
        .upstream_project(
            "Remote",
            &[
                UpstreamFile::stored("remote-1.0-py3-none-any.whl"),
                UpstreamFile { stored: false, ..UpstreamFile::stored("remote-0.9-py3-none-any.whl") },
                UpstreamFile { metadata_stored: false, ..UpstreamFile::stored("remote-0.8-py3-none-any.whl") },
            ],
        )
        .await;
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_round_trip_gives_the_same_tree_and_a_second_import_changes_nothing() {
    let source = source_store().await;
    for zstd in [false, true] {
        let bundle = source.dir.path().join(if zstd { "store.tar.zst" } else { "store.tar" });
        let made =
            export_bundle(&source.store, &bundle, BundleOptions { zstd, ..BundleOptions::default() }).await.unwrap();
        // demo + other-pkg wheels and metadata, remote 1.0 and its metadata, remote 0.8.
        assert_eq!((made.projects, made.files, made.blobs, made.skipped), (3, 4, 7, 0), "{made:?}");
        let magic = std::fs::read(&bundle).unwrap()[..4].to_vec();
        assert_eq!(magic == [0x28, 0xb5, 0x2f, 0xfd], zstd);

        let target = TestStore::new().await;
        let first = import_bundle(&target.store, &bundle, &[]).await.unwrap();
        assert_eq!((first.blobs_written, first.blobs_present, first.bytes_written), (7, 0, made.bytes));
        assert_eq!(first.changes, SnapshotChanges { projects: 3, files_added: 4, files_updated: 0 });
        assert_eq!(target.tree().await, source.tree().await, "the imported store exports the same tree");

        let serial = target.store.db().last_serial().await.unwrap();
        let second = import_bundle(&target.store, &bundle, &[]).await.unwrap();
        assert_eq!((second.blobs_written, second.blobs_present), (0, 7));
        assert_eq!(second.changes, SnapshotChanges::default());
        assert_eq!(target.store.db().last_serial().await.unwrap(), serial, "no journal entry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_makes_the_same_bundle() {
    let source = source_store().await;
    let (one, two) = (source.dir.path().join("one.tar"), source.dir.path().join("two.tar"));
    export_bundle(&source.store, &one, BundleOptions::default()).await.unwrap();
    export_bundle(&source.store, &two, BundleOptions::default()).await.unwrap();
    assert_eq!(std::fs::read(one).unwrap(), std::fs::read(two).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_bundle_carries_only_what_the_other_side_lacks() {
    let source = source_store().await;
    let target = TestStore::new().await;
    let full = source.dir.path().join("full.tar");
    export_bundle(&source.store, &full, BundleOptions::default()).await.unwrap();
    import_bundle(&target.store, &full, &[]).await.unwrap();

    // The far side sends its manifest back; meanwhile the source gained a
    // release and an upstream file was yanked.
    let manifest_path = target.dir.path().join("manifest.json");
    write_store_manifest(&store_manifest(&target.store).await.unwrap(), &manifest_path).unwrap();
    let since = read_store_manifest(&manifest_path).unwrap();
    assert_eq!(since.blobs.len(), 7);
    source.add_wheels(&[("demo", "2.0")]).await;
    source
        .upstream_project(
            "Remote",
            &[
                UpstreamFile { yanked: Some("bad"), ..UpstreamFile::stored("remote-1.0-py3-none-any.whl") },
                UpstreamFile { metadata_stored: false, ..UpstreamFile::stored("remote-0.8-py3-none-any.whl") },
            ],
        )
        .await;

    let delta = source.dir.path().join("delta.tar");
    let made = export_bundle(&source.store, &delta, BundleOptions { since: Some(since), ..BundleOptions::default() })
        .await
        .unwrap();
    assert_eq!((made.blobs, made.skipped), (2, 7), "{made:?}");
    let entries = bundle_entries(&delta);
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(entries[0], "manifest.json");
    let new_wheel = source.tree().await.into_iter().find(|(p, _)| p.ends_with(&wheel_filename("demo", "2.0"))).unwrap();
    let new_digest = new_wheel.0.split('/').nth(1).unwrap().to_owned();
    assert!(entries.contains(&format!("blobs/{new_digest}")), "{entries:?}");

    let imported = import_bundle(&target.store, &delta, &[]).await.unwrap();
    assert_eq!(imported.blobs_written, 2);
    assert_eq!(imported.changes, SnapshotChanges { projects: 2, files_added: 1, files_updated: 1 });
    let tree = target.tree().await;
    assert_eq!(tree, source.tree().await);
    let remote = String::from_utf8(tree["simple/remote/index.html"].clone()).unwrap();
    assert!(remote.contains(r#"data-yanked="bad""#), "{remote}");

    // A store that lacks what the delta leaves out refuses it, untouched.
    let fresh = TestStore::new().await;
    let error = import_bundle(&fresh.store, &delta, &[]).await.unwrap_err().to_string();
    assert!(error.contains("neither in the bundle nor in this store"), "{error}");
    assert_eq!(fresh.store.db().last_serial().await.unwrap(), 0);
    assert!(std::fs::read_dir(fresh.data_dir().join("blobs/sha256")).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_file_published_with_other_content_refuses_the_bundle() {
    let source = source_store().await;
    let bundle = source.dir.path().join("store.tar");
    export_bundle(&source.store, &bundle, BundleOptions::default()).await.unwrap();
    let target = TestStore::new().await;
    // Same filename, other bytes (a different wheel built under that name).
    let other = target.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let path = crate::common::write_wheel(&other, "demo", "1.0");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"trailing");
    std::fs::write(&path, bytes).unwrap();
    larder_indexes::add_paths(&target.store, larder_indexes::LOCAL_INDEX, &[path]).await.unwrap();
    let before = visible_state(&target).await;
    let error = import_bundle(&target.store, &bundle, &[]).await.unwrap_err().to_string();
    assert!(error.contains("already exists") && error.contains("nothing was imported"), "{error}");
    assert_eq!(visible_state(&target).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_project_without_page_fields_is_served_offline() {
    use larder_index::{NormalizedName, Sha256};
    use larder_store::db::snapshot::SnapshotProject;
    use larder_store::{FileRecord, UPSTREAM_INDEX};

    let store = TestStore::new().await;
    let content = b"wheel bytes";
    store.store.blobs().put_bytes(content, None).await.unwrap();
    let name = NormalizedName::new("bare").unwrap();
    let project = SnapshotProject {
        index: UPSTREAM_INDEX.to_owned(),
        name: name.clone(),
        display_name: "bare".to_owned(),
        files: vec![FileRecord {
            filename: "bare-1.0-py3-none-any.whl".to_owned(),
            version: "1.0".to_owned(),
            sha256: Sha256::of(content),
            size: Some(content.len() as u64),
            upload_time: None,
            requires_python: None,
            metadata_sha256: None,
            serve_metadata: false,
            yanked: None,
            gpg_sig: None,
            provenance: None,
            url: None,
        }],
        upstream: None,
    };
    let changes = store.store.db().import_snapshot(std::slice::from_ref(&project)).await.unwrap();
    assert_eq!(changes, SnapshotChanges { projects: 1, files_added: 1, files_updated: 0 });
    let state = store.store.db().page_state(&name).await.unwrap().expect("a page state");
    assert!(state.found);
    assert_eq!(state.fetched_at, jiff::Timestamp::UNIX_EPOCH, "stale: refreshed as soon as an upstream answers");
    assert_eq!(store.store.db().import_snapshot(&[project]).await.unwrap(), SnapshotChanges::default());
    assert!(store.tree().await.contains_key("simple/bare/index.html"));
}

/// Rewrites a plain tar bundle's manifest with `edit`, keeping every blob.
fn edit_manifest(bundle: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut archive = tar::Archive::new(std::fs::File::open(bundle).unwrap());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        entries.push((name, bytes));
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&entries[0].1).unwrap();
    edit(&mut manifest);
    entries[0].1 = serde_json::to_vec(&manifest).unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(bundle).unwrap());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes.as_slice()).unwrap();
    }
    builder.finish().unwrap();
}

/// Every file object of a bundle manifest, by filename.
fn manifest_files(manifest: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
    fn walk<'a>(value: &'a mut serde_json::Value, out: &mut Vec<&'a mut serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) if map.contains_key("filename") && map.contains_key("sha256") => {
                out.push(value)
            }
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(v, out)),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(manifest, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_edited_to_swap_two_wheels_is_refused() {
    let source = source_store().await;
    let bundle = source.dir.path().join("store.tar");
    export_bundle(&source.store, &bundle, BundleOptions::default()).await.unwrap();
    edit_manifest(&bundle, |manifest| {
        let mut files = manifest_files(manifest);
        let demo = files.iter().position(|f| f["filename"] == wheel_filename("demo", "1.0")).unwrap();
        let other = files.iter().position(|f| f["filename"] == wheel_filename("other-pkg", "0.1")).unwrap();
        for key in ["sha256", "size", "metadata_sha256"] {
            let a = files[demo][key].clone();
            files[demo][key] = files[other][key].clone();
            files[other][key] = a;
        }
    });
    let target = TestStore::new().await;
    let error = import_bundle(&target.store, &bundle, &[]).await.unwrap_err().to_string();
    assert!(error.contains("tampered") && error.contains("nothing was imported"), "{error}");
    assert_eq!(target.store.db().last_serial().await.unwrap(), 0, "nothing imported");
}
