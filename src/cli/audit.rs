//! `mhc-analyze audit`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use mhc_analyze::analysis::audit_figure::{audit_gain_figure, audit_heatmap_figure};
use mhc_analyze::analysis::certified::{CertifiedVerdict, SearchParams, certify_model};
use mhc_analyze::analysis::certify::Arithmetic;
use mhc_analyze::analysis::init::audited_init_distance;
use mhc_analyze::analysis::{AuditConfig, TokenAggregation, Verdict, audit};
use mhc_analyze::export::audit::{self as render, AuditSubject};
use mhc_analyze::export::csv::PerTokenWriter;
use mhc_analyze::export::{self, StagedFile};
use mhc_analyze::generate::probe::ProbeConfig;
use mhc_analyze::load::dynamic::{DynamicModel, DynamicOptions};
use mhc_analyze::load::input::{open_audit_input, open_probe_input};
use mhc_analyze::load::{Layout, LoadOptions};
use mhc_analyze::metrics::Metric;
use mhc_analyze::plot;

use super::gain::parse_metric;
use super::{Outcome, progress, series, with_threads, write_stdout};

/// What to print on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    /// A human-readable table.
    #[default]
    Table,
    /// JSON (the content of audit.json).
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
}

/// `--layout`: `auto` (None) or a layout.
#[derive(Clone, Debug)]
struct LayoutChoice(Option<Layout>);

fn parse_layout(text: &str) -> Result<LayoutChoice, String> {
    if text == "auto" {
        Ok(LayoutChoice(None))
    } else {
        text.parse::<Layout>()
            .map(|layout| LayoutChoice(Some(layout)))
            .map_err(|e| format!("{e}, or auto"))
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Layouts: stack (one [L,n,n] or [L,T,n,n] tensor of finished H_res, e.g. a capture \
of a forward pass), lucidrains-hc, lucidrains-mhc, mhc-pytorch, deepseek-v4; auto detects them \
from tensor names.

A stack of per-token matrices is read in chunks of tokens: memory does not grow with the number of \
tokens. Statistics over tokens (mean, min, median, p90, p99, max) are exact while tokens × values \
fit 64 MB, and come from a log-bucketed sketch (accuracy 0.78 % of the distance to 1 for gains) \
beyond; audit.json says which.

Examples:
  mhc-analyze audit model.safetensors
      Find the H_res parameters, rebuild each layer's H_res, print the verdict (exit 0 stable, 1 unstable).
  mhc-analyze audit hres.safetensors --out audit/ --per-token
      A capture of [layers, tokens, n, n] from the PyTorch companion (python/): statistics over tokens,
      worst tokens, figures, and audit_per_token.csv.
  mhc-analyze audit model.safetensors.index.json --max-gain 1.5 --format markdown > comment.md
      A sharded model as a CI gate, with a Markdown summary for the pull request.
  mhc-analyze audit run/step*.safetensors --out run-audit/
      A training run: each checkpoint audited (step from its metadata step/global_step/iteration,
      else the last integer in its name), one row per checkpoint, the layers whose H_res never
      moved, series.csv, series.json and figures against step. Exit 1 if any checkpoint is unstable."
)]
pub struct AuditArgs {
    /// Checkpoint or stack: .safetensors (or its .index.json), .npy, .npz, PyTorch .pt/.pth/.bin.
    /// Several files, or a directory of them: the checkpoints of one training run (a series); a
    /// directory holding a single checkpoint is audited alone.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// How H_res is stored [auto, stack, lucidrains-hc, lucidrains-mhc, mhc-pytorch, deepseek-v4].
    #[arg(long, default_value = "auto", value_parser = parse_layout)]
    layout: LayoutChoice,
    /// The tensor holding a stack of H_res (layout stack).
    #[arg(long)]
    key: Option<String>,
    /// Transpose every matrix (for a stack stored with rows = input streams).
    #[arg(long)]
    transpose: bool,
    /// Use --layout even where the file's metadata or parameters name another layout (recorded
    /// in the output).
    #[arg(long)]
    ignore_evidence: bool,
    /// Execution order of H_res modules that share a layer index, by a name component of each
    /// (e.g. mixer,ffn).
    #[arg(long, value_delimiter = ',', value_name = "NAME,NAME")]
    sublayer_order: Option<Vec<String>>,
    /// Unstable when the whole-model Amax gain (forward or backward, max over tokens) exceeds
    /// this (a positive number).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    max_gain: f64,
    /// Also unstable when a single layer's Birkhoff distance (max over tokens) exceeds this.
    #[arg(long, allow_negative_numbers = true)]
    max_distance: Option<f64>,
    /// With metric-of-mean, also measure the composites of the token-mean matrices (in JSON).
    #[arg(long, value_enum, default_value = "mean-of-metrics")]
    token_aggregation: TokenArg,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "table")]
    format: AuditFormat,
    /// Write audit.csv, audit.json, audit.md, audit.png/.svg and audit-heatmap.png/.svg into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write audit_per_token.csv (token,metric,value of the whole-model composite) into --out,
    /// streamed as tokens are measured.
    #[arg(long, requires = "out")]
    per_token: bool,
    /// The metrics written to audit_per_token.csv, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_metric, requires = "per_token")]
    per_token_metrics: Vec<Metric>,
    /// Audit N synthetic tokens per layer instead of the static H_res: standard-normal hidden
    /// states through the layout's own norm, projection and Sinkhorn (parameter layouts only).
    #[arg(long, value_name = "N", conflicts_with_all = ["key", "transpose"])]
    probe: Option<u64>,
    /// The probe's seed (same seed, same tokens, on any number of threads).
    #[arg(long, value_name = "K", default_value_t = 0, requires = "probe")]
    probe_seed: u64,
    /// Also bound the whole-model (and every composite's) Amax gains over every input the layers
    /// can receive, from the parameters alone: [lower, upper] and a verdict (certified stable,
    /// unstable or not certified) that sets the exit code (parameter layouts only).
    #[arg(long, conflicts_with_all = ["key", "transpose"])]
    certify: bool,
    /// The arithmetic the model computes H_res in, for the certificate's rounding allowance.
    #[arg(long, value_enum, default_value = "f32", requires = "certify")]
    model_arithmetic: ArithmeticArg,
    /// lucidrains HC without the tanh on its dynamic projection (HyperConnections(tanh=False);
    /// the file does not record it, the package default applies tanh).
    #[arg(long)]
    hc_without_tanh: bool,
    /// Write the analysed matrices ([L,n,n] or [L,T,n,n], f64, rows = output streams) to a .npy file.
    #[arg(long, value_name = "OUT.npy")]
    dump_hres: Option<PathBuf>,
    /// Tokens read and measured per chunk [default: about 8 MB of values]; never changes results.
    #[arg(long, value_name = "N")]
    chunk_tokens: Option<usize>,
    /// Worker threads [default: all cores]. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Series only: a layer is unmoved when no entry of its H_res ever differs from the first
    /// checkpoint's by more than this.
    #[arg(
        long,
        default_value_t = 1e-4,
        value_name = "TOL",
        allow_negative_numbers = true
    )]
    still_tolerance: f64,
}

/// The model's arithmetic as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ArithmeticArg {
    /// binary32 (every published implementation runs its Sinkhorn in f32).
    F32,
    /// binary64.
    F64,
    /// Exact real arithmetic (no rounding allowance: a real model's matrices may exceed it).
    Exact,
}

/// Token aggregation as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenArg {
    /// Metrics per token, then statistics over tokens.
    MeanOfMetrics,
    /// Also: the mean matrix over tokens per layer, then metrics.
    MetricOfMean,
}

/// The per-token model's settings that the file does not record.
fn dynamic_options(args: &AuditArgs) -> DynamicOptions {
    DynamicOptions {
        lucidrains_hc_tanh: !args.hc_without_tanh,
        ..DynamicOptions::default()
    }
}

pub fn run(args: AuditArgs) -> anyhow::Result<Outcome> {
    with_threads(args.threads, || run_on_pool(&args))?
}

/// The file name of `path` (figures are titled with it, not with the machine's path).
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn run_on_pool(args: &AuditArgs) -> anyhow::Result<Outcome> {
    let config = AuditConfig::new(
        args.max_gain,
        args.max_distance,
        match args.token_aggregation {
            TokenArg::MeanOfMetrics => TokenAggregation::MeanOfMetrics,
            TokenArg::MetricOfMean => TokenAggregation::MetricOfMean,
        },
    )?
    .with_chunk_tokens(args.chunk_tokens)?;
    let options = LoadOptions {
        layout: args.layout.0,
        key: args.key.clone(),
        transpose: args.transpose,
        ignore_evidence: args.ignore_evidence,
        sublayer_order: args.sublayer_order.clone(),
    };
    let Some(path) = series::single_checkpoint(&args.paths)? else {
        anyhow::ensure!(
            !args.per_token && args.dump_hres.is_none() && args.probe.is_none() && !args.certify,
            "--per-token, --dump-hres, --probe and --certify apply to one checkpoint, not to a \
             series of {} paths",
            args.paths.len()
        );
        return series::run_series(series::SeriesRequest {
            paths: &args.paths,
            load: options,
            audit: config,
            still_tolerance: args.still_tolerance,
            out: args.out.as_deref(),
            format: match args.format {
                AuditFormat::Table => series::SeriesFormat::Table,
                AuditFormat::Json => series::SeriesFormat::Json,
                AuditFormat::Markdown => series::SeriesFormat::Markdown,
            },
            quiet: args.quiet,
        });
    };
    let path = path.as_path();
    let input = match args.probe {
        Some(tokens) => open_probe_input(
            path,
            &options,
            ProbeConfig::new(tokens, args.probe_seed)?,
            dynamic_options(args),
        )?,
        None => open_audit_input(path, &options)?,
    };
    let prepared = args
        .out
        .as_deref()
        .map(export::OutputDirectory::prepare)
        .transpose()?;
    let source = path.display().to_string();
    let tokens = input.tokens.as_ref();
    let mut per_token = match (&args.out, args.per_token) {
        (Some(out), true) => Some(PerTokenWriter::new(
            StagedFile::create(&out.join("audit_per_token.csv"))?,
            if args.per_token_metrics.is_empty() {
                &Metric::ALL
            } else {
                &args.per_token_metrics
            },
        )),
        _ => None,
    };
    let bar = progress::bar(tokens.tokens(), 100_000, args.quiet, "tokens");
    let result = audit(
        tokens,
        &config,
        |chunk| match &mut per_token {
            Some(writer) => writer.write_chunk(chunk),
            None => Ok(()),
        },
        |done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    let mean_matrices = result
        .tokens
        .mean_matrices
        .as_deref()
        .expect("audits keep the token-mean matrices");
    let init_distance = audited_init_distance(
        input.provenance.layout,
        input.provenance.origin,
        options.transpose,
        mean_matrices,
    );
    let subject = AuditSubject {
        source: &source,
        provenance: &input.provenance,
        init_distance: init_distance.as_deref(),
    };
    let certified = if args.certify {
        let model = DynamicModel::open(path, &options, dynamic_options(args))?;
        let probe = args.probe.map(|tokens| (tokens, args.probe_seed));
        Some(certify_model(
            &model,
            &result,
            probe,
            match args.model_arithmetic {
                ArithmeticArg::F32 => Arithmetic::F32,
                ArithmeticArg::F64 => Arithmetic::F64,
                ArithmeticArg::Exact => Arithmetic::Exact,
            },
            SearchParams {
                seed: args.probe_seed,
                ..SearchParams::default()
            },
            config.max_gain(),
        )?)
    } else {
        None
    };
    let mut json = render::audit_json(subject, &config, &result);
    if let Some(certified) = &certified {
        json["certificate"] = render::certificate_json(certified);
    }
    let markdown = || {
        let mut text = render::audit_markdown(subject, &result);
        if let Some(certified) = &certified {
            text.push_str(&render::certificate_markdown(certified));
        }
        text
    };
    if let Some(out) = &args.out {
        let name = file_name(path);
        let gains = audit_gain_figure(&name, &input.provenance, &result, config.max_gain());
        let heatmap = audit_heatmap_figure(&input.provenance, &result, mean_matrices);
        let files = vec![
            (
                out.join("audit.csv"),
                render::audit_csv(&input.provenance, &result)?,
            ),
            (out.join("audit.json"), export::json::to_bytes(&json)),
            (out.join("audit.md"), markdown().into_bytes()),
            (out.join("audit.png"), plot::line_figure_png(&gains)?),
            (
                out.join("audit.svg"),
                plot::line_figure_svg(&gains)?.into_bytes(),
            ),
            (
                out.join("audit-heatmap.png"),
                plot::heatmap_figure_png(&heatmap)?,
            ),
            (
                out.join("audit-heatmap.svg"),
                plot::heatmap_figure_svg(&heatmap)?.into_bytes(),
            ),
        ];
        let writing = || format!("writing results into {}", out.display());
        let mut staged = export::stage_all(files).with_context(writing)?;
        if let Some(writer) = per_token {
            let mut file = writer.finish()?;
            file.sync().with_context(writing)?;
            staged.push(file);
        }
        export::commit_all(staged).with_context(writing)?;
    }
    if let Some(path) = &args.dump_hres {
        export::npy::dump_stack(tokens, path, config.chunk_tokens())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    match args.format {
        AuditFormat::Table => {
            let mut table = render::audit_table(subject, &result);
            if let Some(certified) = &certified {
                table.push_str(&render::certificate_table(certified));
            }
            write_stdout(table.as_bytes())?
        }
        AuditFormat::Json => write_stdout(&export::json::to_bytes(&json))?,
        AuditFormat::Markdown => write_stdout(markdown().as_bytes())?,
    }
    if let Some(directory) = prepared {
        directory.keep();
    }
    // With --certify, the certificate's verdict decides the exit code.
    Ok(match (&certified, result.verdict) {
        (Some(c), _) if c.verdict == CertifiedVerdict::CertifiedStable => Outcome::Done,
        (Some(_), _) => Outcome::Finding,
        (None, Verdict::Stable) => Outcome::Done,
        (None, Verdict::Unstable) => Outcome::Finding,
    })
}
