//! The `mhc-analyze` binary: a thin clap front end over the `mhc_analyze` library.
//!
//! Exit codes: 0 success (audit: stable), 1 a finding (audit: unstable), 2 usage or input error.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse(); // usage errors: clap prints and exits 2
    match cli::run(args) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) if cli::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", cli::error_line(&err));
            ExitCode::from(2)
        }
    }
}
