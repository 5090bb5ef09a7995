//! Prometheus metrics at `/metrics`:
//!
//! - requests by kind and cache outcome (`larder_requests_total`), their
//!   latency by route (`larder_request_duration_seconds`) and the bytes
//!   answered by route (`larder_served_bytes_total`, from each answer's
//!   `Content-Length`);
//! - the page cache's lookups by result (`larder_page_cache_lookups_total`;
//!   the hit ratio is `hit / (hit + miss)`);
//! - per upstream: requests, failures, body bytes received and the time to
//!   a response head (`larder_upstream_*`);
//! - the distribution files stored by kind (`larder_stored_bytes`,
//!   `larder_stored_files`: hosted, mirrored, cached, evictable, evicted),
//!   read from the store at most every [`SIZES_EVERY`], and the bounded
//!   cache's evictions (`larder_evicted_*_total`) and cap.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::cache::PageCache;

/// How often the sizes by kind are read again from the store (reading
/// them walks every file row).
pub const SIZES_EVERY: Duration = Duration::from_secs(30);

/// What was asked for.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    /// `/simple/`.
    list,
    /// `/simple/<project>/`.
    page,
    /// A distribution file.
    file,
    /// A `.metadata` file.
    metadata,
}

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// What was asked for.
    pub kind: Kind,
    /// `hit`, `miss`, `revalidated`, `stale`, `offline`, `local`,
    /// `not_found` or `error`.
    pub outcome: &'static str,
}

/// The route a request matched (its pattern, like `/simple/{project}/`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern, or `unmatched`.
    pub route: String,
}

/// A kind of stored file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The outcomes whose request counters are kept at hand, once counted
/// (any other is looked up in the family each time).
const OUTCOMES: [&str; 8] = ["hit", "miss", "revalidated", "stale", "offline", "local", "not_found", "error"];

/// One kind's request counters by outcome (in the order of [`OUTCOMES`]).
type OutcomeCounters = [OnceLock<Counter>; OUTCOMES.len()];

/// The request counters of [`OUTCOMES`], by kind: each looked up in the
/// family the first time it counts, a load after that.
#[derive(Default)]
struct RequestCounters {
    list: OutcomeCounters,
    page: OutcomeCounters,
    file: OutcomeCounters,
    metadata: OutcomeCounters,
}

impl RequestCounters {
    fn of(&self, kind: Kind) -> &OutcomeCounters {
        match kind {
            Kind::list => &self.list,
            Kind::page => &self.page,
            Kind::file => &self.file,
            Kind::metadata => &self.metadata,
        }
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    at_hand: RequestCounters,
    durations: Family<RouteLabels, Histogram>,
    served: Family<RouteLabels, Counter>,
    stored_bytes: Family<KindLabels, Gauge>,
    stored_files: Family<KindLabels, Gauge>,
    sizes_read: Mutex<Option<Instant>>,
}

impl Metrics {
    /// The metrics of a server over `indexes`, whose pages `pages` keeps.
    pub fn new(indexes: &larder_indexes::Indexes, pages: Arc<PageCache>) -> Self {
        let mut registry = Registry::with_prefix("larder");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Index requests by kind and cache outcome", requests.clone());
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(request_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "request_duration",
            "Time to answer a request (to its response head), by route",
            Unit::Seconds,
            durations.clone(),
        );
        let served = Family::<RouteLabels, Counter>::default();
        registry.register_with_unit("served", "Bytes answered (Content-Length), by route", Unit::Bytes, served.clone());
        let stored_bytes = Family::<KindLabels, Gauge>::default();
        registry.register_with_unit(
            "stored",
            "Distribution files stored, by kind (hosted, mirrored, cached, evictable, evicted)",
            Unit::Bytes,
            stored_bytes.clone(),
        );
        let stored_files = Family::<KindLabels, Gauge>::default();
        registry.register("stored_files", "Distribution files stored, by kind", stored_files.clone());
        registry.register_collector(Box::new(Live { proxy: indexes.proxy().cloned(), pages }));
        Self {
            registry,
            requests,
            at_hand: RequestCounters::default(),
            durations,
            served,
            stored_bytes,
            stored_files,
            sizes_read: Mutex::new(None),
        }
    }

    /// Counts one answered request.
    pub fn count(&self, kind: Kind, outcome: &'static str) {
        let labels = RequestLabels { kind, outcome };
        match OUTCOMES.iter().position(|known| *known == outcome) {
            Some(at) => self.at_hand.of(kind)[at].get_or_init(|| self.requests.get_or_create_owned(&labels)).inc(),
            None => self.requests.get_or_create(&labels).inc(),
        };
    }

    /// The metrics of a route (its pattern, like `/simple/{project}/`, or
    /// `unmatched`), to record its requests with: looked up once for a
    /// route served often, or per request for the others.
    pub fn route(&self, route: &str) -> RouteMetrics {
        let labels = RouteLabels { route: route.to_owned() };
        RouteMetrics {
            duration: self.durations.get_or_create_owned(&labels),
            served: self.served.get_or_create_owned(&labels),
        }
    }

    /// Whether the sizes by kind are due to be read again (and, when they
    /// are, takes the turn to read them).
    pub fn sizes_due(&self) -> bool {
        let mut read = self.sizes_read.lock().expect("never poisoned");
        let due = read.is_none_or(|at| at.elapsed() >= SIZES_EVERY);
        if due {
            *read = Some(Instant::now());
        }
        due
    }

    /// Records the sizes by kind.
    pub fn set_sizes(&self, sizes: &larder_proxy::evict::StoreSizes) {
        for (kind, size) in [
            ("hosted", sizes.hosted),
            ("mirrored", sizes.mirrored),
            ("cached", sizes.cached),
            ("evictable", sizes.evictable),
            ("evicted", sizes.evicted),
        ] {
            let labels = KindLabels { kind };
            self.stored_bytes.get_or_create(&labels).set(size.bytes as i64);
            self.stored_files.get_or_create(&labels).set(size.files as i64);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The metrics of one route: its latency and the bytes it answered.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    duration: Histogram,
    served: Counter,
}

impl RouteMetrics {
    /// Records a request: how long it took, and the bytes answered when
    /// known.
    pub fn observe(&self, elapsed: Duration, bytes: Option<u64>) {
        self.duration.observe(elapsed.as_secs_f64());
        if let Some(bytes) = bytes {
            self.served.inc_by(bytes);
        }
    }
}

fn request_histogram() -> Histogram {
    // 100 µs to about 6 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 13))
}

/// Values read when scraped: the upstreams' counters, evictions, and the
/// page cache's lookups.
struct Live {
    proxy: Option<larder_proxy::Proxy>,
    pages: Arc<PageCache>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (hits, misses) = self.pages.lookups();
        let mut lookups = encoder.encode_descriptor(
            "page_cache_lookups",
            "Rendered-page cache lookups by result",
            None,
            MetricType::Counter,
        )?;
        for (result, count) in [("hit", hits), ("miss", misses)] {
            ConstCounter::new(count).encode(lookups.encode_family(&[("result", result)])?)?;
        }
        let Some(proxy) = &self.proxy else {
            return Ok(());
        };
        // A configuration reload replaces the upstreams: their counters
        // start again from zero, which Prometheus takes as a reset.
        let in_use = proxy.upstreams();
        let upstreams: Vec<_> = in_use.stats().map(|(url, stats)| (url.to_string(), stats)).collect();
        let mut requests = encoder.encode_descriptor(
            "upstream_requests",
            "Requests sent to each upstream",
            None,
            MetricType::Counter,
        )?;
        for (url, stats) in &upstreams {
            stats.requests.encode(requests.encode_family(&[("upstream", url.as_str())])?)?;
        }
        let mut errors = encoder.encode_descriptor(
            "upstream_errors",
            "Failed upstream requests (no answer, connection error, 429 or 5xx, body cut short)",
            None,
            MetricType::Counter,
        )?;
        for (url, stats) in &upstreams {
            stats.errors.encode(errors.encode_family(&[("upstream", url.as_str())])?)?;
        }
        let mut fetched = encoder.encode_descriptor(
            "upstream_fetched",
            "Body bytes received from each upstream",
            Some(&Unit::Bytes),
            MetricType::Counter,
        )?;
        for (url, stats) in &upstreams {
            ConstCounter::new(stats.fetched()).encode(fetched.encode_family(&[("upstream", url.as_str())])?)?;
        }
        let mut latency = encoder.encode_descriptor(
            "upstream_request_duration",
            "Time from a request to its response head, per upstream",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (url, stats) in &upstreams {
            stats.latency.encode(latency.encode_family(&[("upstream", url.as_str())])?)?;
        }
        if let (Some(counts), Some(limit)) = (proxy.eviction_counts(), &proxy.settings().cache_limit) {
            let mut files = encoder.encode_descriptor(
                "evicted_files",
                "Files evicted from the cache",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(counts.files).encode(files.encode_family(&NO_LABELS)?)?;
            let mut bytes = encoder.encode_descriptor(
                "evicted",
                "Bytes evicted from the cache",
                Some(&Unit::Bytes),
                MetricType::Counter,
            )?;
            ConstCounter::new(counts.bytes).encode(bytes.encode_family(&NO_LABELS)?)?;
            let mut cap = encoder.encode_descriptor(
                "cache_max",
                "The bounded cache's cap (--max-cache-size)",
                Some(&Unit::Bytes),
                MetricType::Gauge,
            )?;
            ConstGauge::new(limit.max_bytes as i64).encode(cap.encode_family(&NO_LABELS)?)?;
            let mut failures = encoder.encode_descriptor(
                "eviction_failures",
                "Eviction passes that failed",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(counts.failures).encode(failures.encode_family(&NO_LABELS)?)?;
        }
        Ok(())
    }
}

const NO_LABELS: [(&str, &str); 0] = [];
