//! Reading larder's pages the way an installer does.

use std::time::{Duration, Instant};

use larder_testkit::{Server, Url, resolve};

/// PEP 691 JSON.
pub const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The files a project's JSON page lists: filename and absolute URL.
/// `Err` carries the status (or what went wrong) when the page is not 200.
pub fn listed(server: &Server, project: &str) -> Result<Vec<(String, Url)>, String> {
    let page_url = server.url(&format!("/simple/{project}/"));
    let r = server.get_url(&page_url).header("Accept", JSON).send();
    if r.status != 200 {
        return Err(format!("page {}", r.status));
    }
    let page = r.json();
    let files = page["files"].as_array().ok_or_else(|| format!("no files[] in {page}"))?;
    Ok(files
        .iter()
        .filter_map(|f| Some((f["filename"].as_str()?.to_owned(), resolve(&page_url, f["url"].as_str()?))))
        .collect())
}

/// The URL of `filename` on `project`'s page.
pub fn file_url(server: &Server, project: &str, filename: &str) -> Result<Url, String> {
    listed(server, project)?
        .into_iter()
        .find_map(|(name, url)| (name == filename).then_some(url))
        .ok_or_else(|| format!("{filename} not listed"))
}

/// The request target (path and query) of `url`.
pub fn target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Polls `check` every 100 ms until it holds; how long that took, or
/// `None` after `limit`.
pub fn time_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
