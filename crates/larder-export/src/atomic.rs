//! Files written whole or not at all: under a temporary name in the target
//! directory, fsynced, then renamed into place.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::Error;
use crate::error::io_error;

/// A temporary file in `dir`, readable by all like any file a web server
/// serves. Dropped unpersisted, it is removed.
pub(crate) fn temp_in(dir: &Path) -> Result<NamedTempFile, Error> {
    tempfile::Builder::new()
        .prefix(".larder-tmp-")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io_error(dir))
}

/// The directory a file at `path` goes in.
pub(crate) fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Makes a finished temporary file durable and renames it to `target`.
pub(crate) fn persist(temp: NamedTempFile, target: &Path) -> Result<(), Error> {
    temp.as_file().sync_all().map_err(io_error(target))?;
    temp.persist(target).map_err(|e| Error::Io { path: target.to_owned(), source: e.error })?;
    Ok(())
}
