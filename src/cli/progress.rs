//! A progress bar for people: shown on stderr only when it is a terminal and the job is long.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` units, hidden unless stderr is a terminal, `quiet` is off and
/// `total ≥ threshold`.
pub fn bar(total: u64, threshold: u64, quiet: bool, message: &str) -> ProgressBar {
    if quiet || total < threshold || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}
