//! Core metadata is part of what a stored wheel must have. A wheel stored
//! just before a crash (or a full disk) may have no METADATA extracted:
//! `verify` reports it, `verify --repair` extracts it, and pages extract
//! it lazily (offline too) so `core-metadata` is offered again.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use larder_testkit::proxy::eventually;

/// Fetches both wheels through a proxy (the upstream advertises no
/// metadata, so larder extracts it), then makes the data dir look as if
/// larder had crashed before extracting: metadata rows cleared, blobs gone.
fn wheels_stored_without_metadata(data: &Path) -> Vec<Built> {
    let fx = temp_dir("metadata-fx");
    let files =
        vec![Wheel::new("fixture-lib", "1.0").build(fx.path()), Wheel::new("fixture-lib", "2.0").build(fx.path())];
    let upstream = FixtureUpstream::with_files(UpstreamFormat::Json, &files);
    let server = larder().serve_with(data, &["--upstream", &upstream.simple_url()]);
    for built in &files {
        let url = file_url(&server, &built.project, &built.filename);
        server.get_url(&url).send().assert_status(200);
        let metadata = sha256_hex(built.metadata.as_deref().unwrap());
        assert!(
            eventually(Duration::from_secs(10), || larder_testkit::mirror::stored_digests(data).contains(&metadata)),
            "metadata extracted after the download"
        );
    }
    drop(server);
    larder_testkit::mirror::forget_core_metadata(data, &files);
    files
}

fn verify(data: &Path, repair: bool) -> std::process::Output {
    let mut cmd = larder().command();
    cmd.args(["verify", "--data-dir"]).arg(data);
    if repair {
        cmd.arg("--repair");
    }
    cmd.output().expect("run larder verify")
}

#[test]
fn verify_reports_a_wheel_without_metadata_and_repair_extracts_it() {
    let data = temp_dir("metadata-verify");
    let files = wheels_stored_without_metadata(data.path());
    let report = verify(data.path(), false);
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert_eq!(report.status.code(), Some(1), "{}", describe_output(&report));
    for built in &files {
        assert!(stdout.contains(&format!("no core metadata: {}", built.filename)), "{stdout}");
    }
    let repaired = verify(data.path(), true);
    assert!(repaired.status.success(), "{}", describe_output(&repaired));
    assert!(String::from_utf8_lossy(&repaired.stdout).contains("extracted the core metadata of 2 wheels"));
    let after = verify(data.path(), false);
    assert!(after.status.success(), "{}", describe_output(&after));
    assert!(String::from_utf8_lossy(&after.stdout).contains("the store is sound"));
}

#[test]
fn offline_pages_extract_missing_metadata_lazily_and_serve_it() {
    let data = temp_dir("metadata-lazy");
    let files = wheels_stored_without_metadata(data.path());
    let server = larder().serve_with(data.path(), &["--offline"]);
    let page = json_page(&server, "fixture-lib");
    for built in &files {
        let entry = json_file(&page, &built.filename);
        let digest = sha256_hex(built.metadata.as_deref().unwrap());
        assert_eq!(entry["core-metadata"], serde_json::json!({"sha256": digest}), "page {page}");
        let url = Url::parse(&format!("{}.metadata", file_url(&server, &built.project, &built.filename))).unwrap();
        let metadata = server.get_url(&url).send();
        metadata.assert_status(200);
        assert_eq!(metadata.body, built.metadata.clone().unwrap());
    }
    drop(server);
    assert!(verify(data.path(), false).status.success());
}
