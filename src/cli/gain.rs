//! `mhc-analyze gain`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use mhc_analyze::analysis::gain_figure::{Band, gain_figure};
use mhc_analyze::analysis::{GainConfig, GainParams, TokenAggregation, run_gain};
use mhc_analyze::export::{self, StagedFile};
use mhc_analyze::generate::{LogitGenerator, SinkhornOrder, SinkhornParams};
use mhc_analyze::metrics::Metric;
use mhc_analyze::plot;

use super::{Format, Outcome, progress, with_threads, write_stdout};

/// Sinkhorn order as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OrderArg {
    /// Columns, then rows (the paper): row sums exact.
    ColumnsThenRows,
    /// Rows, then columns (lucidrains, mhc-pytorch): column sums exact.
    RowsThenColumns,
}

/// Token aggregation as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenArg {
    /// Metrics per token, then the mean over tokens.
    MeanOfMetrics,
    /// Mean matrix over tokens per layer, then metrics.
    MetricOfMean,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  mhc-analyze gain --layers 64 --streams 4
      HC vs mHC for one draw of logits I + 0.3·G, as a table.
  mhc-analyze gain --seeds 1000 --out runs/depth64
      1,000 seeds in parallel; writes gain.csv, summary.json, gain.png and gain.svg.
  mhc-analyze gain --logits logits.npy --format json
      Logits [L,n,n], [L,T,n,n] or [draws,L,T,n,n] from a file (f32 or f64).")]
pub struct GainArgs {
    /// Number of layers L (H_res matrices) [default: 64].
    #[arg(long, conflicts_with = "logits")]
    layers: Option<usize>,
    /// Number of residual streams n [default: 4].
    #[arg(long, conflicts_with = "logits")]
    streams: Option<usize>,
    /// Number of seeds (independent draws), run in parallel [default: 1].
    #[arg(long, conflicts_with = "logits")]
    seeds: Option<u64>,
    /// Master seed; seed i draws from ChaCha8(seed) stream i.
    #[arg(long, default_value_t = 0, conflicts_with = "logits")]
    seed: u64,
    /// Tokens per layer; metrics are computed per token and averaged [default: 1].
    #[arg(long, conflicts_with = "logits")]
    tokens: Option<usize>,
    /// Standard deviation σ of the per-layer noise: logits = w·I + S + σ·G.
    #[arg(long, default_value_t = 0.3, conflicts_with = "logits")]
    logit_std: f64,
    /// Weight w of the identity in every layer's logits (logits = w·I + S + σ·G).
    #[arg(long, default_value_t = 1.0, conflicts_with = "logits")]
    identity_weight: f64,
    /// Std s of the shared term S = s·G_shared, one matrix drawn per seed and added to every
    /// layer and token (correlated layers).
    #[arg(long, default_value_t = 0.0, conflicts_with = "logits")]
    shared_std: f64,
    /// Sinkhorn–Knopp iterations t_max for mHC (each: one column and one row step).
    #[arg(long, default_value_t = 20)]
    sinkhorn_iters: u32,
    /// Which side each Sinkhorn iteration normalises first (the other ends exact).
    #[arg(long, value_enum, default_value = "columns-then-rows")]
    sinkhorn_order: OrderArg,
    /// How tokens are combined.
    #[arg(long, value_enum, default_value = "mean-of-metrics")]
    token_aggregation: TokenArg,
    /// Take the logits from a .npy file instead of drawing them.
    #[arg(long, value_name = "FILE.npy")]
    logits: Option<PathBuf>,
    /// Write gain.csv, summary.json, gain.png and gain.svg into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write gain_per_seed.csv (one row per seed and value) into --out.
    #[arg(long, requires = "out")]
    per_seed: bool,
    /// The metrics written to gain_per_seed.csv, comma-separated [default: all] (1000 seeds of
    /// 60 layers with every metric is about 300 MB).
    #[arg(long, value_delimiter = ',', value_parser = parse_metric, requires = "per_seed")]
    per_seed_metrics: Vec<Metric>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl GainArgs {
    fn config(&self) -> anyhow::Result<GainConfig> {
        let sinkhorn = SinkhornParams {
            iterations: self.sinkhorn_iters,
            order: match self.sinkhorn_order {
                OrderArg::ColumnsThenRows => SinkhornOrder::ColumnsThenRows,
                OrderArg::RowsThenColumns => SinkhornOrder::RowsThenColumns,
            },
        };
        let tokens = match self.token_aggregation {
            TokenArg::MeanOfMetrics => TokenAggregation::MeanOfMetrics,
            TokenArg::MetricOfMean => TokenAggregation::MetricOfMean,
        };
        if let Some(path) = &self.logits {
            return Ok(GainConfig::from_npy(path, sinkhorn, tokens)?);
        }
        let generator = LogitGenerator::new(self.identity_weight, self.logit_std, self.shared_std)?;
        let defaults = GainParams::default();
        Ok(GainParams {
            layers: self.layers.unwrap_or(defaults.layers),
            streams: self.streams.unwrap_or(defaults.streams),
            tokens: self.tokens.unwrap_or(defaults.tokens),
            seeds: self.seeds.unwrap_or(defaults.seeds),
            seed: self.seed,
            generator,
            sinkhorn,
            token_aggregation: tokens,
        }
        .validate()?)
    }
}

/// A metric by its CSV/JSON name.
pub(super) fn parse_metric(name: &str) -> Result<Metric, String> {
    Metric::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!(
            "unknown metric '{name}', expected one of {}",
            names.join(", ")
        )
    })
}

pub fn run(args: GainArgs) -> anyhow::Result<Outcome> {
    // One pool for the whole run: reading and checking the draws, the seeds, the summaries and
    // the files all run on `--threads` threads.
    with_threads(args.threads, || run_on_pool(&args))?
}

fn run_on_pool(args: &GainArgs) -> anyhow::Result<Outcome> {
    let config = args.config()?;
    let prepared = args
        .out
        .as_deref()
        .map(export::OutputDirectory::prepare)
        .transpose()?;
    let mut per_seed = match (&args.out, args.per_seed) {
        (Some(out), true) => Some(mhc_analyze::export::csv::PerSeedWriter::new(
            StagedFile::create(&out.join("gain_per_seed.csv"))?,
            config.row_layout(),
            if args.per_seed_metrics.is_empty() {
                &Metric::ALL
            } else {
                &args.per_seed_metrics
            },
        )),
        _ => None,
    };
    let bar = progress::bar(config.seeds(), 64, args.quiet, "seeds");
    let result = run_gain(
        &config,
        |seed, values| match &mut per_seed {
            Some(writer) => writer.write_seed(seed, values),
            None => Ok(()),
        },
        |done| bar.set_position(done),
    )?;
    bar.finish_and_clear();

    let summary = export::json::gain_summary(&config, &result);
    if let Some(out) = &args.out {
        let figure = gain_figure(&config, &result, Band::MinMax);
        // The PNG (the slowest) and the other files are independent: render
        // them side by side, and stage (write and sync) the others while the PNG is drawn.
        let writing = || format!("writing results into {}", out.display());
        let (png, others) = rayon::join(
            || plot::line_figure_png(&figure),
            || -> anyhow::Result<_> {
                let files = vec![
                    (out.join("gain.csv"), export::csv::gain_csv(&result)?),
                    (out.join("summary.json"), export::json::to_bytes(&summary)),
                    (
                        out.join("gain.svg"),
                        plot::line_figure_svg(&figure)?.into_bytes(),
                    ),
                ];
                export::stage_all(files).with_context(writing)
            },
        );
        let mut staged = others?;
        staged.extend(export::stage_all(vec![(out.join("gain.png"), png?)]).with_context(writing)?);
        export::commit_all(staged).with_context(writing)?;
        if let Some(writer) = per_seed {
            writer.finish()?.commit()?;
        }
    }
    match args.format {
        Format::Table => write_stdout(export::table::gain_table(&config, &result).as_bytes())?,
        Format::Json => write_stdout(&export::json::to_bytes(&summary))?,
        Format::Csv => write_stdout(&export::csv::gain_csv(&result)?)?,
    }
    if let Some(directory) = prepared {
        directory.keep();
    }
    Ok(Outcome::Done)
}
