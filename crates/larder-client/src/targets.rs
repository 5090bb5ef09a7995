//! Writing a client's configuration where it reads it, and putting back
//! exactly what was there before.
//!
//! Before the first write to a path, what was there is moved aside: the old
//! file (or symlink: the link itself, never its target) is renamed to
//! `<path>.larder-backup`, or, when there was none, a marker
//! `<path>.larder-absent` lists the directories larder had to create.
//! Writing again keeps that first backup. [`restore`] renames the backup
//! back (the very same file: bytes, permissions, a symlink stays a symlink)
//! or removes the file and the directories it created.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Format;

/// Where, for whom, a configuration file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The current user.
    User,
    /// Every user of the machine.
    Site,
    /// The active virtualenv (`$VIRTUAL_ENV`).
    Venv,
}

/// Why a configuration cannot be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The client has no configuration file for that scope.
    #[error("{0}")]
    Unsupported(String),
    /// A variable needed to find the file is not set.
    #[error("cannot find the {what} file: {variable} is not set")]
    NoLocation {
        /// Which file.
        what: &'static str,
        /// The variable.
        variable: &'static str,
    },
    /// The filesystem failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
}

/// What [`write`] or [`restore`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Wrote the file; the original was kept at this path.
    BackedUp(PathBuf),
    /// Wrote the file where there was none (the marker remembers that).
    Created,
    /// Wrote the file again; the backup of the first write is still kept.
    BackupKept,
    /// Put the original back.
    Restored,
    /// Removed the file larder had created.
    Removed,
    /// There was nothing of larder's to restore.
    NothingToRestore,
}

/// The file `format` is read from in `scope`.
pub fn target_path(format: Format, scope: Scope) -> Result<PathBuf, TargetError> {
    let config_home = || -> Result<PathBuf, TargetError> {
        if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        home().map(|h| h.join(".config"))
    };
    match (format, scope) {
        (Format::Pip, Scope::User) => Ok(config_home()?.join("pip/pip.conf")),
        (Format::Pip, Scope::Site) => Ok(PathBuf::from("/etc/pip.conf")),
        (Format::Pip, Scope::Venv) => std::env::var_os("VIRTUAL_ENV")
            .map(|venv| PathBuf::from(venv).join("pip.conf"))
            .ok_or(TargetError::NoLocation { what: "virtualenv pip.conf", variable: "VIRTUAL_ENV" }),
        (Format::Uv, Scope::User) => Ok(config_home()?.join("uv/uv.toml")),
        (Format::Uv, Scope::Site) => Ok(PathBuf::from("/etc/uv/uv.toml")),
        (Format::Pypirc, Scope::User) => Ok(home()?.join(".pypirc")),
        (Format::Uv | Format::Pypirc, _) => Err(TargetError::Unsupported(format!(
            "{format:?} has no {scope:?}-scope configuration file; use --scope user"
        ))),
        (Format::Env, _) => Err(TargetError::Unsupported(
            "the env format is not a file: eval its output, or run the build with `larder exec`".into(),
        )),
        (Format::Poetry | Format::Pdm, _) => Err(TargetError::Unsupported(format!(
            "{format:?} reads package sources from a project's pyproject.toml: paste the printed entries there"
        ))),
    }
}

fn home() -> Result<PathBuf, TargetError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or(TargetError::NoLocation { what: "user configuration", variable: "HOME" })
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TargetError + '_ {
    move |source| TargetError::Io { path: path.to_owned(), source }
}

/// Writes `content` to `path`, keeping what was there first.
pub fn write(path: &Path, content: &str) -> Result<WriteOutcome, TargetError> {
    let backup = sidecar(path, ".larder-backup");
    let absent = sidecar(path, ".larder-absent");
    let outcome = if exists(&backup) || exists(&absent) {
        WriteOutcome::BackupKept
    } else if exists(path) {
        std::fs::rename(path, &backup).map_err(io_error(&backup))?;
        if let Err(error) = write_atomically(path, content.as_bytes()) {
            // Put the original back before reporting.
            let _ = std::fs::rename(&backup, path);
            return Err(error);
        }
        return Ok(WriteOutcome::BackedUp(backup));
    } else {
        let created = create_parents(path)?;
        let listing: String = created.iter().map(|d| format!("{}\n", d.display())).collect();
        write_atomically(&absent, listing.as_bytes())?;
        WriteOutcome::Created
    };
    write_atomically(path, content.as_bytes())?;
    Ok(outcome)
}

/// Puts back what was at `path` before larder first wrote it.
pub fn restore(path: &Path) -> Result<WriteOutcome, TargetError> {
    let backup = sidecar(path, ".larder-backup");
    let absent = sidecar(path, ".larder-absent");
    if exists(&backup) {
        std::fs::rename(&backup, path).map_err(io_error(path))?;
        return Ok(WriteOutcome::Restored);
    }
    if !exists(&absent) {
        return Ok(WriteOutcome::NothingToRestore);
    }
    let created = std::fs::read_to_string(&absent).map_err(io_error(&absent))?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(path)(e)),
        _ => {}
    }
    std::fs::remove_file(&absent).map_err(io_error(&absent))?;
    for dir in created.lines().rev() {
        // Only directories that are still empty: anything else put there
        // since is not larder's to remove.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(WriteOutcome::Removed)
}

/// Creates the missing parent directories of `path`, returning them
/// outermost first.
fn create_parents(path: &Path) -> Result<Vec<PathBuf>, TargetError> {
    let mut missing = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_owned());
        dir = d.parent();
    }
    missing.reverse();
    for d in &missing {
        std::fs::create_dir(d).map_err(io_error(d))?;
    }
    Ok(missing)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TargetError> {
    let temp = sidecar(path, ".larder-tmp");
    let mut file = std::fs::File::create(&temp).map_err(io_error(&temp))?;
    file.write_all(bytes).map_err(io_error(&temp))?;
    file.sync_all().map_err(io_error(&temp))?;
    std::fs::rename(&temp, path).map_err(io_error(path))
}

/// Whether anything is at `path`, a dangling symlink included.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_puts_back_the_original_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pip.conf");
        std::fs::write(&path, b"[global]\nindex-url = http://old.invalid/\n").unwrap();
        assert!(matches!(write(&path, "first").unwrap(), WriteOutcome::BackedUp(_)));
        assert_eq!(write(&path, "second").unwrap(), WriteOutcome::BackupKept);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(restore(&path).unwrap(), WriteOutcome::Restored);
        assert_eq!(std::fs::read(&path).unwrap(), b"[global]\nindex-url = http://old.invalid/\n");
        assert_eq!(restore(&path).unwrap(), WriteOutcome::NothingToRestore);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlinked_config_comes_back_as_the_same_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dotfiles-pip.conf");
        std::fs::write(&target, b"[global]\n").unwrap();
        let path = dir.path().join("pip.conf");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write(&path, "larder").unwrap();
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"[global]\n", "the link's target is never written");
        restore(&path).unwrap();
        assert_eq!(std::fs::read_link(&path).unwrap(), target);
    }

    #[test]
    fn restore_removes_a_created_file_and_its_new_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/uv/uv.toml");
        assert_eq!(write(&path, "[[index]]").unwrap(), WriteOutcome::Created);
        assert!(path.exists());
        assert_eq!(restore(&path).unwrap(), WriteOutcome::Removed);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "left behind: {:?}",
            std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
        );
    }
}
