//! Signed bundles: `--sign KEY` on export, `--trust PUBKEY` on import.

use std::path::PathBuf;

use larder_bundle::SecretKey;
use larder_bundle::signature::SIGNATURE_ENTRY;
use larder_export::{BundleOptions, export_bundle, import_bundle};

use crate::common::{TestStore, bundle_entries};
use crate::refused::{assert_refused_trusting, rewrite};

/// A store with one project and its bundle, signed with `key` when given.
async fn bundle(key: Option<&SecretKey>) -> (TestStore, PathBuf) {
    let source = TestStore::new().await;
    source.add_wheels(&[("demo", "1.0"), ("demo", "1.1")]).await;
    let path = source.dir.path().join("bundle.tar");
    export_bundle(&source.store, &path, BundleOptions { sign: key.cloned(), ..BundleOptions::default() })
        .await
        .unwrap();
    (source, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_signed_by_a_trusted_key_imports_and_names_its_key() {
    let key = SecretKey::generate();
    let (source, signed) = bundle(Some(&key)).await;
    let entries = bundle_entries(&signed);
    assert_eq!(entries[..2], ["manifest.json".to_owned(), SIGNATURE_ENTRY.to_owned()], "{entries:?}");
    let other = SecretKey::generate().public_key();
    let target = TestStore::new().await;
    let report = import_bundle(&target.store, &signed, &[other, key.public_key()]).await.unwrap();
    assert_eq!(report.signed_by, Some(key.public_key()));
    assert_eq!(report.changes.files_added, 2);
    assert_eq!(target.tree().await, source.tree().await);
    // Without --trust a signed bundle imports too, its key reported.
    let plain = TestStore::new().await;
    assert_eq!(import_bundle(&plain.store, &signed, &[]).await.unwrap().signed_by, Some(key.public_key()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusting_a_key_refuses_unsigned_forged_and_otherwise_signed_bundles() {
    let key = SecretKey::generate();
    let trusted = [key.public_key()];
    let (source, signed) = bundle(Some(&key)).await;
    let bad = source.dir.path().join("bad.tar");

    let (_unsigned_source, unsigned) = bundle(None).await;
    assert_refused_trusting(&unsigned, &trusted, "the bundle is not signed").await;

    // The signature entry taken out: as unsigned.
    rewrite(&signed, &bad, |entries| {
        entries.remove(1);
    });
    assert_refused_trusting(&bad, &trusted, "the bundle is not signed").await;

    // The manifest edited after signing (a file yanked): bad signature,
    // trusted keys or not.
    rewrite(&signed, &bad, |entries| {
        let manifest = String::from_utf8(entries[0].1.clone()).unwrap();
        assert!(manifest.contains(r#""yanked":null"#), "{manifest}");
        entries[0].1 = manifest.replacen(r#""yanked":null"#, r#""yanked":"forged""#, 1).into_bytes();
    });
    let bad_signature = format!(
        "bad signature: the manifest was changed after it was signed (signature by {key}",
        key = key.public_key()
    );
    assert_refused_trusting(&bad, &trusted, &bad_signature).await;
    assert_refused_trusting(&bad, &[], &bad_signature).await;

    // Signed again by the forger's own key: a key not trusted.
    let forger = SecretKey::generate();
    let (_forged_source, forged) = bundle(Some(&forger)).await;
    assert_refused_trusting(
        &forged,
        &trusted,
        &format!("signed by {}, which is not a trusted key", forger.public_key()),
    )
    .await;

    // A signature entry that is not one.
    rewrite(&signed, &bad, |entries| entries[1].1 = b"{}".to_vec());
    assert_refused_trusting(&bad, &trusted, "malformed manifest.json.sig").await;
}
