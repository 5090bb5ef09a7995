//! Command-line parsing and the commands themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use larder_indexes::{Indexes, LOCAL_INDEX};
use larder_proxy::Proxy;
use larder_store::{AddOutcome, Store};
use larder_upstream::Upstreams;
use url::Url;

use crate::config::{ConfigFile, UpstreamOverrides, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use crate::logging::LogFormat;

/// larder keeps Python packages close to the machines that install them:
/// a package index for pip and uv, served from a local store.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "LARDER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add wheels and sdists (files, or folders of them) to the local index.
    ///
    /// Each file is hashed and its core metadata (a wheel's METADATA, an
    /// sdist's PKG-INFO) is read and kept. Adding a file that is already
    /// there is a no-op; a different file under an existing filename is
    /// refused. Either every file is added or, on any error, none is.
    Add {
        #[command(flatten)]
        data: DataDirArg,
        /// Distribution files or folders to add (folders are walked, hidden
        /// entries skipped).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Serve the package index over HTTP: local packages, and a caching
    /// proxy in front of the upstream indexes.
    ///
    /// pip and uv install from <URL>/simple/. Pages are PEP 503 HTML or
    /// PEP 691 JSON by Accept header; every file link points back at larder.
    /// The first request for a project or file fetches it from the first
    /// upstream that answers; later ones are served from the store, also
    /// when the upstreams are down. A project that exists locally hides the
    /// upstream project of the same name.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// The data directory: blobs and the metadata database. Several larder
    /// processes may share one. [default: larder-data]
    #[arg(long, env = "LARDER_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address to listen on; port 0 picks a free port (printed at start).
    /// [default: 127.0.0.1:3141]
    #[arg(long, env = "LARDER_LISTEN")]
    listen: Option<SocketAddr>,
    /// An upstream index (its Simple API root, e.g. https://HOST/simple/),
    /// in order of preference; repeat for fallbacks. Credentials may be
    /// written in the URL. Without any (here, in the environment or in the
    /// config file), pip's configured index is used.
    #[arg(long = "upstream", value_name = "URL", env = "LARDER_UPSTREAM", value_delimiter = ',')]
    upstreams: Vec<Url>,
    /// Connect and read timeout for each upstream request. [default: 30s]
    #[arg(long, value_name = "DURATION", env = "LARDER_UPSTREAM_TIMEOUT", value_parser = humantime::parse_duration)]
    upstream_timeout: Option<Duration>,
    /// Retries on one upstream before moving on to the next; 0 moves on at
    /// the first failure. [default: 2]
    #[arg(long, value_name = "N", env = "LARDER_UPSTREAM_RETRIES")]
    upstream_retries: Option<u32>,
    /// Extra CA certificates (PEM bundle) to trust for the upstreams.
    #[arg(long, value_name = "FILE", env = "LARDER_UPSTREAM_CA_BUNDLE")]
    upstream_ca_bundle: Option<PathBuf>,
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
    /// A TOML config file (data-dir, listen, offline, page-ttl,
    /// negative-ttl, and [[upstream]] tables with url, timeout, retries,
    /// username, password-env, ca-bundle). Flags and environment win.
    #[arg(long, value_name = "FILE", env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
}

impl DataDirArg {
    fn path(&self, file: Option<&ConfigFile>) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| file.and_then(|f| f.data_dir.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

async fn open_store(data_dir: &std::path::Path) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    Store::open(data_dir)
        .await
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Add { data, paths } => add(data, paths).await,
            Command::Serve(args) => serve(args).await,
        }
    }
}

async fn add(data: DataDirArg, paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let store = open_store(&data.path(None)).await?;
    let report = larder_indexes::add_paths(&store, LOCAL_INDEX, &paths).await?;
    let mut added = 0;
    for (filename, outcome) in &report.files {
        match outcome {
            AddOutcome::Added => {
                added += 1;
                println!("added    {filename}");
            }
            AddOutcome::AlreadyPresent => println!("present  {filename}"),
        }
    }
    println!("{added} added, {} already present", report.files.len() - added);
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref().map(ConfigFile::load).transpose()?.unwrap_or_default();
    let data_dir = args.data.path(Some(&file));
    let listen = match args.listen.or(file.listen) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().expect("the default address parses"),
    };
    let settings = file.proxy_settings(args.page_ttl, args.negative_ttl, args.offline);
    let overrides = UpstreamOverrides {
        urls: args.upstreams,
        timeout: args.upstream_timeout,
        retries: args.upstream_retries,
        ca_bundle: args.upstream_ca_bundle,
    };
    let (upstreams, source) = file.upstreams(&overrides, settings.offline)?;
    let store = open_store(&data_dir).await?;
    let proxy = if upstreams.is_empty() && !settings.offline {
        tracing::warn!("no upstream configured (no --upstream, LARDER_UPSTREAM, config file or pip index): serving local packages only");
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
    let state = larder_server::AppState::start(Indexes::new(store, proxy)).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    println!("larder listening on http://{address}/");
    tracing::info!(%address, data_dir = %data_dir.display(), "serving the index at /simple/");
    larder_server::serve(listener, state, shutdown_signal()).await?;
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
