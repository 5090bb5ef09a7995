//! `larder add`: publish local distribution files in the local index.

use std::path::PathBuf;

use larder_indexes::LOCAL_INDEX;
use larder_store::AddOutcome;

use crate::cli::DataDirArg;

/// Arguments of `larder add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Distribution files or folders to add (folders are walked, hidden
    /// entries skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Adds the files and prints what happened to each.
pub async fn run(args: AddArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    let report = larder_indexes::add_paths(&store, LOCAL_INDEX, &args.paths).await?;
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
