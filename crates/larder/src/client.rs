//! `larder client-config` and `larder exec`: pointing installers at larder.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::ValueEnum;
use larder_client::{ClientSettings, Format, Scope, WriteOutcome, targets};
use url::Url;

/// Which client's configuration.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    /// pip.conf
    Pip,
    /// uv.toml
    Uv,
    /// shell export lines for pip and uv
    Env,
    /// a .pypirc section for uploads with twine
    Pypirc,
    /// [[tool.poetry.source]] entries for pyproject.toml
    Poetry,
    /// [[tool.pdm.source]] entries for pyproject.toml
    Pdm,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Pip => Format::Pip,
            FormatArg::Uv => Format::Uv,
            FormatArg::Env => Format::Env,
            FormatArg::Pypirc => Format::Pypirc,
            FormatArg::Poetry => Format::Poetry,
            FormatArg::Pdm => Format::Pdm,
        }
    }
}

/// Whose configuration file is written.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScopeArg {
    /// The current user's (~/.config/pip/pip.conf, ~/.config/uv/uv.toml, ~/.pypirc).
    User,
    /// The whole machine's (/etc/pip.conf, /etc/uv/uv.toml).
    Site,
    /// The active virtualenv's ($VIRTUAL_ENV/pip.conf).
    Venv,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Self {
        match scope {
            ScopeArg::User => Scope::User,
            ScopeArg::Site => Scope::Site,
            ScopeArg::Venv => Scope::Venv,
        }
    }
}

/// What the generated configuration says.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// A larder index URL (e.g. http://HOST:3141/simple/); repeat for
    /// fallbacks, in order (better: one URL, fallbacks in larder's own
    /// upstream list).
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<Url>,
    /// A CA bundle (PEM) the clients should trust, for an HTTPS larder with
    /// a private certificate authority.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Retries per request.
    #[arg(long, value_name = "N")]
    retries: Option<u32>,
    /// Timeout per request.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u32>,
}

impl ClientArgs {
    fn settings(&self) -> anyhow::Result<ClientSettings> {
        if self.urls.is_empty() {
            bail!("give at least one --url (larder's index URL, e.g. http://127.0.0.1:3141/simple/)");
        }
        let urls = self
            .urls
            .iter()
            .map(|url| {
                let mut url = url.clone();
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                url
            })
            .collect();
        let cert = self
            .cert
            .as_ref()
            .map(|cert| {
                std::fs::canonicalize(cert).with_context(|| format!("cannot find the CA bundle {}", cert.display()))
            })
            .transpose()?;
        Ok(ClientSettings { urls, cert, retries: self.retries, timeout: self.timeout })
    }
}

/// Arguments of `larder client-config`.
#[derive(Debug, clap::Args)]
pub struct ClientConfigArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Which client's configuration.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Write it where that client reads it (keeping what was there), instead
    /// of printing it.
    #[arg(long, requires = "format")]
    write: bool,
    /// With --write or --restore: whose file.
    #[arg(long, value_enum, default_value = "user")]
    scope: ScopeArg,
    /// Put back what was there before larder wrote (for --format, or for
    /// every client when none is given), byte for byte; a file larder
    /// created is removed.
    #[arg(long, conflicts_with = "write")]
    restore: bool,
}

/// Prints, writes or restores a client configuration.
pub fn client_config(args: ClientConfigArgs) -> anyhow::Result<()> {
    let scope = Scope::from(args.scope);
    if args.restore {
        let (formats, explicit) = match args.format {
            Some(format) => (vec![format.into()], true),
            None => (vec![Format::Pip, Format::Uv, Format::Pypirc], false),
        };
        for format in formats {
            // Without --format, clients with no file in this scope are
            // skipped; a file that cannot be located is always an error.
            let path = match targets::target_path(format, scope) {
                Ok(path) => path,
                Err(larder_client::TargetError::Unsupported(_)) if !explicit => continue,
                Err(error) => return Err(error.into()),
            };
            match targets::restore(&path).with_context(|| format!("cannot restore {}", path.display()))? {
                WriteOutcome::Restored => println!("restored {}", path.display()),
                WriteOutcome::Removed => println!("removed {} (there was no file before)", path.display()),
                _ => println!("nothing to restore at {}", path.display()),
            }
        }
        return Ok(());
    }
    let Some(format) = args.format.map(Format::from) else {
        bail!("give --format (pip, uv, env, pypirc, poetry or pdm), or --restore");
    };
    let text = larder_client::render(format, &args.client.settings()?);
    if !args.write {
        print!("{text}");
        return Ok(());
    }
    let path = targets::target_path(format, scope)?;
    match targets::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))? {
        WriteOutcome::BackedUp(backup) => {
            println!("wrote {} (the previous file is kept as {})", path.display(), backup.display())
        }
        WriteOutcome::BackupKept => println!("wrote {} (the backup of the original is kept)", path.display()),
        _ => println!("wrote {} (there was no file; --restore removes it)", path.display()),
    }
    Ok(())
}

/// Arguments of `larder exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Runs the command with the client environment; returns its exit code.
pub fn exec(args: ExecArgs) -> anyhow::Result<i32> {
    let settings = args.client.settings()?;
    let (program, arguments) = args.command.split_first().expect("clap requires a command");
    let mut command = std::process::Command::new(program);
    command.args(arguments);
    for (name, value) in larder_client::environment(&settings) {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let status = command.status().with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    Ok(exit_code(status))
}

/// The exit code a shell would report: the code, or 128 + the signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| 128 + signal)).unwrap_or(1)
}
