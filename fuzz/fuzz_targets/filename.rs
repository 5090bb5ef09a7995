//! Distribution filenames, project names and versions, as upstream pages
//! and uploads spell them.
#![no_main]

use std::str::FromStr;

use larder_index::{DistFilename, NormalizedName, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(dist) = DistFilename::parse(text) {
        // A parsed filename's parts parse again on their own.
        assert!(NormalizedName::new(dist.name().as_str()).is_ok());
        assert!(Version::from_str(&dist.version().to_string()).is_ok());
    }
    if let Ok(name) = NormalizedName::new(text) {
        assert_eq!(NormalizedName::new(name.as_str()).ok().as_ref(), Some(&name), "normalizing is idempotent");
    }
    let _ = Version::from_str(text);
});
