//! The core metadata of a wheel that is not stored, when the upstream has
//! no `.metadata` file for it: read from the upstream with range requests
//! (the zip directory at the end of the wheel, then its METADATA member),
//! verified by the zip's CRC, and kept. A resolver asking larder for
//! `<wheel>.metadata` so costs the upstream a few tens of kilobytes, where
//! it would otherwise download the whole wheel or probe it by ranges
//! itself.

use larder_dist::sparse::{MIN_FETCH, SparseFile};
use larder_index::{DistFilename, Sha256};
use larder_store::FileRecord;
use larder_upstream::{FileStream, RangeAnswer};
use url::Url;

use crate::downloads::upstream_url;
use crate::{Proxy, ProxyError};

/// At most this many range requests per wheel.
const MAX_FETCHES: usize = 8;

/// At most this many bytes fetched per wheel (a zip directory of tens of
/// thousands of members, and its METADATA).
const MAX_BYTES: u64 = 16 * 1024 * 1024;

impl Proxy {
    /// Reads a wheel's METADATA from the upstream by ranges, stores it and
    /// records it for the file; its digest.
    pub(crate) async fn metadata_by_ranges(&self, record: &FileRecord) -> Result<Sha256, ProxyError> {
        let failed = |reason: String| ProxyError::Ranges(format!("{}: metadata by ranges: {reason}", record.filename));
        let dist = match DistFilename::parse(&record.filename) {
            Ok(dist @ DistFilename::Wheel(_)) => dist,
            _ => return Err(failed("not a wheel".into())),
        };
        let url = upstream_url(record)?;
        let mut file =
            self.fetch_tail(&url).await?.ok_or_else(|| failed("the upstream does not serve ranges".into()))?;
        for _ in 0..MAX_FETCHES {
            let read = {
                use std::io::Seek;
                file.rewind().map_err(|e| failed(e.to_string()))?;
                larder_dist::read_core_metadata(&record.filename, &dist, &mut file)
            };
            let error = match read {
                Ok(bytes) => {
                    let store = &self.inner.store;
                    let blob = store.blobs().put_bytes(&bytes, None).await?;
                    store.db().record_metadata(&record.sha256, &record.filename, &blob.sha256, true).await?;
                    tracing::info!(filename = %record.filename, fetched = file.known_bytes(), "core metadata read by ranges");
                    return Ok(blob.sha256);
                }
                Err(error) => error,
            };
            let Some((offset, length)) = file.missing() else { return Err(failed(error.to_string())) };
            if file.known_bytes() + length > MAX_BYTES {
                return Err(failed(format!("more than {MAX_BYTES} bytes would be needed")));
            }
            let range = format!("bytes={offset}-{}", offset + length - 1);
            match self.inner.upstreams.load_full().fetch_file_range(&url, &range).await? {
                RangeAnswer::Partial { body, .. } => file.add(offset, read_part(body, length).await.map_err(failed)?),
                _ => return Err(failed(format!("the upstream did not answer {range} with a part"))),
            }
        }
        Err(failed(format!("still incomplete after {MAX_FETCHES} range requests")))
    }

    /// The last [`MIN_FETCH`] bytes of a file, in a [`SparseFile`] of its
    /// size; `None` when the upstream does not serve ranges.
    async fn fetch_tail(&self, url: &Url) -> Result<Option<SparseFile>, ProxyError> {
        let RangeAnswer::Partial { content_range, body } =
            self.inner.upstreams.load_full().fetch_file_range(url, &format!("bytes=-{MIN_FETCH}")).await?
        else {
            return Ok(None);
        };
        let bad = || ProxyError::Ranges(format!("{url}: unusable Content-Range {content_range:?}"));
        let (first, size) = parse_content_range(&content_range).ok_or_else(bad)?;
        let bytes = read_part(body, size - first).await.map_err(ProxyError::Ranges)?;
        let mut file = SparseFile::new(size);
        file.add(first, bytes);
        Ok(Some(file))
    }
}

/// `bytes <first>-<last>/<size>` as `(first, size)`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, size): (u64, u64, u64) = (first.parse().ok()?, last.parse().ok()?, size.parse().ok()?);
    (first <= last && last < size).then_some((first, size))
}

/// A part's body, of at most `length` bytes.
async fn read_part(mut body: FileStream, length: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await.map_err(|e| e.to_string())? {
        if bytes.len() as u64 + chunk.len() as u64 > length {
            return Err(format!("the upstream sent more than the {length} bytes asked for"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_the_first_byte_and_the_size() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, 200)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
    }
}
