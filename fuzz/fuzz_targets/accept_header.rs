//! `Accept` headers (PEP 691 negotiation) and `Accept-Encoding` headers
//! (whether a gzip page may be sent). The server's module is compiled
//! here on its own (it needs only larder-index), so the fuzz build stays
//! light.
#![no_main]

#[path = "../../crates/larder-server/src/negotiate.rs"]
mod negotiate;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(accept) = std::str::from_utf8(data) else { return };
    let _ = negotiate::negotiate(Some(accept));
    let _ = negotiate::accepts_gzip(Some(accept));
});
