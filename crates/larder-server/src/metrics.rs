//! Prometheus metrics at `/metrics`: requests by kind and cache outcome,
//! and requests sent to each upstream.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

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

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("larder");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Index requests by kind and cache outcome", requests.clone());
        Self { registry, requests }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn count(&self, kind: Kind, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { kind, outcome }).inc();
    }

    /// The Prometheus text exposition, with the upstream request counts
    /// (`(url, count)`) appended.
    pub fn render<'a>(&self, upstreams: impl Iterator<Item = (&'a url::Url, u64)>) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text.push_str("# HELP larder_upstream_requests Requests sent to each upstream.\n");
        text.push_str("# TYPE larder_upstream_requests counter\n");
        for (url, count) in upstreams {
            let label = url.as_str().replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(text, "larder_upstream_requests_total{{upstream=\"{label}\"}} {count}");
        }
        prometheus_client::encoding::text::encode_eof(&mut text).expect("writing to a String cannot fail");
        text
    }
}
