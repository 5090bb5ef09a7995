//! `larder serve`: the index server and caching proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use larder_indexes::Indexes;
use larder_proxy::Proxy;
use larder_upstream::Upstreams;

use crate::cli::{DataDirArg, open_store};
use crate::config::{DEFAULT_LISTEN, UpstreamArgs};

/// Arguments of `larder serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address to listen on; port 0 picks a free port (printed at start).
    /// [default: 127.0.0.1:3141]
    #[arg(long, env = "LARDER_LISTEN")]
    listen: Option<SocketAddr>,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// How long a fetched project page is served before the upstream is
    /// asked again (revalidated with its ETag). [default: 10m]
    #[arg(long, value_name = "DURATION", env = "LARDER_PAGE_TTL", value_parser = humantime::parse_duration)]
    page_ttl: Option<Duration>,
    /// How long "no upstream has this project" is remembered. [default: 1m]
    #[arg(long, value_name = "DURATION", env = "LARDER_NEGATIVE_TTL", value_parser = humantime::parse_duration)]
    negative_ttl: Option<Duration>,
    /// Never contact an upstream: serve only what is stored.
    #[arg(long, env = "LARDER_OFFLINE")]
    offline: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", env = "LARDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", env = "LARDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = args.upstream.config_file()?;
    let data_dir = args.data.path(Some(&file));
    let listen = match args.listen.or(file.listen) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().expect("the default address parses"),
    };
    let settings = file.proxy_settings(args.page_ttl, args.negative_ttl, args.offline);
    let (upstreams, source) = args.upstream.resolve(&file, settings.offline)?;
    let store = open_store(&data_dir).await?;
    let proxy = if upstreams.is_empty() && !settings.offline {
        tracing::warn!(
            "no upstream configured (no --upstream, LARDER_UPSTREAM, config file or pip index): serving local packages only"
        );
        None
    } else {
        for upstream in &upstreams {
            tracing::info!(url = %upstream.url, timeout = ?upstream.timeout, retries = upstream.retries, source, "upstream");
        }
        if settings.offline {
            tracing::info!("offline: no upstream is contacted; serving what is stored");
        }
        Some(Proxy::new(store.clone(), Upstreams::new(upstreams)?, settings))
    };
    let state = larder_server::AppState::start(Indexes::new(store, proxy.clone())).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let tls = args.tls_cert.zip(args.tls_key).map(|(cert, key)| larder_server::TlsFiles { cert, key });
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("larder listening on {scheme}://{address}/");
    tracing::info!(%address, data_dir = %data_dir.display(), "serving the index at /simple/");
    larder_server::serve(listener, state, tls, shutdown_signal()).await?;
    if let Some(proxy) = proxy {
        proxy.finish_storing().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
