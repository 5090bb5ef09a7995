//! The C allocator's settings (glibc).
//!
//! glibc gives each thread that allocates under contention an arena of its
//! own, up to eight per core, and an arena's freed memory stays with the
//! process. larder's threads (the async workers, the blocking pool, one per
//! database connection) each touch an arena in turn, so a burst of work on
//! a big page leaves its peak in several arenas at once: a caching proxy
//! fetching and serving a 3,000-file page peaked at 48-60 MB of RSS with
//! the default and 31-33 MB with one arena, at the same requests per
//! second within the noise of a 2-core machine (small allocations come
//! from each thread's own cache, which takes no arena lock).

/// The most arenas glibc's malloc may create.
const ARENAS: libc::c_int = 1;

/// Caps glibc's malloc at [`ARENAS`] arena(s), unless `MALLOC_ARENA_MAX` is
/// set in the environment (glibc reads it itself: the user's choice wins).
/// Call it first thing, before any other thread exists.
#[allow(unsafe_code, reason = "mallopt is a C call")]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's parameters, and no
        // other thread is allocating yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    }
}
