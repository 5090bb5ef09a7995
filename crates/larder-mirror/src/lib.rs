//! Filling the store ahead of time, and keeping it sound.
//!
//! - [`Mirror::projects`]: chosen projects, filtered, pages and files
//!   fetched in parallel through the proxy (so the same single-flight,
//!   verified downloads), with progress.
//! - [`all::mirror_all`]: the whole upstream index, incrementally by serial.
//! - [`closure::mirror_requirements`]: the dependency closure of a
//!   requirements file for each target environment, resolved with
//!   `larder-resolve` over the proxy ([`source::MirrorSource`]).
//! - [`lockfile::mirror_locked`]: exactly the files a `pylock.toml` or
//!   `uv.lock` pins.
//! - [`verify::verify`] and [`gc::gc`]: hash every blob against its rows
//!   (and repair), remove what nothing refers to.
//! - [`migrate::copy_blobs`]: copy every blob into other blobs (the data
//!   directory's into a bucket, or back), verified and resumable.

pub mod all;
mod batch;
pub mod closure;
pub mod filter;
pub mod gc;
pub mod lockfile;
pub mod migrate;
pub mod progress;
pub mod requirements;
pub mod run;
pub mod source;
pub mod verify;

pub use filter::FileFilter;
pub use progress::Progress;
pub use run::{Mirror, Summary};
