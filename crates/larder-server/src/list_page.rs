//! The project list as a cached page. A whole index's list (about 740,000
//! projects, some 30 MB of HTML) is rendered a project at a time off the
//! async threads, straight into a gzip stream once it outgrows
//! [`GZIP_ABOVE`], and kept compressed: clients that accept gzip get
//! those bytes as they are, others get them decompressed as they are
//! sent, a chunk at a time.

use std::io::{self, Read, Write};

use axum::body::Body;
use bytes::{Buf, Bytes};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use larder_index::PageFormat;
use larder_indexes::ProjectListing;

use crate::cache::{self, RenderedPage};

/// A page body larger than this is kept gzip-compressed.
const GZIP_ABOVE: usize = 256 * 1024;

/// How much of a compressed page is decompressed per chunk sent.
const CHUNK: usize = 64 * 1024;

/// Renders a listing as a page (on a blocking thread: a large one takes
/// a good part of a second).
pub(crate) async fn render(
    listing: ProjectListing,
    format: PageFormat,
    outcome: &'static str,
) -> io::Result<RenderedPage> {
    tokio::task::spawn_blocking(move || {
        let mut out = Spill::default();
        listing.write(&mut out, format)?;
        Ok(RenderedPage::of(out.finish()?, format, listing.last_serial, outcome))
    })
    .await
    .map_err(io::Error::other)?
}

/// A writer that keeps what it is given, compressing it once it outgrows
/// [`GZIP_ABOVE`].
#[derive(Default)]
struct Spill {
    plain: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    written: u64,
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len() as u64;
        if let Some(gzip) = &mut self.gzip {
            gzip.write_all(buf)?;
        } else {
            self.plain.extend_from_slice(buf);
            if self.plain.len() > GZIP_ABOVE {
                let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
                gzip.write_all(&std::mem::take(&mut self.plain))?;
                self.gzip = Some(gzip);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Spill {
    fn finish(self) -> io::Result<cache::Body> {
        Ok(match self.gzip {
            Some(gzip) => cache::Body::Gzip { compressed: gzip.finish()?, plain_len: self.written },
            None => cache::Body::Plain(self.plain),
        })
    }
}

/// A gzip-compressed body sent decompressed, a chunk at a time.
pub(crate) fn decompressed(compressed: Bytes) -> Body {
    let decoder = Some(GzDecoder::new(compressed.reader()));
    let chunks = futures_util::stream::unfold(decoder, |decoder| async move {
        let mut decoder = decoder?;
        let mut chunk = vec![0; CHUNK];
        match decoder.read(&mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(Bytes::from(chunk)), Some(decoder)))
            }
            Err(error) => Some((Err(error), None)),
        }
    });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_are_compressed_and_come_back_whole() {
        let mut small = Spill::default();
        small.write_all(b"<html></html>").unwrap();
        assert!(matches!(small.finish().unwrap(), cache::Body::Plain(body) if body == b"<html></html>"));

        let mut large = Spill::default();
        let line = b"    <a href=\"synth-0000001/\">synth-0000001</a><br/>\n";
        for _ in 0..20_000 {
            large.write_all(line).unwrap();
        }
        let cache::Body::Gzip { compressed, plain_len } = large.finish().unwrap() else { panic!("not compressed") };
        assert_eq!(plain_len, 20_000 * line.len() as u64);
        assert!(compressed.len() * 50 < plain_len as usize, "{} bytes", compressed.len());
        let mut whole = Vec::new();
        GzDecoder::new(&compressed[..]).read_to_end(&mut whole).unwrap();
        assert_eq!(whole.len() as u64, plain_len);
    }
}
