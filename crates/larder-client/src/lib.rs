//! The client side of larder: the configuration that points pip, uv,
//! twine, poetry and pdm at it ([`render`], [`environment`]), and writing
//! it where each client reads it with a backup that `--restore` puts back
//! byte for byte ([`targets`]).

pub mod render;
pub mod targets;

use std::path::PathBuf;

use url::Url;

pub use render::{environment, render};
pub use targets::{Scope, TargetError, WriteOutcome, restore, write};

/// The configuration formats larder can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `pip.conf`.
    Pip,
    /// `uv.toml`.
    Uv,
    /// Shell `export` lines for pip and uv.
    Env,
    /// A `.pypirc` section for uploads (twine).
    Pypirc,
    /// `[[tool.poetry.source]]` entries.
    Poetry,
    /// `[[tool.pdm.source]]` entries.
    Pdm,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] = [Self::Pip, Self::Uv, Self::Env, Self::Pypirc, Self::Poetry, Self::Pdm];
}

/// What the client configuration says.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// larder index URLs (`.../simple/`), in order of preference.
    pub urls: Vec<Url>,
    /// A CA bundle to trust (for an HTTPS larder with a private CA).
    pub cert: Option<PathBuf>,
    /// Retries per request.
    pub retries: Option<u32>,
    /// Timeout per request, in seconds.
    pub timeout: Option<u32>,
}

impl ClientSettings {
    /// `host[:port]` of every plain-HTTP URL: the hosts clients must be
    /// told to trust without TLS.
    pub fn insecure_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .urls
            .iter()
            .filter(|url| url.scheme() == "http")
            .filter_map(|url| {
                let host = url.host_str()?;
                Some(match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .collect();
        hosts.dedup();
        hosts
    }

    /// The upload URL for the first index URL: `/<index>/` for a named
    /// index's `/<index>/simple/`, and the hosted index `/local/` for the
    /// default `/simple/`.
    pub fn upload_url(&self) -> Option<Url> {
        let first = self.urls.first()?;
        let Some(base) = first.path().strip_suffix("simple/") else {
            return first.join("local/").ok();
        };
        if base == "/" { first.join("../local/").ok() } else { first.join("../").ok() }
    }
}
