//! Requests for a file that do not ask for all of it (`HEAD`, `Range`),
//! while it is not stored: answered from what the page said, from a
//! running whole download that has the bytes already, or from the
//! upstream, without downloading the file, so nothing a client did not ask
//! for whole is ever fetched whole or stored. A resolver reading a wheel's
//! METADATA by ranges (uv, when an index has no `.metadata` files) costs
//! the upstream a few kilobytes, not the wheel.

use std::io;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use larder_store::FileRecord;
use larder_upstream::{FileStream, RangeAnswer};

use crate::downloads::upstream_url;
use crate::{FileBody, Proxy, ProxyError};

/// What a client asks of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRequest {
    /// The whole file (`GET`).
    Whole,
    /// Its headers only (`HEAD`).
    Head,
    /// One byte range: the value of a `Range` header that names a single
    /// range.
    Range(String),
}

/// A part of a file, as the upstream sent it.
pub struct FilePart {
    /// The `Content-Range` (`bytes <first>-<last>/<size>`).
    pub content_range: String,
    /// The part's length, when the upstream announced it.
    pub length: Option<u64>,
    /// The bytes; ends with an error if the upstream fails.
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

impl Proxy {
    /// Answers a `HEAD` or `Range` request for a file: from the store when
    /// it is there, else from the page's size or the upstream. `None` when
    /// only the whole file will do (the upstream does not serve ranges).
    pub(crate) async fn open_part(
        &self,
        record: &FileRecord,
        request: &FileRequest,
    ) -> Result<Option<FileBody>, ProxyError> {
        if let Some(blob) = self.inner.store.blobs().open(&record.sha256).await? {
            self.note_access(&record.sha256);
            return Ok(Some(FileBody::Stored(blob)));
        }
        if self.inner.settings.load().offline {
            return Err(ProxyError::NotStored(record.filename.clone()));
        }
        let url = upstream_url(record)?;
        let upstreams = self.inner.upstreams.load_full();
        match request {
            FileRequest::Whole => Ok(None),
            FileRequest::Head => {
                let size = match record.size {
                    Some(size) => Some(size),
                    // One byte tells the size (`Content-Range: bytes 0-0/<size>`).
                    None => match upstreams.fetch_file_range(&url, "bytes=0-0").await? {
                        RangeAnswer::Partial { content_range, .. } => size_in(&content_range),
                        RangeAnswer::Unsatisfiable { content_range } => content_range.as_deref().and_then(size_in),
                        RangeAnswer::Whole(body) => body.content_length(),
                    },
                };
                Ok(Some(FileBody::Head { size }))
            }
            FileRequest::Range(range) => match self.range_from_download(&record.sha256, range) {
                Some(part) => Ok(Some(part)),
                None => self.range_from_upstream(&url, range).await,
            },
        }
    }

    /// A range of a file from the upstream; `None` when it answers with
    /// the whole file.
    async fn range_from_upstream(&self, url: &url::Url, range: &str) -> Result<Option<FileBody>, ProxyError> {
        match self.inner.upstreams.load_full().fetch_file_range(url, range).await? {
            RangeAnswer::Partial { content_range, body } => Ok(Some(FileBody::Part(FilePart {
                content_range,
                length: body.content_length(),
                stream: stream_of(body),
            }))),
            RangeAnswer::Unsatisfiable { content_range } => Ok(Some(FileBody::Unsatisfiable { content_range })),
            RangeAnswer::Whole(_) => Ok(None),
        }
    }
}

/// The size in a `Content-Range` value (`bytes 0-0/1234`, `bytes */1234`).
fn size_in(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

/// An upstream body as a stream that ends after its first error.
fn stream_of(body: FileStream) -> BoxStream<'static, io::Result<Bytes>> {
    futures_util::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match body.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(reason) => Some((Err(io::Error::other(reason)), None)),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_from_content_ranges() {
        assert_eq!(size_in("bytes 0-0/1234"), Some(1234));
        assert_eq!(size_in("bytes */77"), Some(77));
        assert_eq!(size_in("bytes 0-0/*"), None);
    }
}
