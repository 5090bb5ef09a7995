//! `larder serve` settings: flags, then environment variables (both parsed
//! by clap, flags first), then the TOML file given with `--config`, then
//! defaults. With no upstream anywhere, pip's own configured index is used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use larder_proxy::ProxySettings;
use larder_proxy::evict::CacheLimit;
use larder_store::{BlobLocation, S3Settings, SecretKey};
use larder_upstream::{Credentials, UpstreamConfig};
use serde::Deserialize;
use url::Url;

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "larder-data";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3141";

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// The metadata database (`postgres://...` or `sqlite://PATH`).
    #[serde(default, deserialize_with = "database_location")]
    pub database: Option<larder_store::DatabaseLocation>,
    /// The listen address (`IP:PORT` or `unix:PATH`).
    pub listen: Option<crate::listen::ListenAddress>,
    /// Never contact the upstreams.
    pub offline: Option<bool>,
    /// Page freshness (`"10m"`).
    #[serde(default, with = "humantime_serde_option")]
    pub page_ttl: Option<Duration>,
    /// How long a 404 from every upstream is remembered.
    #[serde(default, with = "humantime_serde_option")]
    pub negative_ttl: Option<Duration>,
    /// How long the upstream's project list is used before it is fetched
    /// again.
    #[serde(default, with = "humantime_serde_option")]
    pub project_list_ttl: Option<Duration>,
    /// How long a node's lease on an upstream download lasts unless
    /// renewed (`"30s"`), with a database other nodes share.
    #[serde(default, with = "humantime_serde_option")]
    pub download_lease: Option<Duration>,
    /// Free space to keep on the data dir's disk (`"512M"`, `"2G"`, `0`).
    #[serde(default, with = "size_serde_option")]
    pub min_free_space: Option<u64>,
    /// Upstream indexes, in order of preference.
    #[serde(default)]
    pub upstream: Vec<UpstreamEntry>,
    /// The largest file an upload may carry, in bytes.
    pub max_upload_bytes: Option<u64>,
    /// The URL clients reach this server at, when a proxy in front changes
    /// it (`"https://HOST/pypi/"`).
    #[serde(default, deserialize_with = "public_url_serde_option")]
    pub public_url: Option<Url>,
    /// The bounded cache's cap (`"200G"`): cached files asked for least
    /// recently are evicted past it.
    #[serde(default, with = "size_serde_option")]
    pub max_cache_size: Option<u64>,
    /// Projects whose cached files are never evicted (globs over names).
    #[serde(default)]
    pub pin: Vec<String>,
    /// Named indexes (`[index.<name>]` tables), stored when `serve` starts.
    #[serde(default)]
    pub index: std::collections::BTreeMap<String, crate::private::IndexEntry>,
    /// Where blobs are kept (`"s3://BUCKET/PREFIX"`, or `"data-dir"`).
    #[serde(default, with = "from_str_option")]
    pub blobs: Option<BlobLocation>,
    /// `serve`'s local disk cache in front of a bucket (`"20G"`).
    #[serde(default, with = "size_serde_option")]
    pub blob_cache_size: Option<u64>,
    /// Connection to the S3-compatible server of `blobs` (over the AWS
    /// variables).
    #[serde(default)]
    pub s3: S3Entry,
}

/// The `[s3]` table: what the AWS variables would say, for `blobs =
/// "s3://..."`; unset keys fall back to those variables.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct S3Entry {
    /// The endpoint URL of an S3-compatible server.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (prefer `secret-access-key-env`).
    pub secret_access_key: Option<SecretKey>,
    /// The environment variable that holds the secret access key.
    pub secret_access_key_env: Option<String>,
}

impl S3Entry {
    /// The settings to give the S3 client.
    pub fn settings(&self) -> anyhow::Result<S3Settings> {
        let secret_access_key = match (&self.secret_access_key, &self.secret_access_key_env) {
            (Some(secret), _) => Some(secret.clone()),
            (None, Some(variable)) => Some(
                std::env::var(variable)
                    .with_context(|| format!("[s3] secret-access-key-env names {variable}, which is not set"))?
                    .into(),
            ),
            (None, None) => None,
        };
        Ok(S3Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key,
        })
    }
}

/// Freshness settings given on the command line (each over the config
/// file's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ttls {
    /// `--page-ttl`.
    pub page: Option<Duration>,
    /// `--negative-ttl`.
    pub negative: Option<Duration>,
    /// `--project-list-ttl`.
    pub project_list: Option<Duration>,
}

/// One `[[upstream]]` table.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UpstreamEntry {
    /// The Simple API root.
    pub url: Url,
    /// Per-request connect/read timeout (`"30s"`).
    #[serde(default, with = "humantime_serde_option")]
    pub timeout: Option<Duration>,
    /// Retries before moving on to the next upstream.
    pub retries: Option<u32>,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password (prefer `password-env`).
    pub password: Option<String>,
    /// The environment variable that holds the password.
    pub password_env: Option<String>,
    /// Extra CA certificates (PEM) to trust for this upstream.
    pub ca_bundle: Option<PathBuf>,
}

/// The upstream flags shared by `serve` and `mirror`, and the config file.
#[derive(Clone, Debug, clap::Args)]
pub struct UpstreamArgs {
    /// An upstream index (its Simple API root, e.g. https://HOST/simple/),
    /// in order of preference; repeat for fallbacks. Credentials may be
    /// written in the URL. Without any (here, in the environment or in the
    /// config file), pip's configured index is used (PIP_INDEX_URL, pip's
    /// config files), else pip's default index as pip itself says
    /// (LARDER_PIP_PYTHON names the Python to ask, python3 by default;
    /// empty: do not ask); the log says which at start.
    #[arg(long = "upstream", value_name = "URL", env = "LARDER_UPSTREAM", value_delimiter = ',')]
    upstreams: Vec<Url>,
    /// Bound on each upstream request: connecting, the response head, each
    /// read, and a whole page (head and body); file downloads must also
    /// average 1 KiB/s over each such period. [default: 30s]
    #[arg(long, value_name = "DURATION", env = "LARDER_UPSTREAM_TIMEOUT", value_parser = humantime::parse_duration)]
    upstream_timeout: Option<Duration>,
    /// Retries on one upstream before moving on to the next; 0 moves on at
    /// the first failure. [default: 2]
    #[arg(long, value_name = "N", env = "LARDER_UPSTREAM_RETRIES")]
    upstream_retries: Option<u32>,
    /// Extra CA certificates (PEM bundle) to trust for the upstreams.
    #[arg(long, value_name = "FILE", env = "LARDER_UPSTREAM_CA_BUNDLE")]
    upstream_ca_bundle: Option<PathBuf>,
    /// A TOML config file (data-dir, blobs, blob-cache-size, database, listen,
    /// offline, page-ttl, project-list-ttl, negative-ttl, max-upload-bytes, max-cache-size,
    /// pin (a list of project globs), [s3] with endpoint, region,
    /// access-key-id, secret-access-key-env, [[upstream]] tables with url,
    /// timeout, retries, username, password-env, ca-bundle, and
    /// [index.<name>] tables with kind, bases, token-read, min-release-age,
    /// release-age-exempt, merge-bases). Flags and environment win.
    #[arg(long, value_name = "FILE", env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
}

impl UpstreamArgs {
    /// The `--config` file's path, if one was given.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Reads the `--config` file (an empty configuration without one).
    pub fn config_file(&self) -> anyhow::Result<ConfigFile> {
        Ok(self.config.as_deref().map(ConfigFile::load).transpose()?.unwrap_or_default())
    }

    /// The upstream list from the flags, the file, or pip's configuration,
    /// and where it came from.
    pub fn resolve(&self, file: &ConfigFile, offline: bool) -> anyhow::Result<(Vec<UpstreamConfig>, &'static str)> {
        let overrides = UpstreamOverrides {
            urls: self.upstreams.clone(),
            timeout: self.upstream_timeout,
            retries: self.upstream_retries,
            ca_bundle: self.upstream_ca_bundle.clone(),
        };
        file.upstreams(&overrides, offline)
    }
}

/// Upstream settings given as flags or environment variables; they apply
/// to every upstream and win over the file.
#[derive(Debug, Default)]
pub struct UpstreamOverrides {
    /// `--upstream` URLs (replace the file's list when given).
    pub urls: Vec<Url>,
    /// `--upstream-timeout`.
    pub timeout: Option<Duration>,
    /// `--upstream-retries`.
    pub retries: Option<u32>,
    /// `--upstream-ca-bundle`.
    pub ca_bundle: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads a config file; a missing or malformed file is an error that
    /// names it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The upstream list: the flags' URLs if any, else the file's entries,
    /// else pip's configured index (unless offline); flag settings applied
    /// on top. Also says where the list came from.
    pub fn upstreams(
        &self,
        overrides: &UpstreamOverrides,
        offline: bool,
    ) -> anyhow::Result<(Vec<UpstreamConfig>, &'static str)> {
        let (mut upstreams, source) = if !overrides.urls.is_empty() {
            (overrides.urls.iter().cloned().map(UpstreamConfig::new).collect(), "command line / LARDER_UPSTREAM")
        } else if !self.upstream.is_empty() {
            let entries = self.upstream.iter().map(UpstreamEntry::to_config).collect::<anyhow::Result<_>>()?;
            (entries, "config file")
        } else if offline {
            (Vec::new(), "none (offline)")
        } else {
            let (urls, source) = match crate::pip_config::pip_index_urls() {
                urls if !urls.is_empty() => (urls, "pip's configuration"),
                _ => (crate::pip_config::pip_default_index().into_iter().collect(), "pip's default index"),
            };
            let upstreams = urls
                .iter()
                .map(|u| {
                    Url::parse(u)
                        .map(UpstreamConfig::new)
                        .with_context(|| format!("pip's configured index {u:?} is not a URL"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (upstreams, source)
        };
        for upstream in &mut upstreams {
            if let Some(timeout) = overrides.timeout {
                upstream.timeout = timeout;
            }
            if let Some(retries) = overrides.retries {
                upstream.retries = retries;
            }
            if let Some(ca_bundle) = &overrides.ca_bundle {
                upstream.ca_bundle = Some(ca_bundle.clone());
            }
        }
        Ok((upstreams, source))
    }

    /// Cache policy: the given values over the file's over the defaults.
    pub fn proxy_settings(&self, ttls: Ttls, offline: bool, min_free_space: Option<u64>) -> ProxySettings {
        let defaults = ProxySettings::default();
        ProxySettings {
            page_ttl: ttls.page.or(self.page_ttl).unwrap_or(defaults.page_ttl),
            negative_ttl: ttls.negative.or(self.negative_ttl).unwrap_or(defaults.negative_ttl),
            project_list_ttl: ttls.project_list.or(self.project_list_ttl).unwrap_or(defaults.project_list_ttl),
            offline: offline || self.offline.unwrap_or(false),
            min_free_bytes: min_free_space.or(self.min_free_space).unwrap_or(defaults.min_free_bytes),
            ..defaults
        }
    }
}

impl ConfigFile {
    /// The bounded cache: the flag's cap over the file's, with the file's
    /// pins (checked here, so a bad pattern stops the start). `None`
    /// without a cap.
    pub fn cache_limit(&self, max_cache_size: Option<u64>) -> anyhow::Result<Option<CacheLimit>> {
        larder_index::ProjectPatterns::new(&self.pin).context("invalid `pin` in the config file")?;
        Ok(max_cache_size.or(self.max_cache_size).map(|max_bytes| CacheLimit {
            max_bytes,
            pins: self.pin.clone(),
            interval: larder_proxy::evict::DEFAULT_INTERVAL,
        }))
    }
}

impl UpstreamEntry {
    fn to_config(&self) -> anyhow::Result<UpstreamConfig> {
        let mut config = UpstreamConfig::new(self.url.clone());
        if let Some(timeout) = self.timeout {
            config.timeout = timeout;
        }
        if let Some(retries) = self.retries {
            config.retries = retries;
        }
        config.ca_bundle.clone_from(&self.ca_bundle);
        let password =
            match (&self.password, &self.password_env) {
                (Some(password), _) => Some(password.clone()),
                (None, Some(variable)) => Some(std::env::var(variable).with_context(|| {
                    format!("upstream {}: password-env names {variable}, which is not set", self.url)
                })?),
                (None, None) => None,
            };
        if let Some(username) = &self.username {
            config.credentials = Some(Credentials { username: username.clone(), password });
        }
        Ok(config)
    }
}

/// Parses `--public-url`: an http(s) URL with no credentials, query or
/// fragment; its path gets a trailing `/` so page URLs can be appended.
pub fn parse_public_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?}: the public URL must start with http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?}: the public URL may not carry credentials, a query or a fragment"));
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// Serde's side of [`parse_public_url`], for `public-url` in the file.
fn public_url_serde_option<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_public_url(&text).map(Some).map_err(serde::de::Error::custom)
}

/// `Option<Duration>` from strings like `"30s"` or `"10m"`.
/// `100`, `64K`, `10M`, `2G` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, multiplier) = match text.char_indices().last() {
        Some((at, 'K' | 'k')) => (&text[..at], 1u64 << 10),
        Some((at, 'M' | 'm')) => (&text[..at], 1 << 20),
        Some((at, 'G' | 'g')) => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a size (like 500K, 10M or 2G)"))
}

mod size_serde_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse_size(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Option<T>` from a string, with `T`'s `FromStr`.
mod from_str_option {
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr<Err: std::fmt::Display>,
    {
        Option::<String>::deserialize(deserializer)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod humantime_serde_option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Reads `database = "URL"` (an error names the problem, never the URL:
/// it may hold a password).
fn database_location<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<larder_store::DatabaseLocation>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_settings_apply_and_flags_win() {
        let file: ConfigFile = toml::from_str(
            r#"
            page-ttl = "5m"
            project-list-ttl = "2h"
            [[upstream]]
            url = "http://127.0.0.1:9/simple"
            timeout = "3s"
            retries = 0
            username = "ci"
            password = "secret"
            [[upstream]]
            url = "http://127.0.0.1:10/simple/"
            "#,
        )
        .unwrap();
        let (upstreams, _) = file.upstreams(&UpstreamOverrides::default(), false).unwrap();
        assert_eq!(upstreams.len(), 2);
        assert_eq!(upstreams[0].url.as_str(), "http://127.0.0.1:9/simple/");
        assert_eq!((upstreams[0].timeout, upstreams[0].retries), (Duration::from_secs(3), 0));
        assert_eq!(upstreams[0].credentials.as_ref().unwrap().password.as_deref(), Some("secret"));
        assert_eq!(upstreams[1].retries, larder_upstream::DEFAULT_RETRIES);

        let overrides = UpstreamOverrides { retries: Some(5), ..Default::default() };
        let (upstreams, _) = file.upstreams(&overrides, false).unwrap();
        assert!(upstreams.iter().all(|u| u.retries == 5));
        let overrides = UpstreamOverrides { urls: vec!["http://127.0.0.1:11/".parse().unwrap()], ..Default::default() };
        let (upstreams, source) = file.upstreams(&overrides, false).unwrap();
        assert_eq!((upstreams.len(), source), (1, "command line / LARDER_UPSTREAM"));

        let ttls = Ttls { negative: Some(Duration::from_secs(1)), ..Ttls::default() };
        let settings = file.proxy_settings(ttls, false, None);
        assert_eq!((settings.page_ttl, settings.negative_ttl), (Duration::from_secs(300), Duration::from_secs(1)));
        assert_eq!(settings.project_list_ttl, Duration::from_secs(7200));
    }

    #[test]
    fn index_tables_describe_named_indexes() {
        let file: ConfigFile = toml::from_str(
            r#"
            max-upload-bytes = 1000
            [index.team]
            bases = ["upstream"]
            min-release-age = "7d"
            release-age-exempt = ["Urgent_Fix"]
            token-read = true
            [index.ci]
            "#,
        )
        .unwrap();
        assert_eq!(file.max_upload_bytes, Some(1000));
        let team = file.index["team"].definition("team").unwrap();
        assert_eq!(team.kind.bases(), ["upstream"]);
        assert!(!team.anonymous_read);
        assert_eq!(team.release_age.min_age, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(team.release_age.exempt.iter().next().unwrap().as_str(), "urgent-fix");
        assert_eq!(file.index["ci"].definition("ci").unwrap().kind, larder_index::IndexKind::Hosted);
        assert!(toml::from_str::<ConfigFile>("[index.team]\nbasis = []").is_err());
        let bad: ConfigFile = toml::from_str("[index.Team]").unwrap();
        assert!(bad.index["Team"].definition("Team").is_err());
    }

    #[test]
    fn blobs_and_s3_settings_come_from_the_file_and_the_secret_is_never_shown() {
        let file: ConfigFile = toml::from_str(
            r#"
            blobs = "s3://bucket/team"
            blob-cache-size = "20G"
            [s3]
            endpoint = "http://127.0.0.1:3900"
            region = "garage"
            access-key-id = "GKid"
            secret-access-key = "file-secret-value"
            "#,
        )
        .unwrap();
        assert_eq!(file.blobs, Some("s3://bucket/team".parse().unwrap()));
        assert_eq!(file.blob_cache_size, Some(20 << 30));
        let settings = file.s3.settings().unwrap();
        assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(settings.secret_access_key.as_ref().map(SecretKey::expose), Some("file-secret-value"));
        assert!(!format!("{file:?} {settings:?}").contains("file-secret-value"));
        assert!(toml::from_str::<ConfigFile>("blobs = \"bucket/team\"").is_err(), "not an s3:// URL");
        let missing: ConfigFile =
            toml::from_str("[s3]\nsecret-access-key-env = \"LARDER_TEST_UNSET_VARIABLE\"").unwrap();
        assert!(missing.s3.settings().unwrap_err().to_string().contains("LARDER_TEST_UNSET_VARIABLE"));
    }

    #[test]
    fn the_cache_cap_comes_from_the_flag_or_the_file() {
        let file: ConfigFile = toml::from_str("max-cache-size = \"2G\"\npin = [\"numpy\", \"django*\"]").unwrap();
        let limit = file.cache_limit(None).unwrap().unwrap();
        assert_eq!((limit.max_bytes, limit.pins.len()), (2 << 30, 2));
        assert_eq!(file.cache_limit(Some(100)).unwrap().unwrap().max_bytes, 100);
        assert!(ConfigFile::default().cache_limit(None).unwrap().is_none());
        let bad: ConfigFile = toml::from_str("pin = [\"[\"]").unwrap();
        assert!(bad.cache_limit(None).is_err());
    }

    #[test]
    fn a_public_url_is_http_with_a_trailing_slash_and_nothing_secret() {
        assert_eq!(parse_public_url("https://h.test/pypi").unwrap().as_str(), "https://h.test/pypi/");
        assert_eq!(parse_public_url("http://h.test:8080/").unwrap().as_str(), "http://h.test:8080/");
        for bad in
            ["ftp://h.test/", "https://user:pw@h.test/", "https://h.test/?a=1", "https://h.test/#x", "h.test/pypi"]
        {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        let file: ConfigFile = toml::from_str("public-url = \"https://h.test/pypi\"").unwrap();
        assert_eq!(file.public_url.unwrap().as_str(), "https://h.test/pypi/");
        assert!(toml::from_str::<ConfigFile>("public-url = \"file:///x\"").is_err());
    }

    /// contrib/larder.toml parses (no stale key) and sets every key the
    /// file takes: a new key breaks the destructuring below until the
    /// example shows it.
    #[test]
    fn the_example_config_sets_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/larder.toml");
        let ConfigFile {
            data_dir,
            listen,
            offline,
            page_ttl,
            project_list_ttl,
            negative_ttl,
            min_free_space,
            upstream,
            max_upload_bytes,
            public_url,
            max_cache_size,
            pin,
            index,
            blobs,
            blob_cache_size,
            s3,
            database,
            download_lease,
        } = ConfigFile::load(&path).unwrap();
        assert!(data_dir.is_some() && listen.is_some() && offline.is_some() && page_ttl.is_some());
        assert!(project_list_ttl.is_some() && negative_ttl.is_some() && min_free_space.is_some());
        assert!(max_upload_bytes.is_some() && public_url.is_some());
        assert!(max_cache_size.is_some() && !pin.is_empty() && blobs.is_some() && blob_cache_size.is_some());
        assert!(database.is_some() && download_lease.is_some());
        let UpstreamEntry { url: _, timeout, retries, username, password: _, password_env, ca_bundle } = &upstream[0];
        assert!(timeout.is_some() && retries.is_some() && username.is_some());
        assert!(password_env.is_some() && ca_bundle.is_some() && upstream[1].password.is_some());
        let crate::private::IndexEntry {
            kind,
            bases,
            token_read: _,
            min_release_age,
            release_age_exempt,
            merge_bases: _,
        } = &index["team"];
        assert!(kind.is_some() && !bases.is_empty() && min_release_age.is_some() && !release_age_exempt.is_empty());
        // The secret itself stays commented out: its variable is shown.
        let S3Entry { endpoint, region, access_key_id, secret_access_key: _, secret_access_key_env } = s3;
        assert!(endpoint.is_some() && region.is_some() && access_key_id.is_some() && secret_access_key_env.is_some());
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_errors() {
        assert!(toml::from_str::<ConfigFile>("upstreams = []").is_err());
        assert!(toml::from_str::<ConfigFile>("page-ttl = \"soon\"").is_err());
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
