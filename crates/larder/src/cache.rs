//! `larder pin` and `larder unpin`: projects the bounded cache never
//! evicts; and the store's sizes by kind, as `larder gc` prints them.

use anyhow::bail;
use larder_index::ProjectPatterns;
use larder_mirror::progress::human_bytes;
use larder_store::{KindSize, StoreSizes};

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
