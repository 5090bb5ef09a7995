//! Command-line parsing and dispatch; each command lives in its own module.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use larder_store::{BlobLocation, BlobsConfig, DatabaseLocation, Store};

use crate::config::{ConfigFile, DEFAULT_DATA_DIR};
use crate::logging::LogFormat;

/// larder keeps Python packages close to the machines that install them:
/// a caching proxy in front of upstream indexes, a private index, and the
/// client configuration that points pip and uv at it.
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
    Add(crate::add::AddArgs),
    /// Serve the package index over HTTP(S): local packages, and a caching
    /// proxy in front of the upstream indexes.
    ///
    /// pip and uv install from <URL>/simple/. Pages are PEP 503 HTML or
    /// PEP 691 JSON by Accept header; every file link points back at larder.
    /// The first request for a project or file fetches it from the first
    /// upstream that answers; later ones are served from the store, also
    /// when the upstreams are down. A project that exists locally hides the
    /// upstream project of the same name.
    ///
    /// SIGTERM (or Ctrl-C) stops it once open requests finish. SIGHUP reads
    /// the --config file again and applies, with no connection dropped: the
    /// upstreams (list, timeouts, retries, credentials, CA bundles),
    /// page-ttl, negative-ttl, project-list-ttl, offline, max-cache-size
    /// and pin (when a cap was set at start), and the [index.<name>] tables
    /// (release-age policy, tokens). Flags and environment still win; the
    /// rest (listen, data-dir, blobs, database, TLS, public-url, max-upload-bytes,
    /// min-free-space, turning the cap on or off) takes a restart. The log
    /// says what changed, or why nothing was (the running settings stay).
    Serve(crate::serve::ServeArgs),
    /// Fill the store ahead of time from the upstreams: chosen projects or
    /// the whole index, filtered, in parallel, resumable.
    ///
    /// Files go through the same verified downloads as the proxy. A re-run
    /// downloads only what is not stored yet; with --all, only projects
    /// whose upstream serial changed are even looked at. Serve the result
    /// with `larder serve --offline` or export it with `larder export`.
    Mirror(crate::mirror::MirrorArgs),
    /// Hash every stored file and metadata blob against its recorded digest.
    ///
    /// With --repair, corrupt blobs are removed and proxied files fetched
    /// again. Exit status 1 when something is wrong.
    Verify(crate::mirror::VerifyArgs),
    /// Remove blobs no file refers to any more, and temporary files left by
    /// crashes; then print the store's sizes by kind (hosted, mirrored,
    /// cached, evictable, evicted).
    Gc(crate::mirror::GcArgs),
    /// Pin projects (names or globs like 'django-*'): the bounded cache
    /// never evicts their files. `--list` prints the pins.
    Pin(crate::cache::PinArgs),
    /// Unpin projects pinned with `larder pin`.
    Unpin(crate::cache::UnpinArgs),
    /// Print what a data dir holds: the distribution files by kind (hosted,
    /// mirrored, cached, evictable, evicted), the cache cap and pins, the
    /// last serial. Works with the server stopped; a running server's
    /// request, upstream and eviction counters are at its /metrics.
    Status(crate::cache::StatusArgs),
    /// Write the store as a static tree (--to DIR) that a web server or a
    /// file:// URL serves to pip and uv, as a bundle (--bundle FILE) to carry
    /// into an air-gapped site, or as the manifest of what it holds
    /// (--manifest OUT.json).
    ///
    /// Tree and bundle hold the default index as `larder serve` shows it,
    /// stored files only. A re-export updates a tree, writing only what
    /// changed; --since MANIFEST leaves out of a bundle what the other side has.
    Export(crate::export::ExportArgs),
    /// Copy the store's blobs into an S3 bucket (--to-blobs s3://...) or
    /// back into a data directory, and with --to-database its metadata
    /// into PostgreSQL (or back into SQLite), to move a single-machine
    /// store onto shared storage or off it.
    ///
    /// Every blob is verified against its digest on the way. Re-running
    /// skips what the target holds already, so an interrupted run is
    /// resumed by running it again. Serve the result with --blobs (and
    /// --database).
    MigrateStore(crate::migrate::MigrateArgs),
    /// Import a bundle made by `larder export --bundle` (plain or zstd).
    ///
    /// Every file is checked against the bundle's manifest before it is
    /// stored; a truncated, damaged or malformed bundle is refused and
    /// nothing of it is imported. Importing a bundle twice changes nothing.
    ///
    /// An unsigned bundle is protected against damage (a flipped bit, a
    /// cut-off copy, a clumsy edit), not against tampering: whoever can
    /// change it on its way can rebuild it whole, manifest included. With
    /// --trust PUBKEY, only a bundle signed (export --sign) by one of those
    /// keys is imported: an unsigned bundle, a bad signature or another key
    /// is refused before anything is stored.
    Import(crate::export::ImportArgs),
    /// Make the key pair that signs bundles (export --sign KEYFILE) and
    /// checks them (import --trust KEYFILE.pub).
    BundleKey(crate::bundle_key::BundleKeyArgs),
    /// Print (or write, or restore) the configuration that points pip, uv,
    /// twine, poetry or pdm at larder.
    ///
    /// Without --write the configuration is printed. With --write it is
    /// written where that client reads it, after keeping what was there;
    /// --restore puts that back exactly.
    ClientConfig(crate::client::ClientConfigArgs),
    /// Create, change and list the named indexes (hosted, layered over
    /// bases, or mirrors), their access rules and release-age policies.
    Index(crate::private::IndexArgs),
    /// Create, list and revoke the API tokens that uploads (and reads of
    /// token-read indexes) need.
    Token(crate::private::TokenArgs),
    /// Yank a release or file of a hosted index (PEP 592): installers skip
    /// it unless pinned exactly.
    Yank(crate::private::ChangeArgs),
    /// Undo a yank.
    Unyank(crate::private::ChangeArgs),
    /// Delete a release or file of a hosted index for good; its filenames
    /// are never accepted again.
    Delete(crate::private::ChangeArgs),
    /// Set the PEP 792 status of a hosted project: archived or quarantined
    /// projects take no uploads, a quarantined one lists no files, active
    /// undoes it; pages carry it as project-status.
    ProjectStatus(crate::private::StatusArgs),
    /// Run a command (a build, an image step) with pip and uv pointed at
    /// larder through environment variables; nothing on disk changes.
    ///
    /// Build isolation environments and sdist builds inherit the same
    /// settings. The exit status is the command's.
    ///
    /// Sets: PIP_INDEX_URL (the first --url) and PIP_EXTRA_INDEX_URL (the
    /// others); UV_DEFAULT_INDEX (the last --url) and UV_INDEX (the others);
    /// PIP_TRUSTED_HOST and UV_INSECURE_HOST for plain-HTTP URLs; with
    /// --cert, PIP_CERT, REQUESTS_CA_BUNDLE and SSL_CERT_FILE; with
    /// --retries, PIP_RETRIES and UV_HTTP_RETRIES; with --timeout,
    /// PIP_TIMEOUT and UV_HTTP_TIMEOUT.
    ///
    /// Drops (so that an inherited one cannot send a client elsewhere):
    /// UV_INDEX_URL, UV_EXTRA_INDEX_URL, PIP_FIND_LINKS, UV_FIND_LINKS,
    /// PIP_NO_INDEX, UV_NO_INDEX, and any of the variables above that has
    /// no value here (PIP_EXTRA_INDEX_URL and UV_INDEX with one URL,
    /// PIP_TRUSTED_HOST and UV_INSECURE_HOST for HTTPS). Every other
    /// variable passes through unchanged.
    Exec(crate::client::ExecArgs),
}

/// `--data-dir`, `--blobs` and `--database`, shared by the commands that
/// open the store.
#[derive(clap::Args)]
pub struct DataDirArg {
    /// The data directory: the metadata database, new files while they are
    /// checked, and (by default) the blobs. Several larder processes may
    /// share one. [default: larder-data]
    #[arg(long, env = "LARDER_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Where the blobs (package files) are kept: `s3://BUCKET/PREFIX` for
    /// an S3-compatible bucket, or `data-dir`. The endpoint, region and
    /// credentials come from the AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables or the config
    /// file's [s3] table. [default: data-dir]
    #[arg(long, value_name = "LOCATION", env = "LARDER_BLOBS", global = true)]
    blobs: Option<BlobLocation>,
    /// The metadata database: postgres://USER:PASSWORD@HOST:PORT/NAME (one
    /// database that several larder nodes share), or sqlite://PATH. Its
    /// password is never printed. [default: larder.db in the data
    /// directory]
    #[arg(long, value_name = "URL", env = "LARDER_DATABASE", hide_env_values = true, global = true)]
    database: Option<String>,
}

impl std::fmt::Debug for DataDirArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the database URL as given: it may hold a password.
        let database = self.database.as_deref().map(|url| match url.parse::<DatabaseLocation>() {
            Ok(location) => location.to_string(),
            Err(_) => "(unreadable URL)".to_owned(),
        });
        f.debug_struct("DataDirArg")
            .field("data_dir", &self.data_dir)
            .field("blobs", &self.blobs)
            .field("database", &database)
            .finish()
    }
}

impl DataDirArg {
    /// The flag's value, else the config file's, else the default.
    pub fn path(&self, file: Option<&ConfigFile>) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| file.and_then(|f| f.data_dir.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Where blobs are kept: the flag's value, else the config file's,
    /// else the data directory.
    pub fn blobs(&self, file: Option<&ConfigFile>) -> anyhow::Result<BlobsConfig> {
        let location = self.blobs.clone().or_else(|| file.and_then(|f| f.blobs.clone())).unwrap_or_default();
        let s3 = file.map(|f| f.s3.settings()).transpose()?.unwrap_or_default();
        Ok(BlobsConfig { location, s3, cache_size: None })
    }

    /// The metadata database: the flag's value, else the config file's,
    /// else the SQLite file in the data directory.
    pub fn database(&self, file: Option<&ConfigFile>) -> anyhow::Result<DatabaseLocation> {
        Ok(match self.database.as_deref() {
            Some(url) => url.parse().context("--database (LARDER_DATABASE)")?,
            None => match file.and_then(|f| f.database.clone()) {
                Some(location) => location,
                None => DatabaseLocation::in_data_dir(&self.path(file)),
            },
        })
    }

    /// Opens (creating when needed) the store these flags and `file` name.
    pub async fn open(&self, file: Option<&ConfigFile>) -> anyhow::Result<Store> {
        open_store(&self.path(file), &self.blobs(file)?, &self.database(file)?).await
    }
}

/// Opens (creating when needed) the store of `data_dir` with its blobs
/// where `blobs` says and its metadata in `database`.
pub async fn open_store(data_dir: &Path, blobs: &BlobsConfig, database: &DatabaseLocation) -> anyhow::Result<Store> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    Store::open_with(data_dir, blobs, database).await.with_context(|| {
        format!(
            "cannot open the store (data directory {}, blobs {}, database {database})",
            data_dir.display(),
            blobs.location
        )
    })
}

impl Cli {
    /// Where this command's log lines go: a server queues them for a
    /// writer thread, everything else writes them directly.
    pub fn log_writer(&self) -> crate::logging::Writer {
        match self.command {
            Command::Serve(_) => crate::logging::Writer::Background,
            _ => crate::logging::Writer::Direct,
        }
    }

    /// Runs the chosen command; returns the process exit code.
    pub async fn run(self) -> anyhow::Result<i32> {
        match self.command {
            Command::Add(args) => crate::add::run(args).await.map(|()| 0),
            Command::Serve(args) => crate::serve::run(args).await.map(|()| 0),
            Command::Mirror(args) => crate::mirror::run(args).await,
            Command::Verify(args) => crate::mirror::run_verify(args).await,
            Command::Gc(args) => crate::mirror::run_gc(args).await.map(|()| 0),
            Command::Pin(args) => crate::cache::run_pin(args).await.map(|()| 0),
            Command::Unpin(args) => crate::cache::run_unpin(args).await.map(|()| 0),
            Command::Status(args) => crate::cache::run_status(args).await.map(|()| 0),
            Command::Export(args) => crate::export::run_export(args).await.map(|()| 0),
            Command::MigrateStore(args) => crate::migrate::run(args).await,
            Command::Import(args) => crate::export::run_import(args).await.map(|()| 0),
            Command::BundleKey(args) => crate::bundle_key::run(args).map(|()| 0),
            Command::ClientConfig(args) => crate::client::client_config(args).map(|()| 0),
            Command::Exec(args) => crate::client::exec(args),
            Command::Index(args) => crate::private::run_index(args).await.map(|()| 0),
            Command::Token(args) => crate::private::run_token(args).await.map(|()| 0),
            Command::Yank(args) => crate::private::run_change(crate::private::ChangeKind::Yank, args).await.map(|()| 0),
            Command::Unyank(args) => {
                crate::private::run_change(crate::private::ChangeKind::Unyank, args).await.map(|()| 0)
            }
            Command::Delete(args) => {
                crate::private::run_change(crate::private::ChangeKind::Delete, args).await.map(|()| 0)
            }
            Command::ProjectStatus(args) => crate::private::run_status(args).await.map(|()| 0),
        }
    }
}
