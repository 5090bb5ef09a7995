//! Reading a stored blob: [`BlobHandle`].

use std::fmt;
use std::io::{self, Seek};
use std::ops::Range;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use larder_index::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::blobs::{BlobError, BlobInfo};

/// A blob's bytes as they arrive.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Read size when streaming a local blob.
const CHUNK: usize = 256 * 1024;

/// A blob in a remote backend, as its [`BlobHandle`] reads it.
#[async_trait::async_trait]
pub trait RemoteBlob: fmt::Debug + Send + Sync + 'static {
    /// Streams the bytes in `range` (within the blob's size).
    async fn stream(&self, range: Range<u64>) -> Result<ByteStream, BlobError>;
}

/// An open stored blob: its digest and size, and its bytes, to be streamed
/// (whole or a range) or, for a local blob, sent straight from the open
/// file ([`BlobHandle::local_file`]). The handle stays valid when the blob
/// is removed meanwhile (a local file stays readable while open).
#[derive(Debug)]
pub struct BlobHandle {
    info: BlobInfo,
    source: Source,
}

#[derive(Debug)]
enum Source {
    File(std::fs::File),
    Remote(Box<dyn RemoteBlob>),
}

impl BlobHandle {
    /// A handle on an open local file holding the blob (its size is the
    /// file's).
    pub fn from_file(sha256: Sha256, file: std::fs::File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self { info: BlobInfo { sha256, size }, source: Source::File(file) })
    }

    /// A handle on a blob of a remote backend.
    pub fn from_remote(info: BlobInfo, blob: Box<dyn RemoteBlob>) -> Self {
        Self { info, source: Source::Remote(blob) }
    }

    /// Digest and size.
    pub fn info(&self) -> BlobInfo {
        self.info
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// The open local file, when the blob is local: it may be mapped or
    /// sent with `sendfile`; it never changes (blobs are immutable).
    pub fn local_file(&self) -> Option<&std::fs::File> {
        match &self.source {
            Source::File(file) => Some(file),
            Source::Remote(_) => None,
        }
    }

    /// The open local file, or the handle back when the blob is remote.
    pub fn into_local_file(self) -> Result<std::fs::File, Self> {
        match self.source {
            Source::File(file) => Ok(file),
            source => Err(Self { info: self.info, source }),
        }
    }

    /// Streams `range` of the blob (the whole blob: `0..size`).
    pub async fn stream(self, range: Range<u64>) -> Result<ByteStream, BlobError> {
        let range = range.start.min(self.info.size)..range.end.min(self.info.size);
        match self.source {
            Source::Remote(blob) => blob.stream(range).await,
            Source::File(file) => {
                let mut file = tokio::fs::File::from_std(file);
                let sha256 = self.info.sha256;
                let io = |source| BlobError::Io { path: format!("blob {sha256}").into(), source };
                file.seek(io::SeekFrom::Start(range.start)).await.map_err(io)?;
                let reader = file.take(range.end - range.start);
                Ok(tokio_util::io::ReaderStream::with_capacity(reader, CHUNK).boxed())
            }
        }
    }

    /// The whole content in memory (for small blobs: core metadata).
    pub async fn read_all(self) -> Result<Vec<u8>, BlobError> {
        let (sha256, size) = (self.info.sha256, self.info.size);
        let mut stream = self.stream(0..size).await?;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| BlobError::Io { path: format!("blob {sha256}").into(), source })?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Writes the whole blob to `out` and returns the number of bytes
    /// written: a local blob is copied from its file, a remote one streamed
    /// (never through a temporary copy).
    pub async fn copy_to<W: tokio::io::AsyncWrite + Unpin>(self, out: &mut W) -> Result<u64, BlobError> {
        let sha256 = self.info.sha256;
        let io = |source| BlobError::Io { path: format!("blob {sha256}").into(), source };
        let written = match self.into_local_file() {
            Ok(mut file) => {
                file.rewind().map_err(io)?;
                let mut reader = tokio::io::BufReader::with_capacity(CHUNK, tokio::fs::File::from_std(file));
                tokio::io::copy_buf(&mut reader, out).await.map_err(io)?
            }
            Err(handle) => {
                let size = handle.info.size;
                let mut stream = handle.stream(0..size).await?;
                let mut written = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(io)?;
                    out.write_all(&chunk).await.map_err(io)?;
                    written += chunk.len() as u64;
                }
                written
            }
        };
        out.flush().await.map_err(io)?;
        Ok(written)
    }

    /// A local file with the blob's bytes, positioned at the start: the
    /// blob's own file, or (remote) a temporary copy that disappears when
    /// closed. For readers that need `Read + Seek` (archives).
    pub async fn into_file(self) -> Result<std::fs::File, BlobError> {
        let sha256 = self.info.sha256;
        let io = |source| BlobError::Io { path: format!("blob {sha256}").into(), source };
        match self.into_local_file() {
            Ok(mut file) => {
                file.rewind().map_err(io)?;
                Ok(file)
            }
            Err(handle) => {
                let mut copy = tokio::fs::File::from_std(tempfile::tempfile().map_err(io)?);
                handle.copy_to(&mut copy).await?;
                let mut file = copy.into_std().await;
                file.rewind().map_err(io)?;
                Ok(file)
            }
        }
    }
}
