//! Accepting and serving connections, plain HTTP or HTTPS alike, with the
//! limits that keep hostile or broken clients from taking the server down:
//!
//! - a **header timeout**: a client must send a request's head within it,
//!   counted from when larder starts waiting for that head, so it closes
//!   both slowloris connections (a header a byte at a time) and idle
//!   keep-alive connections (HTTP/1; hyper runs one timer for both); over
//!   TLS, the handshake must also be done within it;
//! - a **connection cap**: at the cap, larder stops accepting (new
//!   connections wait in the kernel's backlog) and says so in the log,
//!   instead of running out of file descriptors and answering nobody; and
//!   while it holds, connections that have sent nothing for
//!   [`SILENT_GRACE`] are closed, every [`SILENT_GRACE`], to make room (a
//!   client with a request sends it at once);
//! - accept errors (out of descriptors included) are logged and retried
//!   after a short pause, never a busy loop or a silent stop.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::dispatch::Dispatch;
use crate::listener::{Listener, Peer, Stream};
use crate::sendfile::{SendSocket, SendfileStream};

/// Limits on client connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request head (also the idle
    /// keep-alive timeout).
    pub header_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(30), max_connections: 4096 }
    }
}

/// The most often the connection limit is reported while it holds.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// At the cap, how long a connection may stay silent (no first byte)
/// before it is closed to make room, and how often that is looked at.
const SILENT_GRACE: Duration = Duration::from_secs(1);

/// How long to pause after a failed `accept` (out of descriptors, say).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The HTTP/1 and HTTP/2 connection builder with the limits applied.
pub(crate) fn http_builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    builder
}

/// What an accepted connection speaks.
#[derive(Clone)]
pub(crate) enum Transport {
    /// Plain HTTP/1 or HTTP/2 (told apart by the first bytes).
    Plain,
    /// TLS first, then HTTP/1 or HTTP/2 as ALPN chose.
    Tls(TlsAcceptor),
}

/// The builders a connection is served with.
struct Builders {
    /// HTTP/1 or HTTP/2, told apart by the first bytes.
    auto: Builder<TokioExecutor>,
    /// HTTP/1 only: its header timer runs from the start.
    http1: Builder<TokioExecutor>,
    /// HTTP/2 only.
    http2: Builder<TokioExecutor>,
}

/// Serves `service` on `listener` until `shutdown` completes, then lets
/// open connections finish their requests.
pub(crate) async fn serve(
    listener: Listener,
    service: Dispatch,
    limits: ConnectionLimits,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let builders = Arc::new(Builders {
        auto: http_builder(&limits),
        http1: http_builder(&limits).http1_only(),
        http2: http_builder(&limits).http2_only(),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut last_cap_warning: Option<Instant> = None;
    let (stop_tx, stop_rx) = watch::channel(());
    // Sent to at the cap: silent connections close.
    let (shed_tx, shed_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
                    last_cap_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until one closes, and connections that send nothing are closed (raise --max-connections, or look for clients holding connections open)"
                    );
                }
                let waited = async {
                    loop {
                        shed_tx.send_replace(());
                        tokio::select! {
                            slot = slots.clone().acquire_owned() => return slot.expect("the semaphore is never closed"),
                            () = tokio::time::sleep(SILENT_GRACE) => {}
                        }
                    }
                };
                tokio::select! {
                    slot = waited => slot,
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        tracing::error!(%error, "cannot accept connections; retrying shortly");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            builders: builders.clone(),
            service: service.clone(),
            stop: stop_rx.clone(),
            remote,
            header_timeout: limits.header_timeout,
        };
        let transport = transport.clone();
        let shed = shed_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // hyper's header timer starts once it knows the protocol, which
            // takes a first byte: a plain connection that sends none is
            // closed here (TLS has its handshake timeout).
            if matches!(transport, Transport::Plain) && !first_byte(&stream, connection.header_timeout, shed).await {
                return;
            }
            match stream {
                Stream::Tcp(stream) => connection.serve(stream, transport).await,
                Stream::Unix(stream) => connection.serve(stream, transport).await,
            }
        });
    }
    drop(stop_rx);
    stop_tx.send_replace(());
    // Every connection task holds a receiver: closed() completes once all
    // of them have finished.
    stop_tx.closed().await;
    Ok(())
}

/// Waits for a plain connection's first byte, within `header_timeout`;
/// `false` when none came: the timeout passed, the client went away, or the
/// server is at its cap (`shed` changed) and the connection has been silent
/// for [`SILENT_GRACE`].
async fn first_byte(stream: &Stream, header_timeout: Duration, mut shed: watch::Receiver<()>) -> bool {
    let accepted = Instant::now();
    shed.mark_unchanged();
    let mut first = std::pin::pin!(tokio::time::timeout(header_timeout, stream.first_byte()));
    loop {
        tokio::select! {
            got = &mut first => return matches!(got, Ok(Ok(true))),
            changed = shed.changed() => {
                if changed.is_err() {
                    // The server is stopping: no more shedding.
                    return matches!(first.await, Ok(Ok(true)));
                }
                if accepted.elapsed() >= SILENT_GRACE {
                    return false;
                }
            }
        }
    }
}

/// One accepted connection and what serving it takes.
struct Connection {
    builders: Arc<Builders>,
    service: Dispatch,
    stop: watch::Receiver<()>,
    remote: Peer,
    header_timeout: Duration,
}

impl Connection {
    /// Serves HTTP on `stream`: plain (HTTP/1 or HTTP/2 by the first
    /// bytes, files sent with `sendfile`), or over TLS after a handshake
    /// done within the header timeout (HTTP/1 or HTTP/2 as ALPN chose).
    async fn serve<S: SendSocket + Send + 'static>(self, stream: S, transport: Transport) {
        let Connection { builders, service, stop, remote, header_timeout } = self;
        let acceptor = match transport {
            Transport::Plain => {
                let io = TokioIo::new(SendfileStream::new(stream));
                return drive(builders.auto.serve_connection(io, service), stop, remote).await;
            }
            Transport::Tls(acceptor) => acceptor,
        };
        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                // ALPN told the protocol: the HTTP/1 header timer runs from
                // the start, no first byte needed.
                let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let builder = if http2 { &builders.http2 } else { &builders.http1 };
                drive(builder.serve_connection(TokioIo::new(tls), service), stop, remote).await;
            }
            Ok(Err(error)) => tracing::debug!(%remote, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%remote, "TLS handshake not done within the header timeout"),
        }
    }
}

/// Serves one connection until it ends, or until `stop` says to finish the
/// request in flight and close.
async fn drive<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    connection: hyper_util::server::conn::auto::Connection<'_, TokioIo<S>, Dispatch, TokioExecutor>,
    mut stop: watch::Receiver<()>,
    remote: Peer,
) {
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => log_end(result, remote),
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            log_end(connection.await, remote);
        }
    }
}

/// Errors of one connection, not of the listener: try the next one.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>, remote: Peer) {
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "connection ended with an error");
    }
}
