//! Command-line parsing and the commands themselves.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use larder_indexes::LOCAL_INDEX;
use larder_store::{AddOutcome, Store};

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
    /// Serve the store as a package index over HTTP.
    ///
    /// pip and uv install from <URL>/simple/. Pages are PEP 503 HTML or
    /// PEP 691 JSON by Accept header; files are served from the store with
    /// ETag and Range support.
    Serve {
        #[command(flatten)]
        data: DataDirArg,
        /// Address to listen on (port 0 picks a free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:3141", env = "LARDER_LISTEN")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct DataDirArg {
    /// The data directory: blobs and the metadata database. Several larder
    /// processes may share one.
    #[arg(long, default_value = "larder-data", env = "LARDER_DATA_DIR")]
    data_dir: PathBuf,
}

impl DataDirArg {
    async fn open(&self) -> anyhow::Result<Store> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create the data directory {}", self.data_dir.display()))?;
        Store::open(&self.data_dir)
            .await
            .with_context(|| format!("cannot open the data directory {}", self.data_dir.display()))
    }
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Add { data, paths } => add(data, paths).await,
            Command::Serve { data, listen } => serve(data, listen).await,
        }
    }
}

async fn add(data: DataDirArg, paths: Vec<PathBuf>) -> anyhow::Result<()> {
    let store = data.open().await?;
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

async fn serve(data: DataDirArg, listen: SocketAddr) -> anyhow::Result<()> {
    let store = data.open().await?;
    let state = larder_server::AppState::start(store).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    println!("larder listening on http://{address}/");
    tracing::info!(%address, data_dir = %data.data_dir.display(), "serving the local index at /simple/");
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
