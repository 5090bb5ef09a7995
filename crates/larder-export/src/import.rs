//! `larder import FILE`: a bundle into this store.
//!
//! The manifest's signature, when the bundle has one or keys to trust are
//! given, is checked first. The manifest comes next and is validated whole, and every file row must
//! find its blob in the bundle or in the store, before any blob is written.
//! Then each blob entry is streamed into the store, hashed while it is
//! written and published only when its size and digest match the manifest
//! (a blob the store already has is only checked). An entry of any other
//! name (`../x`, ...), a missing or repeated blob, a truncated archive: the
//! import stops with an error. Only when every blob is in (checked once
//! more, in case a `larder gc` removed one meanwhile) are the rows written,
//! in one transaction. So a refused bundle changes nothing that anyone
//! sees; at most, blobs it carried that did check out are stored,
//! unreferenced: a retry skips writing them again, `larder gc` removes
//! them.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use larder_bundle::signature::{self, SIGNATURE_ENTRY};
use larder_bundle::{ManifestSignature, PublicKey};
use larder_index::{DistFilename, Hasher, Sha256};
use larder_store::db::snapshot::SnapshotChanges;
use larder_store::{BlobError, Blobs, DbError, Store};
use tokio::runtime::Handle;

use crate::Error;
use crate::bundle::{BLOBS_DIR, MANIFEST_ENTRY};
use crate::error::io_error;
use crate::manifest::BundleManifest;
use crate::progress::Progress;

/// The largest manifest read into memory (a few hundred bytes per file).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;
/// The largest signature document read (a few hundred bytes).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;
/// How the zstd frame format starts.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Projects the bundle lists.
    pub projects: u64,
    /// Files the bundle lists.
    pub files: u64,
    /// Blobs written to the store.
    pub blobs_written: u64,
    /// Blobs the store had already (checked, not written).
    pub blobs_present: u64,
    /// Bytes written to the store.
    pub bytes_written: u64,
    /// What changed in the metadata.
    pub changes: SnapshotChanges,
    /// The key that signed the bundle (a trusted one when keys were
    /// given to trust).
    pub signed_by: Option<PublicKey>,
}

/// Imports the bundle at `path` (plain or zstd-compressed tar) into
/// `store`: all of it, or on any error nothing visible. With `trusted`
/// keys, the bundle must be signed by one of them (checked before anything
/// else is read); with none, a signature is only checked for damage.
pub async fn import_bundle(store: &Store, path: &Path, trusted: &[PublicKey]) -> Result<ImportReport, Error> {
    let (blobs, owned, handle) = (store.blobs().clone(), path.to_owned(), Handle::current());
    let trusted = trusted.to_vec();
    let (manifest, mut report) = tokio::task::spawn_blocking(move || read_bundle(&handle, &blobs, &owned, &trusted))
        .await
        .expect("reading a bundle does not panic")?;
    report.changes = store.db().import_snapshot(&manifest.projects).await.map_err(|error| match error {
        DbError::FileConflict { .. } => refused(path, error.to_string()),
        other => other.into(),
    })?;
    Ok(report)
}

fn refused(path: &Path, reason: String) -> Error {
    Error::Bundle { path: path.to_owned(), reason }
}

/// Reads the manifest, checks it, and stores every blob of the bundle.
fn read_bundle(
    handle: &Handle,
    blobs: &Blobs,
    path: &Path,
    trusted: &[PublicKey],
) -> Result<(BundleManifest, ImportReport), Error> {
    let refuse = |reason: String| refused(path, reason);
    let mut archive = tar::Archive::new(open(path)?);
    let corrupt = |e: std::io::Error| refuse(format!("truncated or corrupt archive: {e}"));
    let mut entries = archive.entries().map_err(corrupt)?;
    let text = match entries.next() {
        None => return Err(refuse("empty archive: no manifest.json".to_owned())),
        Some(entry) => {
            let mut entry = entry.map_err(corrupt)?;
            if *entry.path_bytes() != *MANIFEST_ENTRY.as_bytes() || entry.size() > MAX_MANIFEST_BYTES {
                return Err(refuse(format!("the first entry must be {MANIFEST_ENTRY}")));
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|e| refuse(format!("unreadable {MANIFEST_ENTRY}: {e}")))?;
            if text.len() as u64 != entry.size() {
                return Err(refuse(format!("truncated {MANIFEST_ENTRY}")));
            }
            text
        }
    };
    let mut entries = entries.peekable();
    let signature =
        match entries.next_if(|entry| entry.as_ref().is_ok_and(|e| *e.path_bytes() == *SIGNATURE_ENTRY.as_bytes())) {
            None => None,
            Some(entry) => {
                let mut document = Vec::new();
                entry.map_err(corrupt)?.take(MAX_SIGNATURE_BYTES).read_to_end(&mut document).map_err(corrupt)?;
                Some(ManifestSignature::from_json(&document).map_err(|e| refuse(e.to_string()))?)
            }
        };
    let signed_by =
        signature::check(signature.as_ref(), text.as_bytes(), trusted).map_err(|e| refuse(e.to_string()))?;
    let manifest = BundleManifest::from_json(&text).map_err(refuse)?;
    check_references(handle, blobs, &manifest, false).map_err(refuse)?;
    let mut report = ImportReport {
        projects: manifest.projects.len() as u64,
        files: manifest.projects.iter().map(|p| p.files.len() as u64).sum(),
        signed_by,
        ..ImportReport::default()
    };
    let mut progress = Progress::new("import", Some(manifest.blobs.values().sum()));
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
        if handle.block_on(blobs.contains(&digest)) {
            let mut hasher = Hasher::default();
            copy_entry(&mut entry, size, |chunk| {
                hasher.update(chunk);
                Ok(())
            })
            .map_err(|e| e.into_error(path, &name))?;
            let actual = hasher.finish();
            if actual != digest {
                return Err(refuse(mismatch(&digest, &actual)));
            }
            report.blobs_present += 1;
        } else {
            let mut writer = blobs.writer()?;
            copy_entry(&mut entry, size, |chunk| handle.block_on(writer.write(chunk)))
                .map_err(|e| e.into_error(path, &name))?;
            match handle.block_on(writer.commit(Some(digest))) {
                Err(BlobError::HashMismatch { expected, actual }) => return Err(refuse(mismatch(&expected, &actual))),
                other => other?,
            };
            report.blobs_written += 1;
            report.bytes_written += size;
        }
        progress.add(1, size);
    }
    if let Some(missing) = manifest.blobs.keys().find(|digest| !seen.contains(*digest)) {
        let count = manifest.blobs.len() - seen.len();
        return Err(refuse(format!("truncated: {count} blob(s) of the manifest are missing, such as {missing}")));
    }
    // Once more, now that every blob is in: a `larder gc` running meanwhile
    // may have removed a blob that no row referred to yet.
    check_references(handle, blobs, &manifest, true).map_err(refuse)?;
    check_wheel_metadata(handle, blobs, &manifest).map_err(refuse)?;
    Ok((manifest, report))
}

/// Every wheel's METADATA must name the project and version of its
/// filename: a manifest edited to stay self-consistent (two files' digests
/// and sizes swapped, say) would otherwise serve one project's bytes under
/// another's name.
fn check_wheel_metadata(handle: &Handle, blobs: &Blobs, manifest: &BundleManifest) -> Result<(), String> {
    for file in manifest.projects.iter().flat_map(|p| &p.files) {
        let Ok(kind @ DistFilename::Wheel(_)) = DistFilename::parse(&file.filename) else { continue };
        let unreadable = |e: BlobError| format!("{}: cannot read blob {}: {e}", file.filename, file.sha256);
        let blob = handle.block_on(blobs.open(&file.sha256)).map_err(unreadable)?;
        let blob = blob.ok_or(BlobError::Gone(file.sha256)).map_err(unreadable)?;
        let blob = handle.block_on(blob.into_file()).map_err(unreadable)?;
        larder_dist::read_checked_metadata(&file.filename, &kind, BufReader::new(blob))
            .map_err(|e| format!("{e}: the manifest does not match the files (tampered with?)"))?;
    }
    Ok(())
}

/// Opens a bundle, decompressing it when it is zstd.
fn open(path: &Path) -> Result<Box<dyn Read>, Error> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic).map_err(io_error(path))?;
    file.rewind().map_err(io_error(path))?;
    if read == magic.len() && magic == ZSTD_MAGIC {
        Ok(Box::new(zstd::Decoder::new(file).map_err(io_error(path))?))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Every file row must find its blob (and its advertised `.metadata`) in
/// the bundle or in the store; once the blobs are `imported`, in the store.
fn check_references(handle: &Handle, blobs: &Blobs, manifest: &BundleManifest, imported: bool) -> Result<(), String> {
    for project in &manifest.projects {
        for file in &project.files {
            let metadata = file.metadata_sha256.filter(|_| file.serve_metadata);
            for digest in std::iter::once(file.sha256).chain(metadata) {
                if (!imported && manifest.blobs.contains_key(&digest)) || handle.block_on(blobs.contains(&digest)) {
                    continue;
                }
                return Err(if imported {
                    format!("blob {digest} of {} was removed during the import; import again", file.filename)
                } else {
                    format!(
                        "{} needs blob {digest}, which is neither in the bundle nor in this store \
                         (was the bundle made with an old manifest of this store? \
                         send a new one made by `larder export --manifest`)",
                        file.filename
                    )
                });
            }
        }
    }
    Ok(())
}

/// Why an entry could not be copied.
enum CopyError {
    /// The bundle is short or unreadable.
    Bundle(String),
    /// The store could not take the bytes.
    Store(BlobError),
}

impl CopyError {
    fn into_error(self, path: &Path, name: &str) -> Error {
        match self {
            Self::Bundle(reason) => refused(path, format!("{name}: {reason}")),
            Self::Store(error) => error.into(),
        }
    }
}

/// Feeds an entry's bytes to `sink`; an entry shorter than `size` is an
/// error.
fn copy_entry(
    entry: &mut impl Read,
    size: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), BlobError>,
) -> Result<(), CopyError> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let read = entry.read(&mut buffer).map_err(|e| CopyError::Bundle(format!("truncated or unreadable: {e}")))?;
        if read == 0 {
            break;
        }
        total += read as u64;
        sink(&buffer[..read]).map_err(CopyError::Store)?;
    }
    if total != size {
        return Err(CopyError::Bundle(format!("truncated: {total} of {size} bytes")));
    }
    Ok(())
}

fn mismatch(expected: &Sha256, actual: &Sha256) -> String {
    format!("blob {expected} does not match its digest (its content hashes to {actual}): damaged or tampered with")
}
