//! Upstream project pages, HTML (PEP 503) and JSON (PEP 691): the first
//! byte picks the `Content-Type`, the rest is the body.
#![no_main]

use larder_index::NormalizedName;
use larder_index::parse::{Url, parse_project_page};
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 4] =
    [Some("text/html"), Some("application/vnd.pypi.simple.v1+json"), Some("application/vnd.pypi.simple.v1+html"), None];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let url = Url::parse("http://127.0.0.1:9/simple/demo/").expect("a valid URL");
    let name = NormalizedName::new("demo").expect("a valid name");
    let _ = parse_project_page(body, TYPES[usize::from(selector) % TYPES.len()], &url, &name);
});
