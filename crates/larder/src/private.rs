//! `larder index`, `larder token`, `larder yank|unyank|delete` and
//! `larder project-status`: the private indexes from the command line.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, bail};
use larder_index::{IndexDefinition, NormalizedName, ProjectStatus};
use larder_indexes::{Change, Indexes, Registry, Scope, Target, tokens};

use crate::cli::DataDirArg;

/// `larder index ...`.
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IndexCommand {
    /// Create an index: hosted (takes uploads), layered (hosted over
    /// --bases, in order), or a mirror of the upstreams.
    ///
    /// `larder index create team --bases upstream` makes a layered index
    /// whose uploads hide the upstream projects of the same names. It is
    /// served at /team/simple/ and takes uploads at /team/.
    Create {
        /// The index name (lowercase letters, digits, '-', '_').
        name: String,
        #[command(flatten)]
        settings: IndexSettings,
    },
    /// Change settings of an index; what is not given stays.
    Update {
        /// The index name.
        name: String,
        #[command(flatten)]
        settings: IndexSettings,
    },
    /// List every index with its kind, bases and policy.
    List,
    /// Remove an index definition (its files stay in the store).
    Remove {
        /// The index name.
        name: String,
    },
}

/// Settings of `index create` and `index update`.
#[derive(Debug, clap::Args)]
struct IndexSettings {
    /// hosted, mirror or layered [default: hosted; layered with --bases].
    #[arg(long)]
    kind: Option<String>,
    /// Indexes under this one, in order of preference (e.g. upstream).
    #[arg(long, value_delimiter = ',', value_name = "INDEX")]
    bases: Option<Vec<String>>,
    /// Whether reading needs a token with read scope.
    #[arg(long, value_name = "BOOL")]
    token_read: Option<bool>,
    /// Hide upstream files younger than this (e.g. 7d; 0 turns it off).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    min_release_age: Option<Duration>,
    /// Projects the release-age policy does not apply to.
    #[arg(long, value_delimiter = ',', value_name = "PROJECT")]
    release_age_exempt: Option<Vec<String>>,
    /// Projects whose base versions are merged with the hosted ones instead
    /// of being hidden by them (only for names you trust upstream).
    #[arg(long, value_delimiter = ',', value_name = "PROJECT")]
    merge_bases: Option<Vec<String>>,
}

/// The TOML form of an index, `[index.<name>]` in the config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IndexEntry {
    /// hosted, mirror or layered.
    pub kind: Option<String>,
    /// The bases, in order.
    #[serde(default)]
    pub bases: Vec<String>,
    /// Whether reading needs a token.
    #[serde(default)]
    pub token_read: bool,
    /// The minimum release age (`"7d"`).
    pub min_release_age: Option<String>,
    /// Exempt projects.
    #[serde(default)]
    pub release_age_exempt: Vec<String>,
    /// Projects merged with the bases.
    #[serde(default)]
    pub merge_bases: Vec<String>,
}

fn project_names(names: &[String]) -> anyhow::Result<BTreeSet<NormalizedName>> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| NormalizedName::new(n).with_context(|| format!("{n:?} is not a project name")))
        .collect()
}

impl IndexEntry {
    /// The definition this entry describes.
    pub fn definition(&self, name: &str) -> anyhow::Result<IndexDefinition> {
        let kind = IndexDefinition::kind_from(name, self.kind.as_deref().unwrap_or("hosted"), self.bases.clone())?;
        let mut definition = IndexDefinition::new(name, kind)?;
        definition.anonymous_read = !self.token_read;
        definition.release_age.min_age = self
            .min_release_age
            .as_deref()
            .map(humantime::parse_duration)
            .transpose()
            .with_context(|| format!("index {name}: min-release-age"))?;
        definition.release_age.exempt = project_names(&self.release_age_exempt)?;
        definition.merge_bases = project_names(&self.merge_bases)?;
        Ok(definition)
    }
}

impl IndexSettings {
    fn apply(self, name: &str, base: Option<IndexDefinition>) -> anyhow::Result<IndexDefinition> {
        let kind_name = self.kind.as_deref().or(base.as_ref().map(|b| b.kind.as_str())).unwrap_or("hosted");
        let bases = self.bases.or_else(|| base.as_ref().map(|b| b.kind.bases().to_vec())).unwrap_or_default();
        let kind = IndexDefinition::kind_from(name, kind_name, bases)?;
        let mut definition = match base {
            Some(mut base) => {
                base.kind = kind;
                base
            }
            None => IndexDefinition::new(name, kind)?,
        };
        if let Some(token_read) = self.token_read {
            definition.anonymous_read = !token_read;
        }
        if let Some(age) = self.min_release_age {
            definition.release_age.min_age = (!age.is_zero()).then_some(age);
        }
        if let Some(exempt) = self.release_age_exempt {
            definition.release_age.exempt = project_names(&exempt)?;
        }
        if let Some(merge) = self.merge_bases {
            definition.merge_bases = project_names(&merge)?;
        }
        Ok(definition)
    }
}

/// Stores the config file's indexes, bases before the indexes over them.
pub async fn apply_config_indexes(
    registry: &Registry,
    entries: &std::collections::BTreeMap<String, IndexEntry>,
) -> anyhow::Result<()> {
    let mut pending: Vec<IndexDefinition> =
        entries.iter().map(|(name, entry)| entry.definition(name)).collect::<anyhow::Result<_>>()?;
    while !pending.is_empty() {
        let known = registry.all().await?;
        let (ready, waiting): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|d| d.kind.bases().iter().all(|b| known.contains_key(b) || !entries.contains_key(b)));
        if ready.is_empty() {
            bail!("the config file's indexes name each other as bases in a cycle");
        }
        for definition in ready {
            let name = definition.name.clone();
            registry.put(definition).await.with_context(|| format!("config file: index {name}"))?;
        }
        pending = waiting;
    }
    Ok(())
}

/// Runs `larder index ...`.
pub async fn run_index(args: IndexArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    let registry = Registry::new(store);
    match args.command {
        IndexCommand::Create { name, settings } => {
            if registry.all().await?.contains_key(&name) && !matches!(name.as_str(), "local" | "upstream") {
                bail!("index {name} exists; change it with `larder index update`");
            }
            let definition = settings.apply(&name, None)?;
            registry.put(definition.clone()).await?;
            println!("created index {name} ({}): pages at /{name}/simple/, uploads to /{name}/", describe(&definition));
        }
        IndexCommand::Update { name, settings } => {
            let current = registry.get(&name).await?.with_context(|| format!("no index named {name:?}"))?;
            let definition = settings.apply(&name, Some(IndexDefinition::clone(&current)))?;
            registry.put(definition.clone()).await?;
            println!("updated index {name} ({})", describe(&definition));
        }
        IndexCommand::List => {
            for definition in registry.all().await?.values() {
                println!("{:<20} {}", definition.name, describe(definition));
            }
        }
        IndexCommand::Remove { name } => {
            registry.remove(&name).await?;
            println!("removed index {name}");
        }
    }
    Ok(())
}

fn describe(definition: &IndexDefinition) -> String {
    let mut parts = vec![definition.kind.as_str().to_owned()];
    if !definition.kind.bases().is_empty() {
        parts.push(format!("bases {}", definition.kind.bases().join(", ")));
    }
    parts.push(if definition.anonymous_read { "anonymous read" } else { "token read" }.to_owned());
    if let Some(age) = definition.release_age.min_age {
        parts.push(format!("min release age {}", humantime::format_duration(age)));
    }
    if !definition.release_age.exempt.is_empty() {
        parts.push(format!("exempt {}", join(&definition.release_age.exempt)));
    }
    if !definition.merge_bases.is_empty() {
        parts.push(format!("merging {}", join(&definition.merge_bases)));
    }
    parts.join("; ")
}

fn join(names: &BTreeSet<NormalizedName>) -> String {
    names.iter().map(NormalizedName::as_str).collect::<Vec<_>>().join(", ")
}

/// `larder token ...`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    data: DataDirArg,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown this once; only a salted
    /// hash is stored). Clients send it with HTTP Basic auth, username
    /// __token__ (twine: TWINE_USERNAME=__token__ TWINE_PASSWORD=<token>).
    Create {
        /// The index it is for.
        #[arg(long)]
        index: String,
        /// read, upload (includes read) or admin (includes both, and yank,
        /// unyank, delete).
        #[arg(long)]
        scope: Scope,
        /// Lifetime (e.g. 90d); without it the token lasts until revoked.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
        /// What the token is for (shown by `token list`).
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only the tokens of this index.
        #[arg(long)]
        index: Option<String>,
    },
    /// Revoke a token by its id; it stops working at once.
    Revoke {
        /// The token id (as `token list` shows it).
        id: String,
    },
}

/// Runs `larder token ...`.
pub async fn run_token(args: TokenArgs) -> anyhow::Result<()> {
    let store = args.data.open(None).await?;
    match args.command {
        TokenCommand::Create { index, scope, expires, description } => {
            let registry = Registry::new(store.clone());
            registry.get(&index).await?.with_context(|| format!("no index named {index:?}"))?;
            let token = tokens::create(&store, &index, scope, expires, description).await?;
            eprintln!(
                "created token {} for index {index} with scope {scope}{}; the secret is shown this once:",
                token.info.id,
                token.info.expires.map(|at| format!(", expiring {at}")).unwrap_or_default()
            );
            println!("{}", token.secret);
        }
        TokenCommand::List { index } => {
            for token in tokens::list(&store, index.as_deref()).await? {
                let state = match (token.revoked, token.expires) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) if at <= jiff::Timestamp::now() => format!("expired {at}"),
                    (None, Some(at)) => format!("expires {at}"),
                    (None, None) => "no expiry".to_owned(),
                };
                println!(
                    "{}  {:<16} {:<6} created {}  {state}  {}",
                    token.id,
                    token.index,
                    token.scope,
                    token.created,
                    token.description.unwrap_or_default()
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !tokens::revoke(&store, &id).await? {
                bail!("no live token with id {id}");
            }
            println!("revoked token {id}");
        }
    }
    Ok(())
}

/// `larder yank|unyank|delete`.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// The hosted or layered index.
    #[arg(long)]
    index: String,
    /// The project.
    project: String,
    /// The release (every file of it); or give --file.
    #[arg(value_name = "VERSION", required_unless_present = "file", conflicts_with = "file")]
    release: Option<String>,
    /// One file instead of a whole release.
    #[arg(long, value_name = "FILENAME")]
    file: Option<String>,
    /// Why (PEP 592 yank reason; yank only).
    #[arg(long)]
    reason: Option<String>,
}

/// Which change `larder yank|unyank|delete` makes.
#[derive(Clone, Copy, Debug)]
pub enum ChangeKind {
    /// `yank`.
    Yank,
    /// `unyank`.
    Unyank,
    /// `delete`.
    Delete,
}

/// The indexes of a data dir, and one of them by name.
async fn open_index(data: &DataDirArg, name: &str) -> anyhow::Result<(Indexes, std::sync::Arc<IndexDefinition>)> {
    let indexes = Indexes::new(data.open(None).await?, None);
    let index = indexes.registry().get(name).await?.with_context(|| format!("no index named {name:?}"))?;
    Ok((indexes, index))
}

/// Runs `larder yank|unyank|delete`.
pub async fn run_change(kind: ChangeKind, args: ChangeArgs) -> anyhow::Result<()> {
    let (indexes, index) = open_index(&args.data, &args.index).await?;
    let project = NormalizedName::new(&args.project)?;
    let target = match (args.release, args.file) {
        (Some(version), None) => Target::Release(version),
        (None, Some(file)) => Target::File(file),
        _ => bail!("give a version or --file"),
    };
    let change = match kind {
        ChangeKind::Yank => Change::Yank(args.reason.unwrap_or_default()),
        ChangeKind::Unyank => Change::Unyank,
        ChangeKind::Delete => Change::Delete,
    };
    let changed = indexes.change_files(&index, &project, &target, &change).await?;
    let verb = match kind {
        ChangeKind::Yank => "yanked",
        ChangeKind::Unyank => "unyanked",
        ChangeKind::Delete => "deleted",
    };
    for filename in changed {
        println!("{verb} {filename}");
    }
    Ok(())
}

/// `larder project-status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    data: DataDirArg,
    /// The hosted or layered index.
    #[arg(long)]
    index: String,
    /// The project.
    project: String,
    /// active, archived, quarantined or deprecated.
    status: String,
    /// Why (shown to users as project-status-reason).
    #[arg(long)]
    reason: Option<String>,
}

/// Runs `larder project-status`.
pub async fn run_status(args: StatusArgs) -> anyhow::Result<()> {
    let (indexes, index) = open_index(&args.data, &args.index).await?;
    let project = NormalizedName::new(&args.project)?;
    let status = ProjectStatus { status: args.status, reason: args.reason };
    indexes.set_project_status(&index, &project, status.clone()).await?;
    println!("project {project} in index {} is {}", index.name, status.status);
    Ok(())
}
