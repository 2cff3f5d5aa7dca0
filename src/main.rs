//! ipft: traces the journey of marked packets through the Linux kernel.
//!
//! main parses the command line and maps every failure to one line on stderr
//! and a non-zero exit status. The work itself is in [`session`].

mod backend;
mod background_detach;
mod bpf;
mod cli;
mod decode;
mod discovery;
mod event;
mod extension;
mod filter;
mod funcs;
mod graph;
mod kernel;
mod output;
mod packet;
mod progress;
mod reader;
mod select;
mod session;
mod stack;
mod symbols;
mod track;
mod verdict;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;
use std::process::ExitCode;

/// What `ipft --version` prints after the name: the package version and the
/// git commit it was built from (set by build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IPFT_GIT_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap adds a usage hint over several lines; the first says it all.
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error");
            let mut line = first.trim_start_matches("error: ").to_string();
            if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
                line.push_str(&format!(" (possible values: {})", valid.join(", ")));
            }
            eprintln!("ipft: {line}");
            return ExitCode::from(2);
        }
    };
    if let Err(line) = cli.check(event::SNAPLEN_MAX as u32) {
        eprintln!("ipft: {line}");
        return ExitCode::from(2);
    }
    match session::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("ipft: {msg}");
            // A selector that cannot be used is a bad command-line value.
            if e.downcast_ref::<select::BadSelector>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
