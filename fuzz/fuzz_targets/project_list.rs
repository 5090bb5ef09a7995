//! Upstream project lists (`/simple/`), HTML and JSON: the first byte picks
//! the `Content-Type`, the rest is the body.
#![no_main]

use larder_index::parse::parse_project_list;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 3] = [Some("text/html"), Some("application/vnd.pypi.simple.v1+json"), None];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let _ = parse_project_list(body, TYPES[usize::from(selector) % TYPES.len()]);
});
