//! Where connections come from: a TCP port, or a Unix socket (for a web
//! server such as nginx in front of larder on the same machine).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A listening socket larder serves on.
#[derive(Debug)]
pub enum Listener {
    /// A TCP port.
    Tcp(TcpListener),
    /// A Unix stream socket, with the file to remove when serving ends
    /// (none for a socket systemd passed: its file is systemd's).
    Unix(UnixListener, Option<SocketFile>),
}

/// A Unix socket's file, removed when dropped.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An error binding a Unix socket.
#[derive(Debug, thiserror::Error)]
pub enum BindUnixError {
    /// Another server accepts connections on the socket.
    #[error("{0} is in use: another server listens on it")]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// The socket could not be made.
    #[error("cannot listen on {path}")]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Listener {
    /// Listens on a Unix socket at `path`, which is removed again when
    /// serving ends. A socket file left by a server that is gone (nothing
    /// accepts on it) is replaced; a live one is an error.
    pub fn bind_unix(path: &Path) -> Result<Listener, BindUnixError> {
        use std::os::unix::fs::FileTypeExt as _;
        let io_error = |source| BindUnixError::Io { path: path.to_owned(), source };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => return Err(BindUnixError::NotASocket(path.to_owned())),
            Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(BindUnixError::InUse(path.to_owned())),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(io_error)?;
                }
                Err(e) => return Err(io_error(e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_error)?;
        Ok(Listener::Unix(listener, Some(SocketFile(path.to_owned()))))
    }

    /// Where it listens, for people: `http://ADDRESS/` for TCP (with
    /// `scheme`), `unix:PATH` (and the scheme if not `http`) for a Unix
    /// socket.
    pub fn describe(&self, scheme: &str) -> io::Result<String> {
        Ok(match self {
            Listener::Tcp(listener) => format!("{scheme}://{}/", listener.local_addr()?),
            Listener::Unix(listener, _) => {
                let address = listener.local_addr()?;
                let path = address.as_pathname().map_or_else(|| "(unnamed)".into(), |p| p.display().to_string());
                if scheme == "http" { format!("unix:{path}") } else { format!("unix:{path} ({scheme})") }
            }
        })
    }

    /// Accepts the next connection.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, remote) = listener.accept().await?;
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                Ok((Stream::Tcp(stream), Peer::Tcp(remote)))
            }
            Listener::Unix(listener, _) => Ok((Stream::Unix(listener.accept().await?.0), Peer::Unix)),
        }
    }
}

/// An accepted connection.
pub(crate) enum Stream {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over a Unix socket.
    Unix(UnixStream),
}

impl Stream {
    /// Waits until the client has sent something (or closed): true when
    /// there is a byte to read.
    pub(crate) async fn first_byte(&self) -> io::Result<bool> {
        let mut first = [0u8; 1];
        match self {
            Stream::Tcp(stream) => Ok(stream.peek(&mut first).await? == 1),
            Stream::Unix(stream) => {
                // No peek on a Unix stream: readable, then a non-blocking
                // look at the queue.
                loop {
                    stream.readable().await?;
                    let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
                        Ok(rustix::net::recv(stream, &mut first, rustix::net::RecvFlags::PEEK)?.0)
                    });
                    match peeked {
                        Ok(n) => return Ok(n == 1),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// Who is at the other end of a connection, for the log.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Peer {
    /// A TCP client's address.
    Tcp(SocketAddr),
    /// A client of the Unix socket.
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(address) => address.fmt(f),
            Peer::Unix => f.write_str("unix socket client"),
        }
    }
}
