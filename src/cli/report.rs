//! `mhc-analyze report`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use mhc_analyze::export;
use mhc_analyze::report::{self, Experiment, bundle::display_path};

use super::{Outcome, progress, with_threads, write_stdout};

#[derive(Debug, Args)]
#[command(
    after_help = "An experiment file names its kind, its parameters and seeds; experiments/ holds \
one file of each kind. Each report folder \
holds report.md, figures (PNG, SVG), tables (LaTeX, Markdown), tidy CSV and manifest.json, written \
atomically; regenerating gives the same bytes except manifest.json's wall_time_seconds.

Examples:
  mhc-analyze report experiments/hc-vs-mhc-depth60.toml
      Run one experiment into reports/hc-vs-mhc-depth60/.
  mhc-analyze report --all
      Run every experiments/*.toml into reports/<name>/ and write reports/README.md.
  mhc-analyze report my-run.toml --out /tmp/my-run --threads 2
      Anywhere else; the numbers do not depend on the thread count."
)]
pub struct ReportArgs {
    /// The experiment file (TOML).
    #[arg(
        value_name = "EXPERIMENT.toml",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    experiment: Option<PathBuf>,
    /// Run every *.toml in the experiments folder and index the reports in README.md.
    #[arg(long)]
    all: bool,
    /// Output folder [default: reports/<experiment name>]; with --all, the folder that receives
    /// one folder per experiment and README.md [default: reports].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where --all finds the experiment files [default: experiments].
    #[arg(long, value_name = "DIR", requires = "all")]
    experiments: Option<PathBuf>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

/// The folder `--all` reads when `--experiments` is not given: the repository's.
const DEFAULT_EXPERIMENTS: &str = "experiments";

/// The experiment files of `folder`: every `*.toml`, sorted by name. `given` says whether the
/// folder was passed with `--experiments`; if not, a missing or empty default folder (`report
/// --all` run outside the repository) says how to name another one.
fn experiment_files(folder: &Path, given: bool) -> anyhow::Result<Vec<PathBuf>> {
    let hint = if given {
        ""
    } else {
        " (run from the repository root, or pass --experiments DIR)"
    };
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "{}: no such folder of experiment files{hint}",
                folder.display()
            )
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("{}: cannot list the experiment files", folder.display())
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("{}: cannot list the experiment files", folder.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no experiment files (*.toml) found{hint}",
        folder.display()
    );
    Ok(files)
}

pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    let paths = match &args.experiment {
        Some(path) => vec![path.clone()],
        None => match &args.experiments {
            Some(folder) => experiment_files(folder, true)?,
            None => experiment_files(Path::new(DEFAULT_EXPERIMENTS), false)?,
        },
    };
    // Every file is checked before anything runs.
    let experiments: Vec<Experiment> = paths
        .iter()
        .map(|path| Experiment::from_file(path))
        .collect::<Result<_, _>>()?;
    let root = match (&args.out, args.all) {
        (Some(out), true) => out.clone(),
        _ => PathBuf::from("reports"),
    };
    let targets: Vec<PathBuf> = experiments
        .iter()
        .map(|e| match (&args.out, args.all) {
            (Some(out), false) => out.clone(),
            _ => root.join(e.name()),
        })
        .collect();
    for target in &targets {
        export::prepare_output_directory(target)?;
    }

    let total: u64 = experiments.iter().map(Experiment::work_units).sum();
    let bar = progress::bar(total, 1, args.quiet, "experiments");
    let mut entries = Vec::new();
    let mut lines = String::new();
    for (experiment, target) in experiments.iter().zip(&targets) {
        bar.set_message(experiment.name().to_string());
        let started = Instant::now();
        let result = with_threads(args.threads, || {
            report::run(experiment, &mut |units| bar.inc(units))
        })?
        .with_context(|| format!("running {}", display_path(experiment.path())))?;
        let command = format!(
            "mhc-analyze report {} --out {}",
            display_path(experiment.path()),
            display_path(target)
        );
        let bundle = report::render(experiment, &result, &command, started)?;
        report::write_bundle(&bundle, target)
            .with_context(|| format!("writing the report into {}", target.display()))?;
        lines.push_str(&format!(
            "{}: {}\n",
            display_path(&target.join("report.md")),
            bundle.index.headline
        ));
        entries.push(bundle.index);
    }
    bar.finish_and_clear();
    if args.all {
        let readme = report::index_readme(&entries, "mhc-analyze report --all");
        let path = root.join("README.md");
        export::write_atomic(&path, readme.as_bytes())?;
        lines.push_str(&format!("{}\n", display_path(&path)));
    }
    write_stdout(lines.as_bytes())?;
    Ok(Outcome::Done)
}
