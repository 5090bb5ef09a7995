//! Zero-copy file responses.
//!
//! A blob is handed to the HTTP layer as a memory map ([`map_file`]), so
//! everything above the socket sees plain bytes, and a connection that
//! cannot do better (TLS) simply writes them. A plain TCP or Unix socket
//! connection ([`SendfileStream`]) looks at each buffer as it is written:
//! when the buffer lies inside a registered map, it is sent with
//! `sendfile(2)` from the mapped file instead. The kernel then hands
//! page-cache pages to the socket: no copy through user space, and the map
//! is never even faulted in. The bytes on the wire are the same either way,
//! because the map and the file are the same immutable blob.
//!
//! Large bodies built in memory and sent many times (rendered pages) get
//! the same treatment through [`shareable`]: they are kept in a sealed
//! in-memory file instead of on the heap.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Buffers smaller than this are written as they are: one `writev` of the
/// headers and a small body beats a `send` and a `sendfile`.
const MIN_SENDFILE: usize = 16 * 1024;

/// Bodies built in memory at least this large are kept in a sealed memory
/// file (see [`shareable`]).
const MIN_SHAREABLE: usize = 64 * 1024;

/// The most one `sendfile` call is asked to send.
const MAX_SENDFILE: usize = 1 << 30;

/// One registered map: its length and the file behind it.
struct Region {
    len: usize,
    file: Arc<File>,
}

/// Every live registered map, by start address.
static REGIONS: LazyLock<RwLock<BTreeMap<usize, Region>>> = LazyLock::new(Default::default);

/// The owner of a registered map: registered on creation, deregistered
/// before the map is unmapped, so an address in the registry always
/// belongs to a live map of that file.
struct RegisteredMap {
    map: memmap2::Mmap,
}

impl AsRef<[u8]> for RegisteredMap {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for RegisteredMap {
    fn drop(&mut self) {
        REGIONS.write().expect("never poisoned").remove(&(self.map.as_ptr() as usize));
    }
}

/// Maps an immutable file of `len` bytes read-only and registers the map
/// for zero-copy sends. The file must never change while mapped: blobs are
/// written under a temporary name and renamed into place, never rewritten
/// or truncated (a rename or removal leaves a live map intact); memory
/// files are sealed.
#[allow(unsafe_code, reason = "memory-mapping a file is unsafe; the SAFETY comment says why this one is sound")]
pub fn map_file(file: File, len: u64) -> io::Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the file is immutable (see above), so the map's bytes never
    // change under the references handed out.
    let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file) }?;
    let region = Region { len: map.len(), file: Arc::new(file) };
    REGIONS.write().expect("never poisoned").insert(map.as_ptr() as usize, region);
    Ok(Bytes::from_owner(RegisteredMap { map }))
}

/// A body built in memory that will be sent many times: a large one is
/// moved into a sealed memory file and mapped, so it is sent without
/// copying; a small one (or any, if no memory file can be made) stays on
/// the heap.
pub fn shareable(body: Vec<u8>) -> Bytes {
    if body.len() < MIN_SHAREABLE {
        return Bytes::from(body);
    }
    match sealed_memory_file(&body).and_then(|file| map_file(file, body.len() as u64)) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::debug!(%error, "cannot keep a page in a memory file; it stays on the heap");
            Bytes::from(body)
        }
    }
}

/// A memory file holding `body`, sealed against any change.
fn sealed_memory_file(body: &[u8]) -> io::Result<File> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let mut file =
        File::from(rustix::fs::memfd_create("larder-body", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?);
    io::Write::write_all(&mut file, body)?;
    rustix::fs::fcntl_add_seals(&file, SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE | SealFlags::SEAL)?;
    Ok(file)
}

/// The file and offset behind `buffer`, when it lies inside a registered
/// map and is worth a `sendfile`.
fn mapped_source(buffer: &[u8]) -> Option<(Arc<File>, u64)> {
    if buffer.len() < MIN_SENDFILE {
        return None;
    }
    let start = buffer.as_ptr() as usize;
    let regions = REGIONS.read().expect("never poisoned");
    let (&region_start, region) = regions.range(..=start).next_back()?;
    (start + buffer.len() <= region_start + region.len).then(|| (region.file.clone(), (start - region_start) as u64))
}

/// A connected socket that `sendfile(2)` and `sendmsg(2)` write to: a TCP
/// connection or a Unix stream.
pub trait SendSocket: AsyncRead + AsyncWrite + AsFd + Unpin {
    /// Waits until the socket may be written to.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Runs a non-blocking operation, clearing readiness on `WouldBlock`.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

macro_rules! send_socket {
    ($($socket:ty),*) => {$(
        impl SendSocket for $socket {
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$socket>::poll_write_ready(self, cx)
            }
            fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                <$socket>::try_io(self, interest, f)
            }
        }
    )*};
}

send_socket!(TcpStream, UnixStream);

/// A connection that sends mapped blobs with `sendfile` (see the module
/// documentation).
pub struct SendfileStream<S = TcpStream>(S);

impl<S: SendSocket> SendfileStream<S> {
    /// Wraps an accepted connection.
    pub fn new(stream: S) -> Self {
        Self(stream)
    }

    /// Runs a non-blocking send once the socket is writable.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_io(Interest::WRITABLE, || send(&self.0)) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    /// Sends `len` bytes of `file` from `offset`.
    fn poll_sendfile(&self, cx: &mut Context<'_>, file: &File, offset: u64, len: usize) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |stream| {
            let mut offset = offset;
            Ok(rustix::fs::sendfile(stream, file, Some(&mut offset), len.min(MAX_SENDFILE))?)
        })
    }

    /// Sends what comes before a mapped body (the response head), telling
    /// the kernel more follows so it goes out in one segment with the body.
    fn poll_send_more(&self, cx: &mut Context<'_>, buffers: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |stream| {
            let mut control = rustix::net::SendAncillaryBuffer::default();
            Ok(rustix::net::sendmsg(stream, buffers, &mut control, rustix::net::SendFlags::MORE)?)
        })
    }
}

impl<S: SendSocket> AsyncRead for SendfileStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: SendSocket> AsyncWrite for SendfileStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mapped = buffers.iter().enumerate().find_map(|(i, buffer)| mapped_source(buffer).map(|source| (i, source)));
        match mapped {
            None => Pin::new(&mut this.0).poll_write_vectored(cx, buffers),
            Some((0, (file, offset))) => this.poll_sendfile(cx, &file, offset, buffers[0].len()),
            Some((first_mapped, _)) => this.poll_send_more(cx, &buffers[..first_mapped]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn blob(len: usize) -> Bytes {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&(0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
        map_file(file, len as u64).unwrap()
    }

    #[test]
    fn finds_the_file_and_offset_behind_a_slice_of_a_map() {
        let bytes = blob(100_000);
        let (_, offset) = mapped_source(&bytes.slice(1000..60_000)).expect("inside the map");
        assert_eq!(offset, 1000);
        assert!(mapped_source(&bytes.slice(1000..2000)).is_none(), "small slices are written");
        assert!(mapped_source(&vec![0u8; 100_000]).is_none(), "heap memory is not a map");
    }

    #[test]
    fn a_large_body_is_kept_in_a_sealed_mapped_memory_file() {
        let body: Vec<u8> = (0..200_000).map(|i| (i % 13) as u8).collect();
        let bytes = shareable(body.clone());
        assert_eq!(bytes[..], body[..]);
        let (file, offset) = mapped_source(&bytes).expect("mapped");
        assert_eq!(offset, 0);
        let error = io::Write::write_all(&mut &*file, b"x").expect_err("sealed");
        assert_eq!(error.raw_os_error(), Some(rustix::io::Errno::PERM.raw_os_error()));
        let small = shareable(vec![1; 100]);
        assert!(mapped_source(&small).is_none() && small[..] == [1; 100][..]);
    }

    #[test]
    fn a_dropped_map_is_forgotten() {
        let bytes = blob(50_000);
        let start = bytes.as_ptr() as usize;
        drop(bytes);
        assert!(!REGIONS.read().unwrap().contains_key(&start));
    }

    #[tokio::test]
    async fn sends_a_map_through_the_socket_byte_for_byte() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut received = Vec::new();
            TcpStream::connect(address).await.unwrap().read_to_end(&mut received).await.unwrap();
            received
        });
        let mut stream = SendfileStream::new(listener.accept().await.unwrap().0);
        let bytes = blob(3 << 20);
        let head = b"head:".to_vec();
        let body = bytes.slice(7..);
        let mut sent = 0;
        let total = head.len() + body.len();
        while sent < total {
            let parts = if sent < head.len() {
                vec![IoSlice::new(&head[sent..]), IoSlice::new(&body)]
            } else {
                vec![IoSlice::new(&body[sent - head.len()..])]
            };
            sent += stream.write_vectored(&parts).await.unwrap();
        }
        stream.shutdown().await.unwrap();
        drop(stream);
        let received = client.await.unwrap();
        assert_eq!(received.len(), total);
        assert_eq!(&received[..5], b"head:");
        assert!(received[5..] == body[..], "the body arrives as mapped");
    }
}
