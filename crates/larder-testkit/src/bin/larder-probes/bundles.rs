//! Bundles damaged in transit (cut, bytes flipped, entries added, dropped,
//! reordered, renamed) and a manifest edited to stay self-consistent (two
//! wheels' digests and sizes swapped): `larder import` must refuse each
//! and show nothing of it.

use std::io::Read as _;
use std::path::Path;

use larder_testkit::mirror::{run_larder, stored_digests};
use larder_testkit::proxy::incompressible;
use larder_testkit::{Wheel, temp_dir};
use serde_json::Value;

use crate::Ctx;
use crate::report::{Row, tail};

/// A tar member: name, where its data starts in the file, its bytes.
struct Member {
    name: String,
    offset: usize,
    bytes: Vec<u8>,
}

/// Runs every damaged variant, the tampered manifest, and the good bundle.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let fx = temp_dir("probe-bundle-fx");
    let source = temp_dir("probe-bundle-source");
    for (project, version, seed) in [("bundle-a", "1.0", 1), ("bundle-a", "2.0", 2), ("bundle-b", "1.0", 3)] {
        Wheel::new(project, version).extra_file("payload.bin", &incompressible(50_000, seed)).build(fx.path());
    }
    ctx.larder.add(source.path(), &[fx.path()]).assert_success();
    let plain = source.path().join("good.tar");
    let zstd = source.path().join("good.tar.zst");
    for (path, extra) in [(&plain, None), (&zstd, Some("--zstd"))] {
        let mut cmd = ctx.larder.command();
        cmd.args(["export", "--data-dir"]).arg(source.path()).arg("--bundle").arg(path).args(extra);
        run_larder(&mut cmd).assert_success();
    }
    let tar = std::fs::read(&plain).expect("read the bundle");
    let members = members(&tar);

    let mut variants: Vec<Vec<u8>> = Vec::new();
    let end = members.last().map_or(tar.len(), |m| m.offset + m.bytes.len());
    variants.extend((1..8).map(|k| tar[..k * end / 8].to_vec()).chain([tar[..end - 1].to_vec()]));
    let compressed = std::fs::read(&zstd).expect("read the zstd bundle");
    variants.extend(
        [1, 2, 3]
            .map(|k| compressed[..k * compressed.len() / 4].to_vec())
            .into_iter()
            .chain([compressed[..compressed.len() - 1].to_vec()]),
    );
    for member in members.iter().skip(1) {
        let mut flipped = tar.clone();
        flipped[member.offset + member.bytes.len() / 2] ^= 0xff;
        variants.push(flipped);
    }
    type Edit = fn(&mut Vec<(String, Vec<u8>)>);
    let edits: [Edit; 6] = [
        |e| e.insert(1, ("../escape".into(), b"escape".to_vec())),
        |e| e[0].1 = b"{".to_vec(),
        |e| e.push((format!("blobs/{}", "0".repeat(64)), Vec::new())),
        |e| e.push(e[1].clone()),
        |e| e.swap(0, 1),
        |e| drop(e.pop()),
    ];
    for edit in edits {
        let mut entries: Vec<(String, Vec<u8>)> = members.iter().map(|m| (m.name.clone(), m.bytes.clone())).collect();
        edit(&mut entries);
        variants.push(tar_of(&entries));
    }
    variants.extend([Vec::new(), vec![b'x'; 2048]]);

    let target = temp_dir("probe-bundle-target");
    ctx.larder
        .add(target.path(), &[Wheel::new("bundle-kept", "1.0").build(&fx.path().join("kept")).path])
        .assert_success();
    let before = visible(ctx, target.path());
    let blobs_before = stored_digests(target.path()).len();
    let bad = source.path().join("bad.tar");
    let accepted: Vec<usize> = (0..variants.len())
        .filter(|&i| {
            std::fs::write(&bad, &variants[i]).expect("write a damaged bundle");
            import(ctx, target.path(), &bad).0 || visible(ctx, target.path()) != before
        })
        .collect();

    let kept = stored_digests(target.path()).len() - blobs_before;
    let mut entries: Vec<(String, Vec<u8>)> = members.iter().map(|m| (m.name.clone(), m.bytes.clone())).collect();
    entries[0].1 = swap_two_wheels(&entries[0].1);
    std::fs::write(&bad, tar_of(&entries)).expect("write the tampered bundle");
    let fresh = temp_dir("probe-bundle-fresh");
    let (tampered_ok, tampered_says) = import(ctx, fresh.path(), &bad);
    let (good_ok, good_says) = import(ctx, fresh.path(), &plain);
    vec![
        Row::new(
            "damaged bundles (cut, flipped, bad entries)",
            "every one refused, nothing visible changes",
            format!(
                "{}/{} refused{}; {kept} checked blobs kept unreferenced for a retry (gc removes); the good bundle: {}",
                variants.len() - accepted.len(),
                variants.len(),
                if accepted.is_empty() { String::new() } else { format!(" (not: #{accepted:?})") },
                if good_ok { "imported".to_owned() } else { format!("REFUSED: {good_says}") }
            ),
            accepted.is_empty() && good_ok,
        ),
        Row::new(
            "self-consistent tampered manifest (2 swapped)",
            "refused, nothing imported",
            if tampered_ok { "IMPORTED (exit 0)".to_owned() } else { format!("refused: {tampered_says}") },
            !tampered_ok,
        ),
    ]
}

/// What the store shows: the manifest of every blob its pages reference
/// (`larder export --manifest`).
fn visible(ctx: &Ctx, data: &Path) -> Vec<u8> {
    let out = data.join("visible.json");
    run_larder(ctx.larder.command().args(["export", "--data-dir"]).arg(data).arg("--manifest").arg(&out))
        .assert_success();
    std::fs::read(out).expect("read the manifest")
}

/// `larder import`: whether it exited 0, and its last stderr line.
fn import(ctx: &Ctx, data: &Path, bundle: &Path) -> (bool, String) {
    let out = run_larder(ctx.larder.command().args(["import", "--data-dir"]).arg(data).arg(bundle));
    (out.status.success(), tail(out.stderr.lines().last().unwrap_or_default()))
}

/// The members of a plain tar, in order.
fn members(tar: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().expect("a tar bundle");
    entries
        .map(|entry| {
            let mut entry = entry.expect("a tar member");
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let offset = entry.raw_file_position() as usize;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("a member's bytes");
            Member { name, offset, bytes }
        })
        .collect()
}

/// A plain tar of these members, their names written as given (`..`
/// included, which the tar crate's own path setter refuses).
fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, bytes.as_slice()).expect("append to a tar in memory");
    }
    builder.into_inner().expect("finish a tar in memory")
}

/// The manifest with the digests, sizes and metadata digests of its first
/// two wheels of different projects swapped: still self-consistent.
fn swap_two_wheels(manifest: &[u8]) -> Vec<u8> {
    let mut manifest: Value = serde_json::from_slice(manifest).expect("a JSON manifest");
    let mut files = Vec::new();
    collect_files(&mut manifest, &mut files);
    let second = files
        .iter()
        .position(|f| f["filename"].as_str().is_some_and(|n| n.starts_with("bundle_b")))
        .expect("bundle-b listed");
    let (a, b) = files.split_at_mut(second);
    for key in ["sha256", "size", "metadata_sha256"] {
        std::mem::swap(&mut a[0][key], &mut b[0][key]);
    }
    serde_json::to_vec(&manifest).expect("serialize the manifest")
}

/// Every object of the manifest that names a file (has `filename` and
/// `sha256`), in document order.
fn collect_files<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    if value.get("filename").is_some() && value.get("sha256").is_some() {
        out.push(value);
        return;
    }
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| collect_files(v, out)),
        Value::Array(items) => items.iter_mut().for_each(|v| collect_files(v, out)),
        _ => {}
    }
}
