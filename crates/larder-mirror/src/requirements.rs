//! Reading requirements files (the `pip install -r` format): PEP 508
//! requirements, comments, line continuations, nested `-r` files. Options
//! that do not name a package (`--hash`, `--index-url`, ...) are ignored;
//! editable installs and direct URLs cannot be mirrored from an index and
//! are reported.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::Requirement;

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// `file:line`.
    pub location: String,
    /// Why.
    pub reason: String,
}

/// The requirements of a file (and the files it includes), and the lines
/// that could not be used.
pub fn read_requirements(path: &Path) -> Result<(Vec<Requirement>, Vec<Rejected>), std::io::Error> {
    let mut requirements = Vec::new();
    let mut rejected = Vec::new();
    read_into(path, &mut requirements, &mut rejected, &mut Vec::new())?;
    Ok((requirements, rejected))
}

fn read_into(
    path: &Path,
    requirements: &mut Vec<Requirement>,
    rejected: &mut Vec<Rejected>,
    open: &mut Vec<PathBuf>,
) -> Result<(), std::io::Error> {
    let canonical = std::fs::canonicalize(path)?;
    if open.contains(&canonical) {
        rejected.push(Rejected { location: path.display().to_string(), reason: "includes itself".into() });
        return Ok(());
    }
    open.push(canonical);
    let text = std::fs::read_to_string(path)?;
    for (number, line) in logical_lines(&text) {
        let location = format!("{}:{number}", path.display());
        let reject = |reason: &str| Rejected { location: location.clone(), reason: reason.to_owned() };
        if let Some(included) = option_value(&line, &["-r", "--requirement"]) {
            let nested = path.parent().unwrap_or(Path::new(".")).join(included);
            if let Err(error) = read_into(&nested, requirements, rejected, open) {
                rejected.push(reject(&format!("cannot read {}: {error}", nested.display())));
            }
        } else if option_value(&line, &["-e", "--editable"]).is_some() {
            rejected.push(reject("an editable install cannot be mirrored from an index"));
        } else if line.starts_with('-') {
            tracing::debug!(%location, option = %line, "requirements option ignored by the mirror");
        } else {
            let requirement = line.split(" --").next().unwrap_or_default().trim();
            match Requirement::from_str(requirement) {
                Ok(parsed)
                    if parsed.version_or_url.as_ref().is_some_and(|v| matches!(v, pep508_rs::VersionOrUrl::Url(_))) =>
                {
                    rejected.push(reject("a direct URL requirement cannot be mirrored from an index"));
                }
                Ok(parsed) => requirements.push(parsed),
                Err(error) => rejected.push(reject(&format!("not a requirement: {error}"))),
            }
        }
    }
    open.pop();
    Ok(())
}

/// Lines with continuations joined and comments removed, numbered from 1.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        let without_comment = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(at) => &raw[..at],
            None => raw,
        };
        match without_comment.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(without_comment);
                let line = current.trim().to_owned();
                if !line.is_empty() {
                    lines.push((start, line));
                }
                current.clear();
            }
        }
    }
    lines
}

/// The value of `-r FILE`, `-rFILE`, `--requirement FILE` or
/// `--requirement=FILE`.
fn option_value<'a>(line: &'a str, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        let rest = line.strip_prefix(name)?;
        let value =
            rest.strip_prefix('=').or_else(|| rest.strip_prefix(' ')).or_else(|| (name.len() == 2).then_some(rest))?;
        Some(value.trim()).filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requirements_options_and_includes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.txt"), "idna>=2 # comment\n").unwrap();
        std::fs::write(
            dir.path().join("req.txt"),
            "# top comment\n--index-url http://127.0.0.1:1/simple/\n-r base.txt\nrequests[socks]==2.31.0 \\\n    --hash=sha256:abc\npywin32; sys_platform == 'win32'\n-e ./local\nthing @ https://example.invalid/thing.whl\nnot a requirement!\n",
        )
        .unwrap();
        let (requirements, rejected) = read_requirements(&dir.path().join("req.txt")).unwrap();
        let names: Vec<String> = requirements.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["idna", "requests", "pywin32"]);
        assert_eq!(requirements[1].extras.len(), 1);
        assert!(requirements[2].marker.contents().is_some());
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert!(rejected[0].reason.contains("editable"));
        assert!(rejected[1].reason.contains("direct URL"));
        assert!(rejected[2].location.ends_with("req.txt:9"), "{rejected:?}");
    }

    #[test]
    fn an_include_cycle_is_reported_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "-r b.txt\nidna\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "-r a.txt\n").unwrap();
        let (requirements, rejected) = read_requirements(&dir.path().join("a.txt")).unwrap();
        assert_eq!(requirements.len(), 1);
        assert_eq!(rejected[0].reason, "includes itself");
    }
}
