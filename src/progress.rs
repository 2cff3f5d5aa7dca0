//! What ipft shows on stderr while it works: the attach progress bar and the
//! live event counter. Both draw only when stderr is a terminal, so logs and
//! test captures stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// "Attaching [=====>   ] 812/1520 functions".
pub fn attach_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template("Attaching {bar:40} {pos}/{len} functions ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// "Detaching [=====>   ] 812/1520 probes": removing probes waits on the
/// kernel, minutes for fentry on Linux 6.1.
pub fn detach_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    bar.set_style(
        ProgressStyle::with_template("Detaching {bar:40} {pos}/{len} probes ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// "N events" while tracing.
pub fn event_counter() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_style(ProgressStyle::with_template("{pos} events").expect("valid template"));
    bar
}
