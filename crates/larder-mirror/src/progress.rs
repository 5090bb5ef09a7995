//! Progress of a mirror run: a bar on a terminal (files, bytes, rate, ETA),
//! plain periodic log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often progress is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts files and bytes as they are done.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    bytes: Arc<AtomicU64>,
    logger: Option<Arc<tokio::task::JoinHandle<()>>>,
}

impl Progress {
    /// Starts reporting; `quiet` shows nothing (for tests and scripts that
    /// only want the summary).
    pub fn start(quiet: bool) -> Self {
        let terminal = !quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if terminal { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} files  {msg}  ETA {eta}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        let bytes = Arc::new(AtomicU64::new(0));
        let logger =
            (!terminal && !quiet).then(|| Arc::new(tokio::spawn(log_periodically(bar.clone(), bytes.clone()))));
        Self { bar, bytes, logger }
    }

    /// More files to do.
    pub fn add_files(&self, count: u64) {
        self.bar.inc_length(count);
    }

    /// One file done, with the bytes it took to download.
    pub fn file_done(&self, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let rate = total as f64 / self.bar.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!("{} at {}/s", human_bytes(total), human_bytes(rate as u64)));
        self.bar.inc(1);
    }

    /// Stops the bar (and the logger).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(logger) = &self.logger {
            logger.abort();
        }
    }
}

async fn log_periodically(bar: ProgressBar, bytes: Arc<AtomicU64>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(LOG_EVERY).await;
        let bytes = bytes.load(Ordering::Relaxed);
        let rate = bytes as f64 / started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            files_done = bar.position(),
            files_known = bar.length().unwrap_or(0),
            downloaded = %human_bytes(bytes),
            rate = %format!("{}/s", human_bytes(rate as u64)),
            "mirror progress"
        );
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}
