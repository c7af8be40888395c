//! Command-line definitions and glue. Each subcommand converts its flags into a validated
//! library config, runs it and renders the result; nothing numerical happens here.

mod audit;
mod gain;
mod progress;
mod report;
mod series;
mod shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// What a successful run found.
pub enum Outcome {
    /// Finished; nothing to flag (audit: stable).
    Done,
    /// Finished with a finding (audit: unstable).
    Finding,
}

impl Outcome {
    /// 0 for [`Outcome::Done`], 1 for [`Outcome::Finding`].
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Finding => ExitCode::from(1),
        }
    }
}

/// Signal propagation through the residual-mixing matrices of Hyper-Connections (HC) and
/// Manifold-Constrained Hyper-Connections (mHC).
#[derive(Debug, Parser)]
#[command(name = "mhc-analyze", version, about, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 success (audit: stable), 1 audit found the model unstable, \
2 usage or input error.\nConventions: x_{l+1} = H_l x_l (rows = output streams), layers 1-based, \
prefix(l) = H_l⋯H_1, suffix(l) = H_L⋯H_l."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compare HC and mHC drawn from the same logits: gains, norms and Birkhoff distance across depth.
    Gain(gain::GainArgs),
    /// Read a checkpoint or captured H_res, judge its stability; exit 0 stable, 1 unstable.
    Audit(audit::AuditArgs),
    /// Run experiment files into report folders: figures, LaTeX/Markdown tables, CSV, report.md.
    Report(report::ReportArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff), or write every page into a folder with --out.
    Man(shell::ManArgs),
}

/// Output format on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A human-readable table.
    #[default]
    Table,
    /// JSON (the content of summary.json).
    Json,
    /// Tidy CSV (the content of gain.csv).
    Csv,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Gain(args) => gain::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Report(args) => report::run(args),
        Command::Completions(args) => shell::run_completions(args),
        Command::Man(args) => shell::run_man(args),
    }
}

/// The error and its causes on one line, each cause once (library errors already quote the
/// operating system's message that is also their source), by the library's one rule for
/// messages ([`mhc_analyze::one_line`]).
pub fn error_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    mhc_analyze::one_line(&text)
}

/// Whether the error is a closed pipe on stdout (`mhc-analyze gain --format csv | head -1`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `bytes` to stdout, passing a closed pipe up as an error (not a panic).
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Runs `job` on a rayon pool of `threads` threads (all cores when `None`).
pub fn with_threads<T: Send>(
    threads: Option<usize>,
    job: impl FnOnce() -> T + Send,
) -> anyhow::Result<T> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(threads) = threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1, got 0");
        builder = builder.num_threads(threads);
    }
    let pool = builder.build()?;
    Ok(pool.install(job))
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
