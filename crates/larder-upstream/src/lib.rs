//! Talking to upstream indexes: the ordered list of upstreams with fallback,
//! retries and timeouts, conditional page requests, and streamed file
//! bodies. No caching policy lives here; that is the proxy's job.

pub mod client;
pub mod config;
pub mod stats;

pub use client::{
    BodyError, FetchFailure, FetchedPage, FileStream, MAX_PAGE_BYTES, PageFetch, RangeAnswer, SetupError, Upstreams,
    Validator,
};
pub use config::{Credentials, DEFAULT_RETRIES, DEFAULT_TIMEOUT, UpstreamConfig};
pub use stats::UpstreamStats;
