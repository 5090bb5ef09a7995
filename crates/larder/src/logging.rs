//! Structured logs on stderr: human-readable text, or one JSON object per
//! line for log collectors. `RUST_LOG` overrides the default level.
//!
//! A server writes its log from a thread of its own: a request thread only
//! queues its line, and the lines queued meanwhile go out in one write.
//! Nothing is dropped: when the queue is full, request threads wait.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines a server may queue before request threads wait for the writer.
const QUEUED_LINES: usize = 64 * 1024;

/// Where log lines go.
pub enum Writer {
    /// Straight to stderr, line by line (commands with progress bars, and
    /// `exec`, which replaces the process).
    Direct,
    /// Queued for a writer thread (servers).
    Background,
}

/// Installs the global subscriber. Keep the returned guard until the
/// process ends: dropping it writes out what is still queued.
#[must_use = "queued log lines are lost when the guard is dropped early"]
pub fn init(format: LogFormat, writer: Writer) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // Dependencies that narrate their internals at info (the solver, the
    // SQL layer) speak only of warnings unless RUST_LOG asks for more.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,pubgrub=warn,sqlx=warn"));
    let (make_writer, guard) = match writer {
        Writer::Direct => (BoxMakeWriter::new(std::io::stderr), None),
        Writer::Background => {
            let (queue, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(QUEUED_LINES)
                .thread_name("larder-log")
                .finish(std::io::BufWriter::new(std::io::stderr()));
            (BoxMakeWriter::new(queue), Some(guard))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(make_writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}
