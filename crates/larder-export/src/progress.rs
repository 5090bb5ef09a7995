//! Progress of a long export or import: a bar on a terminal, a plain log
//! line every few seconds otherwise (CI logs, cron mail).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is logged when stderr is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The progress of one operation, counted in files and bytes.
pub(crate) struct Progress {
    what: &'static str,
    bar: ProgressBar,
    files: u64,
    bytes: u64,
    /// When the last plain line was logged; `None` on a terminal.
    logged: Option<Instant>,
}

impl Progress {
    /// Starts showing progress of `what` (`export`, `import`, ...), with a
    /// bar and an ETA when the total number of bytes is known.
    pub(crate) fn new(what: &'static str, total_bytes: Option<u64>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = match (terminal, total_bytes) {
            (false, _) => ProgressBar::hidden(),
            (true, Some(total)) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            ),
            (true, None) => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {binary_bytes} {binary_bytes_per_sec} {elapsed}")
                    .expect("the template is valid"),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { what, bar, files: 0, bytes: 0, logged: (!terminal).then(Instant::now) }
    }

    /// Counts `files` more files of `bytes` bytes in all.
    pub(crate) fn add(&mut self, files: u64, bytes: u64) {
        self.files += files;
        self.bytes += bytes;
        self.bar.set_position(self.bytes);
        self.bar.set_message(format!("{}: {} files", self.what, self.files));
        if let Some(logged) = &mut self.logged
            && logged.elapsed() >= LOG_EVERY
        {
            *logged = Instant::now();
            tracing::info!(files = self.files, bytes = self.bytes, "{} in progress", self.what);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
