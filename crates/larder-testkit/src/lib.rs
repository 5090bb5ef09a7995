//! Test harness for larder (dev-only, never published).
//!
//! - [`browser`]: headless Chromium over WebDriver ([`Browser`]) for the
//!   tests of the web pages, killed by PID on drop, and the directory
//!   their screenshots go to ([`artifacts_dir`]).
//! - [`fixtures`]: tiny valid wheels and sdists built in pure Rust
//!   ([`Wheel`], [`Sdist`]), plus deliberately broken ones for negative
//!   tests. The sdists carry an in-tree PEP 517 backend, so pip and uv build
//!   them with no build dependency from any index.
//! - [`larder`]: runs the `larder` binary: `larder add` ([`Larder::add`])
//!   and `larder serve` behind a guard ([`Server`]) that reads the
//!   listening line, captures the JSON request log from stderr and kills
//!   the process by PID on drop.
//! - [`unix_server`]: `larder serve` on a Unix socket ([`UnixServer`]).
//! - [`http`]: a minimal HTTP/1.1 client that sends requests verbatim and
//!   follows nothing, for protocol and path-traversal tests.
//! - [`html`]: reads anchors and meta tags of PEP 503 pages.
//! - [`venv`]: the pinned pip, uv and twine of the test venv made by
//!   `scripts/test` (`LARDER_TEST_VENV`), run with an isolated environment
//!   ([`Clients`]).
//! - [`upload`]: hand-built upload forms ([`UploadForm`]) for the tests of
//!   bad uploads.
//! - [`upstream`]: a fixture upstream index ([`FixtureUpstream`]) on
//!   127.0.0.1 with request counters and switchable faults, for the
//!   caching-proxy tests; [`proxy`]: helpers for those tests (lenient
//!   downloads, the request log's cache outcome, metrics, data-dir checks).
//! - [`disk`]: a small tmpfs for disk-full tests ([`SmallDisk`]).
//! - [`synthetic`]: an upstream index of any size generated on the fly,
//!   for whole-index rehearsals (the `synthetic-upstream` binary).
//! - [`servers`]: the real PostgreSQL and S3 servers started by
//!   `scripts/test`, with a fresh database ([`TestDatabase`]) or bucket
//!   prefix ([`TestS3::fresh_prefix`]) per test; [`relay`]: a TCP relay
//!   that a test switches off and on, to take such a server away mid-run.
//! - [`shared`]: the shared setup (`LARDER_TEST_NODES=2`): the same tests
//!   with every store on the test servers and every `larder serve` as
//!   several nodes behind a round-robin [`balancer`].
//!
//! Tests are hermetic: they build their own fixtures and talk only to
//! servers on 127.0.0.1.

pub mod balancer;
pub mod browser;
pub mod client;
pub mod disk;
pub mod fixtures;
pub mod hash;
pub mod html;
pub mod http;
pub mod larder;
pub mod mirror;
pub mod proxy;
pub mod relay;
pub mod servers;
pub mod shared;
pub mod synthetic;
pub mod unix_server;
pub mod upload;
pub mod upstream;
pub mod venv;

pub use browser::{Browser, Locator, artifacts_dir};
pub use disk::{Filler, SmallDisk};
pub use fixtures::{Built, DistKind, Sdist, Wheel, escape_name, normalize, write_file};
pub use hash::{record_digest, sha256_hex};
pub use http::{Request, Response, resolve};
pub use larder::{AddOutput, AddProcess, Larder, RequestLog, Server};
pub use proxy::{
    CacheLog, Received, cache_log, get_lenient, metric, read_received, send_get, settled_cache_log, wait_for_cache_log,
};
pub use relay::TcpRelay;
pub use servers::{TestDatabase, TestS3};
pub use unix_server::UnixServer;
pub use upload::{UploadForm, basic_auth};
pub use upstream::{Fault, FixtureUpstream, Malformed, ProjectMeta, Seen, UpstreamFile, UpstreamFormat};
pub use url::Url;
pub use venv::{Clients, TestVenv, describe_output, run, run_fails, run_ok};

/// A fresh temporary directory (removed on drop) whose name starts with
/// `larder-test-<label>-`.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("larder-test-{label}-")).tempdir().expect("create temp dir")
}
