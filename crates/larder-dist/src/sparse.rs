//! A file of which only some byte ranges are at hand, read as if it were
//! whole: reading the core metadata of a remote wheel needs only its zip
//! directory (at the end) and its METADATA member, a few kilobytes of what
//! may be hundreds of megabytes. The caller reads from a [`SparseFile`];
//! when a read reaches bytes it does not have, the read fails and
//! [`SparseFile::missing`] says which range to fetch; the caller adds it
//! and reads again.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

/// The least a caller should fetch for one miss: small reads (a zip local
/// header) are rounded up so that one fetch usually brings the member too.
pub const MIN_FETCH: u64 = 64 * 1024;

/// A file of `size` bytes, some ranges of which are known.
#[derive(Debug)]
pub struct SparseFile {
    size: u64,
    /// Known ranges by start offset (never overlapping a later one's start).
    pieces: BTreeMap<u64, Vec<u8>>,
    position: u64,
    missing: Option<(u64, u64)>,
}

impl SparseFile {
    /// A file of `size` bytes of which nothing is known yet.
    pub fn new(size: u64) -> Self {
        Self { size, pieces: BTreeMap::new(), position: 0, missing: None }
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the bytes at `offset` (a range fetched for a miss).
    pub fn add(&mut self, offset: u64, bytes: Vec<u8>) {
        self.pieces.insert(offset, bytes);
        self.missing = None;
    }

    /// The range `(offset, length)` the last failed read needed, clamped to
    /// the file and rounded up to [`MIN_FETCH`]; `None` when no read failed
    /// since the last [`SparseFile::add`].
    pub fn missing(&self) -> Option<(u64, u64)> {
        let (offset, length) = self.missing?;
        Some((offset, length.max(MIN_FETCH).min(self.size - offset)))
    }

    /// How many bytes are known.
    pub fn known_bytes(&self) -> u64 {
        self.pieces.values().map(|piece| piece.len() as u64).sum()
    }

    /// The known bytes that start at `offset`, as far as they run on.
    fn known_at(&self, offset: u64) -> Option<&[u8]> {
        let (start, piece) = self.pieces.range(..=offset).next_back()?;
        let skip = usize::try_from(offset - start).ok()?;
        piece.get(skip..).filter(|rest| !rest.is_empty())
    }
}

impl Read for SparseFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.position >= self.size {
            return Ok(0);
        }
        let Some(known) = self.known_at(self.position) else {
            let wanted = (buf.len() as u64).min(self.size - self.position);
            self.missing = Some((self.position, wanted));
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "bytes not fetched yet"));
        };
        let n = known.len().min(buf.len());
        buf[..n].copy_from_slice(&known[..n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SparseFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.position = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_known_and_names_what_is_not() {
        let mut file = SparseFile::new(200_000);
        file.add(199_990, vec![9; 10]);
        file.seek(SeekFrom::End(-4)).unwrap();
        let mut tail = [0u8; 8];
        assert_eq!(file.read(&mut tail).unwrap(), 4);
        assert_eq!(file.read(&mut tail).unwrap(), 0, "end of file");
        file.seek(SeekFrom::Start(100)).unwrap();
        assert!(file.read(&mut tail).is_err());
        assert_eq!(file.missing(), Some((100, MIN_FETCH)));
        file.seek(SeekFrom::Start(199_000)).unwrap();
        assert!(file.read(&mut tail).is_err());
        assert_eq!(file.missing(), Some((199_000, 1000)), "clamped to the file");
        file.add(199_000, vec![1; 990]);
        assert_eq!(file.missing(), None);
        let mut all = Vec::new();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 1000);
        assert_eq!(file.known_bytes(), 1000);
    }
}
