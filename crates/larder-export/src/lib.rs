//! The store, carried out of larder: as a static tree that any web server
//! or a `file://` URL serves to pip and uv with no larder running
//! ([`export_tree`]), as one bundle file to carry into an air-gapped site
//! ([`export_bundle`], [`import_bundle`]), and as the manifest of what a
//! store holds, sent back across the gap so the next bundle carries only
//! what is missing ([`StoreManifest`]).
//!
//! What is exported is one index as larder serves it (the default one, the
//! local index over the upstream one, unless a named index is chosen),
//! read through the indexes layer by the same shadowing and release-age
//! rules as the server, restricted to what is stored: a static copy cannot
//! fetch anything ([`view`]).

mod atomic;
mod bundle;
mod error;
mod import;
mod manifest_file;
mod progress;
mod tree;
pub mod view;

pub use bundle::{BundleOptions, BundleReport, export_bundle, store_manifest};
pub use error::Error;
pub use import::{ImportReport, import_bundle};
pub use larder_bundle::{BundleManifest, StoreManifest};
pub use manifest_file::{read_store_manifest, write_store_manifest};
pub use tree::{Placement, TreeOptions, TreeReport, export_tree};
