//! Dependency resolution for mirroring: the releases a set of
//! requirements needs in one target environment (a CPython version on a
//! platform), the files of each to mirror, and the build requirements of
//! every sdist among them, solved with pubgrub.
//!
//! - **Candidates.** A version is a candidate when it has a file the
//!   environment can use (a compatible wheel, or an sdist) that is not
//!   yanked (a yanked one only when pinned with `==`, PEP 592), whose
//!   `requires-python` some `X.Y.*` of the target's Python meets. The
//!   highest candidate wins; final releases before pre-releases, unless a
//!   specifier on the project names a pre-release or nothing else fits.
//! - **Dependencies** come from the core metadata of one file of the
//!   release: a compatible wheel, else the sdist. An sdist's `PKG-INFO` is
//!   used even when it may be incomplete (Metadata-Version below 2.2, or
//!   `Requires-Dist` declared `Dynamic`), with a [`Warning`]: the mirror
//!   holds what it says, and building the sdist could need more. Markers
//!   are evaluated in the environment; `project[extra]` is a virtual
//!   package that depends on the project at the same version and on the
//!   extra's requirements.
//! - **Files** of a chosen release: every compatible wheel; the sdist only
//!   when there is none, and then its build requirements are resolved in
//!   the same environment, as requirements of their own (each distinct
//!   set once), and what they need is added, recursively.
//! - **Failures** are reported, never fatal: the requirements are first
//!   solved together; when that fails each is solved alone, and the ones
//!   that resolve alone are solved together again. What fails alone is
//!   reported with pubgrub's explanation; a conflict among requirements
//!   that each resolve alone is reported too, and each is mirrored as it
//!   resolves alone, so everything installable is mirrored.
//!
//! pubgrub is synchronous; it runs on a blocking thread and asks the
//! asynchronous [`PackageSource`] through the caller's task, which answers
//! several questions at once. Every answer is cached for the whole call.

mod fetch;
mod index;
mod markers;
mod package;
mod project;
mod provider;
mod report;
mod solve;
mod source;

use larder_index::tags::TargetEnvironment;
use larder_index::{NormalizedName, Version};
use pep508_rs::Requirement;

pub use markers::marker_environment;
pub use source::{PackageSource, SourceError, SourceFile};

/// What one environment needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The releases to mirror, by name then version. A project may appear
    /// at two versions (say, one for the requirements and one to build an
    /// sdist).
    pub packages: Vec<ResolvedPackage>,
    /// What could not be resolved, and why.
    pub failures: Vec<Failure>,
    /// Releases whose dependencies may be incomplete.
    pub warnings: Vec<Warning>,
}

/// One release to mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// The project.
    pub name: NormalizedName,
    /// The version.
    pub version: Version,
    /// The filenames to mirror: every compatible wheel, or the sdist.
    pub files: Vec<String>,
}

/// A requirement that could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The requirement (or requirements, `, `-separated), as written,
    /// with what it was for when it is a build requirement.
    pub requirement: String,
    /// Why: pubgrub's explanation with notes on skipped versions, or the
    /// source's error.
    pub reason: String,
}

/// A release whose dependencies may be incomplete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The project.
    pub name: NormalizedName,
    /// The version.
    pub version: Version,
    /// What is uncertain.
    pub message: String,
}

/// Resolves `roots` for `env`, asking `source`. Never fails as a whole:
/// what cannot be resolved is in [`Resolution::failures`].
///
/// Works on any tokio runtime (the solver runs on the blocking pool).
///
/// # Panics
///
/// Re-raises a panic of the solver thread.
pub async fn resolve<S: PackageSource + ?Sized>(
    roots: &[Requirement],
    env: &TargetEnvironment,
    source: &S,
) -> Resolution {
    let (requests, answers) = tokio::sync::mpsc::unbounded_channel();
    let (roots, env) = (roots.to_vec(), env.clone());
    let solver = tokio::task::spawn_blocking(move || {
        solve::solve(&roots, &index::Index::new(&env, fetch::Fetcher::new(requests)))
    });
    fetch::serve(source, answers).await;
    match solver.await {
        Ok(resolution) => resolution,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => Resolution {
                failures: vec![Failure { requirement: "every requirement".to_owned(), reason: error.to_string() }],
                ..Resolution::default()
            },
        },
    }
}
