//! What each upstream has cost: requests, failures, bytes received and how
//! long it took to answer, as Prometheus metrics the server exports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// One upstream's counters. Cheap to clone (the values are shared).
#[derive(Clone, Debug)]
pub struct UpstreamStats {
    /// Requests sent (each attempt counts).
    pub requests: Counter,
    /// Attempts that failed: no answer, a connection error, a 429 or 5xx
    /// answer, a body cut short.
    pub errors: Counter,
    /// Body bytes received (pages and files).
    pub fetched_bytes: Arc<AtomicU64>,
    /// Seconds from sending a request to its response head.
    pub latency: Histogram,
}

impl Default for UpstreamStats {
    fn default() -> Self {
        Self {
            requests: Counter::default(),
            errors: Counter::default(),
            fetched_bytes: Arc::default(),
            // 5 ms to about 40 s.
            latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        }
    }
}

impl UpstreamStats {
    /// Records a response head that came after `elapsed`.
    pub(crate) fn answered(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Records `bytes` of body received.
    pub(crate) fn received(&self, bytes: usize) {
        self.fetched_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Body bytes received so far.
    pub fn fetched(&self) -> u64 {
        self.fetched_bytes.load(Ordering::Relaxed)
    }
}
