//! The form fields of an upload (the multipart framing itself is the
//! `multer` crate's): one `name=value` field per line, read as twine and
//! uv send them, and the PEP 740 attestations field.
#![no_main]

use larder_index::upload::{FormFields, UploadForm, provenance_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let fields: FormFields = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let _ = UploadForm::from_fields(&fields);
    if let Some((_, attestations)) = fields.iter().find(|(name, _)| name == "attestations") {
        let _ = provenance_document(attestations, "private", Some("token-name"));
    }
});
