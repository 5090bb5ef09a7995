//! `larder mirror --requirements pylock.toml` and `--requirements uv.lock`:
//! exactly the files the lock file pins are stored (no resolution, no
//! target environment), and a pinned digest the index does not list is a
//! failure (exit 1) that stores nothing under it.

use std::path::Path;

use larder_testkit::mirror::{Outcome, SerialUpstream, run_larder, stored_digests};
use larder_testkit::{Built, Larder, Wheel, temp_dir};

fn mirror(data: &Path, upstream: &SerialUpstream, lock: &Path) -> Outcome {
    let larder = Larder::new(env!("CARGO_BIN_EXE_larder"));
    let mut cmd = larder.command();
    cmd.arg("mirror").arg("--data-dir").arg(data).args(["--upstream", &upstream.simple_url(), "--quiet"]);
    cmd.arg("--requirements").arg(lock);
    run_larder(&mut cmd)
}

struct Index {
    _fixtures: tempfile::TempDir,
    upstream: SerialUpstream,
    files: Vec<Built>,
}

/// `pinned` 1.0 and 2.0, `other` 1.0 (never pinned).
fn index() -> Index {
    let fixtures = temp_dir("mirror-lock-fx");
    let upstream = SerialUpstream::start();
    let files: Vec<Built> = [("pinned", "1.0"), ("pinned", "2.0"), ("other", "1.0")]
        .iter()
        .map(|(name, version)| Wheel::new(name, version).build(fixtures.path()))
        .collect();
    upstream.add_all(&files);
    Index { _fixtures: fixtures, upstream, files }
}

#[test]
fn a_pylock_mirrors_exactly_its_files() {
    let Index { upstream, files, _fixtures } = index();
    let data = temp_dir("mirror-lock-data");
    let dir = temp_dir("mirror-lock-file");
    let lock = dir.path().join("pylock.toml");
    std::fs::write(
        &lock,
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"test\"\n[[packages]]\nname = \"pinned\"\nversion = \"2.0\"\n\
             wheels = [{{ url = \"{}/files/{}\", hashes = {{ sha256 = \"{}\" }} }}]\n",
            upstream.simple_url().trim_end_matches("/simple/"),
            files[1].filename,
            files[1].sha256
        ),
    )
    .unwrap();
    mirror(data.path(), &upstream, &lock).assert_success();
    let stored = stored_digests(data.path());
    assert!(stored.contains(&files[1].sha256), "the pinned wheel is not stored");
    assert!(!stored.contains(&files[0].sha256) && !stored.contains(&files[2].sha256), "unpinned files stored");
}

#[test]
fn a_uv_lock_with_a_wrong_digest_stores_nothing_under_it() {
    let Index { upstream, files, _fixtures } = index();
    let data = temp_dir("mirror-uvlock-data");
    let dir = temp_dir("mirror-uvlock-file");
    let lock = dir.path().join("uv.lock");
    let wrong = "0".repeat(64);
    std::fs::write(
        &lock,
        format!(
            "version = 1\n[[package]]\nname = \"app\"\nversion = \"0.1\"\nsource = {{ editable = \".\" }}\n\
             [[package]]\nname = \"pinned\"\nversion = \"1.0\"\nsource = {{ registry = \"{url}\" }}\n\
             wheels = [{{ url = \"{url}x/{good}\", hash = \"sha256:{good_digest}\" }}]\n\
             [[package]]\nname = \"other\"\nversion = \"1.0\"\nsource = {{ registry = \"{url}\" }}\n\
             wheels = [{{ url = \"{url}x/{bad}\", hash = \"sha256:{wrong}\" }}]\n",
            url = upstream.simple_url(),
            good = files[0].filename,
            good_digest = files[0].sha256,
            bad = files[2].filename,
        ),
    )
    .unwrap();
    let outcome = mirror(data.path(), &upstream, &lock);
    outcome.assert_code(1);
    assert!(outcome.output().contains(&files[2].filename), "the mismatch is not named: {}", outcome.describe());
    let stored = stored_digests(data.path());
    assert!(stored.contains(&files[0].sha256), "the pinned wheel is not stored: {}", outcome.describe());
    assert!(!stored.contains(&files[2].sha256) && !stored.contains(&files[1].sha256), "unpinned files stored");
}
