//! The index pip is configured with, for `larder serve` with no upstream
//! of its own: `PIP_INDEX_URL` / `PIP_EXTRA_INDEX_URL`, else pip's config
//! files in pip's order (global, user, site, then `PIP_CONFIG_FILE`; later
//! ones win). Like pip, `PIP_CONFIG_FILE=/dev/null` disables the files.
//! With none of those, pip's own default index, asked of pip itself (so
//! that no registry host is written into larder).

use std::path::{Path, PathBuf};

/// The index URLs pip would use, primary first; empty when pip has none.
pub fn pip_index_urls() -> Vec<String> {
    let mut index_url = env_value("PIP_INDEX_URL");
    let mut extra = env_value("PIP_EXTRA_INDEX_URL");
    if index_url.is_none() || extra.is_none() {
        let mut from_files = (None, None);
        for path in config_files() {
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            for section in ["global", "install"] {
                if let Some(value) = ini_value(&text, section, "index-url") {
                    from_files.0 = Some(value);
                }
                if let Some(value) = ini_value(&text, section, "extra-index-url") {
                    from_files.1 = Some(value);
                }
            }
        }
        index_url = index_url.or(from_files.0);
        extra = extra.or(from_files.1);
    }
    index_url.into_iter().chain(extra.iter().flat_map(|list| list.split_whitespace().map(str::to_owned))).collect()
}

/// The variable naming the Python whose pip is asked for its default index
/// (`python3` when unset; empty: do not ask).
const PYTHON_VAR: &str = "LARDER_PIP_PYTHON";

/// pip's built-in default index, as the pip of `LARDER_PIP_PYTHON` (or
/// `python3`) says; `None` when there is no such pip.
pub fn pip_default_index() -> Option<String> {
    let python = std::env::var_os(PYTHON_VAR).unwrap_or_else(|| "python3".into());
    if python.is_empty() {
        return None;
    }
    let out = std::process::Command::new(&python)
        .args(["-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !url.is_empty()).then_some(url)
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn config_files() -> Vec<PathBuf> {
    let explicit = std::env::var_os("PIP_CONFIG_FILE").map(PathBuf::from);
    if explicit.as_deref() == Some(Path::new("/dev/null")) {
        return Vec::new();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg_config =
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut files = vec![PathBuf::from("/etc/xdg/pip/pip.conf"), PathBuf::from("/etc/pip.conf")];
    files.extend(home.map(|h| h.join(".pip/pip.conf")));
    files.extend(xdg_config.map(|c| c.join("pip/pip.conf")));
    files.extend(std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("pip.conf")));
    files.extend(explicit);
    files
}

/// The value of `key` in `[section]` of an INI text as Python's
/// configparser reads it (`=` or `:`, `#`/`;` comments, indented
/// continuation lines joined with newlines).
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut in_section = false;
    let mut value: Option<String> = None;
    let mut continuing = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if continuing && line.starts_with([' ', '\t']) && !trimmed.is_empty() {
            let value = value.as_mut().expect("continuing a value");
            if !value.is_empty() {
                value.push('\n');
            }
            value.push_str(trimmed);
            continue;
        }
        continuing = false;
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            in_section = name.trim() == section;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = trimmed.split_once(['=', ':'])
            && k.trim() == key
        {
            value = Some(v.trim().to_owned());
            continuing = true;
        }
    }
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::ini_value;

    #[test]
    fn reads_values_like_configparser() {
        let text = "[global]\n# comment\nindex-url = http://127.0.0.1:1/simple/\nextra-index-url =\n    http://a.invalid/simple/\n    http://b.invalid/simple/\ntimeout: 60\n[install]\nindex-url=http://other.invalid/\n";
        assert_eq!(ini_value(text, "global", "index-url").as_deref(), Some("http://127.0.0.1:1/simple/"));
        assert_eq!(
            ini_value(text, "global", "extra-index-url").as_deref(),
            Some("http://a.invalid/simple/\nhttp://b.invalid/simple/")
        );
        assert_eq!(ini_value(text, "global", "timeout").as_deref(), Some("60"));
        assert_eq!(ini_value(text, "install", "index-url").as_deref(), Some("http://other.invalid/"));
        assert_eq!(ini_value(text, "global", "missing"), None);
    }
}
