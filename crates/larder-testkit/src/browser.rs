//! Headless Chromium for the tests of the web pages, driven over WebDriver
//! (Debian's `chromium` and `chromium-driver` packages, which
//! `scripts/test` installs when missing).
//!
//! [`Browser::start`] runs `chromedriver` on a free port of 127.0.0.1 in a
//! process group of its own and opens a session in which chromedriver
//! starts Chromium, headless, with a throw-away profile and every request
//! for another host sent to a closed port. The guard kills that process
//! group (chromedriver and every Chromium process, by chromedriver's PID)
//! when the test ends, pass or fail. Screenshots go under
//! [`artifacts_dir`].

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use url::Url;

/// How tests find elements (by CSS selector, link text, ...).
pub use fantoccini::Locator;

/// What is missing when the browser cannot run, and how to get it.
const INSTALL_HINT: &str = "the browser tests need headless Chromium: Debian's `chromium` and `chromium-driver` \
     packages (scripts/test installs them; or `apt-get install chromium chromium-driver`)";

/// How long chromedriver may take to say which port it listens on.
const DRIVER_STARTUP: Duration = Duration::from_secs(30);

/// The window size of a new session (a desktop screen).
pub const DESKTOP: (u32, u32) = (1280, 900);

/// Where the tests keep files for people to look at afterwards:
/// `target/test-artifacts/<name>/` (created, and emptied of an earlier
/// run's files). The target directory is the one the running test
/// executable was built in.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/<test executable>
    let target = exe.ancestors().nth(3).expect("test executable under target/<profile>/deps");
    let dir = target.join("test-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A headless Chromium session (see the module docs).
pub struct Browser {
    client: Client,
    driver: Child,
    driver_log: Arc<Mutex<String>>,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("chromedriver_pid", &self.driver.id()).finish_non_exhaustive()
    }
}

/// The path of `program` on `PATH`, or a panic saying how to install it.
fn installed(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no `{program}` on PATH: {INSTALL_HINT}"))
}

/// Starts `chromedriver` in a new process group; returns it with the port
/// it listens on (read from its first lines) and the log it keeps writing.
fn start_driver(driver: &Path) -> (Child, u16, Arc<Mutex<String>>) {
    let mut child = Command::new(driver)
        .arg("--port=0")
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}; {INSTALL_HINT}", driver.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let log = Arc::new(Mutex::new(String::new()));
    let (port_tx, port_rx) = mpsc::channel();
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("ChromeDriver was started successfully on port ") {
                let _ = port_tx.send(port.trim_end_matches('.').parse::<u16>().ok());
            }
            let mut log = kept.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    match port_rx.recv_timeout(DRIVER_STARTUP) {
        Ok(Some(port)) => (child, port, log),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromedriver did not say its port within {DRIVER_STARTUP:?}:\n{}", log.lock().unwrap());
        }
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a window of
    /// [`DESKTOP`] size. Panics, saying how to install them, when
    /// `chromium` or `chromedriver` is missing.
    pub async fn start() -> Browser {
        let chromium = installed("chromium");
        let driver_path = installed("chromedriver");
        let profile = tempfile::Builder::new().prefix("larder-test-chromium-").tempdir().expect("temp dir");
        let (driver, port, driver_log) = start_driver(&driver_path);
        let args = [
            "--headless=new".to_owned(),
            // The tests may run as root, where Chromium's sandbox refuses to start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            // Loopback goes direct; anything else meets a closed port.
            "--proxy-server=http://127.0.0.1:9".to_owned(),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!("an object") };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        Browser {
            client: match builder.connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(client) => client,
                Err(e) => {
                    let mut driver = driver;
                    kill_group(&mut driver);
                    panic!("no Chromium session: {e}\nchromedriver log:\n{}", driver_log.lock().unwrap());
                }
            },
            driver,
            driver_log,
            _profile: profile,
        }
    }

    /// The WebDriver client of the session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Makes the page's viewport `width` x `height` CSS pixels. `phone`:
    /// as a phone shows it (the page's viewport meta tag applies, touch
    /// events) rather than a desktop window.
    pub async fn viewport(&self, width: u32, height: u32, phone: bool) {
        let metrics = json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone });
        self.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
    }

    /// Runs `script` (a function body that `return`s a value) in the page.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("run `{script}`: {e}"))
    }

    /// Saves a PNG of the whole page, not only what the viewport shows, to
    /// `path`.
    pub async fn screenshot(&self, path: &Path) {
        let size = self
            .eval("const e = document.documentElement; return [Math.max(e.scrollWidth, innerWidth), e.scrollHeight];")
            .await;
        let clip = json!({ "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 });
        let shot = self
            .cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }))
            .await;
        let png = shot["data"].as_str().and_then(|data| BASE64.decode(data).ok()).expect("base64 PNG data");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a screenshot that is not a PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver and
    /// returns its result.
    async fn cdp(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.client.issue_cmd(Cdp { method, params }).await.unwrap_or_else(|e| panic!("DevTools command {method}: {e}"))
    }

    /// What chromedriver has written so far, for messages.
    pub fn driver_log(&self) -> String {
        self.driver_log.lock().unwrap().clone()
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Drop kills whatever is left of the process group.
    }
}

/// chromedriver's command for the DevTools protocol
/// (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    method: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.method, "params": self.params }).to_string()))
    }
}

/// Kills the process group that `child` leads (chromedriver and the
/// Chromium it started), by the child's PID, and reaps the child.
fn kill_group(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
        if std::thread::panicking() {
            eprintln!("--- chromedriver (pid {}) log ---\n{}", self.driver.id(), self.driver_log());
        }
    }
}
