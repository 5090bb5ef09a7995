//! Files from upstream: one download per file, streamed to every client
//! that asks while it is written, verified, then published.
//!
//! The download runs in its own task, so a client that goes away does not
//! stop it. Clients read the temporary file through a handle of their own
//! as far as the writer has got; the last byte is held back until the
//! digest checked out, so no client ever receives a complete body that
//! turned out to be bad: it gets a cut connection instead.
//!
//! The last byte goes out as soon as the digest checks out, before the
//! file is stored (fsync, rename into the blob store, database row, core
//! metadata), so clients do not wait for the disk. Until storing has
//! ended, requests for the file still follow the download: they read the
//! verified temporary file through the handle opened when the download
//! started, which stays valid whether the file was renamed into place or,
//! when storing failed, deleted. Nothing is stored unless it is verified
//! and durable; a crash before that leaves nothing, and the next request
//! downloads again.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use larder_index::{DistFilename, Sha256};
use larder_store::{BlobError, BlobHandle, BlobWriter, Blobs, DbError, FileRecord, FinishedBlob};
use larder_upstream::{BodyError, FetchFailure, FileStream};
use tokio::sync::watch;
use url::Url;

use crate::flight::OnceMap;
use crate::lease::{Claim, LeaseGuard, file_lease};
use crate::partial::{FilePart, FileRequest};
use crate::range::{RangeRequest, parse_range};
use crate::{CacheOutcome, Inner, Proxy, ProxyError};

/// Read size for clients following a download.
const CHUNK: u64 = 256 * 1024;

/// A bulk job's download of at most this many bytes is received in
/// memory and staged in one step (with `--jobs` of them at once).
const IN_MEMORY: u64 = 1024 * 1024;

/// Why a download failed, or was verified but not stored.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No upstream answered with the file.
    #[error("{filename}: {source}")]
    Fetch {
        /// The file.
        filename: String,
        /// Every upstream's failure.
        source: FetchFailure,
    },
    /// The upstream announces another size than its page lists.
    #[error("upstream sends {announced} bytes for {filename}, but its page says {listed}")]
    SizeMismatch {
        /// The file.
        filename: String,
        /// `Content-Length`.
        announced: u64,
        /// The page's `size`.
        listed: u64,
    },
    /// The body was cut short.
    #[error("{filename}: {source}")]
    Body {
        /// The file.
        filename: String,
        /// What the HTTP client saw.
        source: BodyError,
    },
    /// The upstream sent more than it announced.
    #[error("upstream sent more than the {total} bytes announced for {filename}")]
    TooLong {
        /// The file.
        filename: String,
        /// The announced size.
        total: u64,
    },
    /// Staging, verifying (a digest mismatch) or publishing the blob failed.
    #[error("{filename} from {url}: {source}")]
    Blob {
        /// The file.
        filename: String,
        /// Where it came from.
        url: Url,
        /// What failed.
        source: BlobError,
    },
    /// The blob was stored, but its database row could not be written.
    #[error("{filename}: cannot record the download: {source}")]
    Record {
        /// The file.
        filename: String,
        /// What failed.
        source: DbError,
    },
    /// The download task went away.
    #[error("the download stopped unexpectedly")]
    Stopped,
}

/// The downloads in flight, and the core metadata fetches.
#[derive(Default)]
pub(crate) struct Downloads {
    /// Per file digest: the running download (`None`: the file turned out
    /// to be stored when the download was to start).
    active: OnceMap<Sha256, Result<Option<Arc<Download>>, Arc<ProxyError>>>,
    /// Per file digest: the digest of its fetched core metadata.
    metadata: OnceMap<Sha256, Result<Sha256, Arc<ProxyError>>>,
}

struct Download {
    file: Arc<std::fs::File>,
    progress: watch::Receiver<Progress>,
}

#[derive(Clone, Debug)]
enum Progress {
    /// Waiting for the upstream's answer.
    Connecting,
    /// `written` bytes of the body are in the staging file.
    Receiving { written: u64, total: Option<u64> },
    /// The whole body is in the staging file and its digest checks out;
    /// it is being stored.
    Verified { size: u64 },
    /// Storing has ended: `Ok`, or why nothing was stored (the body was
    /// good all the same).
    Settled { size: u64, stored: Result<(), Arc<DownloadError>> },
    /// The download failed or its content did not check out.
    Failed(Arc<DownloadError>),
}

/// What a file request finds: the file, or the download to follow.
enum Found {
    Stored(BlobHandle),
    Downloading(Arc<Download>),
}

/// How to answer a file request.
pub enum FileBody {
    /// The file is stored: serve the blob (with ranges and validators).
    Stored(BlobHandle),
    /// The file is being downloaded: stream it as it arrives.
    Streaming(FileStreamBody),
    /// A `HEAD` of a file not stored: its size, when known.
    Head {
        /// The size.
        size: Option<u64>,
    },
    /// A range of a file not stored, from the upstream.
    Part(FilePart),
    /// A range outside a file not stored.
    Unsatisfiable {
        /// The upstream's `Content-Range` (`bytes */<size>`), when given.
        content_range: Option<String>,
    },
}

/// Where a file not stored is fetched from.
pub(crate) fn upstream_url(record: &FileRecord) -> Result<Url, ProxyError> {
    record.url.as_deref().and_then(|u| Url::parse(u).ok()).ok_or_else(|| {
        ProxyError::NotAvailable(format!("{} is listed but not stored, and has no upstream URL", record.filename))
    })
}

/// A file body that follows a running download.
pub struct FileStreamBody {
    /// The length, when the upstream announced it.
    pub total: Option<u64>,
    /// The bytes; ends with an error if the download fails.
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

impl Proxy {
    /// The body of a file: the stored blob, or a stream that follows the
    /// (single, shared) upstream download. A `HEAD` or `Range` request for
    /// a file not stored is answered without downloading it (see
    /// [`crate::partial`]).
    pub async fn open_file(&self, record: &FileRecord, request: &FileRequest) -> Result<FileBody, ProxyError> {
        if let Some(body) = self.open_part(record, request).await? {
            return Ok(body);
        }
        match self.find(record).await? {
            Found::Stored(handle) => Ok(FileBody::Stored(handle)),
            Found::Downloading(download) => follow(&download).await.map(FileBody::Streaming),
        }
    }

    /// Makes sure a file is stored, downloading it (through the same
    /// single, verified download clients share) when it is not, and waiting
    /// until that download is stored. Returns the bytes downloaded (0 when
    /// it was already stored).
    pub async fn ensure_stored(&self, record: &FileRecord) -> Result<u64, ProxyError> {
        match self.find(record).await? {
            Found::Stored(_) => Ok(0),
            Found::Downloading(download) => download.stored().await,
        }
    }

    /// Waits until every download whose verified body clients may already
    /// have is stored (or has failed to be), so that a graceful shutdown
    /// does not throw it away. Downloads still receiving are not waited for.
    pub async fn finish_storing(&self) {
        let verified = self.inner.downloads.active.done().into_iter().filter_map(|flight| match flight {
            Ok(Some(download)) if matches!(*download.progress.borrow(), Progress::Verified { .. }) => Some(download),
            _ => None,
        });
        for download in verified.collect::<Vec<_>>() {
            let _ = download.stored().await;
        }
    }

    /// The stored file, or the download of it (started now when none runs).
    async fn find(&self, record: &FileRecord) -> Result<Found, ProxyError> {
        let blobs = self.inner.store.blobs();
        if let Some(handle) = blobs.open(&record.sha256).await? {
            self.note_access(&record.sha256);
            return Ok(Found::Stored(handle));
        }
        if self.inner.settings.load().offline {
            return Err(ProxyError::NotStored(record.filename.clone()));
        }
        let url = upstream_url(record)?;
        let downloads = &self.inner.downloads.active;
        let flight = downloads
            .get_or_run(&record.sha256, || async {
                // A download may have ended between the look above and now.
                if blobs.contains(&record.sha256).await {
                    return Ok(None);
                }
                self.inner.reserve.check(&self.inner.store, &record.filename).map_err(Arc::new)?;
                // One node of those sharing the database fetches it.
                let name = file_lease(&record.sha256);
                let stored = || async { Ok(blobs.contains(&record.sha256).await.then_some(())) };
                let ttl = self.inner.settings.load().download_lease;
                match self.inner.leases.claim(self.inner.store.db(), name, ttl, stored).await.map_err(Arc::new)? {
                    Claim::Done(()) => Ok(None),
                    Claim::Ours(lease) => {
                        self.start_download(record, url, lease).map(|d| Some(Arc::new(d))).map_err(Arc::new)
                    }
                }
            })
            .await;
        match flight {
            Ok(Some(download)) => Ok(Found::Downloading(download)),
            Ok(None) | Err(_) => {
                downloads.forget_if(&record.sha256, |flight| !matches!(flight, Ok(Some(_))));
                match blobs.open(&record.sha256).await? {
                    Some(handle) => Ok(Found::Stored(handle)),
                    None => {
                        Err(flight.err().map_or(ProxyError::Blob(BlobError::Gone(record.sha256)), ProxyError::Shared))
                    }
                }
            }
        }
    }

    /// Starts the download of a file, holding `lease` until it is stored
    /// or has failed.
    fn start_download(&self, record: &FileRecord, url: Url, lease: LeaseGuard) -> Result<Download, ProxyError> {
        let writer = self.inner.store.blobs().writer()?;
        let reader = writer.reader()?;
        let (sender, progress) = watch::channel(Progress::Connecting);
        let download = run_download(self.inner.clone(), record.clone(), url, writer, sender);
        tokio::spawn(async move {
            download.await;
            drop(lease);
        });
        Ok(Download { file: Arc::new(reader), progress })
    }

    /// The stored core metadata of a file: already stored (a hit), or
    /// fetched once from `<upstream url>.metadata` and verified (a miss).
    pub async fn open_metadata(&self, record: &FileRecord) -> Result<(BlobHandle, CacheOutcome), ProxyError> {
        let blobs = self.inner.store.blobs();
        if let Some(digest) = record.metadata_sha256
            && let Some(handle) = blobs.open(&digest).await?
        {
            return Ok((handle, CacheOutcome::Hit));
        }
        // A stored wheel whose metadata was never extracted (a crash right
        // after storing it): extract it now, upstream or not.
        if crate::metadata::is_missing(&self.inner.store, record).await
            && let Ok(Some(digest)) = crate::metadata::extract(&self.inner.store, record).await
            && let Some(handle) = blobs.open(&digest).await?
        {
            return Ok((handle, CacheOutcome::Hit));
        }
        let not_available = || ProxyError::NotAvailable(format!("{} has no core metadata file", record.filename));
        let is_wheel = matches!(DistFilename::parse(&record.filename), Ok(DistFilename::Wheel(_)));
        let Some(file_url) = record.url.as_deref().filter(|_| record.serve_metadata || is_wheel) else {
            return Err(not_available());
        };
        if self.inner.settings.load().offline {
            return Err(ProxyError::NotStored(format!("{}.metadata", record.filename)));
        }
        let fetched = self
            .inner
            .downloads
            .metadata
            .run(&record.sha256, || async { self.fetch_metadata(record, file_url).await.map_err(Arc::new) })
            .await
            .map_err(ProxyError::Shared)?;
        let handle = blobs.open(&fetched).await?.ok_or(ProxyError::Blob(BlobError::Gone(fetched)))?;
        Ok((handle, CacheOutcome::Miss))
    }

    /// Fetches, verifies and stores a file's core metadata (unless another
    /// process stored it meanwhile); its digest.
    async fn fetch_metadata(&self, record: &FileRecord, file_url: &str) -> Result<Sha256, ProxyError> {
        let not_available = || ProxyError::NotAvailable(format!("{} has no core metadata file", record.filename));
        let (blobs, db) = (self.inner.store.blobs(), self.inner.store.db());
        let stored = || async {
            let rows = db.file_rows(&record.sha256, &record.filename).await?;
            if let Some(digest) = rows.iter().find_map(|row| row.metadata_sha256)
                && blobs.contains(&digest).await
            {
                return Ok(Some(digest));
            }
            Ok(None)
        };
        if let Some(digest) = stored().await? {
            return Ok(digest);
        }
        self.inner.reserve.check(&self.inner.store, &format!("{}.metadata", record.filename))?;
        // One node of those sharing the database fetches it.
        let (name, ttl) = (format!("metadata:{}", record.sha256), self.inner.settings.load().download_lease);
        let _lease = match self.inner.leases.claim(db, name, ttl, stored).await? {
            Claim::Done(digest) => return Ok(digest),
            Claim::Ours(lease) => lease,
        };
        if !record.serve_metadata {
            // The upstream has no metadata file for this wheel: read it by
            // ranges, or else from the whole wheel, downloaded and stored.
            return match self.metadata_by_ranges(record).await {
                Ok(digest) => Ok(digest),
                Err(error) => {
                    tracing::info!(%error, "reading the core metadata from the whole wheel instead");
                    self.ensure_stored(record).await?;
                    crate::metadata::extract(&self.inner.store, record)
                        .await
                        .map_err(|e| ProxyError::CoreMetadata(Box::new(e)))?
                        .ok_or_else(not_available)
                }
            };
        }
        let url = Url::parse(&format!("{file_url}.metadata")).map_err(|_| not_available())?;
        let body = self.inner.upstreams.load_full().fetch_bytes(&url, larder_dist::MAX_METADATA_BYTES as usize).await?;
        let blob = blobs
            .put_bytes(&body, record.metadata_sha256)
            .await
            .map_err(|source| ProxyError::Metadata { url: url.to_string(), source })?;
        db.record_metadata(&record.sha256, &record.filename, &blob.sha256, true).await?;
        Ok(blob.sha256)
    }
}

async fn run_download(
    inner: Arc<Inner>,
    record: FileRecord,
    url: Url,
    writer: BlobWriter,
    progress: watch::Sender<Progress>,
) {
    match receive(&inner, &record, &url, writer, &progress).await {
        Ok(blob) => {
            let size = blob.info().size;
            progress.send_replace(Progress::Verified { size });
            let stored = store(&inner, &record, &url, blob).await;
            match &stored {
                Ok(()) => tracing::info!(filename = %record.filename, %url, size, "stored from upstream"),
                Err(error) => {
                    tracing::warn!(filename = %record.filename, %url, %error, "downloaded and verified, but not stored")
                }
            }
            progress.send_replace(Progress::Settled { size, stored: stored.map_err(Arc::new) });
        }
        Err(error) => {
            tracing::warn!(filename = %record.filename, %url, %error, "download failed; nothing kept");
            progress.send_replace(Progress::Failed(Arc::new(error)));
        }
    }
    inner.downloads.active.forget(&record.sha256);
}

/// Downloads into `writer`, publishing progress, and checks the digest.
async fn receive(
    inner: &Inner,
    record: &FileRecord,
    url: &Url,
    writer: BlobWriter,
    progress: &watch::Sender<Progress>,
) -> Result<FinishedBlob, DownloadError> {
    receive_into(Incoming::open(inner, record, url).await?, writer, progress).await
}

/// Writes `incoming` into `writer`, publishing progress, and checks the
/// digest.
async fn receive_into(
    mut incoming: Incoming<'_>,
    mut writer: BlobWriter,
    progress: &watch::Sender<Progress>,
) -> Result<FinishedBlob, DownloadError> {
    let (record, url) = (incoming.record, incoming.url);
    let blob_error = |source| DownloadError::Blob { filename: record.filename.clone(), url: url.clone(), source };
    progress.send_replace(Progress::Receiving { written: 0, total: incoming.total });
    while let Some(chunk) = incoming.next_chunk().await? {
        writer.write(&chunk).await.map_err(blob_error)?;
        let written = writer.size();
        progress.send_modify(|p| {
            if let Progress::Receiving { written: w, .. } = p {
                *w = written;
            }
        });
    }
    writer.finish(Some(record.sha256)).map_err(blob_error)
}

/// A file's body as an upstream sends it, held to the length it announced
/// (or, failing that, the length its page lists).
struct Incoming<'a> {
    record: &'a FileRecord,
    url: &'a Url,
    body: FileStream,
    total: Option<u64>,
    received: u64,
}

impl<'a> Incoming<'a> {
    /// Asks the upstreams for the file at `url`; an announced length other
    /// than the page's is refused.
    async fn open(inner: &Inner, record: &'a FileRecord, url: &'a Url) -> Result<Self, DownloadError> {
        let body = inner
            .upstreams
            .load_full()
            .fetch_file(url)
            .await
            .map_err(|source| DownloadError::Fetch { filename: record.filename.clone(), source })?;
        let announced = body.content_length();
        if let (Some(announced), Some(listed)) = (announced, record.size)
            && announced != listed
        {
            return Err(DownloadError::SizeMismatch { filename: record.filename.clone(), announced, listed });
        }
        Ok(Self { record, url, body, total: announced.or(record.size), received: 0 })
    }

    /// The next chunk, `None` at the end; more bytes than announced are
    /// refused.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, DownloadError> {
        let filename = || self.record.filename.clone();
        let chunk =
            self.body.next_chunk().await.map_err(|source| DownloadError::Body { filename: filename(), source })?;
        if let Some(chunk) = &chunk {
            self.received += chunk.len() as u64;
            if let Some(total) = self.total
                && self.received > total
            {
                return Err(DownloadError::TooLong { filename: filename(), total });
            }
        }
        Ok(chunk)
    }

    /// The whole body, for a small file.
    async fn collect(mut self) -> Result<Vec<u8>, DownloadError> {
        let mut bytes = Vec::with_capacity(self.total.unwrap_or(0) as usize);
        while let Some(chunk) = self.next_chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

/// Stores a verified download: the blob made durable and published, its
/// database row, and (for a wheel) its core metadata.
async fn store(inner: &Inner, record: &FileRecord, url: &Url, blob: FinishedBlob) -> Result<(), DownloadError> {
    let filename = || record.filename.clone();
    let blob = blob.publish().await.map_err(|source| DownloadError::Blob {
        filename: filename(),
        url: url.clone(),
        source,
    })?;
    inner
        .store
        .db()
        .record_download(&record.sha256, &record.filename, blob.size)
        .await
        .map_err(|source| DownloadError::Record { filename: filename(), source })?;
    if let Err(error) = crate::metadata::extract(&inner.store, record).await {
        tracing::warn!(%error, "core metadata not extracted");
    }
    if let Some(eviction) = &inner.eviction {
        eviction.wake();
    }
    Ok(())
}

/// A file fetched for a bulk job ([`Proxy::fetch_for_batch`]).
pub enum BatchFetch {
    /// It was stored already; its size.
    Stored(u64),
    /// It was downloaded and verified, and for a wheel its core metadata
    /// read: neither durable nor visible yet.
    Downloaded(Box<Unpublished>),
}

/// A verified download and its core metadata, not yet durable nor
/// visible. A bulk job publishes a batch of them with
/// [`larder_store::publish_batch`], then records them with
/// [`larder_store::Database::record_downloads`].
pub struct Unpublished {
    /// The file.
    pub blob: FinishedBlob,
    /// Its core metadata, when it is a wheel and it could be read.
    pub metadata: Option<FinishedBlob>,
    /// The lease on fetching it (with a database other nodes share): keep
    /// it until the file is published (or given up), so that no other
    /// node fetches it meanwhile.
    pub lease: LeaseGuard,
}

impl Proxy {
    /// Fetches a file for a bulk job (a mirror run) that publishes files a
    /// batch at a time: the download is verified like any other, but not
    /// shared with clients, made durable, nor published here. With a
    /// database other nodes share, it is fetched under the file's lease
    /// (returned with it), or found stored once another node let go of it.
    pub async fn fetch_for_batch(&self, record: &FileRecord) -> Result<BatchFetch, ProxyError> {
        let blobs = self.inner.store.blobs();
        if let Some(size) = blobs.size(&record.sha256).await? {
            return Ok(BatchFetch::Stored(size));
        }
        if self.inner.settings.load().offline {
            return Err(ProxyError::NotStored(record.filename.clone()));
        }
        let Some(url) = record.url.as_deref().and_then(|u| Url::parse(u).ok()) else {
            return Err(ProxyError::NotAvailable(format!("{} has no upstream URL", record.filename)));
        };
        // One node of those sharing the database fetches it.
        let stored = || async { Ok(blobs.size(&record.sha256).await?) };
        let ttl = self.inner.settings.load().download_lease;
        let lease =
            match self.inner.leases.claim(self.inner.store.db(), file_lease(&record.sha256), ttl, stored).await? {
                Claim::Done(size) => return Ok(BatchFetch::Stored(size)),
                Claim::Ours(lease) => lease,
            };
        let failed = |error| ProxyError::Download(Arc::new(error));
        let incoming = Incoming::open(&self.inner, record, &url).await.map_err(failed)?;
        let received = if incoming.total.is_some_and(|total| total <= IN_MEMORY) {
            Received::InMemory(incoming.collect().await.map_err(failed)?)
        } else {
            let (progress, _) = watch::channel(Progress::Connecting);
            Received::Staged(receive_into(incoming, blobs.writer()?, &progress).await.map_err(failed)?)
        };
        // The file staged when small, its metadata read and staged: one
        // blocking step rather than one per write and read.
        let (blobs, owned) = (blobs.clone(), record.clone());
        let (blob, metadata) = tokio::task::spawn_blocking(move || received.stage(&blobs, &owned))
            .await
            .expect("staging a download does not panic")
            .map_err(|source| failed(DownloadError::Blob { filename: record.filename.clone(), url, source }))?;
        Ok(BatchFetch::Downloaded(Box::new(Unpublished { blob, metadata, lease })))
    }
}

/// A bulk job's download of a file, verified or not yet.
enum Received {
    /// A small file's bytes, held in memory, not yet checked.
    InMemory(Vec<u8>),
    /// A file written to its staging file and verified.
    Staged(FinishedBlob),
}

impl Received {
    /// The file as a verified staged blob, and for a wheel its core
    /// metadata staged too (`None` when it could not be read: the wheel is
    /// stored all the same). Blocking: call from a blocking task.
    fn stage(self, blobs: &Blobs, record: &FileRecord) -> Result<(FinishedBlob, Option<FinishedBlob>), BlobError> {
        let (blob, metadata) = match self {
            Received::InMemory(bytes) => {
                let blob = blobs.stage_bytes(&bytes, Some(record.sha256))?;
                (blob, crate::metadata::read_from_bytes(record, &bytes))
            }
            Received::Staged(blob) => {
                let metadata = crate::metadata::read_from_file(record, blob.reader()?);
                (blob, metadata)
            }
        };
        let metadata = match metadata {
            Ok(None) => None,
            Ok(Some((bytes, digest))) => Some(blobs.stage_bytes(&bytes, Some(digest))?),
            Err(error) => {
                tracing::warn!(filename = %record.filename, %error, "cannot extract core metadata from the wheel");
                None
            }
        };
        Ok((blob, metadata))
    }
}

impl Download {
    /// Waits until the download is stored; its size.
    async fn stored(&self) -> Result<u64, ProxyError> {
        let mut progress = self.progress.clone();
        loop {
            match &*progress.borrow_and_update() {
                Progress::Settled { size, stored: Ok(()) } => return Ok(*size),
                Progress::Settled { stored: Err(error), .. } | Progress::Failed(error) => {
                    return Err(ProxyError::Download(error.clone()));
                }
                Progress::Connecting | Progress::Receiving { .. } | Progress::Verified { .. } => {}
            }
            progress.changed().await.map_err(|_| stopped())?;
        }
    }
}

/// Waits until the download has started (or failed), then streams it.
async fn follow(download: &Download) -> Result<FileStreamBody, ProxyError> {
    let mut progress = download.progress.clone();
    let total = loop {
        match &*progress.borrow_and_update() {
            Progress::Connecting => {}
            Progress::Receiving { total, .. } => break *total,
            Progress::Verified { size } | Progress::Settled { size, .. } => break Some(*size),
            Progress::Failed(error) => return Err(ProxyError::Download(error.clone())),
        }
        progress.changed().await.map_err(|_| stopped())?;
    };
    let reader = Reader { file: download.file.clone(), progress, offset: 0, ended: false };
    let stream = futures_util::stream::unfold(reader, Reader::next).boxed();
    Ok(FileStreamBody { total, stream })
}

/// One client's position in a running download.
struct Reader {
    file: Arc<std::fs::File>,
    progress: watch::Receiver<Progress>,
    offset: u64,
    ended: bool,
}

impl Reader {
    async fn next(mut self) -> Option<(io::Result<Bytes>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let current = self.progress.borrow_and_update().clone();
            // Until the digest checks out, the last byte is held back.
            let (readable, finished) = match current {
                Progress::Connecting => (0, false),
                Progress::Receiving { written, .. } => (written.saturating_sub(1), false),
                Progress::Verified { size } | Progress::Settled { size, .. } => (size, true),
                Progress::Failed(error) => return Some(self.fail(io::Error::other(error))),
            };
            if self.offset < readable {
                let length = (readable - self.offset).min(CHUNK);
                return Some(match self.read(length).await {
                    Ok(bytes) => {
                        self.offset += bytes.len() as u64;
                        (Ok(bytes), self)
                    }
                    Err(error) => self.fail(error),
                });
            }
            if finished {
                return None;
            }
            if self.progress.changed().await.is_err() {
                return Some(self.fail(io::Error::other(DownloadError::Stopped)));
            }
        }
    }

    async fn read(&self, length: u64) -> io::Result<Bytes> {
        read_at(self.file.clone(), self.offset, length).await
    }

    fn fail(mut self, error: io::Error) -> (io::Result<Bytes>, Self) {
        self.ended = true;
        (Err(error), self)
    }
}

/// Up to `length` bytes of a download's file from `offset` (at least one).
async fn read_at(file: Arc<std::fs::File>, offset: u64, length: u64) -> io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0u8; length as usize];
        let read = file.read_at(&mut buffer, offset)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the download file is shorter than reported"));
        }
        buffer.truncate(read);
        Ok(Bytes::from(buffer))
    })
    .await
    .map_err(io::Error::other)?
}

impl Proxy {
    /// A range of a file being downloaded whole, answered from the
    /// download when the range's bytes are there already (the last byte
    /// counts as there once the digest checked out); `None` when no
    /// download runs, its size is not known yet, or the range is not there
    /// yet (the caller asks the upstream).
    pub(crate) fn range_from_download(&self, sha256: &Sha256, range: &str) -> Option<FileBody> {
        let Ok(Some(download)) = self.inner.downloads.active.get(sha256)? else { return None };
        let (readable, size) = match &*download.progress.borrow() {
            Progress::Receiving { written, total: Some(total) } => (written.saturating_sub(1), *total),
            Progress::Verified { size } | Progress::Settled { size, .. } => (*size, *size),
            Progress::Connecting | Progress::Receiving { total: None, .. } | Progress::Failed(_) => return None,
        };
        match parse_range(range, size) {
            RangeRequest::Partial(range) if *range.end() < readable => {
                let (start, end) = (*range.start(), *range.end());
                let file = download.file.clone();
                let stream = futures_util::stream::unfold(start, move |offset| {
                    let file = file.clone();
                    async move {
                        if offset > end {
                            return None;
                        }
                        Some(match read_at(file, offset, (end + 1 - offset).min(CHUNK)).await {
                            Ok(bytes) => {
                                let next = offset + bytes.len() as u64;
                                (Ok(bytes), next)
                            }
                            Err(error) => (Err(error), end + 1),
                        })
                    }
                });
                Some(FileBody::Part(FilePart {
                    content_range: format!("bytes {start}-{end}/{size}"),
                    length: Some(end + 1 - start),
                    stream: stream.boxed(),
                }))
            }
            RangeRequest::Unsatisfiable => {
                Some(FileBody::Unsatisfiable { content_range: Some(format!("bytes */{size}")) })
            }
            RangeRequest::Partial(_) | RangeRequest::Full => None,
        }
    }
}

fn stopped() -> ProxyError {
    ProxyError::Download(Arc::new(DownloadError::Stopped))
}
