//! `larder serve`: the index server and caching proxy.

use std::path::PathBuf;
use std::time::Duration;

use larder_indexes::Indexes;
use larder_proxy::Proxy;
use larder_store::BlobLocation;
use larder_upstream::Upstreams;
use url::Url;

use crate::cli::{DataDirArg, open_store};
use crate::config::{DEFAULT_LISTEN, UpstreamArgs};
use crate::listen::{ListenAddress, passed_listener};
use crate::reload::ServeOverrides;

/// Arguments of `larder serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Address to listen on: IP:PORT (port 0 picks a free port, printed at
    /// start), or unix:PATH for a Unix socket (for a web server in front on
    /// the same machine; a socket file left by a larder that is gone is
    /// replaced, and the file is removed at exit; its permissions follow
    /// the umask). A socket passed by systemd (socket activation,
    /// LISTEN_FDS; TCP or Unix) is used instead when there is one.
    /// [default: 127.0.0.1:3141]
    #[arg(long, value_name = "ADDRESS", env = "LARDER_LISTEN")]
    listen: Option<ListenAddress>,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// How long a fetched project page is served before the upstream is
    /// asked again (revalidated with its ETag). [default: 10m]
    #[arg(long, value_name = "DURATION", env = "LARDER_PAGE_TTL", value_parser = humantime::parse_duration)]
    page_ttl: Option<Duration>,
    /// How long "no upstream has this project" is remembered. [default: 1m]
    #[arg(long, value_name = "DURATION", env = "LARDER_NEGATIVE_TTL", value_parser = humantime::parse_duration)]
    negative_ttl: Option<Duration>,
    /// How long the upstream's project list (`/simple/`, merged with local
    /// projects) is served before it is fetched again; when the upstream
    /// is down the last one is served. [default: 1h]
    #[arg(long, value_name = "DURATION", env = "LARDER_PROJECT_LIST_TTL", value_parser = humantime::parse_duration)]
    project_list_ttl: Option<Duration>,
    /// The largest file an upload may carry, in bytes; larger uploads get
    /// 413. [default: 1073741824 (1 GiB)]
    #[arg(long, value_name = "BYTES", env = "LARDER_MAX_UPLOAD_BYTES")]
    max_upload_bytes: Option<u64>,
    /// The URL clients reach this server at, when a reverse proxy in front
    /// changes it (another path, TLS): the web pages' install commands and
    /// index URLs start with it. Pages and files use relative links and
    /// need no setting. [default: each request's Host, with https when
    /// X-Forwarded-Proto says so]
    #[arg(long, value_name = "URL", env = "LARDER_PUBLIC_URL", value_parser = crate::config::parse_public_url)]
    public_url: Option<Url>,
    /// Never contact an upstream: serve only what is stored.
    #[arg(long, env = "LARDER_OFFLINE")]
    offline: bool,
    /// Free space to keep on the data dir's disk: below it, requests that
    /// would fetch from an upstream get 507 while everything stored is
    /// still served (bytes, or with a K/M/G suffix; 0 turns it off).
    /// [default: 512M]
    #[arg(long, value_name = "SIZE", env = "LARDER_MIN_FREE_SPACE", value_parser = crate::config::parse_size)]
    min_free_space: Option<u64>,
    /// Bound the cache: when the files fetched for clients take more than
    /// this (bytes, or with a K/M/G suffix), those asked for least
    /// recently are evicted in the background, and fetched again when
    /// asked for. Hosted uploads, mirrored files and pinned projects
    /// (`larder pin`, `pin` in the config) are never evicted nor counted.
    /// [default: no bound]
    #[arg(long, value_name = "SIZE", env = "LARDER_MAX_CACHE_SIZE", value_parser = crate::config::parse_size)]
    max_cache_size: Option<u64>,
    /// How long a client may take to send a request's head, counted from
    /// when larder starts waiting for it: closes slowloris connections and
    /// idle keep-alive connections alike. [default: 30s]
    #[arg(long, value_name = "DURATION", env = "LARDER_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    header_timeout: Option<Duration>,
    /// The most client connections open at once; at the cap, new ones wait
    /// (and the log says so) while connections that have sent nothing for a
    /// second are closed to make room. [default: from the open-file limit]
    #[arg(long, value_name = "N", env = "LARDER_MAX_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
    /// With --blobs s3://...: keep up to SIZE of the most recently used
    /// files on local disk (DATA_DIR/blob-cache), so warm downloads do not
    /// go to the bucket (K/M/G suffixes; 0: no cache). [default: 0]
    #[arg(long, value_name = "SIZE", env = "LARDER_BLOB_CACHE_SIZE", value_parser = crate::config::parse_size)]
    blob_cache_size: Option<u64>,
    /// With a database other larder nodes share: how long a node's claim
    /// on an upstream download lasts unless renewed (every third of it
    /// while the download runs), so how soon another node takes over the
    /// download of a node that died. [default: 30s]
    #[arg(long, value_name = "DURATION", env = "LARDER_DOWNLOAD_LEASE", value_parser = humantime::parse_duration)]
    download_lease: Option<Duration>,
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
    let listen = match args.listen.or(file.listen.clone()) {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().expect("the default address parses"),
    };
    let overrides = ServeOverrides {
        upstream: args.upstream.clone(),
        ttls: crate::config::Ttls {
            page: args.page_ttl,
            negative: args.negative_ttl,
            project_list: args.project_list_ttl,
        },
        offline: args.offline,
        min_free_space: args.min_free_space,
        max_cache_size: args.max_cache_size,
        download_lease: args.download_lease,
    };
    let config = overrides.proxy_config(&file)?;
    let (upstreams, source, settings) = (config.upstreams.clone(), config.source, config.settings.clone());
    let mut blobs = args.data.blobs(Some(&file))?;
    blobs.cache_size = args.blob_cache_size.or(file.blob_cache_size);
    if blobs.location == BlobLocation::DataDir && blobs.cache_size.is_some_and(|size| size > 0) {
        tracing::warn!("--blob-cache-size is for blobs in a bucket (--blobs s3://...); the data directory's are local");
    }
    let database = args.data.database(Some(&file))?;
    let store = open_store(&data_dir, &blobs, &database).await?;
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
        if let Some(limit) = &settings.cache_limit {
            tracing::info!(max_bytes = limit.max_bytes, pins = ?limit.pins, "bounded cache");
        }
        let proxy = Proxy::new(store.clone(), Upstreams::new(upstreams)?, settings);
        proxy.start_eviction();
        Some(proxy)
    };
    let indexes = Indexes::new(store, proxy.clone());
    crate::private::apply_config_indexes(indexes.registry(), &file.index).await?;
    tokio::spawn(crate::reload::on_sighup(overrides, config, proxy.clone(), indexes.clone()));
    let max_upload_bytes =
        args.max_upload_bytes.or(file.max_upload_bytes).unwrap_or(larder_indexes::DEFAULT_MAX_UPLOAD_BYTES);
    let public_url = args.public_url.or(file.public_url);
    let state = larder_server::AppState::start(indexes, max_upload_bytes, public_url).await?;
    let listener = match passed_listener()? {
        Some(listener) => {
            tracing::info!("listening on the socket systemd passed (socket activation); --listen is not used");
            listener
        }
        None => listen.bind().await?,
    };
    let tls = args.tls_cert.zip(args.tls_key).map(|(cert, key)| larder_server::TlsFiles { cert, key });
    let address = listener.describe(if tls.is_some() { "https" } else { "http" })?;
    println!("larder listening on {address}");
    tracing::info!(
        %address,
        data_dir = %data_dir.display(),
        blobs = %blobs.location,
        blob_cache_size = blobs.cache_size.unwrap_or(0),
        %database,
        "serving the index at /simple/"
    );
    let defaults = larder_server::ConnectionLimits::default();
    let limits = larder_server::ConnectionLimits {
        header_timeout: args.header_timeout.unwrap_or(defaults.header_timeout),
        max_connections: args.max_connections.map_or_else(crate::fd_limit::default_max_connections, |n| n as usize),
    };
    tracing::info!(header_timeout = ?limits.header_timeout, max_connections = limits.max_connections, "connection limits");
    crate::notify::ready(&address);
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("stopping: finishing open requests");
        crate::notify::stopping();
    };
    larder_server::serve(listener, state, tls, limits, shutdown).await?;
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
