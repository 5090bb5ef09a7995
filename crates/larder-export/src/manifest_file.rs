//! A store manifest (`larder export --manifest OUT.json`) as a file: read
//! and validated, or written whole or not at all. The format itself is
//! [`larder_bundle::manifest`]'s.

use std::io::Write;
use std::path::Path;

use larder_bundle::StoreManifest;

use crate::Error;
use crate::atomic::{dir_of, persist, temp_in};
use crate::error::io_error;

/// Reads and validates a store manifest file.
pub fn read_store_manifest(path: &Path) -> Result<StoreManifest, Error> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    StoreManifest::from_json(&bytes).map_err(|reason| Error::Manifest { path: path.to_owned(), reason })
}

/// Writes `manifest` to `path`, whole or not at all.
pub fn write_store_manifest(manifest: &StoreManifest, path: &Path) -> Result<(), Error> {
    let mut temp = temp_in(dir_of(path))?;
    temp.write_all(manifest.to_json().as_bytes()).map_err(io_error(path))?;
    persist(temp, path)
}
