//! The open-file limit. Every client connection, blob being served and
//! upstream connection takes a descriptor; the soft limit many systems
//! start processes with (1,024) is far below what the hard limit allows.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for the database, blobs being stored, upstream
/// connections and the log when sizing the connection cap.
const KEPT_FOR_WORK: u64 = 64;

/// Raises the soft limit on open files to the hard limit.
pub fn raise_to_hard_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(from = ?limit.current, to = ?limit.maximum, "raised the open-file limit"),
        Err(error) => tracing::warn!(%error, soft = ?limit.current, "cannot raise the open-file limit"),
    }
}

/// The default cap on client connections: what the open-file limit allows
/// when each connection may hold two descriptors (its socket and a blob
/// being sent), after [`KEPT_FOR_WORK`].
pub fn default_max_connections() -> usize {
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    (soft.saturating_sub(KEPT_FOR_WORK) / 2).clamp(16, 65_536) as usize
}
