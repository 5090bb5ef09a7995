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

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use larder_bundle::{BundleManifest, PublicKey, ReadError};
use larder_index::{DistFilename, Hasher, Sha256};
use larder_store::db::snapshot::{SnapshotChanges, SnapshotProject};
use larder_store::{BlobError, Blobs, DbError, Store};
use tokio::runtime::Handle;

use crate::Error;
use crate::error::io_error;
use crate::progress::Progress;

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
    check_indexes(store, path, &manifest.projects).await?;
    report.changes = store.db().import_snapshot(&manifest.projects).await.map_err(|error| match error {
        DbError::FileConflict { .. } => refused(path, error.to_string()),
        other => other.into(),
    })?;
    Ok(report)
}

/// Refuses rows of an index this store does not define: a bundle of a
/// named index is served here by an index of the same name, created first.
async fn check_indexes(store: &Store, path: &Path, projects: &[SnapshotProject]) -> Result<(), Error> {
    let registry = larder_indexes::Registry::new(store.clone());
    let known = registry.all().await?;
    match projects.iter().find(|project| !known.contains_key(&project.index)) {
        Some(project) => Err(refused(
            path,
            format!(
                "it carries index {0}, which this store does not define: create it (larder index create {0} ...) and import again",
                project.index
            ),
        )),
        None => Ok(()),
    }
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
    let mut report = ImportReport::default();
    let (opened, _) = larder_bundle::read_bundle(
        open(path)?,
        trusted,
        |opened| {
            let manifest = &opened.manifest;
            check_references(handle, blobs, manifest, false).map_err(ReadError::Refused)?;
            Ok(Progress::new("import", Some(manifest.blobs.values().sum())))
        },
        |progress, mut entry| {
            let (digest, size) = (entry.digest, entry.size);
            if handle.block_on(blobs.contains(&digest)) {
                let mut hasher = Hasher::default();
                entry.copy_to(|chunk| {
                    hasher.update(chunk);
                    Ok(())
                })?;
                let actual = hasher.finish();
                if actual != digest {
                    return Err(ReadError::Refused(mismatch(&digest, &actual)));
                }
                report.blobs_present += 1;
            } else {
                let mut writer = blobs.writer().map_err(ReadError::Caller)?;
                entry.copy_to(|chunk| handle.block_on(writer.write(chunk)))?;
                match handle.block_on(writer.commit(Some(digest))) {
                    Err(BlobError::HashMismatch { expected, actual }) => {
                        return Err(ReadError::Refused(mismatch(&expected, &actual)));
                    }
                    other => other.map_err(ReadError::Caller)?,
                };
                report.blobs_written += 1;
                report.bytes_written += size;
            }
            progress.add(1, size);
            Ok(())
        },
    )
    .map_err(|error| match error {
        ReadError::Refused(reason) => refuse(reason),
        ReadError::Caller(error) => Error::from(error),
    })?;
    let manifest = opened.manifest;
    report.projects = manifest.projects.len() as u64;
    report.files = manifest.projects.iter().map(|p| p.files.len() as u64).sum();
    report.signed_by = opened.signed_by;
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

fn mismatch(expected: &Sha256, actual: &Sha256) -> String {
    format!("blob {expected} does not match its digest (its content hashes to {actual}): damaged or tampered with")
}
