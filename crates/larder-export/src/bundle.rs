//! `larder export --bundle FILE`: the view as one file to carry into an
//! air-gapped site, and `larder export --manifest OUT.json`: what a store
//! holds, sent back across the gap so the next bundle carries only what is
//! missing.
//!
//! A bundle is a tar archive (optionally zstd-compressed): first
//! `manifest.json` (a [`BundleManifest`]), then, in a signed bundle,
//! `manifest.json.sig` (its ed25519 signature, see [`larder_bundle::signature`]),
//! then one entry `blobs/<sha256>` per blob it lists, in digest order. Entries have fixed modes and times,
//! so the same content always makes the same bundle. Every blob is hashed
//! while it is written: a damaged store fails the export instead of the
//! import on the other side. The bundle is written under a temporary name
//! and renamed into place when complete. The manifest is built in memory
//! (a few hundred bytes per file) since it comes first in the archive.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use larder_bundle::manifest::Blobs as BlobSizes;
use larder_bundle::signature::SIGNATURE_ENTRY;
use larder_bundle::{BLOBS_DIR, BundleManifest, MANIFEST_ENTRY, SecretKey, StoreManifest};
use larder_index::Hasher;
use larder_store::db::snapshot::SnapshotProject;
use larder_store::{BlobError, Blobs, Store};
use tokio::runtime::Handle;

use crate::Error;
use crate::atomic::{dir_of, persist, temp_in};
use crate::error::io_error;
use crate::progress::Progress;
use crate::view::View;

/// zstd level for `--zstd`: wheels are compressed already, so a fast level.
const ZSTD_LEVEL: i32 = 3;
/// Write buffer of a plain bundle.
const WRITE_BUFFER: usize = 256 * 1024;

/// How to write a bundle.
#[derive(Clone, Debug, Default)]
pub struct BundleOptions {
    /// Compress the tar with zstd.
    pub zstd: bool,
    /// The other side's manifest: blobs it lists are left out.
    pub since: Option<StoreManifest>,
    /// Sign the manifest with this key.
    pub sign: Option<SecretKey>,
    /// The index to export (the default index when `None`). Its rows are
    /// carried under the stored indexes they belong to (the index itself,
    /// its hosted bases, `upstream`): define the same index on the other
    /// side to serve them the same way.
    pub index: Option<String>,
}

/// What a bundle holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BundleReport {
    /// Projects listed.
    pub projects: u64,
    /// Files listed.
    pub files: u64,
    /// Blobs carried.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs left out because the other side has them.
    pub skipped: u64,
}

/// Writes the bundle of `store`'s view to `path`.
pub async fn export_bundle(store: &Store, path: &Path, options: BundleOptions) -> Result<BundleReport, Error> {
    let projects = collect_view(store, options.index.as_deref()).await?;
    let referenced = blob_sizes(store.blobs(), &projects).await?;
    let (blobs, runtime) = (store.blobs().clone(), Handle::current());
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let total = referenced.len() as u64;
        let since = options.since.unwrap_or_default();
        let carried: BlobSizes =
            referenced.into_iter().filter(|(digest, _)| !since.blobs.contains_key(digest)).collect();
        let manifest = BundleManifest { blobs: carried, projects };
        let report = BundleReport {
            projects: manifest.projects.len() as u64,
            files: manifest.projects.iter().map(|p| p.files.len() as u64).sum(),
            blobs: manifest.blobs.len() as u64,
            bytes: manifest.blobs.values().sum(),
            skipped: total - manifest.blobs.len() as u64,
        };
        write_bundle(&runtime, &blobs, &manifest, options.sign.as_ref(), &path, options.zstd)?;
        Ok(report)
    })
    .await
    .expect("the bundle writer does not panic")
}

/// The manifest of `store`: every blob its view references.
pub async fn store_manifest(store: &Store) -> Result<StoreManifest, Error> {
    let projects = collect_view(store, None).await?;
    Ok(StoreManifest { blobs: blob_sizes(store.blobs(), &projects).await? })
}

/// The stored rows behind the whole view of `index`, in memory.
async fn collect_view(store: &Store, index: Option<&str>) -> Result<Vec<SnapshotProject>, Error> {
    let mut view = View::new(store, index).await?;
    let mut projects = Vec::new();
    loop {
        let batch = view.next_batch().await?;
        if batch.is_empty() {
            return Ok(projects);
        }
        projects.extend(batch.into_iter().flat_map(|project| project.parts));
    }
}

/// The digest and size of every blob the projects reference.
async fn blob_sizes(blobs: &Blobs, projects: &[SnapshotProject]) -> Result<BlobSizes, Error> {
    let mut sizes = BlobSizes::new();
    let digests = projects
        .iter()
        .flat_map(|p| &p.files)
        .flat_map(|file| std::iter::once(file.sha256).chain(file.metadata_sha256.filter(|_| file.serve_metadata)));
    for digest in digests {
        if let std::collections::btree_map::Entry::Vacant(entry) = sizes.entry(digest) {
            entry.insert(blobs.size(&digest).await?.ok_or(BlobError::Gone(digest))?);
        }
    }
    Ok(sizes)
}

fn write_bundle(
    runtime: &Handle,
    blobs: &Blobs,
    manifest: &BundleManifest,
    sign: Option<&SecretKey>,
    path: &Path,
    zstd: bool,
) -> Result<(), Error> {
    let temp = temp_in(dir_of(path))?;
    let file = temp.as_file().try_clone().map_err(io_error(path))?;
    let mut progress = Progress::new("bundle", Some(manifest.blobs.values().sum()));
    if zstd {
        let encoder = zstd::Encoder::new(file, ZSTD_LEVEL).map_err(io_error(path))?;
        write_tar(encoder, runtime, blobs, manifest, sign, &mut progress, path)?.finish().map_err(io_error(path))?;
    } else {
        let buffered = BufWriter::with_capacity(WRITE_BUFFER, file);
        let buffered = write_tar(buffered, runtime, blobs, manifest, sign, &mut progress, path)?;
        buffered.into_inner().map_err(|e| io_error(path)(e.into_error()))?;
    }
    persist(temp, path)
}

/// Writes the tar stream to `out` and returns `out`.
fn write_tar<W: Write>(
    out: W,
    runtime: &Handle,
    blobs: &Blobs,
    manifest: &BundleManifest,
    sign: Option<&SecretKey>,
    progress: &mut Progress,
    path: &Path,
) -> Result<W, Error> {
    let mut tar = tar::Builder::new(out);
    let json = manifest.to_json();
    tar.append(&header(MANIFEST_ENTRY, json.len() as u64), json.as_bytes()).map_err(io_error(path))?;
    if let Some(key) = sign {
        let signature = key.sign(json.as_bytes()).to_json();
        tar.append(&header(SIGNATURE_ENTRY, signature.len() as u64), signature.as_bytes()).map_err(io_error(path))?;
    }
    for (digest, size) in &manifest.blobs {
        let blob = runtime.block_on(blobs.open(digest))?.ok_or(BlobError::Gone(*digest))?;
        let file = runtime.block_on(blob.into_file())?;
        let mut reader = HashingReader { inner: file.take(*size), hasher: Hasher::default() };
        let name = format!("{BLOBS_DIR}{digest}");
        tar.append(&header(&name, *size), &mut reader).map_err(io_error(path))?;
        let actual = reader.hasher.finish();
        if actual != *digest {
            return Err(Error::CorruptBlob { expected: *digest, actual });
        }
        progress.add(1, *size);
    }
    tar.into_inner().map_err(io_error(path))
}

/// A plain file entry header with a fixed mode and time.
fn header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).expect("entry names are short and relative");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

/// Hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        Ok(read)
    }
}
