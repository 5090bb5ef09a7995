//! Wheel and sdist archives (zip, tar.gz, tar.bz2): reading their core
//! metadata and an sdist's `pyproject.toml`. The first byte picks the
//! filename (so the archive format), the rest is the archive.
#![no_main]

use std::io::Cursor;

use larder_index::DistFilename;
use libfuzzer_sys::fuzz_target;

const FILENAMES: [&str; 4] = ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz", "demo-1.0.zip", "demo-1.0.tar.bz2"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, archive)) = data.split_first() else { return };
    let filename = FILENAMES[usize::from(selector) % FILENAMES.len()];
    let kind = DistFilename::parse(filename).expect("a valid filename");
    if let Ok(bytes) = larder_dist::read_core_metadata(filename, &kind, Cursor::new(archive)) {
        assert!(bytes.len() as u64 <= larder_dist::MAX_METADATA_BYTES);
    }
    let _ = larder_dist::read_checked_metadata(filename, &kind, Cursor::new(archive));
    let _ = larder_dist::read_sdist_file(filename, &kind, Cursor::new(archive), "pyproject.toml");
});
