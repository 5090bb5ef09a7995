//! `Range` headers for a file of a given size (the first 8 bytes). The
//! proxy's module is compiled here on its own (it needs only
//! http-range-header), so the fuzz build stays light.
#![no_main]

#[path = "../../crates/larder-proxy/src/range.rs"]
mod range;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, value) = data.split_at(8);
    let size = u64::from_le_bytes(size.try_into().expect("8 bytes"));
    let Ok(value) = std::str::from_utf8(value) else { return };
    if let range::RangeRequest::Partial(range) = range::parse_range(value, size) {
        assert!(range.start() <= range.end() && *range.end() < size, "{value:?} on {size} bytes: {range:?}");
    }
});
