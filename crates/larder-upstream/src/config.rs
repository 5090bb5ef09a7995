//! How to reach one upstream index.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

/// One upstream index, as configured.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// The Simple API root (`.../simple/`), always ending in `/`, without
    /// credentials.
    pub url: Url,
    /// The bound on each request: connecting, waiting for a response head,
    /// and each read; a project page or metadata file must also arrive
    /// whole within it (from the start of the attempt), and a file body
    /// must keep a minimum rate over each such period
    /// ([`crate::client::MIN_FILE_RATE`]).
    pub timeout: Duration,
    /// How many times a failed request is tried again on this upstream
    /// before moving on to the next one (0 = move on at once).
    pub retries: u32,
    /// HTTP basic-auth credentials.
    pub credentials: Option<Credentials>,
    /// A PEM bundle of extra CA certificates to trust for this upstream.
    pub ca_bundle: Option<PathBuf>,
}

/// HTTP basic-auth credentials.
#[derive(Clone)]
pub struct Credentials {
    /// User name (`__token__` for API tokens).
    pub username: String,
    /// Password or token.
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
    }
}

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of retries per upstream.
pub const DEFAULT_RETRIES: u32 = 2;

impl UpstreamConfig {
    /// An upstream at `url` with default settings. Credentials written in
    /// the URL (`https://user:token@host/simple/`) are moved out of it into
    /// [`UpstreamConfig::credentials`]; a missing trailing `/` is added.
    pub fn new(mut url: Url) -> Self {
        let credentials = (!url.username().is_empty()).then(|| Credentials {
            username: percent_decode(url.username()),
            password: url.password().map(percent_decode),
        });
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Self { url, timeout: DEFAULT_TIMEOUT, retries: DEFAULT_RETRIES, credentials, ca_bundle: None }
    }

    /// The URL of a project page on this upstream.
    pub fn project_url(&self, name: &larder_index::NormalizedName) -> Url {
        self.url.join(&format!("{name}/")).expect("a normalized name is a valid relative URL")
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_credentials_out_of_the_url_and_adds_the_slash() {
        let config = UpstreamConfig::new("https://alice:s%40cret@mirror.example/simple".parse().unwrap());
        assert_eq!(config.url.as_str(), "https://mirror.example/simple/");
        let credentials = config.credentials.unwrap();
        assert_eq!((credentials.username.as_str(), credentials.password.as_deref()), ("alice", Some("s@cret")));
        let name = larder_index::NormalizedName::new("Foo_Bar").unwrap();
        let plain = UpstreamConfig::new("http://127.0.0.1:8080/simple/".parse().unwrap());
        assert_eq!(plain.project_url(&name).as_str(), "http://127.0.0.1:8080/simple/foo-bar/");
    }
}
