//! `larder migrate-store`: copies a store's blobs into another place (the
//! data directory's into an S3 bucket, or a bucket's into a data
//! directory), verified and resumable, then (--to-database) its metadata
//! into a database of the other backend.

use std::path::{Path, PathBuf};

use anyhow::Context;
use larder_mirror::Progress;
use larder_mirror::migrate::{self, CopyReport};
use larder_mirror::progress::human_bytes;
use larder_store::{BlobLocation, Blobs, BlobsConfig, Database, DatabaseLocation, S3Location};

use crate::cli::DataDirArg;
use crate::config::ConfigFile;

/// Arguments of `larder migrate-store`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The store to copy from: --data-dir and --blobs as for `serve`.
    #[command(flatten)]
    data: DataDirArg,
    /// Where the blobs go: `s3://BUCKET/PREFIX` (endpoint, region and
    /// credentials from the AWS variables or the config file's [s3]), or
    /// a data directory DIR (into DIR/blobs; the store's own data
    /// directory to bring blobs back from a bucket).
    #[arg(long, value_name = "LOCATION")]
    to_blobs: String,
    /// Also copy the metadata into this database, once every blob is
    /// copied: postgres://... from the store's SQLite database, or
    /// sqlite://PATH from its PostgreSQL one. It must be new or empty;
    /// the copy is one transaction (run it again after a failure).
    #[arg(long, value_name = "URL")]
    to_database: Option<String>,
    /// Blobs copied at once.
    #[arg(long, value_name = "N", default_value_t = migrate::JOBS)]
    jobs: usize,
    /// No progress bar: the summary only.
    #[arg(long)]
    quiet: bool,
    /// A TOML config file (data-dir, blobs, [s3]).
    #[arg(long, value_name = "FILE", env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
}

/// Where the blobs go.
enum Target {
    Bucket(S3Location),
    DataDir(PathBuf),
}

/// Copies the blobs and prints what was done; exit status 1 when a source
/// blob is corrupt (it is not copied).
pub async fn run(args: MigrateArgs) -> anyhow::Result<i32> {
    let file = args.config.as_deref().map(ConfigFile::load).transpose()?;
    let file = file.as_ref();
    let to_database = args.to_database.as_deref().map(str::parse::<DatabaseLocation>).transpose()?;
    let data_dir = args.data.path(file);
    let source_config = args.data.blobs(file)?;
    let target = if args.to_blobs.starts_with("s3://") {
        Target::Bucket(args.to_blobs.parse()?)
    } else {
        Target::DataDir(PathBuf::from(&args.to_blobs))
    };
    refuse_same(&data_dir, &source_config.location, &target)?;
    let source = args.data.open(file).await?;
    let target_blobs = match &target {
        Target::Bucket(location) => {
            let config = BlobsConfig { location: BlobLocation::S3(location.clone()), ..source_config.clone() };
            Blobs::from_config(&data_dir, &config).await?
        }
        Target::DataDir(dir) => {
            Blobs::filesystem(dir).with_context(|| format!("cannot open the data directory {}", dir.display()))?
        }
    };
    let progress = Progress::start(args.quiet);
    let report = migrate::copy_blobs(source.blobs(), &target_blobs, args.jobs, &progress).await;
    progress.finish();
    let report = report?;
    print_summary(&report, &args.to_blobs);
    if !report.corrupt.is_empty() {
        if to_database.is_some() {
            println!("the metadata was not copied: repair the source first");
        }
        return Ok(1);
    }
    if let Some(location) = &to_database {
        let target = Database::connect(location).await?;
        let copied = source.db().copy_into(&target).await?;
        println!("copied the metadata ({} rows of {} tables) to {location}", copied.rows, copied.tables);
    }
    Ok(0)
}

fn print_summary(report: &CopyReport, to: &str) {
    println!(
        "copied {} blobs ({}) to {to}; {} already there ({}) were skipped",
        report.copied,
        human_bytes(report.copied_bytes),
        report.present,
        human_bytes(report.present_bytes),
    );
    if report.gone > 0 {
        println!("{} blobs were removed from the source while copying", report.gone);
    }
    for sha256 in &report.corrupt {
        println!("corrupt in the source, not copied: sha256 {sha256} (run `larder verify --repair`)");
    }
}

/// Refuses to copy blobs onto themselves.
fn refuse_same(data_dir: &Path, source: &BlobLocation, target: &Target) -> anyhow::Result<()> {
    let same = match (source, target) {
        (BlobLocation::S3(from), Target::Bucket(to)) => from == to,
        (BlobLocation::DataDir, Target::DataDir(dir)) => {
            let _ = std::fs::create_dir_all(dir);
            std::fs::canonicalize(dir).ok() == std::fs::canonicalize(data_dir).ok()
        }
        _ => false,
    };
    anyhow::ensure!(!same, "the blobs are there already: --to-blobs names the store's own blobs");
    Ok(())
}
