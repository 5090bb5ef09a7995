//! Air-gap round trip: a mirrored store exported as a zstd bundle,
//! imported into a fresh data dir (twice: the second import changes
//! nothing); the fresh side's manifest makes the next bundle carry only
//! what it lacks; then, with the upstream stopped, pip and uv install
//! through `larder serve --offline` on the fresh data dir.

use std::collections::BTreeSet;
use std::path::Path;

use larder_testkit::mirror::{Outcome, SerialUpstream, bundle_entries, run_larder, stored_digests};
use larder_testkit::{Built, Clients, Larder, Sdist, Wheel, run, run_ok, sha256_hex, temp_dir};
use serde_json::Value;

fn larder() -> Larder {
    Larder::new(env!("CARGO_BIN_EXE_larder"))
}

fn larder_run(larder: &Larder, args: &[&str], data_dir: &Path, rest: &[&str]) -> Outcome {
    let mut cmd = larder.command();
    cmd.args(args).arg("--data-dir").arg(data_dir).args(rest);
    run_larder(&mut cmd)
}

fn mirror(larder: &Larder, data_dir: &Path, upstream: &SerialUpstream) -> Outcome {
    larder_run(
        larder,
        &["mirror"],
        data_dir,
        &[
            "--upstream",
            &upstream.simple_url(),
            "--project",
            "tool",
            "--project",
            "lib",
            "--project",
            "srcpkg",
            "--jobs",
            "4",
            "--quiet",
        ],
    )
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

#[test]
fn bundle_round_trip_incremental_bundle_and_offline_install() {
    let larder = larder();
    let fixtures = temp_dir("mirror-bundle-fx");
    let connected = temp_dir("mirror-bundle-connected");
    let airgapped = temp_dir("mirror-bundle-airgapped");
    let carry = temp_dir("mirror-bundle-carry");
    let mut upstream = SerialUpstream::start();
    let d = fixtures.path();
    let first: Vec<Built> = vec![
        Wheel::new("lib", "1.0").build(d),
        Wheel::new("tool", "1.0").requires_dist("lib>=1").build(d),
        Sdist::new("srcpkg", "1.0").requires_dist("lib").build(d),
    ];
    upstream.add_all(&first);
    mirror(&larder, connected.path(), &upstream).assert_success();
    let connected_blobs = stored_digests(connected.path());
    for f in &first {
        assert!(connected_blobs.contains(&f.sha256), "{} not mirrored", f.filename);
    }

    // --- the first bundle, imported into a fresh store ---------------
    let bundle1 = carry.path().join("packages.tar.zst");
    let out = larder_run(&larder, &["export"], connected.path(), &["--bundle", path_str(&bundle1), "--zstd"]);
    out.assert_success();
    let imported = larder_run(&larder, &["import"], airgapped.path(), &[path_str(&bundle1)]);
    imported.assert_success();
    assert_eq!(
        stored_digests(airgapped.path()),
        connected_blobs,
        "the fresh store should hold every blob of the mirrored one\n{}",
        imported.describe()
    );

    let again = larder_run(&larder, &["import"], airgapped.path(), &[path_str(&bundle1)]);
    again.assert_success();
    assert!(
        again.stdout.contains(" 0 blobs written") && again.stdout.contains("0 files added, 0 updated"),
        "importing the same bundle twice should report nothing new: {}",
        again.describe()
    );
    assert_eq!(stored_digests(airgapped.path()), connected_blobs);

    // --- the next round: a new release, an incremental bundle --------
    let held = carry.path().join("held.json");
    larder_run(&larder, &["export"], airgapped.path(), &["--manifest", path_str(&held)]).assert_success();
    let tool2 = Wheel::new("tool", "2.0").requires_dist("lib>=1").build(d);
    upstream.add(&tool2);
    mirror(&larder, connected.path(), &upstream).assert_success();
    let new_blobs: BTreeSet<String> = stored_digests(connected.path()).difference(&connected_blobs).cloned().collect();
    assert!(new_blobs.contains(&tool2.sha256), "tool 2.0 not mirrored");
    let tool2_metadata = sha256_hex(tool2.metadata.as_deref().expect("metadata"));
    assert!(
        new_blobs.iter().all(|b| *b == tool2.sha256 || *b == tool2_metadata),
        "the second mirror run stored more than tool 2.0: {new_blobs:?}"
    );

    let bundle2 = carry.path().join("next.tar");
    let out = larder_run(
        &larder,
        &["export"],
        connected.path(),
        &["--bundle", path_str(&bundle2), "--since", path_str(&held)],
    );
    out.assert_success();
    let entries = bundle_entries(&bundle2);
    assert_eq!(entries.first().map(String::as_str), Some("manifest.json"), "{entries:?}");
    let carried: BTreeSet<String> =
        entries.iter().filter_map(|e| e.strip_prefix("blobs/")).map(str::to_owned).collect();
    assert_eq!(
        carried,
        new_blobs,
        "the incremental bundle should carry exactly the blobs the air-gapped side lacks\n{}",
        out.describe()
    );
    // A store that never got the first bundle refuses the incremental
    // one (it lacks the blobs the bundle leaves out), importing nothing.
    let empty = temp_dir("mirror-bundle-empty");
    let refused = larder_run(&larder, &["import"], empty.path(), &[path_str(&bundle2)]);
    assert_eq!(refused.code(), Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("nothing was imported"), "{}", refused.describe());
    assert!(stored_digests(empty.path()).is_empty(), "a refused import left blobs behind");

    let imported = larder_run(&larder, &["import"], airgapped.path(), &[path_str(&bundle2)]);
    imported.assert_success();
    assert!(stored_digests(airgapped.path()).contains(&tool2.sha256));
    larder_run(&larder, &["verify"], airgapped.path(), &["--quiet"]).assert_code(0);

    // --- offline install on the air-gapped side ----------------------
    upstream.stop();
    let server = larder.serve_with(airgapped.path(), &["--offline"]);
    let page: Value = server.get("/simple/tool/").header("Accept", "application/vnd.pypi.simple.v1+json").send().json();
    let mut listed: Vec<&str> =
        page["files"].as_array().expect("files").iter().map(|f| f["filename"].as_str().expect("filename")).collect();
    listed.sort_unstable();
    assert_eq!(listed, ["tool-1.0-py3-none-any.whl", "tool-2.0-py3-none-any.whl"]);

    let clients = Clients::new();
    let index = server.url("/simple/").to_string();
    let check = r#"
import importlib.metadata as m, json
print(json.dumps([m.version("tool"), m.version("lib"), m.version("srcpkg")]))
"#;
    let target = clients.target_venv("pip-airgapped");
    let mut pip = clients.pip();
    pip.arg("--python").arg(&target).args(["install", "--index-url", &index, "tool", "srcpkg"]);
    run_ok(&mut pip);
    let out = run_ok(clients.command(&target).arg("-c").arg(check));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(got, serde_json::json!(["2.0", "1.0", "1.0"]), "pip installed the wrong set");

    let target = clients.target_venv("uv-airgapped");
    let mut uv = clients.uv();
    uv.args(["pip", "install", "--python"]).arg(&target).args(["--index-url", &index, "tool==1.0", "srcpkg"]);
    let out = run(&mut uv);
    assert!(out.status.success(), "uv failed: {}", larder_testkit::describe_output(&out));
    let out = run_ok(clients.command(&target).arg("-c").arg(check));
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(got, serde_json::json!(["1.0", "1.0", "1.0"]), "uv installed the wrong set");
}

#[test]
fn signed_bundles_from_the_command_line() {
    let larder = larder();
    let fixtures = temp_dir("signed-bundle-fx");
    let connected = temp_dir("signed-bundle-connected");
    let carry = temp_dir("signed-bundle-carry");
    let upstream = SerialUpstream::start();
    let d = fixtures.path();
    upstream.add_all(&[
        Wheel::new("lib", "1.0").build(d),
        Wheel::new("tool", "1.0").build(d),
        Sdist::new("srcpkg", "1.0").build(d),
    ]);
    mirror(&larder, connected.path(), &upstream).assert_success();

    let key = carry.path().join("bundle.key");
    let made = run_larder(larder.command().args(["bundle-key", "generate", path_str(&key)]));
    made.assert_success();
    let public = carry.path().join("bundle.key.pub");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret key is its owner's only");
    assert!(made.stdout.contains("ed25519:"), "{}", made.describe());
    // A second generate never overwrites a key.
    run_larder(larder.command().args(["bundle-key", "generate", path_str(&key)])).assert_code(1);

    let (signed, unsigned) = (carry.path().join("signed.tar"), carry.path().join("unsigned.tar"));
    larder_run(&larder, &["export"], connected.path(), &["--bundle", path_str(&signed), "--sign", path_str(&key)])
        .assert_success();
    larder_run(&larder, &["export"], connected.path(), &["--bundle", path_str(&unsigned)]).assert_success();

    let airgapped = temp_dir("signed-bundle-refused");
    let out = larder_run(&larder, &["import"], airgapped.path(), &["--trust", path_str(&public), path_str(&unsigned)]);
    out.assert_code(1);
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {}", out.describe());
    assert!(
        out.stderr.contains("bundle refused, nothing was imported: the bundle is not signed"),
        "{}",
        out.describe()
    );
    assert!(stored_digests(airgapped.path()).is_empty(), "nothing stored");

    let airgapped = temp_dir("signed-bundle-airgapped");
    let out = larder_run(&larder, &["import"], airgapped.path(), &["--trust", path_str(&public), path_str(&signed)]);
    out.assert_success();
    assert!(out.stdout.contains("signed by trusted key ed25519:"), "{}", out.describe());
    assert_eq!(stored_digests(airgapped.path()), stored_digests(connected.path()));
}
