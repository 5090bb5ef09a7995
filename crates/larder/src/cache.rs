//! `larder pin` and `larder unpin`: projects the bounded cache never
//! evicts; `larder status`: what a data dir holds, by kind, as `/metrics`
//! reports it (the server may be stopped); and the sizes by kind as
//! `larder gc` prints them too.

use anyhow::bail;
use larder_index::ProjectPatterns;
use larder_mirror::progress::human_bytes;
use larder_store::{KindSize, StoreSizes};

use crate::config::ConfigFile;

use crate::cli::DataDirArg;

/// Arguments of `larder pin`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Projects (or globs over names, like 'django-*') whose cached files
    /// are never evicted.
    #[arg(value_name = "PROJECT", required_unless_present = "list")]
    projects: Vec<String>,
    /// List the pinned projects instead.
    #[arg(long, conflicts_with = "projects")]
    list: bool,
}

/// Arguments of `larder unpin`.
#[derive(Debug, clap::Args)]
pub struct UnpinArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Pinned projects (or globs) to unpin.
    #[arg(value_name = "PROJECT", required = true)]
    projects: Vec<String>,
}

/// Arguments of `larder status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// The config file `larder serve` runs with (for its data-dir, blobs,
    /// max-cache-size and pin patterns).
    #[arg(long, value_name = "FILE", env = "LARDER_CONFIG")]
    config: Option<std::path::PathBuf>,
}

/// `larder status`.
pub async fn run_status(args: StatusArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref().map(ConfigFile::load).transpose()?.unwrap_or_default();
    let store = args.data.open(Some(&file)).await?;
    let limit = file.cache_limit(None)?;
    let extra_pins = limit.as_ref().map_or(&[][..], |limit| &limit.pins[..]);
    let sizes = larder_proxy::evict::store_sizes(&store, extra_pins).await?;
    println!("data dir: {}", args.data.path(Some(&file)).display());
    println!("last serial: {}", store.db().last_serial().await?);
    match &limit {
        Some(limit) => println!("cache cap: {} ({} bytes)", human_bytes(limit.max_bytes), limit.max_bytes),
        None => println!("cache cap: none in the config (larder serve --max-cache-size sets one)"),
    }
    let mut pins = store.db().pins().await?;
    pins.extend(extra_pins.iter().cloned());
    println!("pinned: {}", if pins.is_empty() { "none".to_owned() } else { pins.join(", ") });
    println!("distribution files stored, by kind:");
    for line in size_lines(&sizes) {
        println!("  {line}");
    }
    Ok(())
}

/// The patterns as they are stored (normalized), each checked.
fn patterns(projects: &[String]) -> anyhow::Result<Vec<String>> {
    Ok(ProjectPatterns::new(projects)?.patterns().to_vec())
}

/// `larder pin`.
pub async fn run_pin(args: PinArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    if args.list {
        for pattern in store.db().pins().await? {
            println!("{pattern}");
        }
        return Ok(());
    }
    let patterns = patterns(&args.projects)?;
    let added = store.db().add_pins(&patterns).await?;
    for pattern in &patterns {
        let state = if added.contains(pattern) { "pinned" } else { "already pinned" };
        println!("{state}: {pattern}");
    }
    Ok(())
}

/// `larder unpin`; an error when a pattern was not pinned.
pub async fn run_unpin(args: UnpinArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    let patterns = patterns(&args.projects)?;
    let removed = store.db().remove_pins(&patterns).await?;
    for pattern in &removed {
        println!("unpinned: {pattern}");
    }
    let missing: Vec<&String> = patterns.iter().filter(|p| !removed.contains(p)).collect();
    if !missing.is_empty() {
        bail!("not pinned: {}", missing.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

/// The sizes by kind, one line each (`kind  files  bytes`).
pub fn size_lines(sizes: &StoreSizes) -> Vec<String> {
    let line = |kind: &str, size: &KindSize| {
        format!("{kind:<10} {:>8} files {:>12} ({} bytes)", size.files, human_bytes(size.bytes), size.bytes)
    };
    vec![
        line("hosted", &sizes.hosted),
        line("mirrored", &sizes.mirrored),
        line("cached", &sizes.cached),
        line("evictable", &sizes.evictable),
        line("evicted", &sizes.evicted),
    ]
}
