//! The bundle format on its own, without the store, so that everything
//! that reads a bundle from outside fuzzes on its own: the manifests that
//! cross an air gap ([`manifest`]), the manifest's signature
//! ([`signature`]), and reading a bundle's tar entries ([`reader`]).
//!
//! A bundle is a tar archive (optionally zstd-compressed): first
//! [`MANIFEST_ENTRY`], then in a signed bundle
//! [`signature::SIGNATURE_ENTRY`], then one entry `blobs/<sha256>` per blob
//! the manifest lists.

pub mod manifest;
pub mod reader;
pub mod signature;

pub use manifest::{BundleManifest, StoreManifest, is_safe_filename};
pub use reader::{BLOBS_DIR, BlobEntry, Opened, ReadError, read_bundle};
pub use signature::{KeyError, ManifestSignature, PublicKey, SecretKey, SignatureError};

/// The name of the manifest entry, the first of every bundle.
pub const MANIFEST_ENTRY: &str = "manifest.json";
