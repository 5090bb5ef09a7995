//! Where `larder serve` listens: `--listen` (a TCP address or
//! `unix:PATH`), or the socket systemd passed.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context as _;
use larder_server::Listener;

/// A `--listen` value: `HOST:PORT`, or `unix:PATH` for a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddress {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket's path.
    Unix(PathBuf),
}

/// A `--listen` value that is neither form.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an address to listen on: give IP:PORT (127.0.0.1:3141, [::1]:3141) or unix:PATH")]
pub struct BadListenAddress(String);

impl FromStr for ListenAddress {
    type Err = BadListenAddress;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Ok(ListenAddress::Unix(path.into())),
            Some(_) => Err(BadListenAddress(text.to_owned())),
            None => text.parse().map(ListenAddress::Tcp).map_err(|_| BadListenAddress(text.to_owned())),
        }
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Tcp(address) => address.fmt(f),
            ListenAddress::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ListenAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ListenAddress {
    /// Opens the listening socket. A Unix socket's file is replaced when
    /// a server that is gone left it, and removed when serving ends.
    pub async fn bind(&self) -> anyhow::Result<Listener> {
        match self {
            ListenAddress::Tcp(address) => Ok(Listener::Tcp(
                tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?,
            )),
            ListenAddress::Unix(path) => Ok(Listener::bind_unix(path)?),
        }
    }
}

/// The socket systemd passed (socket activation: `LISTEN_FDS` and
/// `LISTEN_PID` name this process), TCP or Unix, if any.
pub fn passed_listener() -> anyhow::Result<Option<Listener>> {
    let mut passed = listenfd::ListenFd::from_env();
    if let Ok(tcp) = passed.take_tcp_listener(0) {
        let Some(listener) = tcp else { return Ok(None) };
        listener.set_nonblocking(true)?;
        return Ok(Some(Listener::Tcp(tokio::net::TcpListener::from_std(listener)?)));
    }
    let Some(unix) = passed
        .take_unix_listener(0)
        .context("the socket systemd passed (LISTEN_FDS) is not a listening TCP or Unix stream socket")?
    else {
        return Ok(None);
    };
    unix.set_nonblocking(true)?;
    Ok(Some(Listener::Unix(tokio::net::UnixListener::from_std(unix)?, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_and_unix_paths_parse() {
        assert_eq!(
            "127.0.0.1:3141".parse::<ListenAddress>().unwrap(),
            ListenAddress::Tcp(([127, 0, 0, 1], 3141).into())
        );
        assert_eq!(
            "unix:/run/larder/larder.sock".parse::<ListenAddress>().unwrap(),
            ListenAddress::Unix("/run/larder/larder.sock".into())
        );
        assert_eq!("unix:/run/x.sock".parse::<ListenAddress>().unwrap().to_string(), "unix:/run/x.sock");
        for bad in ["unix:", "localhost", "3141", "/run/larder.sock"] {
            let error = bad.parse::<ListenAddress>().unwrap_err().to_string();
            assert!(error.contains("unix:PATH"), "{bad}: {error}");
        }
    }
}
