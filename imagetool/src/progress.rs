//! Progress: per-layer bars on a terminal; without one (a CI log, a pipe), one plain line
//! per layer as it is applied, as skopeo prints; nothing with `--quiet`.

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    mode: Mode,
}

enum Mode {
    Bars(MultiProgress),
    Lines,
    Quiet,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Mode::Lines
        };
        Self { mode }
    }

    /// A bar counting a layer's compressed bytes; hidden unless on a terminal.
    pub fn layer(&self, label: &str, size: u64) -> ProgressBar {
        let Mode::Bars(multi) = &self.mode else {
            return ProgressBar::hidden();
        };
        let bar = multi.add(ProgressBar::new(size));
        let style = ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }

    /// A layer is applied: a line of its own when there are no bars to show it.
    pub fn layer_done(&self, label: &str, size: u64) {
        if let Mode::Lines = self.mode {
            self.line(&format!("applied layer {label} ({size} bytes)"));
        }
    }

    /// A blob is in the layout: a line of its own when there are no bars.
    pub fn fetched(&self, kind: &str, label: &str, size: u64, how: &crate::registry::Fetched) {
        if let Mode::Lines = self.mode {
            let how = match how {
                crate::registry::Fetched::Present => " already present".to_string(),
                crate::registry::Fetched::Downloaded { resumed_from: 0 } => String::new(),
                crate::registry::Fetched::Downloaded { resumed_from } => {
                    format!(", resumed at byte {resumed_from}")
                }
            };
            self.line(&format!("fetched {kind} {label} ({size} bytes{how})"));
        }
    }

    /// A line on stderr, unless quiet.
    pub fn line(&self, text: &str) {
        if !matches!(self.mode, Mode::Quiet) {
            let _ = writeln!(std::io::stderr(), "patina-imagetool: {text}");
        }
    }
}
