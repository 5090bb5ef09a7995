//! Reading a bundle's tar stream, entry by entry, with every check that
//! needs no store: the manifest first (size-capped, whole), its signature
//! (checked against the trusted keys before the manifest is even parsed),
//! then only `blobs/<sha256>` entries, each listed in the manifest with its
//! size, none twice, none missing.
//!
//! What to do with each blob (store it, hash it) is the caller's: it gets
//! the entry through [`BlobEntry::copy_to`], which refuses an entry shorter
//! than the manifest says.

use std::collections::HashSet;
use std::io::Read;

use larder_index::Sha256;

use crate::signature::{self, ManifestSignature, PublicKey, SIGNATURE_ENTRY};
use crate::{BundleManifest, MANIFEST_ENTRY};

/// The directory of the blob entries.
pub const BLOBS_DIR: &str = "blobs/";
/// The largest manifest read into memory (a few hundred bytes per file).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;
/// The largest signature document read (a few hundred bytes).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// The chunk size blobs are handed over in.
const CHUNK: usize = 256 * 1024;

/// Why reading a bundle stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The bundle is malformed, truncated, unsigned when it must be, ...:
    /// the reason.
    Refused(String),
    /// The caller's own error.
    Caller(E),
}

/// One blob entry of a bundle.
pub struct BlobEntry<'a> {
    /// Its digest, as its name and the manifest give it (not yet checked
    /// against its bytes: that is the caller's).
    pub digest: Sha256,
    /// Its size, as the manifest and the tar header agree.
    pub size: u64,
    name: String,
    reader: &'a mut dyn Read,
}

impl BlobEntry<'_> {
    /// Hands every byte of the entry to `sink`, in chunks; an entry shorter
    /// than its size is refused.
    pub fn copy_to<E>(&mut self, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), ReadError<E>> {
        let mut buffer = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let read = self
                .reader
                .read(&mut buffer)
                .map_err(|e| ReadError::Refused(format!("{}: truncated or unreadable: {e}", self.name)))?;
            if read == 0 {
                break;
            }
            total += read as u64;
            sink(&buffer[..read]).map_err(ReadError::Caller)?;
        }
        if total != self.size {
            return Err(ReadError::Refused(format!("{}: truncated: {total} of {} bytes", self.name, self.size)));
        }
        Ok(())
    }
}

/// What the manifest and its signature said.
#[derive(Debug)]
pub struct Opened {
    /// The manifest.
    pub manifest: BundleManifest,
    /// The key that signed it (a trusted one when keys were given).
    pub signed_by: Option<PublicKey>,
}

/// Reads the bundle tar stream `input`: its manifest (signed by one of
/// `trusted` when any are given), handed to `opened` before any blob is
/// read (it may refuse, or make a state), then every blob entry, handed to
/// `blob` with that state.
pub fn read_bundle<E, S>(
    input: impl Read,
    trusted: &[PublicKey],
    opened: impl FnOnce(&Opened) -> Result<S, ReadError<E>>,
    mut blob: impl FnMut(&mut S, BlobEntry<'_>) -> Result<(), ReadError<E>>,
) -> Result<(Opened, S), ReadError<E>> {
    let refuse = |reason: String| ReadError::Refused(reason);
    let corrupt = |e: std::io::Error| ReadError::Refused(format!("truncated or corrupt archive: {e}"));
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(corrupt)?;
    let mut entries = entries.peekable();
    let text = match entries.next() {
        None => return Err(refuse(format!("empty archive: no {MANIFEST_ENTRY}"))),
        Some(entry) => {
            let entry = entry.map_err(corrupt)?;
            if *entry.path_bytes() != *MANIFEST_ENTRY.as_bytes() || entry.size() > MAX_MANIFEST_BYTES {
                return Err(refuse(format!("the first entry must be {MANIFEST_ENTRY}")));
            }
            let size = entry.size();
            let mut text = String::new();
            entry
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| refuse(format!("unreadable {MANIFEST_ENTRY}: {e}")))?;
            if text.len() as u64 != size {
                return Err(refuse(format!("truncated {MANIFEST_ENTRY}")));
            }
            text
        }
    };
    let is_signature = |entry: &std::io::Result<tar::Entry<'_, _>>| {
        entry.as_ref().is_ok_and(|e| *e.path_bytes() == *SIGNATURE_ENTRY.as_bytes())
    };
    let signature = match entries.next_if(is_signature) {
        None => None,
        Some(entry) => {
            let mut document = Vec::new();
            entry.map_err(corrupt)?.take(MAX_SIGNATURE_BYTES).read_to_end(&mut document).map_err(corrupt)?;
            Some(ManifestSignature::from_json(&document).map_err(|e| refuse(e.to_string()))?)
        }
    };
    let signed_by =
        signature::check(signature.as_ref(), text.as_bytes(), trusted).map_err(|e| refuse(e.to_string()))?;
    let opened_bundle = Opened { manifest: BundleManifest::from_json(&text).map_err(refuse)?, signed_by };
    let mut state = opened(&opened_bundle)?;
    let manifest = &opened_bundle.manifest;
    let mut seen = HashSet::new();
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let digest = name
            .strip_prefix(BLOBS_DIR)
            .and_then(|hex| hex.parse::<Sha256>().ok().filter(|digest| digest.to_hex() == hex))
            .filter(|_| entry.header().entry_type().is_file())
            .ok_or_else(|| {
                refuse(format!(
                    "unexpected entry {name:?}: a bundle holds {MANIFEST_ENTRY} and {BLOBS_DIR}<sha256> files only"
                ))
            })?;
        let size =
            *manifest.blobs.get(&digest).ok_or_else(|| refuse(format!("entry {name} is not in the manifest")))?;
        if !seen.insert(digest) {
            return Err(refuse(format!("entry {name} appears twice")));
        }
        if entry.size() != size {
            return Err(refuse(format!("entry {name} has {} bytes, the manifest says {size}", entry.size())));
        }
        blob(&mut state, BlobEntry { digest, size, name, reader: &mut entry })?;
    }
    if let Some(missing) = manifest.blobs.keys().find(|digest| !seen.contains(*digest)) {
        let count = manifest.blobs.len() - seen.len();
        return Err(refuse(format!("truncated: {count} blob(s) of the manifest are missing, such as {missing}")));
    }
    Ok((opened_bundle, state))
}
