//! One row per probe, and the table they print as.

use std::any::Any;
use std::time::Duration;

/// A probe's result.
pub struct Row {
    /// What was probed.
    pub probe: String,
    /// What a sound larder does.
    pub expected: String,
    /// What this one did, in numbers.
    pub observed: String,
    /// Whether `observed` meets `expected`.
    pub met: bool,
}

impl Row {
    /// A row.
    pub fn new(probe: &str, expected: &str, observed: String, met: bool) -> Row {
        Row { probe: probe.to_owned(), expected: expected.to_owned(), observed, met }
    }

    /// The row of a probe group that panicked (the harness itself failed,
    /// or larder did something the probe could not read).
    pub fn broken(group: &str, panic: &Box<dyn Any + Send>) -> Row {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let first_line = message.lines().next().unwrap_or_default();
        Row::new(group, "the probes run to the end", format!("probe panicked: {first_line}"), false)
    }
}

/// The last 70 characters of a message (where a path ends and the reason
/// begins).
pub fn tail(message: &str) -> String {
    let chars: Vec<char> = message.trim().chars().collect();
    let skip = chars.len().saturating_sub(70);
    let prefix = if skip > 0 { "..." } else { "" };
    format!("{prefix}{}", chars[skip..].iter().collect::<String>())
}

/// Seconds with one decimal.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The rows as a plain-text table, the columns padded to their widest cell.
pub fn table(rows: &[Row]) -> String {
    let header = ["probe", "expected", "observed", "met"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| [r.probe.clone(), r.expected.clone(), r.observed.clone(), if r.met { "yes" } else { "NO" }.into()])
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 4]| {
        let padded: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        format!("{}\n", padded.join(" | ").trim_end())
    };
    let mut out = line(header);
    out.push_str(&line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str)));
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}
