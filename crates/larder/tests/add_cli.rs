//! `larder add`: what it accepts, what it refuses (all or nothing), and how
//! it behaves with a concurrently running `larder serve` or another
//! `larder add` on the same data directory.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// Asserts that `project` is not served at all: 404 on its page and absent
/// from `/simple/`.
#[track_caller]
fn assert_absent(server: &Server, project: &str) {
    let r = server.get(&format!("/simple/{project}/")).header("Accept", JSON).send();
    assert_eq!(r.status, 404, "{project} should not have been added: {}", r.describe());
    let list = server.get("/simple/").header("Accept", JSON).send();
    list.assert_status(200);
    let listed = list.json()["projects"]
        .as_array()
        .expect("projects[]")
        .iter()
        .any(|p| p["name"].as_str().map(normalize).as_deref() == Some(project));
    assert!(!listed, "{project} is listed by /simple/ although its `larder add` failed");
}

/// Asserts every fixture is listed with its hash and downloads intact.
#[track_caller]
fn assert_served(server: &Server, files: &[Built]) {
    for f in files {
        let page = json_page(server, &f.project);
        let entry = json_file(&page, &f.filename);
        assert_eq!(entry["hashes"]["sha256"], f.sha256.as_str(), "{}: sha256", f.filename);
        let url = resolve(&server.url(&format!("/simple/{}/", f.project)), entry["url"].as_str().expect("url"));
        let r = server.get_url(&url).send();
        r.assert_status(200);
        assert_eq!(sha256_hex(&r.body), f.sha256, "{}: downloaded bytes", f.filename);
    }
}

#[test]
fn adds_files_and_directories_recursively() {
    let fixtures = temp_dir("add-fixtures");
    let data = temp_dir("add-data");
    let root = fixtures.path().join("tree");
    let mut files = vec![
        Wheel::new("fixture-walk", "1.0").build(&root),
        Wheel::new("fixture-walk", "2.0").build(&root.join("sub")),
        Sdist::new("fixture-walk", "2.0").build(&root.join("sub").join("deeper")),
        Wheel::new("fixture-walk-other", "0.1").build(&root.join("other")),
    ];
    // Hidden files in a walked directory are skipped (not an error).
    write_file(&root, ".DS_Store", b"\0\0\0\x01Bud1 not a distribution");
    write_file(&root.join("sub"), ".notes", b"hidden, skipped");
    // A file passed explicitly, outside the walked tree.
    let single = Wheel::new("fixture-single", "3.0").build(&fixtures.path().join("single"));
    files.push(single.clone());

    let out = larder().add(data.path(), &[root.clone(), single.path.clone()]);
    out.assert_success();
    let server = larder().serve(data.path());
    assert_served(&server, &files);
    let page = json_page(&server, "fixture-walk");
    assert_eq!(
        json_filenames(&page),
        vec!["fixture_walk-1.0-py3-none-any.whl", "fixture_walk-2.0-py3-none-any.whl", "fixture_walk-2.0.tar.gz"]
    );
}

#[test]
fn re_adding_the_same_file_is_a_no_op() {
    let fixtures = temp_dir("readd-fixtures");
    let data = temp_dir("readd-data");
    let wheel = Wheel::new("fixture-again", "1.0").build(fixtures.path());
    larder().add(data.path(), &[&wheel.path]).assert_success();
    // Same path again, and an identical copy from elsewhere.
    larder().add(data.path(), &[&wheel.path]).assert_success();
    let copy = Wheel::new("fixture-again", "1.0").build(&fixtures.path().join("copy"));
    assert_eq!(copy.sha256, wheel.sha256, "fixture builder is deterministic");
    larder().add(data.path(), &[&copy.path, &wheel.path]).assert_success();

    let server = larder().serve(data.path());
    let page = json_page(&server, "fixture-again");
    assert_eq!(json_filenames(&page), vec![wheel.filename.clone()], "listed exactly once");
    assert_served(&server, &[wheel]);
}

#[test]
fn different_content_under_an_existing_filename_is_refused() {
    let fixtures = temp_dir("conflict-fixtures");
    let data = temp_dir("conflict-data");
    let original = Wheel::new("fixture-conflict", "1.0").build(&fixtures.path().join("a"));
    larder().add(data.path(), &[&original.path]).assert_success();

    let impostor =
        Wheel::new("fixture-conflict", "1.0").module_source("EVIL = True\n").build(&fixtures.path().join("b"));
    assert_eq!(impostor.filename, original.filename);
    assert_ne!(impostor.sha256, original.sha256);
    // In the same invocation, a good new file: it must not be added either.
    let bystander = Wheel::new("fixture-bystander", "1.0").build(&fixtures.path().join("b"));

    let out = larder().add(data.path(), &[&impostor.path, &bystander.path]);
    out.assert_failure();
    assert!(out.stderr.contains(&original.filename), "stderr should name the file: {}", out.describe());
    assert!(
        out.stderr.to_ascii_lowercase().contains("already exist"),
        "stderr should say the file already exists (with different content): {}",
        out.describe()
    );
    assert!(!out.stderr.contains("panicked"), "a panic is not an error message: {}", out.describe());

    let server = larder().serve(data.path());
    assert_served(&server, std::slice::from_ref(&original));
    let page = json_page(&server, "fixture-conflict");
    assert_eq!(json_filenames(&page), vec![original.filename.clone()]);
    assert_absent(&server, "fixture-bystander");
}

/// One bad file per case, each added together with a good wheel of its own
/// project: every invocation must fail, name the bad file, and add nothing.
#[test]
fn bad_inputs_fail_and_add_nothing() {
    let fixtures = temp_dir("bad-fixtures");
    let data = temp_dir("bad-data");
    // Make the store exist first, with one good file, so failures are
    // checked against a store that already holds data.
    let keeper = Wheel::new("fixture-keeper", "1.0").build(&fixtures.path().join("keeper"));
    larder().add(data.path(), &[&keeper.path]).assert_success();

    struct Case {
        label: &'static str,
        bad: PathBuf,
    }
    let dir = |label: &str| fixtures.path().join(label);
    let not_a_version_tgz = {
        // A real .tar.gz; only its name is wrong.
        let sdist = Sdist::new("fixture-whatever", "1.0").build(&dir("notaversion"));
        let path = dir("notaversion").join("notaversion.tar.gz");
        std::fs::rename(&sdist.path, &path).unwrap();
        path
    };
    let cases = vec![
        Case { label: "readme", bad: write_file(&dir("readme"), "README.txt", b"Just a readme.\n") },
        Case { label: "exe", bad: write_file(&dir("exe"), "foo.exe", b"MZ\x90\0not really a program") },
        Case { label: "notaversion", bad: not_a_version_tgz },
        Case {
            label: "no-metadata",
            bad: Wheel::new("fixture-nometa", "1.0").without_metadata().build(&dir("nometa")).path,
        },
        Case {
            label: "name-mismatch",
            bad: Wheel::new("fixture-named", "1.0").metadata_name_field("fixture-other-name").build(&dir("name")).path,
        },
        Case {
            label: "version-mismatch",
            bad: Wheel::new("fixture-versioned", "1.0").metadata_version_field("9.9").build(&dir("version")).path,
        },
    ];

    let mut good_projects = Vec::new();
    for case in &cases {
        let project = format!("fixture-good-{}", case.label);
        let good = Wheel::new(&project, "1.0").build(&dir(&format!("good-{}", case.label)));
        good_projects.push(project);
        // Good file first, so an implementation that adds as it goes would
        // already have stored it.
        let out = larder().add(data.path(), &[&good.path, &case.bad]);
        out.assert_failure();
        let bad_name = case.bad.file_name().unwrap().to_string_lossy().into_owned();
        assert!(out.stderr.contains(&bad_name), "{}: stderr should name {bad_name}: {}", case.label, out.describe());
        assert!(
            !out.stderr.contains("panicked"),
            "{}: a panic is not an error message: {}",
            case.label,
            out.describe()
        );
    }

    let server = larder().serve(data.path());
    for project in &good_projects {
        assert_absent(&server, project);
    }
    for project in [
        "fixture-nometa",
        "fixture-named",
        "fixture-other-name",
        "fixture-versioned",
        "fixture-whatever",
        "notaversion",
    ] {
        assert_absent(&server, project);
    }
    assert_served(&server, std::slice::from_ref(&keeper));
    drop(server);

    // The store still takes good files afterwards.
    let later = Wheel::new("fixture-later", "1.0").build(&dir("later"));
    larder().add(data.path(), &[&later.path]).assert_success();
    let server = larder().serve(data.path());
    assert_served(&server, &[keeper, later]);
}

#[test]
fn a_missing_path_is_an_error() {
    let fixtures = temp_dir("missing-fixtures");
    let data = temp_dir("missing-data");
    let missing = fixtures.path().join("no-such-file-1.0-py3-none-any.whl");
    let out = larder().add(data.path(), &[&missing]);
    out.assert_failure();
    assert!(
        out.stderr.contains("no-such-file-1.0-py3-none-any.whl"),
        "stderr should name the path: {}",
        out.describe()
    );
}

/// Files added by another process while `larder serve` runs show up on
/// the index within about two seconds; the page's ETag and the serial
/// change with them.
#[test]
fn files_added_while_serving_appear() {
    let fixtures = temp_dir("live-fixtures");
    let data = temp_dir("live-data");
    let first = Wheel::new("fixture-live", "1.0").build(fixtures.path());
    larder().add(data.path(), &[&first.path]).assert_success();
    let server = larder().serve(data.path());

    let before_page = server.get("/simple/fixture-live/").header("Accept", JSON).send();
    before_page.assert_status(200);
    let before_etag = before_page.expect_header("etag").to_owned();
    let before_list = server.get("/simple/").header("Accept", JSON).send();
    let before_serial = last_serial(&before_list);
    server.get("/simple/fixture-live-new/").header("Accept", JSON).send().assert_status(404);

    let second = Wheel::new("fixture-live", "2.0").build(&fixtures.path().join("more"));
    let newcomer = Sdist::new("fixture-live-new", "0.1").build(&fixtures.path().join("more"));
    larder().add(data.path(), &[&second.path, &newcomer.path]).assert_success();
    let added_at = Instant::now();

    let appeared = wait_until(Duration::from_secs(6), || {
        let page = server.get("/simple/fixture-live/").header("Accept", JSON).send();
        let new = server.get("/simple/fixture-live-new/").header("Accept", JSON).send();
        page.status == 200 && json_filenames(&page.json()).contains(&second.filename) && new.status == 200
    });
    let waited = added_at.elapsed();
    assert!(appeared, "files added while serving did not appear within 6 s");
    // The contract says about 2 s; allow slack for a loaded 2-core machine.
    assert!(waited <= Duration::from_secs(4), "files took {waited:?} to appear (contract: about 2 s)");

    assert_served(&server, &[first, second, newcomer]);
    let after_page = server.get("/simple/fixture-live/").header("Accept", JSON).send();
    assert_ne!(after_page.expect_header("etag"), before_etag, "the page changed but its ETag did not");
    // A client revalidating with the old ETag gets the new page.
    let revalidated =
        server.get("/simple/fixture-live/").header("Accept", JSON).header("If-None-Match", &before_etag).send();
    revalidated.assert_status(200);
    let after_serial = last_serial(&server.get("/simple/").header("Accept", JSON).send());
    assert!(after_serial > before_serial, "X-PyPI-Last-Serial did not increase: {before_serial} -> {after_serial}");
}

fn concurrent_round(data_dir: &Path, fixtures: &Path, round: &str) {
    let a_dir = fixtures.join(format!("{round}-a"));
    let b_dir = fixtures.join(format!("{round}-b"));
    let mut a_files = Vec::new();
    let mut b_files = Vec::new();
    let (a_major, b_major) = if round == "fresh" { (1, 2) } else { (3, 4) };
    for i in 0..8 {
        // Both processes add versions of one shared project and of a
        // project of their own.
        a_files.push(Wheel::new("fixture-race", &format!("{a_major}.{i}")).build(&a_dir));
        b_files.push(Wheel::new("fixture-race", &format!("{b_major}.{i}")).build(&b_dir));
    }
    a_files.push(Sdist::new(&format!("fixture-race-a-{round}"), "1.0").build(&a_dir));
    b_files.push(Sdist::new(&format!("fixture-race-b-{round}"), "1.0").build(&b_dir));

    let a = larder().spawn_add(data_dir, &[&a_dir]);
    let b = larder().spawn_add(data_dir, &[&b_dir]);
    let (a, b) = (a.wait(), b.wait());
    a.assert_success();
    b.assert_success();

    let server = larder().serve(data_dir);
    let all: Vec<Built> = a_files.into_iter().chain(b_files).collect();
    assert_served(&server, &all);
    let page = json_page(&server, "fixture-race");
    let race_files = all.iter().filter(|f| f.project == "fixture-race").count();
    assert!(json_filenames(&page).len() >= race_files, "fixture-race lists too few files: {page}");
}

#[test]
fn concurrent_adds_to_one_data_dir() {
    let fixtures = temp_dir("race-fixtures");
    let data = temp_dir("race-data");
    // Round 1: neither process finds a store; both create it.
    let fresh = data.path().join("store");
    concurrent_round(&fresh, fixtures.path(), "fresh");
    // Round 2: the store exists and holds data.
    concurrent_round(&fresh, fixtures.path(), "existing");
}

/// A wheel pip would refuse (two `.dist-info` directories) is refused, and
/// the blobs a refused add wrote are gone again (no orphans until `gc`).
#[test]
fn a_wheel_pip_refuses_is_refused_and_a_refused_add_leaves_no_blobs() {
    let fixtures = temp_dir("pip-refuses-fx");
    let data = temp_dir("pip-refuses-data");
    let two_dist_infos = Wheel::new("fixture-twodi", "1.0")
        .extra_file(
            "fixture_other-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: fixture-other\nVersion: 1.0\n",
        )
        .build(fixtures.path());
    let out = larder().add(data.path(), &[&two_dist_infos.path]);
    out.assert_failure();
    assert!(out.stderr.contains("more than one .dist-info"), "{}", out.describe());

    // Refused at publishing (a filename already taken by other bytes),
    // after the new blobs were written.
    let original = Wheel::new("fixture-orphan", "1.0").build(&fixtures.path().join("a"));
    larder().add(data.path(), &[&original.path]).assert_success();
    let before = larder_testkit::mirror::stored_digests(data.path());
    let impostor = Wheel::new("fixture-orphan", "1.0").module_source("EVIL = 1\n").build(&fixtures.path().join("b"));
    let bystander = Wheel::new("fixture-orphan-bystander", "1.0").build(&fixtures.path().join("b"));
    larder().add(data.path(), &[&impostor.path, &bystander.path]).assert_failure();
    assert_eq!(larder_testkit::mirror::stored_digests(data.path()), before, "the refused add left blobs behind");
}

/// A FIFO in an added folder is skipped (opening it would wait forever);
/// named on the command line, it is refused.
#[test]
fn a_fifo_in_an_added_folder_is_skipped_not_waited_on() {
    let fixtures = temp_dir("fifo-fx");
    let data = temp_dir("fifo-data");
    let wheel = Wheel::new("fixture-fifo", "1.0").build(fixtures.path());
    let fifo = fixtures.path().join("pipe.whl");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(status.success());
    let (done, finished) = std::sync::mpsc::channel();
    let (data_path, folder) = (data.path().to_owned(), fixtures.path().to_owned());
    std::thread::spawn(move || done.send(larder().add(&data_path, &[folder])));
    let out = finished.recv_timeout(Duration::from_secs(30)).expect("larder add hangs on a FIFO");
    out.assert_success();
    let server = larder().serve(data.path());
    assert_served(&server, std::slice::from_ref(&wheel));
    larder().add(data.path(), &[&fifo]).assert_failure();
}
