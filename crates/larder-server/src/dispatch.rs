//! The service every connection is served with. The two routes a proxy
//! answers most, project pages of the default index and files, go straight
//! to their handlers; every other request goes through the axum router.
//! Both ways run the same handlers, request log and metrics: the shortcut
//! skips only the router's matching, its boxed services and its extractors,
//! which cost more than answering a warm page from memory.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Incoming};
use tower::Service as _;

use crate::AppState;
use crate::metrics::RouteMetrics;
use crate::request_log::record;
use crate::{pages, routes};

/// The route of project pages of the default index, as the router names it.
pub(crate) const PAGE_ROUTE: &str = "/simple/{project}/";

/// The route of files, as the router names it.
pub(crate) const FILE_ROUTE: &str = "/files/{sha256}/{filename}";

/// Answers a connection's requests: the hot routes directly, the others
/// through the router.
#[derive(Clone)]
pub(crate) struct Dispatch {
    state: Arc<AppState>,
    router: Router,
    pages: RouteMetrics,
    files: RouteMetrics,
}

impl Dispatch {
    /// The service of a server with this state.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self {
            pages: state.metrics.route(PAGE_ROUTE),
            files: state.metrics.route(FILE_ROUTE),
            router: routes::router(state.clone()),
            state,
        }
    }

    // The handlers' futures are awaited where they are made: a future
    // passed on to a wrapper before it is awaited is moved whole on the
    // way, and takes room in the wrapper's future too.
    async fn answer(mut self, request: Request<Incoming>) -> Result<Response, Infallible> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        let (route, response) = match HotRoute::of(method, uri.path()) {
            Some(HotRoute::Page { project }) => {
                (&self.pages, pages::serve_project_page(&self.state, project, uri, headers).await.into_response())
            }
            Some(HotRoute::File { sha256, filename }) => {
                // Boxed: a file's future is several times a page's, which
                // every page request would otherwise carry.
                let answer = Box::pin(routes::serve_file(&self.state, sha256, filename, method, headers));
                (&self.files, answer.await.into_response())
            }
            None => return self.router.call(Request::from_parts(parts, body)).await,
        };
        record(route, started, method, uri, &response);
        Ok(finish(method, response))
    }
}

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        Box::pin(self.clone().answer(request))
    }
}

/// A hot route, with the parts of its path.
#[derive(Debug, PartialEq, Eq)]
enum HotRoute<'a> {
    /// `/simple/<project>/`.
    Page { project: &'a str },
    /// `/files/<sha256>/<filename>`.
    File { sha256: &'a str, filename: &'a str },
}

impl<'a> HotRoute<'a> {
    /// The hot route a request for `path` takes: a `GET` or `HEAD` of a
    /// path the router would send to that route, with nothing to
    /// percent-decode (the router takes those, and everything else).
    fn of(method: &Method, path: &'a str) -> Option<Self> {
        if (method != Method::GET && method != Method::HEAD) || memchr::memchr(b'%', path.as_bytes()).is_some() {
            return None;
        }
        let segment = |s: &str| !s.is_empty() && !s.contains('/');
        if let Some(rest) = path.strip_prefix("/simple/") {
            let project = rest.strip_suffix('/').filter(|p| segment(p))?;
            return Some(Self::Page { project });
        }
        let (sha256, filename) = path.strip_prefix("/files/")?.split_once('/')?;
        (segment(sha256) && segment(filename)).then_some(Self::File { sha256, filename })
    }
}

/// What the router does to each answer of a `GET` route: a
/// `Content-Length` for a body of known size that has none, and no body in
/// answer to `HEAD`.
fn finish(method: &Method, mut response: Response) -> Response {
    if !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(size) = response.body().size_hint().exact()
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_files_take_the_hot_routes() {
        let get = Method::GET;
        assert_eq!(HotRoute::of(&get, "/simple/requests/"), Some(HotRoute::Page { project: "requests" }));
        assert_eq!(HotRoute::of(&Method::HEAD, "/simple/Requests/"), Some(HotRoute::Page { project: "Requests" }));
        assert_eq!(
            HotRoute::of(&get, "/files/abc/a-1.0-py3-none-any.whl.metadata"),
            Some(HotRoute::File { sha256: "abc", filename: "a-1.0-py3-none-any.whl.metadata" })
        );
    }

    #[test]
    fn everything_else_goes_through_the_router() {
        let get = Method::GET;
        for path in [
            "/simple/",
            "/simple",
            "/simple/requests",
            "/simple//",
            "/simple/a/b/",
            "/simple/re%71uests/",
            "/files/abc/",
            "/files//a.whl",
            "/files/abc/a.whl/",
            "/files/abc/a%2Fb.whl",
            "/files/abc",
            "/private/simple/requests/",
            "/pypi/requests/json",
        ] {
            assert_eq!(HotRoute::of(&get, path), None, "{path}");
        }
        assert_eq!(HotRoute::of(&Method::POST, "/simple/requests/"), None);
        assert_eq!(HotRoute::of(&Method::DELETE, "/files/abc/a.whl"), None);
    }
}
