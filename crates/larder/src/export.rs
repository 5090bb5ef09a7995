//! `larder export` and `larder import`: the store as a static tree, as a
//! bundle for an air-gapped site, or as the manifest of what it holds.

use std::path::PathBuf;

use anyhow::Context;
use larder_export::{BundleOptions, Placement, TreeOptions};

use crate::cli::DataDirArg;

/// Arguments of `larder export`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("output").required(true).args(["to", "bundle", "manifest"])))]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Write a static tree to DIR: simple/index.html, simple/<project>/
    /// index.html (and index.json beside each) and files/, for any web
    /// server or a file:// URL. A re-export updates it, writing only what
    /// changed.
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    /// With --to: copy every file into the tree. By default a file is a
    /// hard link to the store's blob when everyone may read the blob (so
    /// that a web server can serve it) and a copy otherwise.
    #[arg(long, requires = "to", conflicts_with = "link")]
    copy: bool,
    /// With --to: hard-link every file to the store's blob, even one only
    /// its owner may read (for a tree read through file:// as that user).
    #[arg(long, requires = "to")]
    link: bool,
    /// Write one bundle file (tar) to carry to another larder, which reads
    /// it with `larder import`.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// With --bundle: compress it with zstd.
    #[arg(long, requires = "bundle")]
    zstd: bool,
    /// With --bundle: sign the bundle's manifest (which holds every file's
    /// sha256) with this ed25519 secret key (made by `larder bundle-key
    /// generate`), so that `larder import --trust KEYFILE.pub` can tell it
    /// from a forgery.
    #[arg(long, value_name = "KEYFILE", requires = "bundle")]
    sign: Option<PathBuf>,
    /// With --bundle: leave out the files the other store already holds,
    /// as the manifest it made with --manifest says.
    #[arg(long, value_name = "MANIFEST", requires = "bundle")]
    since: Option<PathBuf>,
    /// Write the manifest of what this store holds, to send to the side
    /// that makes the bundles (for --since).
    #[arg(long, value_name = "OUT.json")]
    manifest: Option<PathBuf>,
    /// With --to or --bundle: export this named index as it is served
    /// (its own projects hiding the same names in its bases, its
    /// release-age policy) instead of the default index. A bundle carries
    /// the rows under the indexes they belong to: create the same index on
    /// the importing side to serve them the same way.
    #[arg(long, value_name = "NAME", conflicts_with = "manifest")]
    index: Option<String>,
}

/// Arguments of `larder import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// The bundle (made by `larder export --bundle`, plain or zstd).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Import only a bundle signed by this public key (PEM, as `larder
    /// bundle-key generate` writes to KEYFILE.pub); repeat for several
    /// keys. An unsigned bundle, a bad signature or a key not listed is
    /// refused and nothing is imported. Without --trust, a signature is
    /// checked for damage only, and an unsigned bundle is accepted.
    #[arg(long, value_name = "PUBKEY")]
    trust: Vec<PathBuf>,
}

/// Runs `larder export` and prints what it did.
pub async fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    if let Some(dir) = &args.to {
        let placement = match (args.copy, args.link) {
            (true, _) => Placement::Copy,
            (_, true) => Placement::Link,
            _ => Placement::Auto,
        };
        let report = larder_export::export_tree(&store, dir, TreeOptions { placement, index: args.index.clone() })
            .await
            .with_context(|| format!("cannot export to {}", dir.display()))?;
        println!(
            "{}: {} projects, {} files; wrote {} pages, linked {} and copied {} files, removed {}",
            dir.display(),
            report.projects,
            report.files,
            report.pages_written,
            report.files_linked,
            report.files_copied,
            report.removed
        );
    } else if let Some(file) = &args.bundle {
        let since = args.since.as_deref().map(larder_export::read_store_manifest).transpose()?;
        let sign = args.sign.as_deref().map(crate::bundle_key::read_secret).transpose()?;
        let signed = sign.as_ref().map(|key| format!(", signed by {}", key.public_key())).unwrap_or_default();
        let report = larder_export::export_bundle(
            &store,
            file,
            BundleOptions { zstd: args.zstd, since, sign, index: args.index.clone() },
        )
        .await
        .with_context(|| format!("cannot write the bundle {}", file.display()))?;
        println!(
            "{}: {} projects, {} files; {} blobs ({} bytes) carried, {} left out (the other side has them){signed}",
            file.display(),
            report.projects,
            report.files,
            report.blobs,
            report.bytes,
            report.skipped
        );
    } else if let Some(out) = &args.manifest {
        let manifest = larder_export::store_manifest(&store).await?;
        larder_export::write_store_manifest(&manifest, out)?;
        println!("{}: {} blobs", out.display(), manifest.blobs.len());
    }
    Ok(())
}

/// Runs `larder import` and prints what it did.
pub async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let trusted = crate::bundle_key::read_public(&args.trust)?;
    let store = args.data.open(None).await?;
    let report = larder_export::import_bundle(&store, &args.file, &trusted).await?;
    let signed = match report.signed_by {
        Some(key) if trusted.is_empty() => format!("; signed by {key} (no --trust: not checked against a trusted key)"),
        Some(key) => format!("; signed by trusted key {key}"),
        None => "; unsigned".to_owned(),
    };
    println!(
        "{}: {} projects, {} files; {} blobs written ({} bytes), {} already stored; \
         {} files added, {} updated{signed}",
        args.file.display(),
        report.projects,
        report.files,
        report.blobs_written,
        report.bytes_written,
        report.blobs_present,
        report.changes.files_added,
        report.changes.files_updated
    );
    Ok(())
}
