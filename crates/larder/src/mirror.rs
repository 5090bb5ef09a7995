//! `larder mirror`, `larder verify` and `larder gc`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use larder_index::NormalizedName;
use larder_index::tags::TargetEnvironment;
use larder_mirror::progress::human_bytes;
use larder_mirror::{FileFilter, Mirror, Progress, Summary, all, gc, lockfile, verify};
use larder_proxy::{Proxy, ProxySettings};
use larder_upstream::Upstreams;

use crate::cli::DataDirArg;
use crate::config::UpstreamArgs;

/// Arguments of `larder mirror`.
#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Mirror these projects (repeatable).
    #[arg(long = "project", value_name = "NAME")]
    projects: Vec<String>,
    /// Mirror the projects named in this file (one per line, `#` comments).
    #[arg(long, value_name = "FILE")]
    projects_file: Option<PathBuf>,
    /// Mirror the full dependency closure of these requirements files
    /// (pins, ranges, extras, markers, nested -r), resolved for every
    /// --python-version × --platform, with the build requirements of sdists.
    /// A lock file (pylock.toml, pylock.<name>.toml, uv.lock) is mirrored as
    /// it is: exactly the files it pins, checked against its digests.
    #[arg(long = "requirements", value_name = "FILE")]
    requirements: Vec<PathBuf>,
    /// Target Python versions (e.g. 3.12); with --platform, they also keep
    /// only the wheels those environments can install.
    #[arg(long = "python-version", value_name = "X.Y")]
    python_versions: Vec<String>,
    /// Target platform tags (e.g. manylinux_2_28_x86_64, musllinux_1_2_aarch64,
    /// macosx_11_0_arm64, win_amd64).
    #[arg(long = "platform", value_name = "TAG")]
    platforms: Vec<String>,
    /// Mirror the whole upstream index; re-runs fetch only what changed
    /// (by the upstream's serials) and resume where a killed run stopped.
    #[arg(long)]
    all: bool,
    /// Mirror only projects matching these globs (e.g. 'django-*').
    #[arg(long = "allow", value_name = "GLOB")]
    allow: Vec<String>,
    /// Never mirror projects matching these globs.
    #[arg(long = "block", value_name = "GLOB")]
    block: Vec<String>,
    /// Keep only the newest N releases of each project.
    #[arg(long, value_name = "N")]
    keep_latest: Option<usize>,
    /// Leave pre-releases and development releases out.
    #[arg(long)]
    no_prereleases: bool,
    /// Leave out files larger than this (bytes, or with a K/M/G suffix).
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    max_file_size: Option<u64>,
    /// Files (and pages) fetched at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    jobs: usize,
    /// Mirror for this named index: a project's files are those the index
    /// serves (its hosted projects hide the upstream ones unless merged,
    /// its release-age policy holds back files too young), instead of the
    /// default index's (local packages over the upstream).
    #[arg(long, value_name = "NAME")]
    index: Option<String>,
    /// No progress bar or progress lines; only the summary.
    #[arg(long)]
    quiet: bool,
}

/// Runs a mirror; exit code 1 when anything failed or a project asked for
/// is on no upstream.
pub async fn run(args: MirrorArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let file = args.upstream.config_file()?;
    let (upstreams, _) = args.upstream.resolve(&file, false)?;
    if upstreams.is_empty() {
        bail!("nothing to mirror from: give --upstream URL (or [[upstream]] in --config, or configure pip's index)");
    }
    let names = project_names(&args)?;
    if names.is_empty() && !args.all && args.requirements.is_empty() {
        bail!("say what to mirror: --project NAME, --projects-file FILE, --requirements FILE or --all");
    }
    let environments = target_environments(&args.python_versions, &args.platforms)?;
    let (lock_files, requirements_files): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.requirements.iter().partition(|path| lockfile::is_lock_file(path));
    if !requirements_files.is_empty() && environments.is_empty() {
        bail!(
            "--requirements needs the target environments: give --python-version X.Y and --platform TAG (each repeatable)"
        );
    }
    let mut roots = Vec::new();
    let mut unusable = Vec::new();
    for path in requirements_files {
        let (requirements, rejected) = larder_mirror::requirements::read_requirements(path)
            .with_context(|| format!("cannot read the requirements file {}", path.display()))?;
        roots.extend(requirements);
        unusable.extend(rejected);
    }
    let mut locked = Vec::new();
    for path in lock_files {
        let (files, rejected) = lockfile::read_lock_file(path)?;
        locked.extend(files);
        unusable.extend(rejected);
    }
    let store = args.data.open(Some(&file)).await?;
    // A mirror run always asks the upstream (conditionally) for the pages
    // it mirrors; the serve-time freshness does not apply.
    let settings = ProxySettings { page_ttl: Duration::ZERO, negative_ttl: Duration::ZERO, ..ProxySettings::default() };
    let proxy = Proxy::new(store.clone(), Upstreams::new(upstreams)?, settings);
    let mut filter = FileFilter::with_projects(&args.allow, &args.block)?;
    filter.keep_latest = args.keep_latest;
    filter.prereleases = !args.no_prereleases;
    filter.max_file_size = args.max_file_size;
    filter.targets = environments.clone();
    let progress = Progress::start(args.quiet);
    let mut mirror = Mirror::new(store, proxy, filter, args.jobs, progress.clone());
    if let Some(name) = &args.index {
        let index = mirror.indexes().registry().get(name).await?;
        mirror = mirror.for_index(index.with_context(|| format!("no index named {name:?} (see `larder index list`)"))?);
    }
    let mut summary = Summary::default();
    for line in unusable {
        summary.failures.push((line.location, line.reason));
    }
    if !roots.is_empty() {
        larder_mirror::closure::mirror_requirements(&mirror, &roots, &environments, &mut summary).await;
    }
    if !locked.is_empty() {
        lockfile::mirror_locked(&mirror, &locked, &mut summary).await;
    }
    if !names.is_empty() {
        mirror.projects(&names, &mut summary).await;
    }
    let all_report =
        if args.all { Some(all::mirror_all(&mirror, &mirror.proxy().upstreams(), &mut summary).await?) } else { None };
    progress.finish();
    if let Some(report) = all_report {
        println!(
            "upstream lists {} projects: {} unchanged since the last run, {} gone upstream and dropped",
            report.listed, report.unchanged, report.removed
        );
    }
    print_summary(&summary, started.elapsed());
    Ok(i32::from(!summary.failures.is_empty() || !summary.missing.is_empty()))
}

/// Every --python-version × --platform pair (none when either is missing,
/// which --requirements refuses and the filter reads as "every wheel").
fn target_environments(pythons: &[String], platforms: &[String]) -> anyhow::Result<Vec<TargetEnvironment>> {
    if pythons.is_empty() != platforms.is_empty() {
        bail!("give --python-version and --platform together (each repeatable): a wheel targets both");
    }
    pythons
        .iter()
        .flat_map(|python| platforms.iter().map(move |platform| (python, platform)))
        .map(|(python, platform)| TargetEnvironment::parse(python, platform).map_err(anyhow::Error::from))
        .collect()
}

fn project_names(args: &MirrorArgs) -> anyhow::Result<Vec<NormalizedName>> {
    let mut raw: Vec<String> = args.projects.clone();
    if let Some(path) = &args.projects_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        raw.extend(
            text.lines()
                .map(|line| line.split('#').next().unwrap_or_default().trim())
                .filter(|line| !line.is_empty())
                .map(str::to_owned),
        );
    }
    let mut names = raw
        .iter()
        .map(|name| NormalizedName::new(name).with_context(|| format!("cannot mirror {name:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    names.sort();
    names.dedup();
    Ok(names)
}

fn print_summary(summary: &Summary, elapsed: Duration) {
    println!(
        "mirrored {} projects: {} files downloaded ({}), {} already stored, {} left out by filters, {} failed, in {:.1}s",
        summary.projects,
        summary.downloaded,
        human_bytes(summary.bytes),
        summary.present,
        summary.filtered,
        summary.failures.len(),
        elapsed.as_secs_f64()
    );
    if summary.while_resolving > 0 {
        println!(
            "{} of the files downloaded were fetched while resolving (to read their metadata); {} of those no target needs, and were removed again",
            summary.while_resolving, summary.discarded
        );
    }
    if !summary.missing.is_empty() {
        println!("not on any upstream: {}", join(&summary.missing));
    }
    if !summary.shadowed.is_empty() {
        println!("skipped, hidden by hosted projects of the same name: {}", join(&summary.shadowed));
    }
    for (what, reason) in &summary.failures {
        println!("failed: {what}: {reason}");
    }
}

fn join(names: &[NormalizedName]) -> String {
    names.iter().map(NormalizedName::as_str).collect::<Vec<_>>().join(", ")
}

/// Arguments of `larder verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Remove corrupt blobs, and fetch proxied files again from the
    /// upstream (hosted files cannot be fetched again: add them again).
    #[arg(long)]
    repair: bool,
    /// Skip files found sound less than this long ago (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Check only the next N files after where the previous --sample run
    /// stopped (starting over after the last): a rolling check, a slice
    /// of the store per run.
    #[arg(long, value_name = "N")]
    sample: Option<u64>,
    /// Blobs hashed at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// No progress bar or progress lines; only the report.
    #[arg(long)]
    quiet: bool,
}

/// Verifies the store; exit code 1 when anything is wrong (and was not
/// repaired).
pub async fn run_verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let file = args.upstream.config_file()?;
    let store = args.data.open(Some(&file)).await?;
    let proxy = if args.repair {
        let (upstreams, _) = args.upstream.resolve(&file, false)?;
        (!upstreams.is_empty())
            .then(|| Upstreams::new(upstreams).map(|u| Proxy::new(store.clone(), u, ProxySettings::default())))
            .transpose()?
    } else {
        None
    };
    let progress = Progress::start(args.quiet);
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = verify::VerifyOptions { repair: args.repair, since: args.since, sample: args.sample, jobs };
    let report = verify::verify(&store, proxy.as_ref(), &options, &progress).await?;
    progress.finish();
    println!("checked {} blobs ({})", report.checked, human_bytes(report.bytes));
    if report.recent > 0 {
        println!("skipped {} files found sound within --since", report.recent);
    }
    for (filename, digest) in &report.corrupt {
        println!("corrupt: {filename} (expected sha256 {digest})");
    }
    for filename in &report.missing {
        println!("missing: {filename} (a local file whose blob is gone: add it again)");
    }
    for (filename, why) in &report.metadata_missing {
        match why {
            None => println!("no core metadata: {filename} (extracted again by --repair)"),
            Some(why) => println!("no core metadata: {filename} ({why})"),
        }
    }
    if args.repair {
        println!(
            "removed {} corrupt blobs, {} of them fetched again (the rest are fetched on demand, or must be added again if local); extracted the core metadata of {} wheels",
            report.removed, report.repaired, report.metadata_extracted
        );
    }
    // Sound: nothing missing, and nothing corrupt left in the store.
    let corrupt_left = report.corrupt.len() as u64 - report.removed;
    let metadata_left = report.metadata_missing.len() as u64 - report.metadata_extracted;
    let sound = report.missing.is_empty() && corrupt_left == 0 && metadata_left == 0;
    if sound && report.corrupt.is_empty() && report.metadata_missing.is_empty() {
        println!("the store is sound");
    }
    Ok(i32::from(!sound))
}

/// Arguments of `larder gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// Only say what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this (a writer may not have
    /// recorded them yet).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    grace: Duration,
}

/// Removes unreferenced blobs and stale temporary files.
pub async fn run_gc(args: GcArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    let report = gc::gc(&store, args.grace, args.dry_run).await?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} {} unreferenced blobs ({}) and {} stale temporary files; kept {}",
        report.removed,
        human_bytes(report.freed),
        report.temp_files,
        report.kept
    );
    let sizes = larder_proxy::evict::store_sizes(&store, &[]).await?;
    println!("distribution files stored, by kind (evictable: cached and not pinned with `larder pin`):");
    for line in crate::cache::size_lines(&sizes) {
        println!("  {line}");
    }
    Ok(())
}
