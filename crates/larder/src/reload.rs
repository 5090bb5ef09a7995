//! `SIGHUP` reloads the `--config` file while `larder serve` runs.
//!
//! What a reload changes: the upstreams (list, timeouts, retries,
//! credentials, CA bundles), `page-ttl`, `negative-ttl`,
//! `project-list-ttl`, `offline`, the bounded cache's cap and `pin`
//! patterns (when a cap was set at start), and the `[index.<name>]` tables
//! (kinds, bases, read tokens, release-age policy). Requests under way
//! finish with the settings they started with; no connection is closed.
//! Flags and environment variables still win over the file. Everything
//! else (listen, data-dir, blobs, database, TLS, public-url, max-upload-bytes,
//! min-free-space, connection limits, turning the cap on or off) takes a
//! restart. The log says what changed, or why the file was not applied
//! (the running settings then stay as they were).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use larder_indexes::Indexes;
use larder_proxy::{Proxy, ProxySettings};
use larder_upstream::{UpstreamConfig, Upstreams};

use crate::config::{ConfigFile, Ttls, UpstreamArgs};

/// The settings of the proxy that come from the flags, the environment
/// and the config file.
pub struct ProxyConfig {
    /// The upstreams, in order.
    pub upstreams: Vec<UpstreamConfig>,
    /// Where the upstream list came from, for the log.
    pub source: &'static str,
    /// Freshness, offline, reserve, bounded cache.
    pub settings: ProxySettings,
}

/// The `larder serve` flags that a reload applies over the file again.
#[derive(Clone, Debug)]
pub struct ServeOverrides {
    /// The upstream flags, with `--config`.
    pub upstream: UpstreamArgs,
    /// The freshness flags.
    pub ttls: Ttls,
    /// `--offline`.
    pub offline: bool,
    /// `--min-free-space`.
    pub min_free_space: Option<u64>,
    /// `--max-cache-size`.
    pub max_cache_size: Option<u64>,
    /// `--download-lease`.
    pub download_lease: Option<Duration>,
}

impl ServeOverrides {
    /// The proxy's settings from these flags over `file`.
    pub fn proxy_config(&self, file: &ConfigFile) -> anyhow::Result<ProxyConfig> {
        let mut settings = file.proxy_settings(self.ttls, self.offline, self.min_free_space);
        settings.cache_limit = file.cache_limit(self.max_cache_size)?;
        settings.download_lease = self.download_lease.or(file.download_lease).unwrap_or(settings.download_lease);
        let (upstreams, source) = self.upstream.resolve(file, settings.offline)?;
        Ok(ProxyConfig { upstreams, source, settings })
    }
}

/// Reloads on every `SIGHUP` until the process ends. `current` is what
/// the proxy was started with.
pub async fn on_sighup(overrides: ServeOverrides, mut current: ProxyConfig, proxy: Option<Proxy>, indexes: Indexes) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "cannot catch SIGHUP: the configuration cannot be reloaded");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let Some(path) = overrides.upstream.config_path() else {
            tracing::warn!("SIGHUP: no --config file to reload; flags and environment take a restart");
            continue;
        };
        crate::notify::reloading();
        let result = reload(&overrides, &current, proxy.as_ref(), &indexes).await;
        crate::notify::reloaded();
        match result {
            Ok((applied, changes)) => {
                current = applied;
                let changed = if changes.is_empty() { "nothing".to_owned() } else { changes.join("; ") };
                tracing::info!(config = %path.display(), %changed, "reloaded the configuration (SIGHUP)");
            }
            Err(error) => tracing::error!(
                config = %path.display(),
                error = format!("{error:#}"),
                "SIGHUP: the configuration was not reloaded; the running settings stay"
            ),
        }
    }
}

/// Reads the file again and applies it; returns what is now in force and
/// what changed.
async fn reload(
    overrides: &ServeOverrides,
    current: &ProxyConfig,
    proxy: Option<&Proxy>,
    indexes: &Indexes,
) -> anyhow::Result<(ProxyConfig, Vec<String>)> {
    let for_file = overrides.clone();
    // Reading the file may ask pip for its index: blocking work.
    let (file, new) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let file = for_file.upstream.config_file()?;
        let new = for_file.proxy_config(&file)?;
        Ok((file, new))
    })
    .await
    .context("the reload task failed")??;
    let mut changes = Vec::new();
    match proxy {
        Some(proxy) if !new.upstreams.is_empty() || new.settings.offline => {
            let upstreams = Upstreams::new(new.upstreams.clone())?;
            for kept in proxy.reload(upstreams, new.settings.clone()) {
                changes.push(format!("{kept}: unchanged until a restart"));
            }
            describe_changes(current, &new, &mut changes);
        }
        Some(_) => anyhow::bail!("the file names no upstream (and larder is not offline)"),
        None if !new.upstreams.is_empty() => {
            changes.push("upstreams: larder started with none; a restart is needed to add them".to_owned());
        }
        None => {}
    }
    crate::private::apply_config_indexes(indexes.registry(), &file.index).await?;
    Ok((new, changes))
}

/// Adds a line for each setting that differs between `old` and `new`.
fn describe_changes(old: &ProxyConfig, new: &ProxyConfig, changes: &mut Vec<String>) {
    let (before, after) = (describe_upstreams(&old.upstreams), describe_upstreams(&new.upstreams));
    if before != after {
        changes.push(format!("upstreams: {before} -> {after}"));
    }
    let (a, b) = (&old.settings, &new.settings);
    let mut differ = |name: &str, before: String, after: String| {
        if before != after {
            changes.push(format!("{name}: {before} -> {after}"));
        }
    };
    let human = |d: std::time::Duration| humantime::format_duration(d).to_string();
    differ("page-ttl", human(a.page_ttl), human(b.page_ttl));
    differ("negative-ttl", human(a.negative_ttl), human(b.negative_ttl));
    differ("project-list-ttl", human(a.project_list_ttl), human(b.project_list_ttl));
    differ("offline", a.offline.to_string(), b.offline.to_string());
    let cap = |s: &ProxySettings| s.cache_limit.as_ref().map_or("none".to_owned(), |l| l.max_bytes.to_string());
    differ("max-cache-size", cap(a), cap(b));
    let pins = |s: &ProxySettings| s.cache_limit.as_ref().map_or_else(String::new, |l| l.pins.join(", "));
    differ("pin", pins(a), pins(b));
}

/// The upstreams as the log shows them (credentials never).
fn describe_upstreams(upstreams: &[UpstreamConfig]) -> String {
    let mut text = String::new();
    for (i, upstream) in upstreams.iter().enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let _ = write!(
            text,
            "{separator}{} (timeout {}, retries {}{}{})",
            upstream.url,
            humantime::format_duration(upstream.timeout),
            upstream.retries,
            if upstream.credentials.is_some() { ", credentials" } else { "" },
            upstream.ca_bundle.as_ref().map(|p| format!(", CA bundle {}", p.display())).unwrap_or_default(),
        );
    }
    if text.is_empty() { "none".to_owned() } else { text }
}
