//! The request log and each route's latency and bytes answered, the same
//! for a request the router answers and for one of the hot routes
//! ([`crate::dispatch`]).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::cache::CACHE_HEADER;
use crate::metrics::RouteMetrics;

/// The router's middleware: [`record`]s each request under the route it
/// matched (`unmatched` for none).
pub(crate) async fn log_request(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let route = state.metrics.route(route);
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    record(&route, started, &method, &uri, &response);
    response
}

/// Records a request answered with `response`, which began at `started`:
/// its latency and the bytes answered (its `Content-Length`) in `route`,
/// and a line in the log with its duration, status and cache outcome
/// (which costs next to nothing when the log level leaves requests out).
pub(crate) fn record(route: &RouteMetrics, started: Instant, method: &Method, uri: &Uri, response: &Response) {
    let bytes =
        response.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    route.observe(started.elapsed(), bytes);
    if tracing::enabled!(tracing::Level::INFO) {
        let cache = response.headers().get(CACHE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
        tracing::info!(
            method = %method,
            path = %uri.path(),
            status = response.status().as_u16(),
            cache,
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    }
}
