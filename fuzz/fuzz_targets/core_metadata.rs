//! Core metadata (METADATA, PKG-INFO) from wheels, sdists and upstream
//! `.metadata` files.
#![no_main]

use larder_index::CoreMetadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = CoreMetadata::parse(data);
});
