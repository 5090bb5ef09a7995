//! Bad bundles: each is refused with a clear reason, and the store shows
//! nothing of it.

use std::path::{Path, PathBuf};

use larder_bundle::PublicKey;
use larder_export::{BundleOptions, export_bundle, import_bundle};

use crate::common::{TestStore, visible_state};

/// A store with one project, and a good bundle of it.
async fn source_and_bundle(zstd: bool) -> (TestStore, PathBuf) {
    let source = TestStore::new().await;
    source.add_wheels(&[("demo", "1.0"), ("demo", "1.1")]).await;
    let bundle = source.dir.path().join("good.tar");
    export_bundle(&source.store, &bundle, BundleOptions { zstd, ..BundleOptions::default() }).await.unwrap();
    (source, bundle)
}

/// Imports `bundle` into a store that already holds a project, checks the
/// error names `expected`, and that the store shows the same as before.
async fn assert_refused(bundle: &Path, expected: &str) {
    assert_refused_trusting(bundle, &[], expected).await;
}

/// [`assert_refused`], trusting the `trusted` keys only.
pub(crate) async fn assert_refused_trusting(bundle: &Path, trusted: &[PublicKey], expected: &str) {
    let target = TestStore::new().await;
    target.add_wheels(&[("kept", "1.0")]).await;
    let before = visible_state(&target).await;
    let error = import_bundle(&target.store, bundle, trusted).await.unwrap_err().to_string();
    assert!(!error.contains('\n'), "one line: {error}");
    assert!(error.contains("bundle refused, nothing was imported"), "{error}");
    assert!(error.contains(expected), "{expected:?} not in {error}");
    assert_eq!(visible_state(&target).await, before, "the store is unchanged");
    let tmp = target.data_dir().join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0, "no temporary file is left");
}

/// The entries of a tar bundle: names and bytes.
pub(crate) type Entries = Vec<(String, Vec<u8>)>;

/// A plain tar of raw `(name, bytes)` entries; names are written verbatim
/// (the tar crate refuses to build `..` paths itself).
fn raw_tar(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, bytes.as_slice()).unwrap();
    }
    builder.finish().unwrap();
}

/// The entries of a plain tar bundle with their bytes.
fn read_entries(path: &Path) -> Entries {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Rewrites the plain tar bundle `source` to `target` with its entries changed.
pub(crate) fn rewrite(source: &Path, target: &Path, change: impl FnOnce(&mut Entries)) {
    let mut entries = read_entries(source);
    change(&mut entries);
    let borrowed: Vec<(&str, Vec<u8>)> = entries.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    raw_tar(target, &borrowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_blob_is_refused() {
    let (source, good) = source_and_bundle(false).await;
    let bad = source.dir.path().join("tampered.tar");
    // The last blob is changed: the ones before it check out, and still
    // nothing becomes visible.
    rewrite(&good, &bad, |entries| {
        let last = entries.last_mut().unwrap();
        let middle = last.1.len() / 2;
        last.1[middle] ^= 0xff;
    });
    assert_refused(&bad, "does not match its digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_bundle_is_refused() {
    let (source, plain) = source_and_bundle(false).await;
    // Inside the last blob's bytes, inside the manifest, half way.
    let last_data = {
        let mut archive = tar::Archive::new(std::fs::File::open(&plain).unwrap());
        archive.entries().unwrap().map(|e| e.unwrap().raw_file_position()).last().unwrap()
    };
    let bytes = std::fs::read(&plain).unwrap();
    let bad = source.dir.path().join("cut.tar");
    for cut in [last_data as usize + 1, 700, bytes.len() / 2] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert_refused(&bad, "truncated").await;
    }
    let (source, zstd) = source_and_bundle(true).await;
    let bytes = std::fs::read(&zstd).unwrap();
    let bad = source.dir.path().join("cut.tar.zst");
    for cut in [bytes.len() - 1, bytes.len() / 2] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert_refused(&bad, "truncated").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_traversal_entry_is_refused_and_nothing_is_written_there() {
    let (source, good) = source_and_bundle(false).await;
    let bad = source.dir.path().join("traversal.tar");
    rewrite(&good, &bad, |entries| entries.insert(1, ("../x".to_owned(), b"escape".to_vec())));
    assert_refused(&bad, r#"unexpected entry "../x""#).await;
    assert!(!source.dir.path().join("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bundles_are_refused_with_a_reason() {
    let (source, good) = source_and_bundle(false).await;
    let bad = source.dir.path().join("bad.tar");
    type Change = Box<dyn FnOnce(&mut Entries)>;
    let cases: [(&str, Change); 5] = [
        ("must be manifest.json", Box::new(|e| e.swap(0, 1))),
        ("not JSON", Box::new(|e| e[0].1 = b"{".to_vec())),
        ("not in the manifest", Box::new(|e| e.push((format!("blobs/{}", "0".repeat(64)), Vec::new())))),
        ("appears twice", Box::new(|e| e.push(e[1].clone()))),
        (
            "blob(s) of the manifest are missing",
            Box::new(|e| {
                e.pop();
            }),
        ),
    ];
    for (expected, change) in cases {
        rewrite(&good, &bad, change);
        assert_refused(&bad, expected).await;
    }
    std::fs::write(&bad, b"").unwrap();
    assert_refused(&bad, "no manifest.json").await;
    std::fs::write(&bad, vec![b'x'; 2048]).unwrap();
    assert_refused(&bad, "corrupt archive").await;
}
