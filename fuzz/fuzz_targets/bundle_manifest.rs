//! The JSON documents that cross an air gap: a bundle's manifest, a store
//! manifest (`export --manifest`, read by `export --since`), and a bundle's
//! signature document.
#![no_main]

use larder_bundle::{BundleManifest, ManifestSignature, StoreManifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(manifest) = BundleManifest::from_json(text)
    {
        // What parses writes back to the same manifest.
        assert_eq!(BundleManifest::from_json(&manifest.to_json()).as_ref(), Ok(&manifest));
    }
    if let Ok(manifest) = StoreManifest::from_json(data) {
        assert_eq!(StoreManifest::from_json(manifest.to_json().as_bytes()).as_ref(), Ok(&manifest));
    }
    if let Ok(signature) = ManifestSignature::from_json(data) {
        let _ = signature.verify(data);
    }
});
